"""Audio to landmarks (EVP section 3.2): identity MLP + 3-layer LSTM + head predicting landmark displacement.

Per video frame t the LSTM sees ``[identity (512), content code (256), emotion code (128)]`` and predicts the
PCA coefficients of the displacement of the frame's normalised landmarks from the actor's reference
(``l_hat = l_ref + decode(coeffs)``). Torch modules only: no file IO, no training loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Audio2LandmarkConfig:
    identity_in: int = 136  # flattened (68, 2) reference landmarks, centred and scaled (see identity_features)
    identity_hidden: int = 256
    identity_dim: int = 512
    content_dim: int = 256
    emotion_dim: int = 128
    lstm_hidden: int = 256
    lstm_layers: int = 3
    pca_dim: int = 16


class IdentityEncoder(nn.Module):
    """MLP on the actor's reference landmarks: identity_in -> 256 -> 512."""

    def __init__(self, cfg: Audio2LandmarkConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.identity_in, cfg.identity_hidden), nn.ReLU(),
                                 nn.Linear(cfg.identity_hidden, cfg.identity_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Audio2Landmark(nn.Module):
    """(content (B, T, 256), emotion (B, 128) or (B, T, 128), identity (B, identity_in)) -> (B, T, pca_dim)."""

    def __init__(self, cfg: Audio2LandmarkConfig = Audio2LandmarkConfig()):
        super().__init__()
        self.cfg = cfg
        self.identity = IdentityEncoder(cfg)
        self.lstm = nn.LSTM(cfg.identity_dim + cfg.content_dim + cfg.emotion_dim, cfg.lstm_hidden,
                            num_layers=cfg.lstm_layers, batch_first=True)
        self.head = nn.Linear(cfg.lstm_hidden, cfg.pca_dim)

    def forward(self, content: torch.Tensor, emotion: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        b, t, _ = content.shape
        ident = self.identity(identity)[:, None, :].expand(b, t, -1)
        if emotion.dim() == 2:
            emotion = emotion[:, None, :].expand(b, t, -1)
        h, _ = self.lstm(torch.cat([ident, content, emotion], dim=-1))
        return self.head(h)


@dataclass(frozen=True)
class LandmarkEmotionConfig:
    n_points: int = 68
    hidden: int = 128
    n_classes: int = 8
    dropout: float = 0.2


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
