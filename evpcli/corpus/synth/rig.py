"""The face rig: how an actor's portrait is warped to a frame's landmarks (control points, skin points that
follow a smooth blend of the landmark motion, a fixed border)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from evpcli.corpus.synth.actors import make_actor
from evpcli.face.parts import INNER_LIP
from evpcli.face.warp import PiecewiseAffineWarp, border_points


def _skin_points(lm: np.ndarray) -> np.ndarray:
    """(K, 2) extra control points on the cheeks, chin and forehead (pixels), so that the warp bends smoothly
    there instead of along the edges of long thin triangles."""
    iod = np.linalg.norm(lm[45] - lm[36])
    pts = [lm[k] + f * (lm[33] - lm[k]) for k in (1, 2, 3, 4, 12, 13, 14, 15) for f in (0.3, 0.6)]
    pts += [0.5 * (lm[a] + lm[b]) for a, b in ((57, 8), (58, 7), (56, 9), (59, 6), (55, 10))]
    pts += [lm[k] - [0, 0.35 * iod] for k in (17, 19, 24, 26)] + [0.5 * (lm[21] + lm[22]) - [0, 0.4 * iod]]
    pts += [0.5 * (lm[k] + lm[j]) for k, j in ((31, 3), (35, 13), (48, 4), (54, 12))]
    pts = np.array(pts)
    keep = [i for i, p in enumerate(pts) if np.linalg.norm(lm - p, axis=1).min() > 0.06 * iod]
    return pts[keep]


@dataclass
class Rig:
    """How an actor's portrait is warped: control points in the portrait (68 landmarks, head ring, skin points,
    border) and the weights that move each skin point with a smooth blend of the landmark and ring motion."""

    warp: PiecewiseAffineWarp
    n_face: int  # 68 landmarks + head ring: the points the driving geometry gives
    skin_src: np.ndarray  # (K, 2)
    skin_weights: np.ndarray  # (K, n_face), rows sum to 1
    border: np.ndarray  # (B, 2) fixed

    def dst_points(self, face_dst: np.ndarray) -> np.ndarray:
        """All destination control points for the (n_face, 2) landmark + ring positions of one frame."""
        moved = self.skin_src + self.skin_weights @ (face_dst - self.warp.src[:self.n_face])
        return np.concatenate([face_dst, moved, self.border])


@lru_cache(maxsize=16)
def actor_rig(index: int, size: int, seed: int) -> Rig:
    """The rig of :func:`make_actor` ``(index, size, seed)``: skin points weighted by a Gaussian of their distance
    to each landmark and ring point (0.22 eye distances), the border fixed."""
    actor = make_actor(index, size, seed)
    face = np.concatenate([actor.image_landmarks, actor.image_head])
    skin = _skin_points(actor.image_landmarks)
    iod = np.linalg.norm(actor.image_landmarks[45] - actor.image_landmarks[36])
    d2 = ((skin[:, None, :] - face[None, :, :]) ** 2).sum(-1)
    w = np.exp(-0.5 * d2 / (0.22 * iod) ** 2)
    w[:, INNER_LIP] = 0.0  # the inner lips open the mouth, not the cheeks
    w /= w.sum(1, keepdims=True)
    border = border_points(size, size, 5)
    warp = PiecewiseAffineWarp(np.concatenate([face, skin, border]), (size, size))
    return Rig(warp=warp, n_face=len(face), skin_src=skin, skin_weights=w, border=border)
