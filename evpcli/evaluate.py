"""Metrics of EVP's evaluation (paper section 4) and the energy baseline.

Landmark metrics compare predicted and ground-truth landmark sequences (T, 68, 2) in the same pixel frame (here
the canonical 256×256 frontal frame of normalised landmarks):

- M-LD / F-LD: mean Euclidean distance per point and frame, over the mouth (points 48–67) / the whole face.
- M-LVD / F-LVD: the same on velocities (frame-to-frame differences), i.e. how well the motion matches.
"""

from __future__ import annotations

import numpy as np

from evpcli.face.parts import MOUTH, mouth_opening


def landmark_distance(pred: np.ndarray, gt: np.ndarray, points: np.ndarray | None = None) -> float:
    """Mean Euclidean distance between (T, 68, 2) sequences over frames and the given points (all if None)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {gt.shape}")
    if points is not None:
        pred, gt = pred[:, points], gt[:, points]
    return float(np.linalg.norm(pred - gt, axis=-1).mean())


def landmark_velocity_distance(pred: np.ndarray, gt: np.ndarray, points: np.ndarray | None = None) -> float:
    """Mean Euclidean distance between the frame-to-frame velocities of two (T, 68, 2) sequences (T >= 2)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    return landmark_distance(np.diff(pred, axis=0), np.diff(gt, axis=0), points)


def landmark_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """{"M-LD", "M-LVD", "F-LD", "F-LVD"} for one clip."""
    return {
        "M-LD": landmark_distance(pred, gt, MOUTH),
        "M-LVD": landmark_velocity_distance(pred, gt, MOUTH),
        "F-LD": landmark_distance(pred, gt),
        "F-LVD": landmark_velocity_distance(pred, gt),
    }


def mean_metrics(per_clip: list[dict[str, float]]) -> dict[str, float]:
    """Frame-weighted means would favour long clips; EVP reports per-clip means, and so do we."""
    keys = per_clip[0].keys() if per_clip else []
    return {k: float(np.mean([m[k] for m in per_clip])) for k in keys}


# ----------------------------------------------------------------------------- energy baseline
LOWER_MOUTH = np.array([5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 64, 65, 66, 67])  # jaw bottom + lower lips
JAW_WEIGHT = {5: 0.3, 6: 0.5, 7: 0.8, 8: 1.0, 9: 0.8, 10: 0.5, 11: 0.3}


def fit_energy_gain(rms: np.ndarray, opening: np.ndarray, reference_opening: float) -> tuple[float, float]:
    """Least-squares ``opening - reference_opening ≈ a * log1p(rms / s)`` over training frames.

    Returns (a, s) with s = the median non-zero rms (a scale that makes the log curve sensible for any level).
    """
    rms = np.asarray(rms, np.float64)
    s = float(np.median(rms[rms > 0])) if np.any(rms > 0) else 1.0
    x = np.log1p(rms / s)
    y = np.asarray(opening, np.float64) - reference_opening
    a = float((x @ y) / max(x @ x, 1e-12))
    return a, s


def energy_baseline(reference: np.ndarray, rms: np.ndarray, gain: tuple[float, float]) -> np.ndarray:
    """The actor's reference face (68, 2) with the mouth opened by audio energy: (T, 68, 2).

    The lower lip moves down by ``a * log1p(rms / s)`` pixels and the chin follows by a weighted share: the
    simplest audio-driven face, which shows what the learned model adds.
    """
    a, s = gain
    drop = np.maximum(a * np.log1p(np.asarray(rms, np.float64) / s), 0.0)  # (T,)
    out = np.repeat(np.asarray(reference, np.float64)[None], len(drop), axis=0)
    weights = np.zeros(68)
    weights[[55, 56, 57, 58, 59, 64, 65, 66, 67]] = 1.0
    for k, v in JAW_WEIGHT.items():
        weights[k] = v
    out[:, :, 1] += drop[:, None] * weights[None, :]
    return out.astype(np.float32)


def mouth_open_correlation(pred: np.ndarray, gt: np.ndarray) -> float:
    """Pearson r between the inner-mouth opening of two (T, 68, 2) sequences (nan if either is constant)."""
    a, b = mouth_opening(pred), mouth_opening(gt)
    if a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])
