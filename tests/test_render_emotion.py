"""What keeps a commanded emotion readable after rendering (issue 11): the target's reference face defined as the
training actors' references are, the 3D model's neutral residual, and the tracker's short reading compensated."""

import numpy as np

from evpcli.face.normalize import TEMPLATE, actor_model, denormalise
from evpcli.render.drive import TRACKER_GAIN, neutral_residual, tracker_compensation
from evpcli.render.targets import target_reference


def _talking(n=60, seed=0):
    """Normalised landmarks of a face that talks: the lower lip and chin drop by 0-8 px, with noise."""
    rng = np.random.default_rng(seed)
    lm = np.repeat(TEMPLATE[None].astype(np.float64), n, axis=0) + rng.normal(0, 0.3, (n, 68, 2))
    drop = 4 + 4 * np.sin(np.arange(n) / 2.0)
    lm[:, [7, 8, 9, 55, 56, 57, 58, 59, 65, 66, 67], 1] += drop[:, None]
    return lm.astype(np.float32)


def test_the_target_reference_is_the_training_actors_reference():
    # prepare-dataset's actor reference (what the network and the emotion classifier were trained against) is the
    # mean of the neutral frames: the target's reference is the same statistic over its reliable frames, so a
    # talking target's reference has the mouth half open, not closed.
    lm = _talking()
    valid = np.ones(len(lm), bool)
    valid[::7] = False  # occluded or lost frames do not count
    lm[~valid] += 40.0
    ref = target_reference(lm, valid)
    np.testing.assert_allclose(ref, actor_model(lm[valid], neutral=lm[valid])["reference"], atol=1e-4)
    opening = ref[66, 1] - ref[62, 1]
    assert abs(opening - (lm[valid, 66, 1] - lm[valid, 62, 1]).mean()) < 1e-3 and opening > 3.0


def test_the_posed_neutral_face_gets_back_what_the_3d_model_missed():
    ref = TEMPLATE.astype(np.float32)
    miss = np.zeros((68, 2), np.float32)
    miss[[48, 54], 1] = 3.0  # the model draws the mouth corners 3 px low
    # three frames, each with its own similarity (source pixels -> canonical frame: scale, roll, shift)
    transforms = np.array([[[k * np.cos(a), -k * np.sin(a), x], [k * np.sin(a), k * np.cos(a), y]]
                           for k, a, x, y in ((0.5, 0.0, 30.0, 12.0), (0.6, 0.1, -5.0, 3.0), (0.45, -0.15, 8.0, 40.0))],
                          np.float32)
    posed = denormalise(np.repeat((ref + miss)[None], 3, axis=0), transforms)
    np.testing.assert_allclose(neutral_residual(posed, ref)[0], -miss, atol=0.05)


def test_tracker_compensation_draws_lasting_expression_larger_and_leaves_speech_motion():
    t = np.arange(100)
    d = np.zeros((100, 68, 2), np.float32)
    d[:, 19, 1] = -3.0  # a brow raised through the clip
    d[:, 66, 1] = 3.0 * np.sin(2 * np.pi * t / 8)  # the lower lip moving with syllables (8 frames a cycle)
    out = tracker_compensation(d, TRACKER_GAIN)
    np.testing.assert_allclose(out[:, 19, 1], -3.0 / TRACKER_GAIN, atol=1e-5)
    assert np.abs(out[:, 66, 1] - d[:, 66, 1])[20:80].max() < 0.1
    np.testing.assert_array_equal(tracker_compensation(d, 1.0), d)


def test_tracker_compensation_does_not_push_closed_lips_through_each_other():
    ref = TEMPLATE.astype(np.float32)
    gap = ref[[67, 66, 65], 1] - ref[[61, 62, 63], 1]
    d = np.zeros((50, 68, 2), np.float32)
    d[:, [67, 66, 65], 1] = -gap  # the silence gate closes the mouth: the lower inner lip meets the upper one
    out = tracker_compensation(d, TRACKER_GAIN, reference=ref)
    lm = ref[None] + out
    np.testing.assert_allclose(lm[:, [67, 66, 65], 1] - lm[:, [61, 62, 63], 1], 0.0, atol=1e-4)
    assert tracker_compensation(d, TRACKER_GAIN)[0, 66, 1] < -gap[1] - 0.5  # what it would draw without the check
