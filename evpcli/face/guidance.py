"""EVP's guidance map: the face sketch of the (adapted) landmarks plus Canny edges of the target frame outside
the face (EVP section 3.3; the neural renderer's input, and ``--guidance-out`` for inspection).

The face region whose edges are dropped is :func:`face_region`: the convex hull of the 68 landmarks and of
forehead points above the brows, grown by a margin. Inside it the map carries only the sketch, so the renderer
draws the face from the landmarks, not from the target frame's old expression; outside it the edges keep hair,
collar and background in place.
"""

from __future__ import annotations

import cv2
import numpy as np

from evpcli.face.sketch import draw_sketch

CANNY_LOW, CANNY_HIGH = 60, 140


def _iod(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (36, 45), pixels: the face's scale."""
    return float(np.linalg.norm(landmarks[45] - landmarks[36]))


def face_outline(landmarks: np.ndarray, forehead: float = 0.6) -> np.ndarray:
    """(K, 2) float32 convex polygon around the face: the landmarks' hull with the brows lifted by ``forehead``
    inter-ocular distances (the forehead), pixels."""
    lm = np.asarray(landmarks, np.float64)
    up = lm[[36, 45]].mean(0) - lm[[48, 54]].mean(0)  # points from the mouth to the eyes: "up" on the face
    up /= max(np.linalg.norm(up), 1e-9)
    brows = lm[17:27] + forehead * _iod(lm) * up
    hull = cv2.convexHull(np.concatenate([lm, brows]).astype(np.float32))
    return hull.reshape(-1, 2)


def face_region(landmarks: np.ndarray, size: tuple[int, int], margin: float = 0.08) -> np.ndarray:
    """(H, W) bool: inside :func:`face_outline`, grown by ``margin`` inter-ocular distances. ``size`` (W, H).

    The growth is a threshold on the exact Euclidean distance to the polygon (``grow + 0.5`` pixels, the disc an
    elliptical kernel of ``2 grow + 1`` approximates): one distance transform whose cost does not grow with the
    margin (a 512 px mask grown by 108 px: ~2 ms against ~80 ms for ``cv2.dilate``; they differ on < 1 % of the
    region's pixels, all on its edge)."""
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(face_outline(landmarks) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    grow = int(round(margin * _iod(np.asarray(landmarks, np.float64))))
    if grow <= 0 or not mask.any():
        return mask.astype(bool)
    return cv2.distanceTransform(1 - mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= grow + 0.5


def guidance_map(frame: np.ndarray, landmarks: np.ndarray, face_mask: np.ndarray | None = None,
                 thickness: int = 1) -> np.ndarray:
    """EVP's guidance map of one frame: (H, W) uint8.

    ``frame`` (H, W, 3) uint8 RGB (the target frame), ``landmarks`` (68, 2) pixels (the adapted landmarks),
    ``face_mask`` (H, W) bool/uint8 where edges are dropped (default :func:`face_region` of ``landmarks``).
    The sketch curves (anti-aliased, up to 255) over the frame's Canny edges (255) outside the face.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    h, w = frame.shape[:2]
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"landmarks must be (68, 2), got {lm.shape}")
    mask = face_region(lm, (w, h)) if face_mask is None else np.asarray(face_mask).astype(bool)
    if mask.shape != (h, w):
        raise ValueError(f"face_mask must be {(h, w)}, got {mask.shape}")
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), CANNY_LOW, CANNY_HIGH)
    edges[mask] = 0
    sketch = draw_sketch(lm, (w, h), thickness=thickness)[..., 0]
    return np.maximum(edges, sketch)
