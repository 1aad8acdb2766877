"""The brows kept above the eyes under a strong frown.

An emotion's command moves the brows by a displacement learned on one synthetic face (:mod:`evpcli.face.amplitude`:
angry lowers them ~0.13 inter-ocular distances at intensity 1), whatever room the target's own face has. On the
astronaut, whose brows sit low (0.15-0.17 IOD above the upper lids; carphone's 0.19-0.24), angry's command left
0.01-0.03 IOD: the brows were pushed onto the lids, the lid's skin squeezed into a dark band, the brows' hair
drawn as lashes, and dlib (and a viewer) lost the brows (it read them *raised* 2 % IOD). A real frown lowers the
brows by a share of that room, and the upper lid's skin folds under them; it does not go to nothing.

:func:`keep_brow_gap` keeps each brow point's height above the upper lid below it (measured across the eye line,
the upper lid interpolated under the point) at least :data:`BROW_GAP_FLOOR` of the target's own, with a soft
knee (:data:`BROW_GAP_KNEE`): a command more than the knee above the floor is not touched, one that would cross it approaches
it smoothly (no kink when the frown's weight changes from frame to frame). Only the brows move.
"""

from __future__ import annotations

import numpy as np

from evpcli.face.parts import BROWS, LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE

BROW_GAP_FLOOR = 0.4  # the least share of the target's own brow-to-lid height a command keeps
BROW_GAP_KNEE = 0.1  # the soft floor's knee, as a share of the target's own height

# each brow over the upper lid of its eye: (brow points, the upper lid's points corner to corner, left to right)
_SIDES = ((RIGHT_BROW, RIGHT_EYE[:4]), (LEFT_BROW, LEFT_EYE[:4]))


def brow_gaps(landmarks: np.ndarray) -> np.ndarray:
    """(..., 10): each brow point's height (17-26) above the upper lid under it, across the eye line (px; positive
    when the brow is above the lid), of (..., 68, 2) landmarks in image pixels (y down)."""
    lm = np.asarray(landmarks, np.float64)
    u = lm[..., 45, :] - lm[..., 36, :]
    u = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-9)  # along the eye line
    up = np.stack([u[..., 1], -u[..., 0]], -1)  # across it, towards the forehead
    out = []
    for brow, lid in _SIDES:
        along_lid = (lm[..., lid, :] * u[..., None, :]).sum(-1)
        height_lid = (lm[..., lid, :] * up[..., None, :]).sum(-1)
        along = (lm[..., brow, :] * u[..., None, :]).sum(-1)
        height = (lm[..., brow, :] * up[..., None, :]).sum(-1)
        flat_a, flat_l, flat_b = (x.reshape(-1, x.shape[-1]) for x in (along_lid, height_lid, along))
        under = np.stack([np.interp(b, a, lh) if np.all(np.diff(a) > 0) else np.full_like(b, lh.max())
                          for a, lh, b in zip(flat_a, flat_l, flat_b, strict=True)])
        out.append(height - under.reshape(height.shape))
    return np.concatenate(out, -1)


def keep_brow_gap(landmarks: np.ndarray, own: np.ndarray, floor: float = BROW_GAP_FLOOR,
                  knee: float = BROW_GAP_KNEE) -> np.ndarray:
    """``landmarks`` (T, 68, 2) image pixels with each brow point at least ``floor`` of ``own``'s brow-to-lid height
    above its upper lid (module docstring). ``own``: (68, 2) the target's own face, or (T, 68, 2) per frame.
    Returns a new float32 array; frames whose brows have room are returned as they were."""
    lm = np.array(landmarks, np.float64, copy=True)
    g0 = brow_gaps(own)
    if g0.ndim == 1:
        g0 = np.broadcast_to(g0, (len(lm), g0.shape[-1]))
    g = brow_gaps(lm)
    lo = floor * g0
    s = np.maximum(knee * g0, 1e-6)
    # a smooth max(g, lo) (C1, quadratic within s of the floor): exactly g from lo + s up, lo from lo - s down
    kept = np.where(g >= lo + s, g, np.where(g <= lo - s, lo, lo + (g - lo + s) ** 2 / (4 * s)))
    lift = np.where(g0 > 0, kept - g, 0.0)  # only brows that have their own room above the lid
    u = lm[:, 45] - lm[:, 36]
    u = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-9)
    up = np.stack([u[:, 1], -u[:, 0]], -1)
    lm[:, BROWS] += lift[..., None] * up[:, None, :]
    return lm.astype(np.float32)
