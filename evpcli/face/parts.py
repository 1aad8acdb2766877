"""The 68-point iBUG scheme: index ranges of the facial parts, and the curves a landmark sketch draws."""

from __future__ import annotations

import numpy as np

JAW = np.arange(0, 17)
RIGHT_BROW = np.arange(17, 22)  # subject's right = image left
LEFT_BROW = np.arange(22, 27)
NOSE_BRIDGE = np.arange(27, 31)
NOSE_BASE = np.arange(31, 36)
RIGHT_EYE = np.arange(36, 42)
LEFT_EYE = np.arange(42, 48)
OUTER_LIP = np.arange(48, 60)
INNER_LIP = np.arange(60, 68)
MOUTH = np.arange(48, 68)

# (indices, closed) for every curve of the sketch: EVP's facial parts.
CURVES: tuple[tuple[np.ndarray, bool], ...] = (
    (JAW, False), (RIGHT_BROW, False), (LEFT_BROW, False), (NOSE_BRIDGE, False), (NOSE_BASE, False),
    (RIGHT_EYE, True), (LEFT_EYE, True), (OUTER_LIP, True), (INNER_LIP, True),
)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip opening: mean vertical gap of the inner lip pairs (61,67), (62,66), (63,65). (..., 68, 2) -> (...)."""
    lm = np.asarray(landmarks)
    upper, lower = lm[..., [61, 62, 63], 1], lm[..., [67, 66, 65], 1]
    return (lower - upper).mean(axis=-1)


def mouth_aspect_ratio(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip opening over mouth width (corners 48, 54). (..., 68, 2) -> (...)."""
    lm = np.asarray(landmarks)
    width = np.linalg.norm(lm[..., 54, :] - lm[..., 48, :], axis=-1)
    return mouth_opening(lm) / np.maximum(width, 1e-6)
