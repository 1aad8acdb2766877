"""Speech stays readable in every emotion (evpcli.face.speech): the mouth opens at least as far as neutral's."""

from __future__ import annotations

import numpy as np

from evpcli.face.normalize import TEMPLATE
from evpcli.face.parts import LOWER_INNER_LIP, MOUTH, mouth_opening
from evpcli.face.speech import CHIN, keep_speech_opening


def _speaking(openings) -> np.ndarray:
    lm = np.repeat(TEMPLATE[None].astype(np.float32), len(openings), 0)
    lm[:, LOWER_INNER_LIP, 1] += np.asarray(openings, np.float32)[:, None]
    return lm


def test_a_smaller_opening_is_raised_to_neutrals_and_nothing_else_moves():
    neutral = _speaking([0.0, 6.0, 12.0, 4.0])
    sad = _speaking([0.0, 2.0, 14.0, 4.0])
    sad[:, 48, 1] += 3.0  # lowered corners: the emotion's own shape
    out = keep_speech_opening(sad, neutral)
    base = mouth_opening(TEMPLATE[None].astype(np.float64))[0]
    np.testing.assert_allclose(mouth_opening(out) - base, [0.0, 6.0, 14.0, 4.0], atol=1e-4)
    moved = np.abs(out - sad).sum(-1) > 0
    assert moved[1].any() and not moved[[0, 2, 3]].any()  # only the frame that opened less
    above = np.setdiff1d(np.arange(68), np.concatenate([MOUTH, CHIN]))
    assert not moved[:, above].any() and not moved[:, [48, 54, 60, 64]].any()  # corners and the upper face stay
    assert out[1, 8, 1] - sad[1, 8, 1] == 4.0  # the chin goes down with the lower lip


def test_sad_speech_opens_the_mouth_like_neutral_in_the_pipeline(tmp_path, arctic_wav):
    """drive: the shipped model's sad command opens the mouth less than its neutral one on real speech; with the
    floor (the default) no frame opens less than neutral's, and the frames that opened enough are unchanged."""
    from evpcli import audio, media
    from evpcli.corpus.synth import make_clip
    from evpcli.models import load_audio2lm
    from evpcli.render.drive import drive
    from evpcli.render.targets import prepare_target
    from evpcli.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    clip = make_clip(0, "neutral", 1, 0, size=128, seed=3)
    td = prepare_target(ws, media.write_video(tmp_path / "t.mp4", clip.frames[:20], fps=25.0))
    model = load_audio2lm(ws, backend="auto")
    wav = media.load_audio(arctic_wav)[:3 * 16000]
    win = audio.speech_windows(wav)
    rms = audio.frame_rms(wav, len(win))
    neutral = mouth_opening(drive(model, td, win, rms, model.emotion_means["neutral"])[0])
    bare = drive(model, td, win, rms, model.emotion_means["sad"], speech_floor=False)[0]
    floored = drive(model, td, win, rms, model.emotion_means["sad"])[0]
    short = mouth_opening(bare) < neutral - 0.5
    assert short.sum() >= 5  # sad speaks with a smaller mouth
    assert (mouth_opening(floored) >= neutral - 1e-3).all()
    np.testing.assert_array_equal(floored[~short & (mouth_opening(bare) >= neutral)],
                                  bare[~short & (mouth_opening(bare) >= neutral)])
