"""The lips' own thickness kept under a strong expression.

The happy prototype (:mod:`evpcli.face.amplitude`) lifts the inner upper lip (61, 63) three times as far as the
upper lip's outline above it (50, 52), and the inner lower lip (67, 65) while its outline (58, 56) stays: at the
real amplitudes a judge needs, the upper lip of carphone's command keeps 0.45-0.65 of its own thickness at the
sides and the lower lip gains a quarter. Warped that far, the upper lip is a thin dark line (the lip's red and its
outline squeezed into a pixel or two) over a gaping band. Real smiles thin the lips somewhat, not to nothing.

:func:`keep_lip_thickness` keeps each of the three upper-lip thicknesses (61-50, 62-51, 63-52, vertical, canonical
frame) at least :data:`LIP_FLOOR` of the target's own: the inner lip is moved down, the upper and lower inner
points together so the opening (what speech draws, and lip sync reads) stays as it was, as far as the lower lip
can spare thickness over its own floor; what it cannot spare raises the upper lip's outline instead. The mouth's
corners and outline (what reads as the smile) are not touched.
"""

from __future__ import annotations

import numpy as np

from evpcli.face.parts import LOWER_INNER_LIP, LOWER_OUTER_MID, UPPER_INNER_LIP, UPPER_OUTER_MID

LIP_FLOOR = 0.85  # the least share of the target's own upper (and lower) lip thickness a command keeps


def lip_thickness(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) lip thicknesses (..., 3): the vertical distances 61-50, 62-51, 63-52 and 58-67, 57-66, 56-65
    of (..., 68, 2) landmarks (y down)."""
    lm = np.asarray(landmarks)
    upper = lm[..., UPPER_INNER_LIP, 1] - lm[..., UPPER_OUTER_MID, 1]
    lower = lm[..., LOWER_OUTER_MID, 1] - lm[..., LOWER_INNER_LIP, 1]
    return upper, lower


def keep_lip_thickness(landmarks: np.ndarray, reference: np.ndarray, floor: float = LIP_FLOOR) -> np.ndarray:
    """``landmarks`` (T, 68, 2) canonical (y down) with each upper-lip thickness at least ``floor`` of the
    ``reference``'s (68, 2), the target's own face (module docstring). The inner-lip opening is unchanged; only
    frames thinner than the floor change. Returns a new float32 array."""
    lm = np.array(landmarks, np.float32, copy=True)
    up_ref, low_ref = lip_thickness(np.asarray(reference, np.float64))
    up, low = lip_thickness(lm.astype(np.float64))
    missing = np.maximum(floor * np.maximum(up_ref, 0.0)[None] - up, 0.0)  # (T, 3)
    if not missing.any():
        return lm
    spare = np.maximum(low - floor * np.maximum(low_ref, 0.0)[None], 0.0)
    inner = np.minimum(missing, spare)  # the inner lip, upper and lower points together: the opening stays
    lm[:, UPPER_INNER_LIP, 1] += inner.astype(np.float32)
    lm[:, LOWER_INNER_LIP, 1] += inner.astype(np.float32)
    lm[:, UPPER_OUTER_MID, 1] -= (missing - inner).astype(np.float32)  # the rest: the outline up
    return lm
