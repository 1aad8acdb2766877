"""Surprise's light (issue 23, engines.shading_surprise): the eyes' openings brighter, the open mouth's interior
darker, drawn from the frame's own pixels in proportion to the code's weight of surprised, nothing at 0; and fear's:
the lids and brows brighter."""

import cv2
import numpy as np
import pytest

from evpcli.engines.shading import SHADERS, shade
from evpcli.engines.shading_surprise import (EYE_LIGHT, FEAR_LIDS, MAX_AMOUNT, MOUTH_DARK, MOUTH_FLOOR, MOUTH_OPEN,
                                             cheek_light, shade_fear, shade_surprise)
from evpcli.face.parts import BROWS, INNER_LIP, LEFT_EYE, RIGHT_EYE
from tests.renderdata import shaded


@pytest.fixture(scope="module")
def face():
    """A small generated face (120 x 120): mid-grey skin with a fine texture, dark-grey eye openings and an open
    mouth, and its 68 landmarks."""
    rng = np.random.default_rng(0)
    h = w = 120
    img = np.full((h, w, 3), (150, 120, 105), np.float64) + rng.normal(0, 6, (h, w, 1))
    lm = np.zeros((68, 2))
    lm[0:17] = np.stack([np.linspace(15, 105, 17), 60 + 40 * np.sin(np.linspace(0, np.pi, 17))], 1)  # jaw
    lm[17:22] = np.stack([np.linspace(25, 52, 5), [38, 35, 34, 35, 37]], 1)  # brows
    lm[22:27] = np.stack([np.linspace(68, 95, 5), [37, 35, 34, 35, 38]], 1)
    lm[27:31] = np.stack([np.full(4, 60.0), np.linspace(45, 65, 4)], 1)  # nose
    lm[31:36] = np.stack([np.linspace(52, 68, 5), np.full(5, 70.0)], 1)

    def eye(cx):
        return np.array([[cx - 10, 48], [cx - 4, 44], [cx + 4, 44], [cx + 10, 48], [cx + 4, 52], [cx - 4, 52]], float)

    lm[36:42], lm[42:48] = eye(38), eye(82)
    t = np.linspace(0, 2 * np.pi, 13)[:-1]
    lm[48:60] = np.stack([60 - 18 * np.cos(t), 88 - 10 * np.sin(t)], 1)  # outer lips (48 left, 54 right)
    lm[60:68] = np.array([[46, 88], [53, 84], [60, 83], [67, 84], [74, 88], [67, 93], [60, 94], [53, 93]], float)
    for idx, grey in ((RIGHT_EYE, 90), (LEFT_EYE, 90), (INNER_LIP, 110)):
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(lm[idx]).astype(np.int32)], 1)
        img[m > 0] = grey + rng.normal(0, 6, (int(m.sum()), 1))
    return np.clip(img, 0, 255).astype(np.uint8), lm


def _inside(shape, pts, erode=1):
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    return cv2.erode(m, np.ones((2 * erode + 1,) * 2, np.uint8)) > 0


def _upper_half(shape, eye):
    """(h, w) bool: the upper half of an eye's opening, 1 px in."""
    pts = eye.copy()
    pts[[5, 4]] = pts[[1, 2]] + 0.5 * (pts[[5, 4]] - pts[[1, 2]])
    return _inside(shape, pts)


def _lum(im, m):
    return float(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)[m].mean())


def test_surprise_lights_the_eyes_darkens_the_mouth_and_leaves_the_rest(face):
    image, lm = face
    outs = shaded(shade_surprise, image, lm, (0.5, 1.0, 1.5))
    eyes = _upper_half(image.shape[:2], lm[RIGHT_EYE]) | _upper_half(image.shape[:2], lm[LEFT_EYE])
    lower = (_inside(image.shape[:2], lm[RIGHT_EYE]) | _inside(image.shape[:2], lm[LEFT_EYE])) & ~cv2.dilate(
        eyes.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    mouth = _inside(image.shape[:2], lm[INNER_LIP], 3)  # the cavity's middle (its soft edge fades inwards)
    assert eyes.sum() > 40 and mouth.sum() > 40
    ratio = lambda a, m: _lum(outs[a], m) / _lum(image, m)  # noqa: E731
    # the eyes' upper openings (the white the raised lid bares) brighter by about EYE_LIGHT (the feathered edge a
    # little less), their lower parts less, the mouth's cavity darker by about MOUTH_DARK
    assert 1 + 0.6 * EYE_LIGHT < ratio(1.0, eyes) < 1 + 1.1 * EYE_LIGHT
    assert ratio(1.0, lower) - 1 < 0.5 * (ratio(1.0, eyes) - 1)
    assert 1 - 1.1 * MOUTH_DARK < ratio(1.0, mouth) < 1 - 0.6 * MOUTH_DARK
    # the inner lips' edge stays where it was (dlib reads the opening there): the ring just outside it hardly darkens
    hull = _inside(image.shape[:2], lm[INNER_LIP], 0)
    ring = (cv2.dilate(hull.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0) & ~hull
    assert 1 - ratio(1.0, ring) < 0.1 * (1 - ratio(1.0, mouth))
    # it grows with the amount, up to MAX_AMOUNT
    assert 1.0 < ratio(0.5, eyes) < ratio(1.0, eyes) < ratio(1.5, eyes)
    assert 1.0 > ratio(0.5, mouth) > ratio(1.0, mouth) > ratio(1.5, mouth)
    big, capped = image.copy(), image.copy()
    shade_surprise(big, lm, 10.0)
    shade_surprise(capped, lm, MAX_AMOUNT)
    assert np.array_equal(big, capped)
    # the fine texture keeps its contrast where the light changes
    hp = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(float) - cv2.GaussianBlur(  # noqa: E731
        cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(float), (0, 0), 1.0)
    assert hp(outs[1.0])[mouth].std() > 0.3 * hp(image)[mouth].std()
    assert hp(outs[1.0])[eyes].std() > 0.8 * hp(image)[eyes].std()
    # nothing changes outside the eyes' and the inner lips' surroundings: brows, nose, cheeks, lips' skin, jaw
    changed = np.any(outs[1.5] != image, axis=2)
    near = np.zeros(image.shape[:2], bool)
    reach = 2 * int(0.2 * np.linalg.norm(lm[45] - lm[36])) + 1  # the masks' feathered edges: 0.2 IOD
    for idx in (RIGHT_EYE, LEFT_EYE, INNER_LIP):
        near |= cv2.dilate(_inside(image.shape[:2], lm[idx], 0).astype(np.uint8), np.ones((reach,) * 2, np.uint8)) > 0
    assert changed.any() and not (changed & ~near).any()
    assert not changed[: int(lm[17:27, 1].max()) + 1].any()  # the brows and above


def test_a_closed_mouth_stays_and_a_tiny_face_is_left_alone(face):
    image, lm = face
    shut = lm.copy()
    shut[[65, 66, 67]] = shut[[63, 62, 61]]  # the inner lips together: no cavity, its seam left as drawn
    closed = image.copy()
    shade_surprise(closed, shut, 1.0)
    assert np.array_equal(closed[75:], image[75:])  # below the eyes: nothing
    # a mouth barely parted (4 px) darkens far less than one open 8 px (the shadow fades in from the inner lips)
    ajar, wide = lm.copy(), lm.copy()
    ajar[[65, 66, 67]] = ajar[[63, 62, 61]] + [0, 4.0]
    wide[[65, 66, 67]] = wide[[63, 62, 61]] + [0, 8.0]
    assert 8.0 > MOUTH_OPEN * np.linalg.norm(lm[45] - lm[36])
    outs = []
    for pts in (ajar, wide):
        out = image.copy()
        shade_surprise(out, pts, 1.0)
        outs.append(out)
    gap = _inside(image.shape[:2], wide[INNER_LIP], 0)
    assert 0 < _lum(image, gap) - _lum(outs[0], gap) < 0.5 * (_lum(image, gap) - _lum(outs[1], gap))
    tiny = image.copy()
    small = (lm - 60) * 0.1 + 60  # inter-ocular distance 4 px
    shade_surprise(tiny, small, 1.0)
    assert np.array_equal(tiny, image)


def test_surprise_is_the_surprised_emotions_shading(face):
    image, lm = face
    assert SHADERS["surprised"] is shade_surprise
    a, b = image.copy(), image.copy()
    shade(a, lm, {"surprised": 1.0, "angry": 0.0})
    shade_surprise(b, lm, 1.0)
    assert np.array_equal(a, b) and not np.array_equal(a, image)


def test_fear_lifts_shadowed_lids_to_the_cheeks_light_and_nothing_else(face):
    """Fear read fear on carphone only 0.29 (the smiler's read neutral): its raised brows and lids stretch the lid
    skin out of the brow's shadow, which the judge reads as fear. Lids in shadow are lit up to the cheeks' level, by
    at most (1 + FEAR_LIDS) ** amount; lids already as lit as the cheeks (the astronaut's) stay."""
    image, lm = face
    assert SHADERS["fear"] is shade_fear
    lids = np.zeros(image.shape[:2], bool)
    for brow, eye in ((BROWS[:5], RIGHT_EYE), (BROWS[5:], LEFT_EYE)):
        lids |= _inside(image.shape[:2], np.concatenate([0.6 * lm[brow] + 0.4 * lm[eye].mean(0), lm[eye[3::-1]]]), 1)
    assert lids.sum() > 40
    cheeks = cheek_light(image, lm)
    assert abs(cheeks - _lum(image, ~lids)) < 15  # the generated face's skin
    shadowed = image.copy()
    shadowed[lids] = (shadowed[lids] * 0.75).astype(np.uint8)  # the lids a quarter darker than the skin
    outs = shaded(shade_fear, shadowed, lm, (0.5, 1.0, 1.5))
    ratio = lambda a, m=lids: _lum(outs[a], m) / _lum(shadowed, m)  # noqa: E731
    assert 1.0 < ratio(0.5) < ratio(1.0) <= ratio(1.5)
    assert 1.12 < ratio(1.0) < 1 + FEAR_LIDS and _lum(outs[1.5], lids) < 1.05 * cheeks  # up to the cheeks, no more
    lit = image.copy()
    shade_fear(lit, lm, 1.0)
    assert _lum(lit, lids) / _lum(image, lids) < 1.1  # (the dark opening blurred into the lid's edge: a little)
    # the brows' hair (their landmarks' row) is left darker: a lit brow read bleached
    hair = np.zeros(image.shape[:2], bool)
    for x, y in np.round(lm[BROWS]).astype(int):
        hair[y - 1:y + 1, x - 1:x + 2] = True
    assert ratio(1.0, hair) - 1 < 0.5 * (ratio(1.0) - 1)
    # the eyes' lower halves, the nose, the mouth and the jaw keep their bytes
    changed = np.any(outs[1.5] != shadowed, axis=2)
    assert changed.any() and not changed[int(lm[[40, 41, 46, 47], 1].max()) + 3:].any()
    for amount in (0.0, -1.0):
        same = shadowed.copy()
        shade_fear(same, lm, amount)
        assert np.array_equal(same, shadowed)
    a, b = shadowed.copy(), shadowed.copy()
    shade(a, lm, {"fear": 1.0, "surprised": 0.0})
    shade_fear(b, lm, 1.0)
    assert np.array_equal(a, b)


def test_the_dark_mouth_keeps_its_colours_saturation(face):
    """A real mouth in shadow is a dark brown-red: surprise's shadow scales the interior's CIELAB chroma with its
    lightness. Its chroma kept (and raised by 0.3 per unit of light lost) at a fifth of the light drew the open mouth
    a saturated maroon on real faces (the bearded man, the astronaut)."""
    image, lm = face
    red = image.copy()
    m = _inside(image.shape[:2], lm[INNER_LIP], 0)
    red[m] = np.clip(np.array([150.0, 70.0, 65.0]) + np.random.default_rng(1).normal(0, 4, (int(m.sum()), 1)), 0, 255)
    out = red.copy()
    shade_surprise(out, lm, 1.0)
    mouth = _inside(image.shape[:2], lm[INNER_LIP], 3)

    def light_and_saturation(im):
        lab = cv2.cvtColor(im, cv2.COLOR_RGB2LAB)[mouth].astype(float)
        return np.median(lab[:, 0]), np.median(np.hypot(lab[:, 1] - 128, lab[:, 2] - 128) / np.maximum(lab[:, 0], 1))

    (l0, s0), (l1, s1) = light_and_saturation(red), light_and_saturation(out)
    assert l1 < 0.75 * l0  # darker ...
    assert s1 < 1.15 * s0  # ... not more saturated


def test_the_mouths_shadow_falls_from_the_upper_lip_and_its_floor_keeps_light(face):
    """A real open mouth is dark under the upper lip and lit on its floor (the tongue, lit from the front): the
    shadow darkens the opening's upper part by about MOUTH_DARK and its floor by MOUTH_FLOOR less. Darkened alike
    everywhere it was a black hole with a grey-brown tongue on the astronaut and the smiler."""
    image, lm = face
    wide = lm.copy()
    wide[[65, 66, 67]] += [0.0, 8.0]  # 18 px open
    out = image.copy()
    shade_surprise(out, wide, 1.0)
    inside = _inside(image.shape[:2], wide[INNER_LIP], 2)
    rows = np.arange(image.shape[0])[:, None]
    top, opening = wide[62, 1], wide[66, 1] - wide[62, 1]
    upper = inside & (rows < top + 0.4 * opening)
    floor = inside & (rows > top + 0.75 * opening)
    assert upper.sum() > 20 and floor.sum() > 10
    ratio = lambda m: _lum(out, m) / _lum(image, m)  # noqa: E731
    assert ratio(upper) < 1 - 0.8 * MOUTH_DARK
    assert ratio(floor) - ratio(upper) > max(0.4 * MOUTH_FLOOR * MOUTH_DARK, 0.15)  # 0.11 alike (the soft edge)
    assert ratio(floor) < 0.95  # still in the mouth's shadow
