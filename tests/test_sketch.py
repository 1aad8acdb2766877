import numpy as np

from evpcli.face.parts import mouth_aspect_ratio, mouth_opening
from evpcli.face.shape3d import generic_mean_shape
from evpcli.face.sketch import draw_sketch


def frontal_landmarks(size=256):
    s = generic_mean_shape()[:, :2]
    return (s / (s.max(0) - s.min(0)).max() * 0.6 * size + size / 2).astype(np.float32)


def test_sketch_draws_every_part_where_the_landmarks_are():
    lm = frontal_landmarks()
    img = draw_sketch(lm, (256, 256))
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    on = img[..., 0] > 64
    # every landmark lies on a drawn curve (within a pixel), and nothing is drawn far from the face
    ys, xs = np.nonzero(on)
    for x, y in lm:
        assert on[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2].any()
    assert xs.min() >= lm[:, 0].min() - 2 and xs.max() <= lm[:, 0].max() + 2
    assert ys.min() >= lm[:, 1].min() - 2 and ys.max() <= lm[:, 1].max() + 2


def test_mouth_measures():
    lm = frontal_landmarks()
    closed = mouth_opening(lm)
    opened = lm.copy()
    opened[[65, 66, 67], 1] += 10
    assert mouth_opening(opened) - closed == np.float32(10) or abs(mouth_opening(opened) - closed - 10) < 1e-4
    assert mouth_aspect_ratio(opened) > mouth_aspect_ratio(lm)
    assert mouth_opening(np.stack([lm, opened])).shape == (2,)
