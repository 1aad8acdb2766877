"""The evaluation's emotion classifier of landmark sequences (stands in for the paper's video emotion classifier).

Torch modules only: no file IO, no training loop (that is :mod:`evpcli.train.lm_emotion`).
"""

from __future__ import annotations

import torch
from torch import nn

from evpcli.config import LandmarkEmotionConfig


class LandmarkEmotionClassifier(nn.Module):
    """Emotion of a landmark sequence, for evaluation (stands in for the paper's video emotion classifier).

    Input: (B, T, 68, 2) displacements of normalised landmarks from the actor's reference (canonical 256 px
    frame, divided by 256). Temporal convolutions, then mean and max pooling over time, then a linear layer:
    logits (B, n_classes). Works for any T >= 1.
    """

    def __init__(self, cfg: LandmarkEmotionConfig = LandmarkEmotionConfig()):
        super().__init__()
        self.cfg = cfg
        c = cfg.n_points * 2
        self.conv = nn.Sequential(
            nn.Conv1d(c, cfg.hidden, 5, padding=2), nn.ReLU(),
            nn.Conv1d(cfg.hidden, cfg.hidden, 5, padding=2), nn.ReLU(),
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(2 * cfg.hidden, cfg.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        h = self.conv(x.reshape(b, t, -1).transpose(1, 2))  # (B, hidden, T)
        pooled = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return self.out(self.drop(pooled))
