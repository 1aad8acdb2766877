"""The brows kept above the eyes under a strong frown (face.brows)."""

import numpy as np

from evpcli.face.brows import BROW_GAP_FLOOR, brow_gaps, keep_brow_gap
from evpcli.face.normalize import TEMPLATE
from tests.renderdata import template_maps


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


def _raised_brows(amount: float) -> np.ndarray:
    """TEMPLATE with sad's inner brows raised by ``amount`` x 0.25 IOD (most at the inner ends) and the upper lids
    lowered a little: the command that drew the bearded man's lids as zigzags."""
    lm = TEMPLATE.astype(np.float64).copy()
    iod = np.linalg.norm(lm[45] - lm[36])
    for k, share in zip(range(17, 27), (0.1, 0.3, 0.55, 0.8, 1.0, 1.0, 0.8, 0.55, 0.3, 0.1), strict=True):
        lm[k, 1] -= amount * 0.25 * iod * share
    lm[[37, 38, 43, 44], 1] += amount * 0.03 * iod
    return lm


def test_the_lid_under_a_raised_brow_bends_smoothly_and_nothing_else_moves():
    """Piecewise-affine maps kink along the mesh's edges: the skin between a raised brow and its lid is cut into
    triangles with maps of their own, and the lid's crease came out as a zigzag. smooth_brows smooths the maps
    of the lids' skin between the brows' hair and the upper lids only: the brows, the eyes' openings (the lids'
    margins) and the rest of the face keep their maps, and maps with nothing moving come back as they were."""
    import cv2

    from evpcli.engines.geometry import _LID_UNDER, smooth_brows
    from evpcli.face.parts import BROWS, LEFT_EYE, RIGHT_EYE

    adapted = _raised_brows(1.0)
    mx, my = template_maps(adapted)
    iod = float(np.linalg.norm(adapted[45] - adapted[36]))
    sx, sy = smooth_brows(mx, my, adapted, iod)

    def kink(m: np.ndarray, region: np.ndarray) -> float:  # the maps' second differences: 0 where affine
        return float(np.abs(cv2.Laplacian(m.astype(np.float64), cv2.CV_64F, ksize=1))[region].mean())

    lids = np.zeros((256, 256), np.uint8)
    eyes = np.zeros((256, 256), np.uint8)
    for brow, eye in ((BROWS[:5], RIGHT_EYE), (BROWS[5:], LEFT_EYE)):
        under_hair = np.array([adapted[k] + 0.35 * (adapted[list(_LID_UNDER[k])].mean(0) - adapted[k]) for k in brow])
        cv2.fillPoly(lids, [np.round(np.concatenate([under_hair, adapted[eye[3::-1]]])).astype(np.int32)], 1)
        cv2.fillPoly(eyes, [np.round(adapted[eye]).astype(np.int32)], 1)
    lids = (lids > 0) & ~(cv2.dilate(eyes, np.ones((5, 5), np.uint8)) > 0)
    before, after = kink(mx, lids) + kink(my, lids), kink(sx, lids) + kink(sy, lids)
    assert after < 0.5 * before, (before, after)
    hair = np.round(adapted[BROWS]).astype(int)  # the brows' own points: their hair keeps its shape
    below = np.zeros((256, 256), bool)
    below[int(adapted[33, 1]):] = True  # under the nose: far from the brows and the lids
    for a, b in ((mx, sx), (my, sy)):
        np.testing.assert_allclose(a[hair[:, 1], hair[:, 0]], b[hair[:, 1], hair[:, 0]], atol=0.1)
        np.testing.assert_array_equal(a[below], b[below])
        np.testing.assert_allclose(a[eyes > 0], b[eyes > 0], atol=0.05)  # the lids' margins stay where they were
    still_x, still_y = template_maps(TEMPLATE.astype(np.float64))
    for a, b in zip((still_x, still_y), smooth_brows(still_x, still_y, TEMPLATE.astype(np.float64), iod), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert smooth_brows(mx, my, adapted, iod, sigma=0.0)[0] is mx


def test_the_renderer_draws_a_raised_brows_lid_without_the_meshs_kinks():
    """Through the renderer: horizontal stripes between brow and lid, warped by a raised brow, run smoothly (their
    rows' heights have small second differences along x) with the default brow_smooth, and as zigzags without it."""
    from evpcli.config import RenderConfig
    from evpcli.engines.warp import WarpRenderer

    tracked = TEMPLATE.astype(np.float64)
    frame = np.full((256, 256, 3), 200, np.uint8)
    frame[::4] = 60  # a dark line every 4 px
    adapted = _raised_brows(1.0)

    def jagged(cfg: RenderConfig) -> float:
        out = WarpRenderer(cfg=cfg).render(frame, tracked, adapted)
        grey = out[..., 0].astype(np.float64)
        scores = []
        for brow, eye in ((range(18, 21), range(37, 39)), (range(23, 26), range(43, 45))):
            x0, x1 = int(adapted[list(brow), 0].min()), int(adapted[list(brow), 0].max())
            y0, y1 = int(adapted[list(brow), 1].max()) + 2, int(adapted[list(eye), 1].min()) - 2
            dark = 255.0 - grey[y0:y1, x0:x1]
            rows = np.arange(y0, y1)[:, None]
            # each column's dark-weighted mean height within every 4-px period, along x
            centre = [(rows[k:k + 4] * dark[k:k + 4]).sum(0) / np.maximum(dark[k:k + 4].sum(0), 1e-6)
                      for k in range(0, y1 - y0 - 4, 4)]
            scores += [np.abs(np.diff(c, 2)).mean() for c in centre]
        return float(np.mean(scores))

    plain = jagged(RenderConfig(brow_smooth=0.0))
    smooth = jagged(RenderConfig())
    assert smooth < 0.5 * plain, (plain, smooth)  # 0.20 -> 0.08 px


def test_a_frown_keeps_the_exacttemplate_maps():
    """Only a raised brow is smoothed (from 0.03 IOD of added height over the lid): a frown lowers the brows onto the
    lids, and its render is byte for byte the one without smooth_brows."""
    from evpcli.config import RenderConfig
    from evpcli.engines.warp import WarpRenderer

    tracked = TEMPLATE.astype(np.float64)
    frame = np.full((256, 256, 3), 200, np.uint8)
    frame[::4] = 60
    frown = _raised_brows(-0.5)
    out = WarpRenderer().render(frame, tracked, frown)
    np.testing.assert_array_equal(out, WarpRenderer(cfg=RenderConfig(brow_smooth=0.0)).render(frame, tracked, frown))
    raised = _raised_brows(0.5)
    assert (WarpRenderer().render(frame, tracked, raised)
            != WarpRenderer(cfg=RenderConfig(brow_smooth=0.0)).render(frame, tracked, raised)).any()
