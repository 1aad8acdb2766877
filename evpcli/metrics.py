"""Numpy-only metrics of EVP's evaluation (paper section 4).

Landmark metrics compare predicted and ground-truth landmark sequences (T, 68, 2) in the same pixel frame (here
the canonical 256×256 frontal frame of normalised landmarks):

- M-LD / F-LD: mean Euclidean distance per point and frame, over the mouth (points 48–67) / the whole face.
- M-LVD / F-LVD: the same on velocities (frame-to-frame differences), i.e. how well the motion matches.
- mouth-opening correlation: Pearson r of the inner-lip opening of two sequences.
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


def mouth_open_correlation(pred: np.ndarray, gt: np.ndarray) -> float:
    """Pearson r between the inner-mouth opening of two (T, 68, 2) sequences (nan if either is constant)."""
    a, b = mouth_opening(pred), mouth_opening(gt)
    if a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])
