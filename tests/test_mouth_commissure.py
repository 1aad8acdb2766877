"""The mouth's corners redrawn where the command moves an outer corner away from its inner one (engines.commissure:
commissure_change, redraw_commissures): the target's own corner, stretched by the warp, showed as dark dashes beside
sad's lowered corners and fear's stretched lips."""

import numpy as np

from evpcli.engines import commissure as mouth
from evpcli.face.normalize import TEMPLATE


def _face(scale=1.0, angle=0.0, shift=(0.0, 0.0)):
    c, s = np.cos(angle), np.sin(angle)
    r = np.array([[c, -s], [s, c]])
    return (TEMPLATE.astype(np.float64) - 128) @ r.T * scale + 128 + np.asarray(shift)


def test_the_corners_change_is_measured_in_the_mouths_own_frame():
    t = _face()
    iod = np.linalg.norm(t[45] - t[36])
    # the same face moved, turned in the image plane and scaled: no change of its corners
    assert mouth.commissure_change(t, _face(1.3, 0.2, (10, -5))).max() < 1e-9
    # a wider mouth with its inner corners moved as far (a smile, speech): none either (but the mouth's slight tilt)
    a = t.copy()
    a[[48, 60], 0] -= 5.0
    a[[54, 64], 0] += 5.0
    assert mouth.commissure_change(t, a).max() < 1e-3 < mouth.COMMISSURE_FROM
    # sad's outer corners pulled down, the inner ones left: the change is that drop
    a = t.copy()
    a[[48, 54], 1] += 0.09 * iod
    np.testing.assert_allclose(mouth.commissure_change(t, a), [0.09, 0.09], atol=1e-9)


def _crop_with_stretched_corner():
    """A 256 crop: skin, lips between the outer lip points, and a dark line from inner corner 60 down to the commanded
    outer corner 48 (the target's corner dragged down by the warp); the commanded landmarks."""
    t = _face()
    a = t.copy()
    iod = np.linalg.norm(t[45] - t[36])
    a[48, 1] += 0.1 * iod
    crop = np.full((256, 256, 3), (200, 160, 140), np.uint8)
    import cv2

    cv2.fillPoly(crop, [np.round(a[48:60]).astype(np.int32)], (170, 90, 90))
    cv2.line(crop, tuple(np.round(a[60]).astype(int)), tuple(np.round(a[48]).astype(int)), (40, 20, 20), 2)
    return crop, t, a


def _darkest_on_segment(crop, p, q, start=None):
    """The darkest grey level along p -> q from ``start`` (default: where the band begins) to 0.85 of the way."""
    start = mouth.COMMISSURE_START + 0.08 if start is None else start
    pts = np.round(p[None] + np.linspace(start, 0.85, 20)[:, None] * (q - p)[None]).astype(int)
    return crop[pts[:, 1], pts[:, 0]].astype(float).mean(1).min()


def test_a_stretched_corner_is_painted_over_and_a_thin_crease_drawn():
    crop, t, a = _crop_with_stretched_corner()
    before = _darkest_on_segment(crop, a[60], a[48])
    out = crop.copy()
    mouth.redraw_commissures(out, t, a)
    after = _darkest_on_segment(out, a[60], a[48])
    assert before < 40 and after > 90  # the dark dashes are gone ...
    # (next to the inner corner, where the open mouth begins, the target's own corner is left: inpainting from there
    # pulled the mouth's dark into the band)
    assert 0.0 < mouth.COMMISSURE_START < 0.5
    x, y = np.round(a[60]).astype(int)
    assert out[y, x].mean() < 80  # still dark at the inner corner
    flat = crop.copy()
    dark, mouth.COMMISSURE_DARK = mouth.COMMISSURE_DARK, 0.0
    try:
        mouth.redraw_commissures(flat, t, a)
    finally:
        mouth.COMMISSURE_DARK = dark
    assert after < 0.93 * _darkest_on_segment(flat, a[60], a[48])  # ... and the corner keeps a thin crease
    # the other corner did not change, so nothing was drawn there
    np.testing.assert_array_equal(out[:, 150:], crop[:, 150:])


def test_an_unchanged_corner_is_left_byte_for_byte():
    crop, t, _ = _crop_with_stretched_corner()
    moved = _face(1.1, 0.05, (3, 2))  # the face moved, its corners' shape the target's
    out = crop.copy()
    mouth.redraw_commissures(out, t, moved)
    np.testing.assert_array_equal(out, crop)
