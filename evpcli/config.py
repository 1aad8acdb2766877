"""Every default of the pipeline, as frozen dataclasses. Saved beside each model that uses them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

EMOTIONS: tuple[str, ...] = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
"""MEAD's eight emotions; the index in this tuple is the class label everywhere."""

LEVELS: tuple[int, ...] = (1, 2, 3)


@dataclass(frozen=True)
class AudioConfig:
    """The audio front end of EVP (see EVP-NOTES, "Audio front end").

    MFCC: 25 ms window, 10 ms hop, 26 mel filters, n_fft 512, 13 cepstra, c0 dropped -> 12 per 10 ms.
    One video frame at 25 fps spans ``hop_per_frame`` = 4 MFCC frames; the network input for video frame t
    is a window of ``window`` = 28 MFCC frames centred on it (3 frames of context before, 4 after).
    """

    sample_rate: int = 16000
    pad_seconds: float = 0.12  # silence added at each end before MFCC
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    n_fft: int = 512
    n_mels: int = 26
    n_cepstra: int = 13  # c0 is dropped afterwards -> 12 coefficients
    preemphasis: float = 0.97
    lifter: int = 22
    fps: float = 25.0
    window: int = 28  # MFCC frames per video-frame window (280 ms)

    @property
    def n_coeffs(self) -> int:
        return self.n_cepstra - 1

    @property
    def hop_per_frame(self) -> int:
        """MFCC frames per video frame (4 at 25 fps and 10 ms hop)."""
        return int(round(self.sample_rate / self.fps / self.hop_length))


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class FitConfig:
    """The 3D fit of a target video (``evp fit-pose``); weights are in units of the face's RMS radius.

    Landmarks are normalised to unit RMS radius (the jaw is about 2.7 radii wide), so ``huber`` 0.02 means 2 % of
    the radius (≈ 0.45 px on a face 60 px wide): landmarks further off than that count linearly, not
    quadratically. Priors pull coefficients to 0 (one unit ≈ one typical deviation of the basis); ``smooth_*``
    penalise frame-to-frame changes (rotation in radians, scale and translation in normalised units). The
    ``*_weight`` are the weights of landmark groups in the fit (see :func:`evpcli.face.pose.landmark_weights`);
    huber, prior_expression and the weights were chosen on synthetic videos (actors 0-3) and checked on others
    (actors 4-7, see the README). The One-Euro filter (EVP's release: min cutoff 0.01 Hz, beta 0.7) smooths the
    poses afterwards: Euler angles in degrees, scale in % of its median, translation in pixels.
    """

    iterations: int = 15
    tolerance: float = 1e-6  # stop when the cost falls by less than this fraction
    damping: float = 1e-3  # initial Levenberg–Marquardt damping (relative to the diagonal)
    huber: float = 0.02
    contour_weight: float = 0.3  # weight of the jaw contour landmarks (0-16), which slide over the face as it turns
    brow_weight: float = 0.3  # weight of the brows (17-26)
    mouth_weight: float = 0.3  # weight of the lips (48-67)
    prior_identity: float = 0.02
    prior_expression: float = 0.1
    smooth_rotation: float = 2.0
    smooth_scale: float = 20.0
    smooth_translation: float = 2.0
    smooth_expression: float = 0.02
    one_euro: bool = True
    one_euro_min_cutoff: float = 0.01
    one_euro_beta: float = 0.7
    one_euro_d_cutoff: float = 1.0


@dataclass(frozen=True)
class LandmarkConfig:
    """Landmark detection, tracking and smoothing (see :mod:`evpcli.face.landmarks`).

    Part of every landmark artifact's cache key: changing a value re-tracks the clips.
    """

    detect_max_side: int = 320  # frames are shrunk to at most this side (pixels) before face detection
    detect_retry_side: int = 800  # ... and to this one when nothing was found (small faces in big frames)
    detect_upsample: int = 1  # dlib detector upsampling: finds faces down to about 40 px of the shrunk frame
    max_residual: float = 0.3  # Procrustes residual (face.normalize.procrustes_residual) above which a shape is rejected
    max_scale_change: float = 0.25  # a tracked face whose size changes more than this from one frame to the next is lost
    verify_every: int = 25  # frames between checks that the detector still sees a face in the tracked box
    min_similarity: float = 0.5  # correlation of the face patch with its last confirmed look below which we check at once
    max_gap: int = 6  # gaps up to this many frames (0.24 s) are interpolated and stay valid; longer ones: valid False
    min_detected: float = 0.5  # a clip with a face in fewer than this fraction of frames fails
    smooth_window_stable: int = 9  # Savitzky-Golay window (frames) on jaw, brows and nose: -3 dB at 3.0 Hz
    smooth_window_eyes: int = 5  # on the eyes: -3 dB at 5.9 Hz (blinks last 4-8 frames)
    smooth_window_mouth: int = 7  # on the lips (order 4): -3 dB at 7.0 Hz, gain 0.98 at 4 Hz, 0.86 at 6 Hz
    smooth_order_stable: int = 2
    smooth_order_eyes: int = 2
    smooth_order_mouth: int = 4
