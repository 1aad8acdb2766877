"""What --emotion-audio says, calibrated (issue 23): temperature scaling, the distance limit, the honest reading."""

from types import SimpleNamespace

import numpy as np

from evpcli.calibration import fit_calibration, fit_temperature, nll, read, softmax
from evpcli.config import EMOTIONS


def test_the_temperature_fit_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    for t0 in (0.4, 2.5):
        logits = rng.normal(0, 3, (4000, 8))
        p = softmax(logits, t0)
        labels = np.array([rng.choice(8, p=row) for row in p])
        t = fit_temperature(logits, labels)
        assert abs(np.log(t / t0)) < 0.08, (t, t0)
        assert nll(logits, labels, t) <= nll(logits, labels, 1.0)


def _fake_model(calibrated: bool = True):
    """Codes in 2-D; Ce reads dimension 0 as neutral, dimension 1 as disgusted, very confidently."""
    w = np.zeros((2, 8), np.float32)
    w[0, EMOTIONS.index("neutral")] = w[1, EMOTIONS.index("disgusted")] = 20.0
    stats = {"scale": np.ones(2, np.float32), "limit": np.float32(0.5)}
    if calibrated:
        stats.update(temperature=np.float32(1.0), confident=np.float32(0.9))
    return SimpleNamespace(engine=SimpleNamespace(logits=lambda code: np.asarray(code, np.float32) @ w),
                           code_stats=stats,
                           emotion_means={"neutral": np.array([1.0, 0.0], np.float32),
                                          "disgusted": np.array([0.0, 1.0], np.float32)})


def test_a_code_far_from_every_training_emotion_reads_uncertain_and_drives_neutral():
    from evpcli.infer import ood_warning, read_emotion_clip, reading_phrase

    model = _fake_model()
    far = np.array([0.0, 6.0], np.float32)  # Ce: disgusted, p ~ 1, but 5 spreads from the disgusted mean
    e = read_emotion_clip(model, far, "phone.wav")
    assert e.predicted == "disgusted" and e.probability > 0.99
    assert e.out_of_distribution and not e.confident and e.reading == "uncertain" and e.fallback == "neutral"
    assert np.allclose(e.code, model.emotion_means["neutral"]) and e.description.startswith("neutral")
    said = reading_phrase(e.to_dict())
    assert "far from every training emotion" in said and "drives neutral" in said
    assert "neutral expression instead" in ood_warning(e)
    d = e.to_dict()
    assert d["reading"] == "uncertain" and d["out_of_distribution"] is True and d["fallback"] == "neutral"

    near = np.array([0.05, 1.0], np.float32)
    e = read_emotion_clip(model, near, "angry.wav")
    assert e.reading == "disgusted" and e.confident and not e.out_of_distribution and e.fallback is None
    assert np.allclose(e.code, near) and ood_warning(e) is None
    assert reading_phrase(e.to_dict()).startswith(" (reads disgusted")

    blend = np.array([0.5, 0.52], np.float32)  # in distribution, but Ce hesitates: stated as the blend it is
    e = read_emotion_clip(model, blend, "mixed.wav")
    assert not e.out_of_distribution and not e.confident and e.reading == "uncertain"
    assert np.allclose(e.code, blend) and "reading uncertain" in reading_phrase(e.to_dict())
    assert "reading is uncertain" in ood_warning(e) and "--emotion NAME" in ood_warning(e)


def test_an_uncalibrated_model_says_so():
    from evpcli.infer import read_emotion_clip, reading_phrase

    e = read_emotion_clip(_fake_model(calibrated=False), np.array([0.05, 1.0], np.float32), "a.wav")
    assert e.calibrated is False and e.confident is None and "uncalibrated" in reading_phrase(e.to_dict())


def test_the_fitted_limit_keeps_held_out_clips_in_and_the_threshold_keeps_real_misreadings_out():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 8, 200)
    logits = rng.normal(0, 1, (200, 8))
    logits[np.arange(200), labels] += 4.0
    held_dist = rng.uniform(0.1, 0.6, 200)
    neutral = EMOTIONS.index("neutral")
    real_logits = rng.normal(0, 1, (10, 8))
    real_logits[:, EMOTIONS.index("disgusted")] += 5.0  # neutral speech read as disgusted
    real_dist = np.r_[rng.uniform(0.2, 0.5, 4), rng.uniform(2.0, 5.0, 6)]
    cal = fit_calibration(logits, labels, held_dist, real_logits, real_dist, neutral)
    assert held_dist.max() <= cal.limit < 2.0
    rp = softmax(real_logits, cal.temperature)
    for p, d in zip(rp, real_dist, strict=True):
        r = read(p, d, cal.limit, cal.confident, EMOTIONS)
        assert r["reading"] in ("neutral", "uncertain")
    assert cal.report["heldout_nll"]["after"] <= cal.report["heldout_nll"]["before"]
