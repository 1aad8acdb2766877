"""The happy mouth (issue 22): lips keep a plausible thickness under a smile, and a smiling command's opening shows
the source's interior (upper teeth over a dark cavity), not the source's lip, with clean outlines."""

import cv2
import numpy as np

from evpcli.config import RenderConfig
from evpcli.engines.mouth import MouthBank, MouthFiller, lip_band_colour, lip_shape, opening_ratio
from evpcli.face.normalize import TEMPLATE
from evpcli.face.parts import INNER_LIP, OUTER_LIP, mouth_opening

SKIN, LIP, DARK, TOOTH = (200, 160, 140), (190, 90, 100), (35, 15, 20), (245, 240, 230)


def _happy(amount: float) -> np.ndarray:
    from evpcli.face.amplitude import prototypes

    names, protos = prototypes()
    return TEMPLATE.astype(np.float64) + amount * protos[names.index("happy")]


def _opened(lm: np.ndarray, gap: float) -> np.ndarray:
    out = np.array(lm, np.float64, copy=True)
    out[[65, 66, 67], 1] += gap
    out[55:60, 1] += gap
    return out


def _poly(img: np.ndarray, pts: np.ndarray, colour) -> None:
    cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)


def _mouth_image(lm: np.ndarray, size=(256, 256), teeth: bool = True) -> np.ndarray:
    """Skin, lips between the outer and inner outlines, a dark opening with a band of upper teeth under its upper
    lip (a third of the gap deep)."""
    img = np.zeros((size[1], size[0], 3), np.uint8)
    img[:] = SKIN
    _poly(img, lm[OUTER_LIP], LIP)
    _poly(img, lm[INNER_LIP], DARK)
    if teeth:
        inner = lm[INNER_LIP]
        upper = inner[[0, 1, 2, 3, 4]]
        depth = (inner[[7, 6, 5], 1] - inner[[1, 2, 3], 1]).mean() / 3
        band = np.concatenate([upper, upper[::-1] + [0, depth]])
        mask = np.zeros(img.shape[:2], np.uint8)
        _poly(mask, band, 255)
        inside = np.zeros(img.shape[:2], np.uint8)
        _poly(inside, inner, 255)
        img[(mask > 127) & (inside > 127)] = TOOTH
    return img


def _bank(lm: np.ndarray, image: np.ndarray) -> MouthBank:
    colour = lip_band_colour(image, lm)
    return MouthBank(crops=image[None], landmarks=lm[None].astype(np.float32), shapes=lip_shape(lm)[None],
                     openings=np.array([float(opening_ratio(lm))]), lip_colour=colour[None],
                     frames=np.zeros(1, np.int64), scale=1.0, noise=0.0)


def test_a_smile_keeps_the_upper_lip_thick_and_the_opening_as_it_was():
    from evpcli.face.lips import LIP_FLOOR, keep_lip_thickness, lip_thickness

    ref = TEMPLATE.astype(np.float64)
    smile = _opened(_happy(1.5), 8.0)[None]
    up_ref = lip_thickness(ref)[0]
    assert (lip_thickness(smile)[0][0, [0, 2]] < 0.6 * up_ref[[0, 2]]).all()  # the prototype thins the sides
    kept = keep_lip_thickness(smile, ref)
    assert (lip_thickness(kept)[0][0] >= LIP_FLOOR * up_ref - 1e-3).all()
    np.testing.assert_allclose(mouth_opening(kept), mouth_opening(smile), atol=1e-3)  # speech's opening stays
    np.testing.assert_allclose(kept[0, [48, 54, 60, 64]], smile[0, [48, 54, 60, 64]], atol=1e-4)  # the smile's corners
    np.testing.assert_array_equal(keep_lip_thickness(ref[None], ref), ref[None].astype(np.float32))  # nothing to do


def test_a_smiling_opening_shows_the_sources_teeth_and_cavity_not_its_lip():
    """The source: a relaxed open mouth (dark cavity, upper teeth); the command: a wide smile, its opening a crescent
    curved up to the corners. The opening must hold the source's interior, teeth under the upper lip, and none of
    the source's lip (one affine fitted to all the lips put 9 % lip inside the smile and the teeth off its upper
    lip; now 0.5 %)."""
    source_lm = _opened(TEMPLATE, 14.0)
    source = _mouth_image(source_lm)
    command = _opened(_happy(1.5), 10.0)
    command[[61, 62, 63], 1] += 2.0  # a plausible upper lip (face.lips)
    command[[65, 66, 67], 1] += 2.0
    tracked = TEMPLATE.astype(np.float64)  # the target frame's mouth is shut: the bank is the only source
    filler = MouthFiller(_bank(source_lm, source), RenderConfig())
    crop = _mouth_image(command, teeth=False)
    crop[:] = SKIN
    _poly(crop, command[OUTER_LIP], LIP)
    alpha = filler.fill(crop, tracked, command, np.zeros(2))
    assert alpha is not None
    inside = np.zeros(crop.shape[:2], np.uint8)
    _poly(inside, command[INNER_LIP], 255)
    inside = cv2.erode(inside, np.ones((3, 3), np.uint8)) > 127
    px = crop[inside].astype(np.float64)
    lip_like = np.linalg.norm(px - LIP, axis=1) < 40
    tooth = np.linalg.norm(px - TOOTH, axis=1) < 40
    dark = np.linalg.norm(px - DARK, axis=1) < 40
    assert lip_like.mean() < 0.05, lip_like.mean()
    assert tooth.mean() > 0.15 and dark.mean() > 0.4, (tooth.mean(), dark.mean())
    # the teeth hang from the upper lip: in every column of the opening the first pixel below the upper lip is tooth
    ys, xs = np.nonzero(inside)
    first = [ys[xs == x].min() for x in np.unique(xs)[5:-5]]
    cols = np.unique(xs)[5:-5]
    top = np.array([np.linalg.norm(crop[y, x].astype(float) - TOOTH) < 60 for y, x in zip(first, cols, strict=True)])
    assert top.mean() > 0.8, top.mean()


def test_the_cheek_beside_a_smiling_corner_bends_smoothly_and_nothing_else_moves():
    """Piecewise-affine maps kink along the mesh's edges; beside a mouth corner a smile drags the target's crease
    along such an edge into a straight line with a bend. smooth_corners smooths the maps there only: off the lips,
    within the disc around each corner; the lips and the rest keep the exact maps."""
    from evpcli.engines.geometry import smooth_corners
    from tests.renderdata import template_maps

    tracked = TEMPLATE.astype(np.float64)
    adapted = _happy(1.5)
    mx, my = template_maps(adapted)
    iod = float(np.linalg.norm(tracked[45] - tracked[36]))
    sx, sy = smooth_corners(mx, my, adapted, iod)

    def kink(m: np.ndarray, region: np.ndarray) -> float:  # the maps' second differences: 0 where affine
        lap = np.abs(cv2.Laplacian(m.astype(np.float64), cv2.CV_64F, ksize=1))
        return float(lap[region].mean())

    yy, xx = np.mgrid[0:256, 0:256]
    near = np.zeros((256, 256), bool)
    for k in (48, 54):
        near |= np.hypot(xx - adapted[k, 0], yy - adapted[k, 1]) < 0.3 * iod
    lips = np.zeros((256, 256), np.uint8)
    _poly(lips, adapted[OUTER_LIP], 255)
    lips = cv2.dilate(lips, np.ones((5, 5), np.uint8)) > 0
    cheek = near & ~lips
    assert kink(sx, cheek) + kink(sy, cheek) < 0.5 * (kink(mx, cheek) + kink(my, cheek))
    far = np.ones((256, 256), bool)
    for k in (48, 54):
        far &= np.hypot(xx - adapted[k, 0], yy - adapted[k, 1]) > 0.5 * iod + 0.5 * iod
    inner = np.zeros((256, 256), np.uint8)
    _poly(inner, adapted[INNER_LIP], 255)
    for a, b in ((mx, sx), (my, sy)):
        np.testing.assert_array_equal(a[far], b[far])
        np.testing.assert_allclose(a[inner > 127], b[inner > 127], atol=0.05)
