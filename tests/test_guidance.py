import numpy as np
import pytest

from evpcli.face.guidance import face_region, guidance_map
from evpcli.face.landmarks import detect_landmarks


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    image = data.astronaut()
    return image, detect_landmarks(image)


def test_guidance_has_the_sketch_inside_the_face_and_edges_only_outside(astronaut):
    image, lm = astronaut
    g = guidance_map(image, lm)
    assert g.shape == image.shape[:2] and g.dtype == np.uint8
    face = face_region(lm, (image.shape[1], image.shape[0]))
    # every landmark lies on the sketch
    for x, y in lm:
        assert g[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2].max() > 64
    # inside the face only sketch pixels (no Canny edges of the old expression: the real smile's teeth edges)
    from evpcli.face.sketch import draw_sketch

    sketch = draw_sketch(lm, (image.shape[1], image.shape[0]))[..., 0]
    assert np.array_equal(g[face], sketch[face])
    # outside: the frame's edges (hair, suit, flag, rocket) are kept
    outside = g[~face] > 0
    assert outside.mean() > 0.03


def test_guidance_follows_the_landmarks_not_the_frame(astronaut):
    image, lm = astronaut
    moved = lm.copy()
    moved[[65, 66, 67], 1] += 12  # open the mouth in the commanded landmarks
    a, b = guidance_map(image, lm), guidance_map(image, moved)
    diff = np.argwhere(a != b)
    assert len(diff) > 0
    lo, hi = moved[48:68].min(0) - 3, moved[48:68].max(0) + 3
    assert (diff[:, 1] >= lo[0]).all() and (diff[:, 1] <= hi[0]).all()
    assert (diff[:, 0] >= lo[1]).all() and (diff[:, 0] <= hi[1]).all()


def test_guidance_takes_a_given_face_mask(astronaut):
    image, lm = astronaut
    mask = np.zeros(image.shape[:2], bool)
    g_none = guidance_map(image, lm, face_mask=mask)
    g = guidance_map(image, lm)
    assert (g_none > 0).sum() > (g > 0).sum()  # no mask: the face's own edges come back
    with pytest.raises(ValueError):
        guidance_map(image, lm, face_mask=mask[:10])


@pytest.mark.parametrize("margin", [0.08, 0.42])
def test_face_region_matches_the_elliptical_dilation_it_replaces(astronaut, margin):
    """The distance-threshold growth agrees with cv2.dilate by the elliptical kernel (the former code) on all but
    a thin rim of edge pixels, at the guidance margin and the paste mask's (0.12 + 0.3) at 512 px."""
    import cv2

    from evpcli.face.guidance import _iod, face_outline

    _, lm = astronaut
    size = (512, 512)
    poly = np.zeros((512, 512), np.uint8)
    cv2.fillPoly(poly, [np.round(face_outline(lm) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    grow = int(round(margin * _iod(lm)))
    ref = cv2.dilate(poly, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))).astype(bool)
    got = face_region(lm, size, margin)
    assert got.sum() > poly.sum() + 100  # it did grow
    diff = got ^ ref
    assert diff.sum() <= 0.01 * ref.sum()
    # every differing pixel lies on the reference region's edge (within 1.5 px of its boundary)
    edge = cv2.dilate(ref.astype(np.uint8), np.ones((3, 3), np.uint8)) != cv2.erode(ref.astype(np.uint8),
                                                                                     np.ones((3, 3), np.uint8))
    assert not (diff & ~cv2.dilate(edge.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)).any()
    assert face_region(lm, size, 0.0).sum() == poly.sum()
