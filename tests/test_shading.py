"""A commanded frown's shading (issue 23, engines.shading): the brow's shadow over the upper lid, the lowered lid's
shade over the eye and the glabella's furrows, drawn from the frame's own pixels, in proportion to the code's
weight of angry (render.drive.frown_amount), nothing at 0."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from evpcli.engines.interior import mouth_outline
from evpcli.engines.shading import BROW_SHADOW, LID_SHADOW, MAX_AMOUNT, shade_frown
from evpcli.engines.warp import WarpRenderer
from tests.renderdata import shaded


@pytest.fixture(scope="module")
def face():
    """The astronaut photo and her landmarks."""
    from skimage import data

    from evpcli.corpus.synth.actors import astronaut_landmarks

    return data.astronaut(), astronaut_landmarks().astype(np.float64)


def _band(shape, lm):
    """(h, w) bool: between the right brow and the right upper lid, off both (where the brow's shadow falls)."""
    top = lm[18:21, 1].max() + 1
    bottom = lm[[37, 38], 1].min() - 1
    mask = np.zeros(shape, bool)
    mask[int(top):int(bottom), int(lm[18, 0]):int(lm[20, 0])] = True
    return mask


def _upper_eye(shape, lm):
    """(h, w) bool: the upper half of the right eye's opening, 1 px in."""
    pts = lm[36:42].copy()
    pts[[5, 4]] = pts[[1, 2]] + 0.5 * (pts[[5, 4]] - pts[[1, 2]])
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    return cv2.erode(m, np.ones((3, 3), np.uint8)) > 0


def test_the_frown_shades_brows_and_lids_keeps_their_detail_and_leaves_the_rest(face):
    image, lm = face
    lum = lambda im, m: float(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)[m].mean())  # noqa: E731
    outs = shaded(shade_frown, image, lm, (0.5, 1.0, 2.0))
    band, eye = _band(image.shape[:2], lm), _upper_eye(image.shape[:2], lm)
    assert band.sum() > 50 and eye.sum() > 10
    ratio = lambda a, m: lum(outs[a], m) / lum(image, m)  # noqa: E731
    # the brow's overhang darkens by up to BROW_SHADOW (less towards the lid and the brow's outer end), the eye's
    # upper half by about LID_SHADOW
    assert 1 - BROW_SHADOW - 0.1 < ratio(1.0, band) < 1 - 0.4 * BROW_SHADOW
    assert ratio(1.0, eye) < 1 - 0.7 * LID_SHADOW
    # the glabella's furrows: darker lines between the inner brow ends, above them
    iod = np.linalg.norm(lm[45] - lm[36])
    grey = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(float)  # noqa: E731
    for t in (0.3, 0.7):
        x, y = np.round(lm[21] + t * (lm[22] - lm[21]) - [0, 0.1 * iod]).astype(int)
        assert grey(outs[1.0])[y - 1:y + 2, x - 1:x + 2].mean() < 0.92 * grey(image)[y - 1:y + 2, x - 1:x + 2].mean()
    # it grows with the amount, up to MAX_AMOUNT
    assert ratio(2.0, band) < ratio(1.0, band) < ratio(0.5, band) < 1.0
    big = image.copy()
    shade_frown(big, lm, 10.0)
    capped = image.copy()
    shade_frown(capped, lm, MAX_AMOUNT)
    assert np.array_equal(big, capped)
    # the skin's fine detail keeps its contrast in the shadow (a dimmed detail reads as a blur)
    hp = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(float) - cv2.GaussianBlur(  # noqa: E731
        cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(float), (0, 0), 1.0)
    assert hp(outs[1.0])[band].std() > 0.8 * hp(image)[band].std()
    # only the box around the brows and eyes changes: the mouth, the cheeks and the background keep their bytes
    changed = np.any(outs[2.0] != image, axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.max() < lm[[40, 41, 46, 47], 1].max() + 0.2 * iod  # nothing below the eyes
    assert ys.min() > lm[17:27, 1].min() - 0.5 * iod
    assert not changed[int(lm[33, 1]):].any()


def test_the_plan_gives_each_frame_its_frown(face):
    image, lm = face
    tracked = np.repeat(lm[None], 3, 0)
    r = WarpRenderer()
    r.plan(tracked, tracked, np.zeros(3), {"angry": np.array([0.0, 1.0, 0.0])})
    outs = [r.render(image, tracked[i], tracked[i], 1.0) for i in range(3)]
    plain = WarpRenderer()
    plain.plan(tracked, tracked)
    first = plain.render(image, tracked[0], tracked[0], 1.0)
    assert np.array_equal(outs[0], first) and np.array_equal(outs[2], first)  # 0: as without the step
    band = _band(image.shape[:2], lm)
    assert outs[1][band].mean() < 0.8 * first[band].mean()
    one = WarpRenderer(shading={"angry": 1.0}).render(image, lm, lm, 1.0)  # one value for every frame (contact sheets)
    assert np.array_equal(one, outs[1])


def test_frown_amount_is_the_codes_weight_of_angry():
    from evpcli.render.drive import frown_amount

    rng = np.random.default_rng(0)
    names = ("neutral", "happy", "sad", "angry", "surprised", "fear", "disgusted", "contempt")
    means = {e: rng.uniform(0.5, 1.5, 16) for e in names}  # codes are non-negative (ReLU)
    model = SimpleNamespace(emotion_means=means)
    n, a = means["neutral"], means["angry"]
    assert np.allclose(frown_amount(model, a, 7), 1.0, atol=1e-6)
    assert np.allclose(frown_amount(model, n + 2.0 * (a - n), 7), 2.0, atol=1e-6)  # --intensity 2
    for other in ("neutral", "happy", "sad", "surprised"):
        assert np.allclose(frown_amount(model, means[other], 7), 0.0, atol=1e-6), other
    # per frame (an interpolation from neutral to angry at 25 fps), resampled to the output's frames
    ramp = np.linspace(0.0, 1.0, 50)
    codes = n[None] + ramp[:, None] * (a - n)[None]
    got = frown_amount(model, codes, 100, fps=50.0)
    assert got.shape == (100,) and got[0] == pytest.approx(0.0, abs=1e-6) and got[-1] == pytest.approx(1.0, abs=0.03)
    assert np.all(np.diff(got) >= -1e-6)
    # a model without the emotions' mean codes draws no frown
    assert not frown_amount(SimpleNamespace(), a, 5).any()


def test_shading_amounts_give_each_shaded_emotion_its_own_weight(face):
    from evpcli.engines.shading import SHADERS, shade
    from evpcli.render.drive import emotion_amount, shading_amounts

    rng = np.random.default_rng(1)
    names = ("neutral", "happy", "sad", "angry", "surprised", "fear", "disgusted", "contempt")
    means = {e: rng.uniform(0.5, 1.5, 16) for e in names}
    model = SimpleNamespace(emotion_means=means)
    for emotion in SHADERS:
        got = shading_amounts(model, means[emotion], 4)
        assert set(got) == set(SHADERS)
        for other, amount in got.items():
            assert np.allclose(amount, 1.0 if other == emotion else 0.0, atol=1e-6), (emotion, other)
            assert np.array_equal(amount, emotion_amount(model, means[emotion], 4, other))
    # shade draws exactly what each emotion's shader draws, and nothing for an emotion without one
    image, lm = face
    for emotion, shader in SHADERS.items():
        a, b = image.copy(), image.copy()
        shade(a, lm, {emotion: 1.0, "no-such-emotion": 1.0})
        shader(b, lm, 1.0)
        assert np.array_equal(a, b) and not np.array_equal(a, image)
    same = image.copy()
    shade(same, lm, {e: 0.0 for e in SHADERS})
    assert np.array_equal(same, image)


def test_anger_adds_the_upper_nasolabial_furrows_to_the_frown(face):
    """The astronaut's angry read neutral (+0.29 / 0.48 over her neutral render): anger's raised upper lip (AU10)
    deepens the nasolabial fold's upper part, beside the nose, and the judge reads it (+0.52 / 0.88 by hand)."""
    from evpcli.engines.shading import (ANGRY_FOLD, ANGRY_FOLD_CENTRE, SAD_FOLD_CENTRE, SAD_FOLD_OUT, SHADERS,
                                        shade_angry)

    image, lm = face
    assert SHADERS["angry"] is shade_angry
    iod = np.linalg.norm(lm[45] - lm[36])
    a = lm[31] - [SAD_FOLD_OUT[0] * iod, 0]
    b = lm[48] - [SAD_FOLD_OUT[1] * iod, 0]
    upper = np.round(a + ANGRY_FOLD_CENTRE * (b - a)).astype(int)
    lower = np.round(a + SAD_FOLD_CENTRE * (b - a) + 0.3 * (b - a)).astype(int)
    grey = lambda im, p: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)[p[1] - 1:p[1] + 2, p[0] - 1:p[0] + 2].mean()  # noqa: E731
    outs = shaded(shade_angry, image, lm, (0.5, 1.0))
    r_up, r_low = grey(outs[1.0], upper) / grey(image, upper), grey(outs[1.0], lower) / grey(image, lower)
    assert 1 - ANGRY_FOLD - 0.1 < r_up < 1 - 0.5 * ANGRY_FOLD  # deepest beside the nose ...
    assert r_low > r_up + 0.1  # ... not by the mouth's corner (sadness's lower fold)
    assert grey(outs[0.5], upper) > grey(outs[1.0], upper)
    # the frown is drawn as before, the lips keep their bytes
    frown = image.copy()
    shade_frown(frown, lm, 1.0)
    eyes = slice(int(lm[17:27, 1].min()) - 5, int(lm[36:48, 1].max()) + 2)
    assert np.array_equal(outs[1.0][eyes], frown[eyes])
    lips = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(lips, [np.round(lm[48:60]).astype(np.int32)], 1)
    opening = np.zeros(image.shape[:2], np.uint8)  # her grin's opening: anger's mouth in shadow (the test below)
    cv2.fillPoly(opening, [np.round(mouth_outline(lm[60:68])).astype(np.int32)], 1)
    lips = (cv2.erode(lips, np.ones((3, 3), np.uint8)) > 0) & (cv2.dilate(opening, np.ones((3, 3), np.uint8)) == 0)
    assert lips.sum() > 50 and np.array_equal(outs[1.0][lips], image[lips])
    # ... and a ring around them (the furrows' ends beside the corners moved where dlib reads the lips: carphone's
    # nearly closed frame's lip sync 0.80 -> 0.74 with a ring of 0.05 IOD)
    full = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(full, [np.round(lm[48:60]).astype(np.int32)], 1)
    r = int(round(0.035 * iod))
    ring = (cv2.dilate(full, np.ones((2 * r + 1,) * 2, np.uint8)) > 0) & (full == 0)
    g = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)[ring].astype(float)  # noqa: E731
    change = np.abs(g(outs[1.0]) - g(image))
    assert change.mean() < 0.8 and change.max() < 15  # (0.05 IOD: 1.2 and 20)
    same = image.copy()
    shade_angry(same, lm, 0.0)
    assert np.array_equal(same, image)


def test_anger_darkens_an_open_mouths_inside_as_surprise_does_and_leaves_a_closed_one(face):
    """face-api.js read the angry renders' speaking frames as disgust or surprise (the drawn interior's lit teeth and
    tongue under a frown: the astronaut's angry, top-1 0.32) and their silent frames, lips together, as angry;
    anger's open mouth is in shadow, surprise's mouth shadow at ANGRY_MOUTH of the amount (its floor spared)."""
    from evpcli.engines.shading import ANGRY_MOUTH, shade_angry
    from evpcli.engines.shading_surprise import shade_mouth

    image, lm = face
    iod = float(np.linalg.norm(lm[45] - lm[36]))
    opening = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(opening, [np.round(mouth_outline(lm[60:68])).astype(np.int32)], 1)
    inside = cv2.erode(opening, np.ones((3, 3), np.uint8)) > 0
    assert inside.sum() > 30  # her grin is open
    grey = lambda im: float(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)[inside].mean())  # noqa: E731
    angry = image.copy()
    shade_angry(angry, lm, 1.0)
    assert grey(angry) < 0.75 * grey(image)
    mouth = image.copy()
    shade_mouth(mouth, lm, iod, ANGRY_MOUTH * 1.0)
    # the inside is the mouth's shadow (the furrows beside it move its coarse light by a grey level or two)
    assert np.abs(angry[inside].astype(int) - mouth[inside]).mean() < 1.0
    # lips together: no shadow
    shut = lm.copy()
    shut[[65, 66, 67]] = shut[[63, 62, 61]]
    closed = image.copy()
    shade_mouth(closed, shut, iod, 1.0)
    assert np.array_equal(closed, image)
