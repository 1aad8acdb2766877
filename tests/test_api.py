"""The library's front door (evpcli.load / evpcli.render, docs/api.md): thin over the render stage, the model loaded
once for many clips, the same output as the CLI."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import evpcli
from evpcli import media, models
from evpcli.cli import main
from evpcli.errors import UsageError


@pytest.fixture(scope="module")
def speech(tmp_path_factory, arctic_wav) -> Path:
    """1.2 s of real speech (ARCTIC)."""
    import soundfile as sf

    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(path, media.load_audio(arctic_wav)[int(0.3 * 16000):int(1.5 * 16000)], 16000)
    return path


@pytest.fixture(scope="module")
def portrait(tmp_path_factory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("still") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(cv2.resize(data.astronaut(), (192, 192)), cv2.COLOR_RGB2BGR))
    return path


def test_one_loaded_object_renders_many_clips_and_loads_its_model_once(speech, portrait, tmp_path, monkeypatch):
    evp = evpcli.load(workspace=tmp_path / "ws", device="cpu")
    assert evp.model.source.origin == "shipped" and evp.workspace.root == tmp_path / "ws"
    loads = []
    real = models._load_audio2lm
    monkeypatch.setattr(models, "_load_audio2lm", lambda *a, **k: loads.append(a) or real(*a, **k))
    happy = evp.render(speech, portrait, tmp_path / "happy.mp4", emotion="happy")
    sad = evp.render(speech, portrait, tmp_path / "sad.mp4", emotion="sad", intensity=1.5)
    assert loads == []  # both renders drove the face with the model loaded by evpcli.load
    assert happy.emotion["description"] == "happy" and sad.emotion["description"] == "sad x1.5"
    assert happy.target["key"] == sad.target["key"]  # one analysis of the target, cached in the workspace
    a, b = media.read_video(tmp_path / "happy.mp4").frames, media.read_video(tmp_path / "sad.mp4").frames
    assert a.shape == b.shape and a.shape[1:3] == (192, 192) and media.probe(tmp_path / "sad.mp4").has_audio
    assert np.abs(a.astype(float) - b.astype(float)).mean() > 0.05  # another emotion, another face
    with pytest.raises(UsageError):  # the stage's own checks, as the CLI has them
        evp.render(speech, portrait, tmp_path / "none.mp4")
    assert not (tmp_path / "none.mp4").exists()


def test_evpcli_render_writes_what_the_cli_writes(speech, portrait, tmp_path, capsys):
    ws = tmp_path / "ws"
    r = evpcli.render(speech, portrait, tmp_path / "api.mp4", emotion="surprised", head_motion=True, workspace=ws,
                      landmarks_out=tmp_path / "api.npz")
    assert main(["--workspace", str(ws), "--device", "cpu", "-q", "render", "--audio", str(speech), "--target",
                 str(portrait), "--emotion", "surprised", "--head-motion", "--out", str(tmp_path / "cli.mp4"),
                 "--landmarks-out", str(tmp_path / "cli.npz")]) == 0
    api, cli = np.load(tmp_path / "api.npz"), np.load(tmp_path / "cli.npz")
    for k in ("frontal", "adapted", "tracked"):
        np.testing.assert_array_equal(api[k], cli[k])
    np.testing.assert_array_equal(media.read_video(tmp_path / "api.mp4").frames,
                                  media.read_video(tmp_path / "cli.mp4").frames)
    assert r.frames == len(api["adapted"]) and r.model["origin"] == "shipped"
    assert callable(evpcli.render) and evpcli.render.pipeline.render is not None  # still the render package too
