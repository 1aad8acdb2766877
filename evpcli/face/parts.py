"""The 68-point iBUG scheme: the indices of the facial parts (the only place that names them), the mirror table,
the curves a landmark sketch draws, and mouth measures."""

from __future__ import annotations

import numpy as np

JAW = np.arange(0, 17)
RIGHT_BROW = np.arange(17, 22)  # subject's right = image left
LEFT_BROW = np.arange(22, 27)
NOSE_BRIDGE = np.arange(27, 31)
NOSE_BASE = np.arange(31, 36)
NOSE = np.arange(27, 36)
RIGHT_EYE = np.arange(36, 42)
LEFT_EYE = np.arange(42, 48)
OUTER_LIP = np.arange(48, 60)
INNER_LIP = np.arange(60, 68)
MOUTH = np.arange(48, 68)
MOUTH_CORNERS = np.array([48, 54, 60, 64])  # outer left, outer right, inner left, inner right
OUTER_LIP_CORNERS = np.array([48, 54])
UPPER_LIP = np.array([49, 50, 51, 52, 53, 61, 62, 63])  # the upper lip's outer and inner points between the corners
LOWER_LIP = np.array([55, 56, 57, 58, 59, 65, 66, 67])  # the lower lip's outer and inner points between the corners
UPPER_OUTER_LIP = np.arange(49, 54)  # between the corners 48 and 54
LOWER_OUTER_LIP = np.arange(55, 60)
UPPER_INNER_LIP = np.array([61, 62, 63])
LOWER_INNER_LIP = np.array([67, 66, 65])  # the lower-lip point below each upper one
UPPER_OUTER_MID = np.array([50, 51, 52])  # the upper lip's outline above each UPPER_INNER_LIP point (its thickness)
LOWER_OUTER_MID = np.array([58, 57, 56])  # the lower lip's outline below each LOWER_INNER_LIP point
BROWS = np.arange(17, 27)
EYES = np.arange(36, 48)
UPPER_EYELIDS = np.array([37, 38, 43, 44])
LOWER_EYELIDS = np.array([41, 40, 47, 46])  # the lower-lid point below each upper-lid point
STABLE = np.array([36, 39, 42, 45, 27, 28, 29, 30, 31, 32, 33, 34, 35])  # eye corners and nose: what Procrustes aligns
# each cheek as a polygon, from the jaw line (1-5 / 15-11) by the mouth's corner and the nose wing to the lower lid:
# where a smile's nasolabial fold and raised cheek lie (engines.smile)
RIGHT_CHEEK = np.array([1, 2, 3, 4, 5, 48, 31, 40])
LEFT_CHEEK = np.array([15, 14, 13, 12, 11, 54, 35, 47])
LOWER_JAW = np.arange(4, 13)  # the jaw points a silent mouth closes with the lips
CHIN = np.arange(5, 12)  # the jaw's lower part (8: the chin's tip)
DROPPING_LIP = np.array([55, 56, 57, 58, 59, 64, 65, 66, 67])  # LOWER_LIP and the inner corner 64: what the energy baseline opens
MIDLINE = np.array([27, 28, 29, 30, 33, 51, 57, 62, 66, 8])  # nose bridge and tip, lip centres, chin
MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40] + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65])
"""Index of each landmark's mirror partner (left-right flip of the face): ``flipped = lm[MIRROR]``."""

# (indices, closed) for every curve of the sketch: EVP's facial parts.
CURVES: tuple[tuple[np.ndarray, bool], ...] = (
    (JAW, False), (RIGHT_BROW, False), (LEFT_BROW, False), (NOSE_BRIDGE, False), (NOSE_BASE, False),
    (RIGHT_EYE, True), (LEFT_EYE, True), (OUTER_LIP, True), (INNER_LIP, True),
)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip opening: mean vertical gap of the inner lip pairs (61,67), (62,66), (63,65). (..., 68, D) -> (...)."""
    lm = np.asarray(landmarks)
    upper, lower = lm[..., UPPER_INNER_LIP, 1], lm[..., LOWER_INNER_LIP, 1]
    return (lower - upper).mean(axis=-1)


def mouth_aspect_ratio(landmarks: np.ndarray) -> np.ndarray:
    """:func:`mouth_opening` over the mouth width (distance of the corners 48, 54). (..., 68, D) -> (...).

    The gap is vertical like the opening's (an in-plane roll lowers it); a ratio, so the same in pixels and model units.
    """
    lm = np.asarray(landmarks)
    width = np.linalg.norm(lm[..., 54, :] - lm[..., 48, :], axis=-1)
    return mouth_opening(lm) / np.maximum(width, 1e-6)


def side_of_midline(shape: np.ndarray) -> np.ndarray:
    """(68, D) points -> (68,) -1 for points on the image-left half of the face, +1 right, 0 on :data:`MIDLINE`."""
    mid = shape[MIDLINE, 0].mean()
    side = np.sign(shape[:, 0] - mid)
    side[MIDLINE] = 0
    return side
