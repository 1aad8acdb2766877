
import numpy as np
import pytest

from evpcli.config import FitConfig
from evpcli.errors import EvpError
from evpcli.face.parts import mouth_aspect_ratio
from evpcli.face.filters import one_euro
from evpcli.face.pose import (_rot_and_jac, align_to_target, euler_from_rotation, expression_config, fit_landmarks,
                              frame_schedule, frontalise, project, rotation_from_euler)
from evpcli.face.shape3d import default_shape_model
from tests.posedata import other_identity, posed_sequence, rotation_error_deg


def test_euler_convention_and_roundtrip():
    a = np.deg2rad(30)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    np.testing.assert_allclose(rotation_from_euler([30, 0, 0]), ry, atol=1e-12)  # yaw about y
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    np.testing.assert_allclose(rotation_from_euler([30, 30, 30]), rz @ ry @ rx, atol=1e-12)
    angles = np.random.default_rng(0).uniform(-60, 60, (50, 3))
    np.testing.assert_allclose(euler_from_rotation(rotation_from_euler(angles)), angles, atol=1e-9)


def test_rotation_jacobian_matches_finite_differences():
    ang = np.array([[0.3, -0.2, 0.5], [-0.4, 0.1, 0.05]])
    _, d = _rot_and_jac(ang)
    eps = 1e-6
    for k in range(3):
        step = np.zeros(3)
        step[k] = eps
        num = (_rot_and_jac(ang + step, jac=False)[0] - _rot_and_jac(ang - step, jac=False)[0]) / (2 * eps)
        np.testing.assert_allclose(d[:, k], num, atol=1e-8)


def test_fit_recovers_known_pose_of_another_face():
    """A face unlike the model's mean, moving within ±20°, talking, with noise and 2 % outliers."""
    lm, clean, _, rot = posed_sequence(T=150, seed=1)
    fit = fit_landmarks(lm)
    err = rotation_error_deg(fit.rotation, rot)
    assert np.median(err) <= 3.0 and np.percentile(err, 95) <= 6.0, (np.median(err), np.percentile(err, 95))
    assert np.linalg.norm(fit.fitted - clean, axis=-1).mean() < 1.5  # px, face ≈ 70 px wide
    assert fit.rotation.shape == (150, 3, 3) and fit.expression.shape == (150, default_shape_model().n_expression)


def test_robust_loss_resists_bad_landmarks():
    lm, _, _, rot = posed_sequence(T=80, seed=2, outliers=0.08)
    robust = rotation_error_deg(fit_landmarks(lm).rotation, rot)
    plain = rotation_error_deg(fit_landmarks(lm, config=FitConfig(huber=1e6)).rotation, rot)
    assert np.median(robust) < 0.8 * np.median(plain)
    assert np.median(robust) <= 3.0


def test_frames_without_a_face_take_their_pose_from_neighbours():
    lm, _, _, rot = posed_sequence(T=100, seed=3)
    valid = np.ones(100, bool)
    valid[40:46] = False
    lm[40:46] = np.nan  # nothing usable there
    fit = fit_landmarks(lm, valid)
    err = rotation_error_deg(fit.rotation, rot)
    assert err[40:46].max() < 6.0
    assert np.isnan(fit.error_px[40:46]).all() and np.isfinite(fit.error_px[valid]).all()
    with pytest.raises(EvpError, match="no frame"):
        fit_landmarks(lm, np.zeros(100, bool))


def test_fit_is_invariant_to_image_scale():
    lm, _, _, _ = posed_sequence(T=60, seed=4)
    a = fit_landmarks(lm)
    b = fit_landmarks(lm * 3 + 50)
    np.testing.assert_allclose(a.euler_deg, b.euler_deg, atol=1e-3)
    np.testing.assert_allclose(b.scale, 3 * a.scale, rtol=1e-4)


def test_one_euro_keeps_constants_and_smooths_jitter():
    x = np.full((100, 2), 5.0)
    np.testing.assert_allclose(one_euro(x, 25.0), x)
    rng = np.random.default_rng(0)
    t = np.arange(250) / 25
    slow = 10 * np.sin(2 * np.pi * 0.2 * t)[:, None]
    noisy = slow + rng.normal(0, 1.0, slow.shape)
    smooth = one_euro(noisy, 25.0, min_cutoff=0.01, beta=0.7)
    assert np.abs(np.diff(smooth, axis=0)).mean() < 0.6 * np.abs(np.diff(noisy, axis=0)).mean()
    assert np.abs(smooth - slow)[25:].mean() < np.abs(noisy - slow)[25:].mean()


def test_frame_schedule_plays_forward_then_backward():
    assert frame_schedule(10, 4).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert frame_schedule(3, 5).tolist() == [0, 1, 2]
    assert frame_schedule(4, 1).tolist() == [0, 0, 0, 0]


def _frontal_prediction(expression: np.ndarray, identity_seed: int = 7) -> np.ndarray:
    """Frontal landmarks in a 256×256 frame of a face (``other_identity(identity_seed)``) with the given
    expression (T, Ke)."""
    m = default_shape_model()
    shape = other_identity(identity_seed) + np.tensordot(expression, m.expression_basis, (1, 0))
    T = len(expression)
    return project(shape, np.repeat(np.eye(3)[None], T, 0), np.full(T, 0.8), np.full((T, 2), 128.0))


@pytest.mark.parametrize("identity_seed", [5, 7])  # the target's own face; another person's
def test_open_mouth_keeps_its_aspect_ratio_through_a_rotated_target(identity_seed):
    m = default_shape_model()
    expr = np.zeros((1, m.n_expression))
    expr[0, m.expression_names.index("jaw_open")] = 1.5
    pred = _frontal_prediction(expr, identity_seed=identity_seed)
    lm, _, _, _ = posed_sequence(T=60, seed=5, amp=25.0)
    target = fit_landmarks(lm)
    frame = int(np.argmax(np.abs(target.euler_deg).sum(1)))  # the most rotated frame
    assert np.abs(target.euler_deg[frame]).max() > 15
    aligned = align_to_target(pred, target, schedule=np.array([frame]))
    assert aligned.shape == (1, 68, 2)
    # rotate back: fit the aligned landmarks, undo that pose, look at the points frontally
    back = fit_landmarks(np.repeat(aligned, 2, 0), identity=target.identity, config=expression_config(FitConfig()))
    assert np.abs(back.euler_deg[0] - target.euler_deg[frame]).max() < 2.0
    frontal = frontalise(np.repeat(aligned, 2, 0), back)[:1, :, :2]
    ratio = mouth_aspect_ratio(frontal)[0] / mouth_aspect_ratio(pred)[0]
    assert abs(ratio - 1) <= 0.10, ratio
    # the open mouth really is open in the rotated frame (not flattened by the alignment)
    assert mouth_aspect_ratio(aligned)[0] > 0.5 * mouth_aspect_ratio(pred)[0]


def test_alignment_takes_pose_from_the_target_and_expression_from_the_prediction():
    m = default_shape_model()
    lm, _, _, _ = posed_sequence(T=40, seed=6)
    target = fit_landmarks(lm)
    expr = np.zeros((2, m.n_expression))
    expr[1, m.expression_names.index("jaw_open")] = 2.0
    pred = _frontal_prediction(expr)
    out = align_to_target(pred, target, schedule=np.array([10, 10]))
    # same target frame, same pose: the upper face stays put, the chin and lower lip move down the face
    upper = np.r_[17:48]
    assert np.abs(out[1, upper] - out[0, upper]).max() < 0.5
    down = rotation_from_euler(target.euler_deg[10])[:2, 1]  # image direction of the face's +y
    assert (out[1, 57] - out[0, 57]) @ down > 5.0
    # landmarks land on the target's face: close to its own fitted landmarks in that frame for the stable points
    assert np.linalg.norm(out[0, 27:36] - target.fitted[10, 27:36], axis=-1).mean() < 2.0
    with pytest.raises(EvpError):
        align_to_target(pred, target, schedule=np.array([0, 99]))
