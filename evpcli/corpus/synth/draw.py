"""Frame drawing beyond the warp: the mouth's lip seam, dark interior and upper teeth."""

from __future__ import annotations

import cv2
import numpy as np

from evpcli.face.parts import INNER_LIP, mouth_opening


def _closed_spline(points: np.ndarray, per_segment: int = 4) -> np.ndarray:
    """(N * per_segment, 2) samples of the closed Catmull-Rom curve through ``points`` (N, 2), in order."""
    p0, p1, p2, p3 = (np.roll(points, s, axis=0) for s in (1, 0, -1, -2))
    t = (np.arange(per_segment) / per_segment)[:, None, None]
    curve = 0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                   + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)  # (per_segment, N, 2)
    return curve.transpose(1, 0, 2).reshape(-1, 2)


def draw_mouth(frame: np.ndarray, lm: np.ndarray, iod_px: float) -> None:
    """Paint the mouth in place: the dark seam of closed lips, or an open inner mouth (landmarks 60-67) with a
    dark interior and the upper teeth."""
    inner = lm[INNER_LIP]
    gap = float(mouth_opening(lm))
    x0, y0 = np.floor(inner.min(0)).astype(int) - 3
    x1, y1 = np.ceil(inner.max(0)).astype(int) + 4
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    off = np.array([x0, y0])
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    seam = np.zeros((y1 - y0, x1 - x0), np.uint8)
    upper = lm[[60, 61, 62, 63, 64]]
    cv2.polylines(seam, [np.round((upper - off) * 16).astype(np.int32)], False, 255, 1, cv2.LINE_AA, shift=4)
    alpha = seam.astype(np.float32)[..., None] / 255 * 0.45
    roi = roi * (1 - alpha) + np.array([90, 40, 45], np.float32) * alpha
    if gap > 0.5:
        mouth = np.zeros_like(seam)
        outline = _closed_spline(inner)  # a rounded opening through the eight inner-lip points
        cv2.fillPoly(mouth, [np.round((outline - off) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        teeth_h = min(0.3 * gap, 0.06 * iod_px)
        top = outline[3:14]  # the upper inner lip, from a little inside one corner to the other
        bottom = top[::-1].copy()  # the teeth's lower edge runs straight across where the lip allows
        bottom[:, 1] = np.maximum(bottom[:, 1], np.median(top[:, 1]) + teeth_h)
        teeth_poly = np.concatenate([top, bottom])
        teeth = np.zeros_like(mouth)
        cv2.fillPoly(teeth, [np.round((teeth_poly - off) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        a_m = mouth.astype(np.float32)[..., None] / 255 * min(1.0, gap / 1.5)
        a_t = teeth.astype(np.float32)[..., None] / 255 * a_m * float(np.clip((gap - 1.5) / 2.5, 0, 1))
        roi = roi * (1 - a_m) + np.array([52, 18, 22], np.float32) * (a_m - a_t) + np.array([200, 192, 180], np.float32) * a_t
    frame[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)
