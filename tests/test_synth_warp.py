"""Piecewise-affine warping (the synthetic corpus's renderer)."""

from __future__ import annotations

import numpy as np

from evpcli.face.warp import PiecewiseAffineWarp, border_points


def _image(size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(img[::4, ::4], 4, 0), 4, 1))


def test_border_points_frame_the_image():
    pts = border_points(64, 48, per_side=4)
    assert pts.shape == (16, 2)
    assert {(0.0, 0.0), (63.0, 0.0), (63.0, 47.0), (0.0, 47.0)} <= {tuple(p) for p in pts}


def test_unmoved_points_leave_the_image_unchanged():
    img = _image()
    src = np.concatenate([[[20.0, 20.0], [40.0, 22.0], [30.0, 40.0]], border_points(64, 64)])
    warp = PiecewiseAffineWarp(src, (64, 64))
    np.testing.assert_array_equal(warp.warp(img, src), img)


def test_inner_points_moved_together_move_the_patch_between_them():
    img = _image()
    inner = np.array([[20.0, 20.0], [44.0, 20.0], [44.0, 44.0], [20.0, 44.0], [32.0, 32.0]])
    src = np.concatenate([inner, border_points(64, 64)])
    dst = np.concatenate([inner + [3.0, -2.0], border_points(64, 64)])
    out = PiecewiseAffineWarp(src, (64, 64)).warp(img, dst)
    # inside the moved square, the output at p + (3, -2) is the input at p
    np.testing.assert_array_equal(out[24 - 2:40 - 2, 24 + 3:40 + 3], img[24:40, 24:40])
    map_x, map_y = PiecewiseAffineWarp(src, (64, 64)).maps(dst)
    assert abs(map_x[30, 35] - 32.0) < 1e-4 and abs(map_y[30, 35] - 32.0) < 1e-4


def test_collapsed_triangles_do_not_break_the_map():
    src = np.concatenate([[[20.0, 30.0], [44.0, 30.0], [32.0, 26.0], [32.0, 34.0]], border_points(64, 64)])
    dst = src.copy()
    dst[3] = dst[2]  # a closed mouth: upper and lower lip meet
    map_x, map_y = PiecewiseAffineWarp(src, (64, 64)).maps(dst)
    assert np.isfinite(map_x).all() and np.isfinite(map_y).all()
