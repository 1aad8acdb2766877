"""The brows kept above the eyes under a strong frown (face.brows)."""

import numpy as np

from evpcli.face.brows import BROW_GAP_FLOOR, brow_gaps, keep_brow_gap
from evpcli.face.normalize import TEMPLATE


def _face(scale=1.0, angle=0.0):
    """TEMPLATE in pixels (y down), turned by ``angle`` radians in the image plane."""
    lm = TEMPLATE.astype(np.float64) * scale
    c, s = np.cos(angle), np.sin(angle)
    return lm @ np.array([[c, s], [-s, c]])


def test_brow_gaps_are_the_heights_above_the_lid_and_do_not_turn_with_the_head():
    lm = _face()
    g = brow_gaps(lm)
    assert g.shape == (10,) and (g > 0).all()
    # the inner brow end (21) over the inner eye corner (39): about straight above it in an upright face
    np.testing.assert_allclose(g[4], lm[39, 1] - lm[21, 1], rtol=0.01)
    np.testing.assert_allclose(brow_gaps(_face(angle=0.3)), g, rtol=1e-6)
    lowered = lm.copy()
    lowered[17:27, 1] += 3.0
    np.testing.assert_allclose(brow_gaps(lowered), g - 3.0, atol=0.05)  # the eye line tilts 0.4 degrees


def test_a_frown_past_the_brows_room_stops_above_the_lid_and_a_mild_one_is_untouched():
    own = _face(angle=0.2)
    up = np.array([np.sin(0.2), -np.cos(0.2)])  # the face's up, as the image turns it
    g0 = brow_gaps(own)
    mild = own.copy()
    mild[17:27] -= 0.2 * g0.min() * up  # a frown of a fifth of the room
    deep = own.copy()
    deep[17:27] -= 1.2 * g0[:, None] * up  # brows pushed below the lids
    kept = keep_brow_gap(np.stack([own, mild, deep]), own)
    np.testing.assert_array_equal(kept[:2], np.stack([own, mild]).astype(np.float32))  # nothing to do
    gd = brow_gaps(kept[2].astype(np.float64))
    assert (gd >= BROW_GAP_FLOOR * g0 - 1e-3).all() and (gd < 0.5 * g0).all()  # at the floor, still a frown
    moved = np.abs(kept[2] - deep.astype(np.float32)).max(axis=1) > 0
    assert moved[17:27].all() and not moved[:17].any() and not moved[27:].any()  # only the brows move
    # deeper asks never give higher brows (no fold-back at the floor's knee)
    asks = np.linspace(0.0, 1.5, 31)
    heights = []
    for a in asks:
        f = own.copy()
        f[17:27] -= a * g0[:, None] * up
        heights.append(brow_gaps(keep_brow_gap(f[None], own)[0].astype(np.float64)))
    assert (np.diff(np.array(heights), axis=0) <= 1e-3).all()
