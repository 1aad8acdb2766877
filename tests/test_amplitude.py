"""The commanded emotion at real amplitudes (face.amplitude, infer.expressive_landmarks): the lasting part of the
emotion's effect is scaled, the speech's motion is not, and the intensity keeps its meaning."""

import numpy as np
import pytest

from evpcli.face import amplitude
from evpcli.face.normalize import TEMPLATE


def _speech(n=100):
    """(n, 68, 2) a neutral prediction: the template with the lower lip moving with syllables."""
    lm = np.repeat(TEMPLATE[None].astype(np.float64), n, axis=0)
    lm[:, [65, 66, 67, 55, 56, 57, 58, 59], 1] += 3.0 + 3.0 * np.sin(2 * np.pi * np.arange(n) / 8)[:, None]
    return lm


def _proto(emotion):
    names, protos = amplitude.prototypes()
    return protos[names.index(emotion)]


def test_amplify_scales_the_lasting_expression_along_its_prototype_and_leaves_the_speech_motion():
    neutral = _speech()
    expressive = neutral + 0.4 * _proto("happy")  # the network's happy: 0.4 of the prototype through the clip
    expressive[:, 66, 1] += 0.5 * np.sin(2 * np.pi * np.arange(100) / 8)  # the emotion's own speech motion
    out = amplitude.amplify(expressive, neutral, {"happy": 1.5})
    np.testing.assert_allclose((out - expressive)[20:80], np.broadcast_to(0.6 * _proto("happy"), (60, 68, 2)),
                               atol=0.02)  # 0.4 -> 1.0 of the prototype, the syllables untouched
    np.testing.assert_allclose(amplitude.amplify(expressive, neutral, {"happy": 0.0}), expressive, atol=1e-4)
    np.testing.assert_allclose(amplitude.amplify(neutral, neutral, {"happy": 3.0}), neutral, atol=1e-4)
    # only what the expression holds of the prototype is scaled: a lasting raise of one brow end is not a smile
    other = neutral.copy()
    other[:, 19, 1] -= 4.0
    assert np.abs(amplitude.amplify(other, neutral, {"happy": 3.0}) - other).max() < 0.5


def test_no_prototype_brings_the_lips_together():
    names, protos = amplitude.prototypes()
    for name, p in zip(names, protos, strict=True):
        gap = p[[67, 66, 65], 1] - p[[61, 62, 63], 1]  # what the prototype adds to the inner-lip opening
        assert gap.min() >= -1e-9, name


def test_the_gain_brings_the_prototype_to_the_codes_weight_of_the_target():
    neutral = _speech(60)
    for emotion in ("happy", "sad", "angry"):
        expressive = neutral + 0.4 * _proto(emotion)
        assert amplitude.prototype_coefficient((expressive - neutral).mean(0), emotion) == pytest.approx(0.4)
        for weight in (0.5, 1.0, 2.0):
            gains = amplitude.emotion_gains(expressive, neutral, {emotion: np.float64(weight), "fear": np.float64(0)})
            want = min(max(weight * amplitude.TARGET[emotion] / 0.4, 1.0), amplitude.MAX_GAIN)
            assert gains == {emotion: pytest.approx(want)}
            out = amplitude.amplify(expressive, neutral, {e: g - 1 for e, g in gains.items()})
            assert amplitude.prototype_coefficient((out - neutral).mean(0), emotion) == pytest.approx(0.4 * want)
    assert amplitude.emotion_gains(neutral, neutral, {"happy": np.float64(1)}) == {}  # nothing drawn: nothing to scale
    strong = neutral + 5.0 * _proto("happy")
    assert amplitude.emotion_gains(strong, neutral, {"happy": np.float64(1)}) == {"happy": 1.0}  # never below 1


def test_code_weights_read_a_name_at_any_intensity_and_a_mix():
    rng = np.random.default_rng(0)
    means = {e: rng.uniform(0, 1, 16) for e in ("neutral", "happy", "sad", "angry")}
    n = means["neutral"]
    w = amplitude.code_weights(n + 1.7 * (means["sad"] - n), means)
    assert w["sad"] == pytest.approx(1.7) and w["happy"] == pytest.approx(0, abs=1e-9)
    frames = np.stack([n + a * (means["happy"] - n) + (1 - a) * (means["angry"] - n) for a in (0.0, 0.25, 1.0)])
    w = amplitude.code_weights(frames, means)
    np.testing.assert_allclose(w["happy"], [0.0, 0.25, 1.0], atol=1e-9)
    np.testing.assert_allclose(w["angry"], [1.0, 0.75, 0.0], atol=1e-9)
    assert all(float(v) == pytest.approx(0.0, abs=1e-9) for v in amplitude.code_weights(n, means).values())


@pytest.fixture(scope="module")
def shipped(arctic_wav):
    from evpcli import audio, media, models
    from evpcli.infer import content_codes

    model = models.load_audio2lm(None, backend="auto")
    wav = media.load_audio(arctic_wav)
    windows = audio.speech_windows(wav)
    return model, wav, windows, audio.frame_rms(wav, len(windows)), content_codes(model, windows)


def _corners(lm, ref):
    return -(lm[:, [48, 54], 1].mean(1) - ref[[48, 54], 1].mean()) * 100 / np.linalg.norm(ref[45] - ref[36])


def test_the_shipped_happy_smiles_wider_and_keeps_lip_sync(shipped):
    from evpcli.face.parts import mouth_opening
    from evpcli.infer import emotion_code, expressive_landmarks, predict_landmarks

    model, wav, windows, rms, content = shipped
    ref = TEMPLATE.astype(np.float32)
    code = emotion_code(model, "happy").code
    plain = predict_landmarks(model, windows, code, ref, rms, content=content)
    neutral = predict_landmarks(model, windows, model.emotion_means["neutral"], ref, rms, content=content)
    out = expressive_landmarks(model, windows, code, ref, rms, content=content)
    lift_plain = np.median(_corners(plain, ref) - _corners(neutral, ref))
    lift = np.median(_corners(out, ref) - _corners(neutral, ref))
    assert lift > 2.0 * lift_plain and lift > 8.0, (lift_plain, lift)  # % of the inter-ocular distance
    log_rms = np.log(rms + 1e-5)
    r_plain = np.corrcoef(mouth_opening(plain), log_rms)[0, 1]
    r = np.corrcoef(mouth_opening(out), log_rms)[0, 1]
    assert r > r_plain - 0.03, (r_plain, r)


def test_intensity_keeps_its_meaning(shipped):
    from evpcli.infer import emotion_code, expressive_landmarks, predict_landmarks

    model, wav, windows, rms, content = shipped
    ref = TEMPLATE.astype(np.float32)
    neutral = predict_landmarks(model, windows, model.emotion_means["neutral"], ref, rms, content=content)

    def brow_drop(k):
        out = expressive_landmarks(model, windows, emotion_code(model, "angry", intensity=k).code, ref, rms,
                                   content=content)
        return float(np.median(out[:, [21, 22], 1].mean(1) - neutral[:, [21, 22], 1].mean(1)))

    assert abs(brow_drop(0.0)) < 1e-3
    # the network alone gives intensity 2 about 1.3x the lasting expression of 1; scaled, it is twice
    assert brow_drop(2.0) > 1.7 * brow_drop(1.0) > 1.5
