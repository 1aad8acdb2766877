import numpy as np
import pytest
import torch

from evpcli import evaluate, metrics
from evpcli.face.parts import mouth_opening
from evpcli.config import Audio2LandmarkConfig
from evpcli.nets.audio2lm import Audio2Landmark
from evpcli.nets.lm_emotion import LandmarkEmotionClassifier


def seq(t=20, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(60, 200, (68, 2))
    return base + np.cumsum(rng.normal(0, 0.5, (t, 68, 2)), axis=0)


def test_distances_of_a_known_offset():
    gt = seq()
    pred = gt.copy()
    pred[:, 48:68] += [3.0, 4.0]  # mouth moved 5 px, rest exact
    m = metrics.landmark_metrics(pred, gt)
    assert m["M-LD"] == pytest.approx(5.0)
    assert m["F-LD"] == pytest.approx(5.0 * 20 / 68)
    assert m["M-LVD"] == pytest.approx(0.0, abs=1e-9) and m["F-LVD"] == pytest.approx(0.0, abs=1e-9)


def test_velocity_distance_sees_motion_not_offset():
    gt = seq()
    shaky = gt + np.where(np.arange(20) % 2 == 0, 1.0, -1.0)[:, None, None]
    assert metrics.landmark_velocity_distance(shaky, gt) == pytest.approx(2 * np.sqrt(2))
    with pytest.raises(ValueError):
        metrics.landmark_distance(gt[:5], gt)


def test_energy_baseline_opens_with_energy_and_gain_fits():
    ref = seq(1)[0]
    rng = np.random.default_rng(1)
    rms = np.abs(rng.normal(0.05, 0.03, 200))
    true_a, s = 6.0, float(np.median(rms))
    opening = mouth_opening(ref) + true_a * np.log1p(rms / s)
    a, s_fit = evaluate.fit_energy_gain(rms, opening, float(mouth_opening(ref)))
    assert a == pytest.approx(true_a, rel=1e-6) and s_fit == pytest.approx(s)
    out = evaluate.energy_baseline(ref, rms, (a, s_fit))
    assert out.shape == (200, 68, 2)
    np.testing.assert_allclose(mouth_opening(out), opening, rtol=1e-4)
    assert np.isnan(metrics.mouth_open_correlation(out, np.repeat(ref[None], 200, 0)))  # constant: undefined
    noisy = out + rng.normal(0, 0.2, out.shape)
    assert metrics.mouth_open_correlation(noisy, out) > 0.9
    assert np.all(out[:, 17:48] == ref[17:48].astype(np.float32))  # brows, nose, eyes untouched


def test_audio2lm_shapes_and_emotion_broadcast():
    cfg = Audio2LandmarkConfig(identity_hidden=16, identity_dim=8, content_dim=6, emotion_dim=4, lstm_hidden=12,
                               lstm_layers=2, pca_dim=5)
    net = Audio2Landmark(cfg)
    out = net(torch.randn(3, 16, 6), torch.randn(3, 4), torch.randn(3, 136))
    assert out.shape == (3, 16, 5)
    out2 = net(torch.randn(3, 16, 6), torch.randn(3, 16, 4), torch.randn(3, 136))
    assert out2.shape == (3, 16, 5)


def test_landmark_emotion_classifier_any_length():
    net = LandmarkEmotionClassifier()
    assert net(torch.randn(2, 40, 68, 2)).shape == (2, 8)
    assert net(torch.randn(2, 1, 68, 2)).shape == (2, 8)
