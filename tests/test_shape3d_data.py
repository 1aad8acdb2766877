import numpy as np

from evpcli.face.shape3d import generic_mean_shape


def test_generic_mean_shape_axes():
    s = generic_mean_shape()
    assert s.shape == (68, 3)
    np.testing.assert_allclose(s.mean(axis=0), 0, atol=1e-9)
    assert s[8, 1] > s[27, 1]  # chin below the nose bridge (y down)
    assert s[0, 0] < s[16, 0]  # jaw starts at the image left (x right)
    assert s[30, 2] == s[:, 2].min()  # nose tip closest to the camera (z away)
