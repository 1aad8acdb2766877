"""Cross-reconstructed emotion disentanglement networks (EVP section 3.1).

Inputs are MFCC windows (B, 28, 12) float32 (28 rows of 10 ms around a video frame, 12 coefficients), normalised
inside the model with per-coefficient statistics of the training set (buffers ``mfcc_mean``/``mfcc_std``, so
callers pass raw MFCC windows). The decoder reconstructs *normalised* windows; :meth:`Disentangle.normalise` maps
raw windows into that space for the losses.

- :class:`ContentEncoder` Ec: window -> (B, 256) content code, one per window (duration-dependent).
- :class:`EmotionEncoder` Ee: window -> (B, 128) non-negative emotion code; 1D convs along time and a mean over
  time, so it does not depend on the window's duration. A clip's code is the mean over its windows.
- :class:`Decoder` D: (content, emotion) -> (B, 28, 12) normalised window.
- :class:`EmotionClassifier` Ce: emotion code -> (B, 8) logits over :data:`evpcli.config.EMOTIONS`.
"""

from __future__ import annotations

import torch
from torch import nn

from evpcli.config import DisentangleConfig


def _conv2d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ContentEncoder(nn.Module):
    """Ec: 2D convs over the 1 x 28 x 12 window, max-pools, FC -> content code (B, content_dim)."""

    def __init__(self, cfg: DisentangleConfig):
        super().__init__()
        layers: list[nn.Module] = []
        cin, h, w = 1, cfg.window, cfg.n_coeffs
        for k, cout in enumerate(cfg.content_channels):
            layers.append(_conv2d(cin, cout))
            cin = cout
            if k in cfg.content_pool_after:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                h, w = -(-h // 2), -(-w // 2)
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(cin * h * w, cfg.content_dim)  # linear: a ReLU here lets L_con kill every unit

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 28, 12) normalised -> (B, content_dim)
        return self.fc(self.convs(x.unsqueeze(1)).flatten(1))


class EmotionEncoder(nn.Module):
    """Ee: 1D convs along time over the coefficients as channels, mean over time, FC, ReLU -> (B, emotion_dim)."""

    def __init__(self, cfg: DisentangleConfig):
        super().__init__()
        layers: list[nn.Module] = []
        cin = cfg.n_coeffs
        for k, cout in enumerate(cfg.emotion_channels):
            layers += [nn.Conv1d(cin, cout, 5, stride=2 if k else 1, padding=2), nn.BatchNorm1d(cout),
                       nn.ReLU(inplace=True)]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(2 * cin, cfg.emotion_dim), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, 12) normalised -> (B, emotion_dim), T any
        h = self.convs(x.transpose(1, 2))  # (B, C, T')
        return self.fc(torch.cat([h.mean(2), h.std(2, unbiased=False)], dim=1))


class Decoder(nn.Module):
    """D: concat(content, emotion) -> FC -> transposed convs -> normalised window (B, 28, 12)."""

    def __init__(self, cfg: DisentangleConfig):
        super().__init__()
        n_up = len(cfg.decoder_channels) - 1
        self.h0, self.w0 = -(-cfg.window // 2 ** n_up), -(-cfg.n_coeffs // 2 ** n_up)
        self.window, self.n_coeffs = cfg.window, cfg.n_coeffs
        c0 = cfg.decoder_channels[0]
        self.fc = nn.Sequential(nn.Linear(cfg.content_dim + cfg.emotion_dim, c0 * self.h0 * self.w0),
                                nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for cin, cout in zip(cfg.decoder_channels[:-1], cfg.decoder_channels[1:], strict=True):
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(cfg.decoder_channels[-1], 1, 3, padding=1))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, content: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([content, emotion], dim=1)).view(len(content), -1, self.h0, self.w0)
        return self.deconvs(h)[:, 0, : self.window, : self.n_coeffs]


class EmotionClassifier(nn.Module):
    """Ce: Linear emotion code -> logits over the eight emotions."""

    def __init__(self, cfg: DisentangleConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.emotion_dim, cfg.n_emotions)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.fc(code)


def cmvn_stats(rows: torch.Tensor, min_std: float = 1e-2) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coefficient mean and std (12,) of one clip's MFCC rows (N, 12), leaving out rows of exact silence
    (all zero: the padding) unless the clip has fewer than 8 other rows."""
    speech = rows[rows.abs().sum(-1) > 0]
    if len(speech) < 8:
        speech = rows
    return speech.mean(0), speech.std(0, unbiased=False).clamp_min(min_std)


def rows_of_windows(windows: torch.Tensor, hop: int = 4) -> torch.Tensor:
    """The MFCC rows (N, 12) behind one clip's consecutive windows (T, W, 12) that step by ``hop`` rows."""
    return torch.cat([windows[0], windows[1:, -hop:].reshape(-1, windows.shape[-1])])


class Disentangle(nn.Module):
    """The four networks plus the MFCC normalisation they share.

    With ``cfg.cmvn`` the content encoder's input is a clip's windows normalised by the clip's own statistics
    (:meth:`content_input`; callers with the windows of one whole clip use :meth:`clip_content`), and
    :meth:`content` expects such inputs.
    """

    def __init__(self, cfg: DisentangleConfig = DisentangleConfig()):
        super().__init__()
        self.cfg = cfg
        self.content_encoder = ContentEncoder(cfg)
        self.emotion_encoder = EmotionEncoder(cfg)
        self.decoder = Decoder(cfg)
        self.classifier = EmotionClassifier(cfg)
        self.register_buffer("mfcc_mean", torch.zeros(cfg.n_coeffs))
        self.register_buffer("mfcc_std", torch.ones(cfg.n_coeffs))

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mfcc_mean.copy_(mean)
        self.mfcc_std.copy_(std.clamp_min(1e-3))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Raw MFCC windows (B, T, 12) -> the normalised space the encoders read and the decoder writes."""
        return (x - self.mfcc_mean) / self.mfcc_std

    def content_input(self, windows: torch.Tensor) -> torch.Tensor:
        """What Ec reads, for the consecutive raw windows (T, 28, 12) of one clip: with ``cfg.cmvn`` the windows
        normalised by the clip's own per-coefficient mean and std, else the raw windows."""
        if not self.cfg.cmvn:
            return windows
        mean, std = cmvn_stats(rows_of_windows(windows))
        return (windows - mean) / std

    def content(self, x: torch.Tensor) -> torch.Tensor:
        """Ec of windows (B, 28, 12) -> (B, content_dim): raw windows, or with ``cfg.cmvn`` :meth:`content_input`."""
        return self.content_encoder(x if self.cfg.cmvn else self.normalise(x))

    def clip_content(self, windows: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """Content codes (T, content_dim) of one clip's consecutive raw windows (T, 28, 12)."""
        x = self.content_input(windows)
        return torch.cat([self.content(x[i:i + chunk]) for i in range(0, len(x), chunk)]) if len(x) else \
            self.content(x)

    def emotion(self, x: torch.Tensor) -> torch.Tensor:
        """Ee of raw windows (B, T, 12) -> (B, emotion_dim), non-negative."""
        return self.emotion_encoder(self.normalise(x))

    def forward(self, content_src: torch.Tensor, emotion_src: torch.Tensor) -> torch.Tensor:
        """D(Ec(content_src), Ee(emotion_src)) -> normalised window (B, 28, 12); ``content_src`` as :meth:`content`
        reads it."""
        return self.decoder(self.content(content_src), self.emotion(emotion_src))
