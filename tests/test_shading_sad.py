"""A commanded sadness's shading (issue 23, engines.shading.shade_sad): the raised inner brows' shadow over the upper
orbit, the heavy upper lids' shade, the lower nasolabial folds and the raised chin's crease, drawn from the frame's
own pixels by the code's weight of sad, nothing at 0, the lips and everything above the brows untouched."""

import cv2
import numpy as np
import pytest

from evpcli.engines.shading import (MAX_AMOUNT, SAD_CHIN, SAD_CHIN_UP, SAD_FOLD, SAD_FOLD_CENTRE, SAD_FOLD_LIT,
                                    SAD_FOLD_LIT_OUT, SAD_FOLD_OUT, SAD_FOLD_WIDTH, SAD_LID, SAD_ORBIT, SHADERS, shade_sad)
from tests.renderdata import shaded


@pytest.fixture(scope="module")
def face():
    """The astronaut photo and her landmarks."""
    from skimage import data

    from evpcli.corpus.synth.actors import astronaut_landmarks

    return data.astronaut(), astronaut_landmarks().astype(np.float64)


def _grey(im):
    return cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float64)


def _mask(shape, pts, erode=0):
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    if erode:
        m = cv2.erode(m, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return m > 0


def _points(lm):
    """The upper half of the right eye's opening (1 px in), the darkest point of the right fold and the chin's crease
    (each a 3x3 patch's centre)."""
    iod = np.linalg.norm(lm[45] - lm[36])
    eye = lm[36:42].copy()
    eye[[5, 4]] = eye[[1, 2]] + 0.5 * (eye[[5, 4]] - eye[[1, 2]])
    a = lm[31] - [SAD_FOLD_OUT[0] * iod, 0]
    b = lm[48] - [SAD_FOLD_OUT[1] * iod, 0]
    fold = a + SAD_FOLD_CENTRE * (b - a)
    chin = 0.5 * (lm[57] + lm[8]) - [0, SAD_CHIN_UP * iod]
    return eye, np.round(fold).astype(int), np.round(chin).astype(int)


def _cheek(lm):
    """The middle of the lit cheek beside the right fold (outside it, across the fold)."""
    iod = np.linalg.norm(lm[45] - lm[36])
    a = lm[31] - [SAD_FOLD_OUT[0] * iod, 0]
    b = lm[48] - [SAD_FOLD_OUT[1] * iod, 0]
    across = np.array([-(b - a)[1], (b - a)[0]]) / np.linalg.norm(b - a)
    across *= -np.sign(across[0])  # the right fold's cheek is to its left in the image
    return np.round(a + SAD_FOLD_CENTRE * (b - a) + across * SAD_FOLD_LIT_OUT * SAD_FOLD_WIDTH * iod).astype(int)


def test_sadness_darkens_lids_folds_and_chin_by_the_amount_and_nothing_else(face):
    image, lm = face
    outs = shaded(shade_sad, image, lm, (0.5, 1.0, 2.0))
    g0 = _grey(image)
    eye_pts, fold, chin = _points(lm)
    eye = _mask(image.shape[:2], eye_pts, erode=1)
    assert eye.sum() > 10

    def patch(g, p):
        return g[p[1] - 1:p[1] + 2, p[0] - 1:p[0] + 2].mean()

    def ratio(a, where):
        g = _grey(outs[a])
        return g[where].mean() / g0[where].mean() if isinstance(where, np.ndarray) and where.dtype == bool \
            else patch(g, where) / patch(g0, where)

    # each darkens by about its depth at amount 1 (the factor falls on the coarse shading: a little less at a point)
    assert ratio(1.0, eye) < 1 - 0.7 * SAD_LID
    assert 1 - SAD_FOLD - 0.1 < ratio(1.0, fold) < 1 - 0.5 * SAD_FOLD
    assert 1 - SAD_CHIN - 0.1 < ratio(1.0, chin) < 1 - 0.5 * SAD_CHIN
    # the cheek beside the fold catches the light (a fold, not a line drawn on flat skin)
    assert 1.0 + 0.3 * SAD_FOLD_LIT < ratio(1.0, _cheek(lm)) < 1.0 + SAD_FOLD_LIT + 0.1
    # it grows with the amount, up to MAX_AMOUNT
    for where in (eye, fold, chin):
        assert ratio(2.0, where) < ratio(1.0, where) < ratio(0.5, where) < 1.0
    big, capped = image.copy(), image.copy()
    shade_sad(big, lm, 10.0)
    shade_sad(capped, lm, MAX_AMOUNT)
    assert np.array_equal(big, capped)
    # the upper orbit under the inner end of each raised brow falls into shadow; under the outer end, none
    for inner, outer in (([20, 21, 38, 39], [17, 18, 36, 37]), ([22, 23, 42, 43], [25, 26, 44, 45])):
        p_in, p_out = (np.round(lm[k].mean(0)).astype(int) for k in (inner, outer))
        assert ratio(1.0, p_in) < min(1 - 0.5 * SAD_ORBIT, 0.9)
        assert ratio(1.0, p_out) > 0.97
    # nothing above the brows' soft edge (the forehead keeps its bytes), nothing outside the jaw, and the lips keep
    # their light
    changed = np.any(outs[2.0] != image, axis=2)
    ys, xs = np.nonzero(changed)
    iod = np.linalg.norm(lm[45] - lm[36])
    assert ys.min() > lm[17:27, 1].min() - 0.2 * iod
    assert xs.min() > lm[0:17, 0].min() and xs.max() < lm[0:17, 0].max()
    lips = _mask(image.shape[:2], lm[48:60], erode=2)
    assert lips.sum() > 50 and not changed[lips].any()
    # the skin's fine detail keeps its contrast in the fold's shade
    fold_box = (slice(fold[1] - 4, fold[1] + 5), slice(fold[0] - 4, fold[0] + 5))

    def hp(im):
        g = _grey(im)
        return (g - cv2.GaussianBlur(g, (0, 0), 1.0))[fold_box]

    assert hp(outs[1.0]).std() > 0.8 * hp(image).std()


def test_sadness_is_sads_shader_and_a_tiny_face_draws_none(face):
    image, lm = face
    assert SHADERS["sad"] is shade_sad
    # a face too small to shade (inter-ocular distance under 8 px): nothing
    small = cv2.resize(image, None, fx=0.1, fy=0.1, interpolation=cv2.INTER_AREA)
    out = small.copy()
    shade_sad(out, lm * 0.1, 1.0)
    assert np.array_equal(out, small)
    # landmarks that are not finite: nothing
    bad = lm.copy()
    bad[8] = np.nan
    out = image.copy()
    shade_sad(out, bad, 1.0)
    assert np.array_equal(out, image)
