"""The pixel side of an emotion's shading (:mod:`evpcli.engines.shading`, :mod:`evpcli.engines.shading_surprise`):
which faces are shaded, the box a shading touches, soft polygon masks, and the light itself.

Light falls on the coarse scale of the frame's own pixels: their fine detail (pores, lashes, the brows' hairs)
keeps its contrast (a shadow that dimmed it too read as a blur: the face's sharpness fell 1.15 -> 0.89). The factor
applies to the pixel values (on CIELAB's L* the same factor is a far deeper shadow: the astronaut's eyes became dark
holes), the skin's own chroma kept and moved by ``chroma`` x the light lost (a gain on RGB greys a shadow; in skin
it is a deeper, redder tone), or, with ``chroma`` None, scaled with the lightness (a mouth's dark cavity).
"""

from __future__ import annotations

import cv2
import numpy as np

DETAIL_IOD = 0.05  # detail finer than this (IOD) keeps its contrast in the light's change
MIN_IOD_PX = 8.0  # a face smaller than this between the outer eye corners is not shaded


def face_to_shade(landmarks: np.ndarray, amount: float, max_amount: float) -> tuple[np.ndarray, float, float] | None:
    """(landmarks (68, 2) float64, inter-ocular distance px, amount clipped to [0, ``max_amount``]) of a face to
    shade, or None where nothing is drawn: amount 0, non-finite landmarks, a face under :data:`MIN_IOD_PX`."""
    amount = float(np.clip(amount, 0.0, max_amount))
    if amount <= 0.0:
        return None
    lm = np.asarray(landmarks, np.float64)
    iod = float(np.linalg.norm(lm[45] - lm[36]))
    if not np.isfinite(lm).all() or iod < MIN_IOD_PX:
        return None
    return lm, iod, amount


def box(shape: tuple[int, ...], pts: np.ndarray, pad: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the box around ``pts`` (k, 2) grown by ``pad`` px, inside an image of ``shape``; None when
    it is under 4 px either way."""
    h, w = shape[:2]
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + pad, [w, h])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def polygon(shape: tuple[int, int], pts: np.ndarray, sigma: float) -> np.ndarray:
    """(h, w) float32 in [0, 1]: the polygon ``pts`` (k, 2) filled and blurred by ``sigma`` px."""
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(pts, np.float64) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), max(0.5, sigma))


def relight(region: np.ndarray, factor: np.ndarray, iod: float, chroma: float | None) -> None:
    """Multiply the coarse light of ``region`` (h, w, 3) uint8 in place by ``factor`` (h, w) (see the module
    docstring); pixels whose factor is 1 keep their bytes. ``chroma`` None: the chroma follows the lightness (CIELAB
    a*, b* scaled as L*), so a shadow keeps the colour's saturation (a mouth's cavity in shadow: kept chroma at a
    fifth of the light was a saturated maroon)."""
    changed = np.abs(factor - 1.0) > 1e-3
    if not changed.any():
        return
    img = region.astype(np.float32)
    base = cv2.GaussianBlur(img, (0, 0), max(0.7, DETAIL_IOD * iod))
    lab = cv2.cvtColor(np.clip(base * factor[..., None] + (img - base), 0, 255) / 255.0, cv2.COLOR_RGB2Lab)
    own = cv2.cvtColor(img / 255.0, cv2.COLOR_RGB2Lab)
    if chroma is None:
        gain = np.clip(lab[..., 0] / np.maximum(own[..., 0], 1e-3), 0.0, 1.0)
    else:
        gain = np.clip(1.0 + chroma * (1.0 - factor), 0.0, None)
    lab[..., 1:] = own[..., 1:] * gain[..., None]
    shaded = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    region[changed] = shaded[changed]
