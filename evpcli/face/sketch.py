"""Landmark sketches: the facial parts drawn as curves through the 68 landmarks (EVP's guidance map face part)."""

from __future__ import annotations

import numpy as np

from evpcli.face.parts import CURVES


def draw_sketch(landmarks: np.ndarray, size: tuple[int, int], thickness: int = 1, color=(255, 255, 255),
                background: np.ndarray | None = None) -> np.ndarray:
    """Draw one frame's landmark curves.

    landmarks: (68, 2) float pixels; size: (width, height). Returns (H, W, 3) uint8, the curves (anti-aliased,
    sub-pixel positions kept with cv2's fixed-point shift) over ``background`` (default black).
    """
    import cv2

    w, h = size
    img = np.zeros((h, w, 3), np.uint8) if background is None else background.copy()
    shift = 4
    pts = np.round(np.asarray(landmarks, np.float64) * (1 << shift)).astype(np.int32)
    for idx, closed in CURVES:
        cv2.polylines(img, [pts[idx].reshape(-1, 1, 2)], closed, color, thickness, cv2.LINE_AA, shift)
    return img


def sketch_video(landmarks: np.ndarray, size: tuple[int, int], thickness: int = 1) -> np.ndarray:
    """(T, 68, 2) -> (T, H, W, 3) uint8 sketches."""
    return np.stack([draw_sketch(lm, size, thickness) for lm in landmarks])
