"""A still photo's head moved as one (``--head-motion``): face, hair and the head's outline together, the body still.

The face warp alone moves the face inside a ring of fixed points, so with ``--head-motion`` the face turned inside
a still head (the hair and the head's outline did not follow). Here, per output frame, before the face warp:

1. the head's motion is the similarity (turn in the image plane, shift, scale) that takes the photo's stable
   landmarks (eye corners, nose), jaw line and brows to those of the head posed for that frame
   (``head_motion_pose``: slow turns and a gentle sway);
2. it is applied to the whole head through a weight map (:func:`head_weight`): 1 over the face, the skull and the
   hair around them (an ellipse fitted to the jaw line, grown upwards and sideways), falling smoothly to 0 across
   the neck and into the background, 0 on the shoulders; each pixel moves by the weight times the head's motion,
   so the background next to the head stretches a little instead of leaving holes (the motion is a few pixels);
3. the tracked landmarks move with the head, and the face warp then draws what a similarity cannot: the turn of
   the face out of the image plane and the speech and emotion.
"""

from __future__ import annotations

import cv2
import numpy as np

from evpcli.face.normalize import apply_transform, similarity_fit
from evpcli.face.parts import BROWS, JAW, STABLE



_HEAD = np.concatenate([STABLE, JAW, BROWS])  # the stable points, the jaw line and the brows


def head_transforms(still: np.ndarray, posed: np.ndarray) -> np.ndarray:
    """(n, 2, 3) similarities from the photo's landmarks ``still`` (68, 2) to each frame's posed head ``posed``
    (n, 68, 2), fitted on the stable points, the jaw line and the brows (the head's average motion: the hair and
    the outline move with it; what is left, the face's turn out of the image, is the face warp's)."""
    src = np.repeat(np.asarray(still, np.float64)[None, _HEAD], len(posed), 0)
    return similarity_fit(src, np.asarray(posed, np.float64)[:, _HEAD])


def head_weight(size: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much each pixel of the photo (``size`` (W, H)) moves with the head."""
    w, h = size
    lm = np.asarray(landmarks, np.float64)
    jaw_w = float(np.linalg.norm(lm[16] - lm[0]))
    chin = lm[8]
    brow = lm[17:27].mean(0)
    face_h = float(np.linalg.norm(chin - lm[27]))
    up = brow - chin
    up /= max(np.linalg.norm(up), 1e-6)
    right = np.array([-up[1], up[0]])
    if np.dot(right, lm[16] - lm[0]) < 0:
        right = -right
    # the head: an ellipse from just under the chin to well above the brows (skull and hair), wider than the jaw
    centre = chin + up * (0.75 * face_h)
    a = 0.95 * jaw_w  # half-width (hair beside the face)
    b = 1.35 * face_h  # half-height
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xs - centre[0], ys - centre[1]
    u = (dx * right[0] + dy * right[1]) / a
    v = (dx * up[0] + dy * up[1]) / b
    r = np.sqrt(u * u + v * v)
    inside = np.clip((1.25 - r) / 0.35, 0.0, 1.0)  # 1 well inside the head, 0 a quarter of its size outside
    # across the neck: nothing below the chin by more than half a face height moves (shoulders, collar)
    below = -(dx * up[0] + dy * up[1] - float(np.dot(chin - centre, up)))  # distance below the chin along "down"
    neck = np.clip(1.0 - below / (0.5 * face_h), 0.0, 1.0)
    weight = inside * neck
    weight = weight * weight * (3 - 2 * weight)  # smooth
    return cv2.GaussianBlur(weight.astype(np.float32), (0, 0), max(1.0, 0.05 * jaw_w))


def move_head(image: np.ndarray, transform: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The photo with its head moved by ``transform`` (2, 3), each pixel by ``weight`` of it: (H, W, 3) uint8."""
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.asarray(transform, np.float64)
    # where each output pixel comes from: x - weight * (T(x) - x), the inverse of a small motion
    mx = (t[0, 0] - 1) * xs + t[0, 1] * ys + t[0, 2]
    my = t[1, 0] * xs + (t[1, 1] - 1) * ys + t[1, 2]
    map_x = (xs - weight * mx).astype(np.float32)
    map_y = (ys - weight * my).astype(np.float32)
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def moved_landmarks(still: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """The photo's landmarks (68, 2) moved with the head of each frame -> (n, 68, 2) float32."""
    return apply_transform(np.repeat(np.asarray(still, np.float64)[None], len(transforms), 0),
                           transforms).astype(np.float32)
