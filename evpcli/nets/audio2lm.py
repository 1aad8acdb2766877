"""Audio to landmarks (EVP section 3.2): identity MLP + 3-layer LSTM + head predicting landmark displacement.

Per video frame t the LSTM sees ``[identity (512), content code (256), emotion code (128)]`` and predicts the
PCA coefficients of the displacement of the frame's normalised landmarks from the actor's reference
(``l_hat = l_ref + decode(coeffs)``). Torch modules only: no file IO, no training loop.
"""

from __future__ import annotations

import torch
from torch import nn

from evpcli.config import Audio2LandmarkConfig

CONTENT_CHUNK = 512  # windows per content-encoder batch at inference


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


class Audio2LandmarkModel(nn.Module):
    """The whole audio-to-landmark path: the disentanglement encoders (fine-tuned or frozen) + the LSTM, with
    the displacement PCA as buffers.

    ``forward(windows (B, T, 28, 12) raw MFCC, emotion (B, 128) or (B, T, 128), identity (B, 136))`` -> PCA
    coefficients (B, T, pca_dim) (with the encoders' ``cmvn`` each of the B sequences is normalised by its own
    statistics, so pass whole clips); :meth:`decode` turns coefficients into landmark displacements (B, T, 68, 2) in
    pixels of the canonical 256 frame. ``disentangle`` is an :class:`evpcli.nets.disentangle.Disentangle`.
    """

    def __init__(self, disentangle: nn.Module, cfg: Audio2LandmarkConfig = Audio2LandmarkConfig()):
        super().__init__()
        self.cfg = cfg
        self.disentangle = disentangle
        self.lstm = Audio2Landmark(cfg)
        self.register_buffer("pca_mean", torch.zeros(136))
        self.register_buffer("pca_components", torch.zeros(cfg.pca_dim, 136))
        self.register_buffer("disp_scale", torch.tensor(8.0))

    def set_pca(self, mean: torch.Tensor, components: torch.Tensor, disp_scale: float) -> None:
        """PCA of scaled displacements ``(normalised - reference) / disp_scale`` flattened (x0, y0, x1, ...)."""
        self.pca_mean.copy_(mean)
        self.pca_components.copy_(components)
        self.disp_scale.fill_(disp_scale)

    def emotion_code(self, windows: torch.Tensor) -> torch.Tensor:
        """Clip-level emotion code of raw windows (N, 28, 12): the mean of Ee over them -> (128,)."""
        return self.disentangle.emotion(windows).mean(0)

    def forward(self, windows: torch.Tensor, emotion: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        b, t = windows.shape[:2]
        # the content encoder runs CONTENT_CHUNK windows at a time: its activations for a whole 10-minute clip at
        # once would take gigabytes (training batches are smaller than a chunk, so they run as one)
        if getattr(self.disentangle.cfg, "cmvn", False):  # each sequence normalised by its own statistics
            content = torch.stack([self.disentangle.clip_content(w, CONTENT_CHUNK) for w in windows])
        else:
            flat = windows.reshape(b * t, *windows.shape[2:])
            content = torch.cat([self.disentangle.content(flat[i:i + CONTENT_CHUNK])
                                 for i in range(0, max(len(flat), 1), CONTENT_CHUNK)]).reshape(b, t, -1)
        return self.lstm(content, emotion, identity)

    def project(self, displacement: torch.Tensor) -> torch.Tensor:
        """Displacements (..., 68, 2) pixels -> PCA coefficients (..., pca_dim)."""
        flat = displacement.reshape(*displacement.shape[:-2], 136) / self.disp_scale
        return (flat - self.pca_mean) @ self.pca_components.T

    def decode(self, coeffs: torch.Tensor) -> torch.Tensor:
        """PCA coefficients (..., pca_dim) -> displacements (..., 68, 2) pixels."""
        flat = coeffs @ self.pca_components + self.pca_mean
        return (flat * self.disp_scale).reshape(*coeffs.shape[:-1], 68, 2)
