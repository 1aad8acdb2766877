"""Test helper: an occluder sliding over a face video (a coloured rectangle or a skin-toned hand)."""

from __future__ import annotations

import cv2
import numpy as np


def hand_mask(size: tuple[int, int], centre: tuple[float, float], scale: float, angle: float = 0.0) -> np.ndarray:
    """(H, W) uint8 255 inside a hand silhouette: a palm ellipse and four fingers, ``scale`` ~ palm width px."""
    w, h = size
    m = np.zeros((h, w), np.uint8)
    cx, cy = centre
    ca, sa = np.cos(np.radians(angle)), np.sin(np.radians(angle))

    def rot(pts):
        pts = np.asarray(pts, np.float64)
        return np.stack([cx + ca * pts[:, 0] - sa * pts[:, 1], cy + sa * pts[:, 0] + ca * pts[:, 1]], 1)

    palm = cv2.ellipse2Poly((0, 0), (int(scale * 0.5), int(scale * 0.6)), 0, 0, 360, 10)
    cv2.fillPoly(m, [np.round(rot(palm)).astype(np.int32)], 255, cv2.LINE_AA)
    for dx, length in ((-0.36, 0.95), (-0.12, 1.1), (0.12, 1.05), (0.36, 0.85)):
        x0, x1 = (dx - 0.1) * scale, (dx + 0.1) * scale
        y1, y0 = -0.3 * scale, -(0.3 + length) * scale
        cv2.fillPoly(m, [np.round(rot([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])).astype(np.int32)], 255, cv2.LINE_AA)
    return m


def occlude(frames: np.ndarray, landmarks: np.ndarray, start: int, stop: int, kind: str = "hand",
            colour=(205, 160, 135)) -> np.ndarray:
    """Copy of ``frames`` (T, H, W, 3) with an occluder over the face in frames [start, stop): it slides in from
    the side, covers nose and mouth (half of the stretch) and slides out. ``kind`` "hand" or "rect"."""
    out = frames.copy()
    t_all = np.arange(start, stop)
    h, w = frames.shape[1:3]
    for t in t_all:
        lm = landmarks[t]
        iod = np.linalg.norm(lm[45] - lm[36])
        face_c = lm[[30, 51]].mean(0)
        u = (t - start) / max(stop - start - 1, 1)  # 0..1 over the stretch
        # in over the first quarter, still, out over the last quarter
        k = np.clip(np.minimum(u / 0.25, (1 - u) / 0.25), 0, 1)
        cx = face_c[0] + (1 - k) * 2.2 * iod
        cy = face_c[1]
        if kind == "rect":
            mask = np.zeros((h, w), np.uint8)
            x0, x1 = cx - 0.9 * iod, cx + 0.9 * iod
            y0, y1 = cy - 0.7 * iod, cy + 0.8 * iod
            cv2.rectangle(mask, (int(x0), int(y0)), (int(x1), int(y1)), 255, -1)
        else:
            mask = hand_mask((w, h), (cx, cy + 0.4 * iod), 1.3 * iod, angle=-15)
        a = mask.astype(np.float32)[..., None] / 255
        shade = np.linspace(0.85, 1.1, w, dtype=np.float32)[None, :, None]  # some shading on the occluder
        occ = np.clip(np.asarray(colour, np.float32) * shade, 0, 255)
        out[t] = np.clip(out[t] * (1 - a) + occ * a + 0.5, 0, 255).astype(np.uint8)
    return out
