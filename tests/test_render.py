"""evp render / evp interpolate end to end on real media (carphone video, ARCTIC speech, the astronaut still)
with tiny trained models: outputs play, last as long as the speech, carry it, and bad inputs fail cleanly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from evpcli import media
from evpcli.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory, arctic_wav) -> Path:
    """1.6 s of real speech (ARCTIC), as a 44.1 kHz stereo wav: render must take any rate and channel count."""
    import soundfile as sf

    wav = media.load_audio(arctic_wav)[int(0.3 * 16000):int(1.9 * 16000)]
    up = np.interp(np.arange(int(len(wav) * 44100 / 16000)) * 16000 / 44100, np.arange(len(wav)), wav)
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(path, np.stack([up, 0.5 * up], 1).astype(np.float32), 44100)
    return path


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("still") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(cv2.resize(data.astronaut(), (256, 256)), cv2.COLOR_RGB2BGR))
    return path


def _run(ws, *args) -> int:
    return main(["--workspace", str(ws.root), "-q", *map(str, args)])


def test_render_carphone_plays_with_the_speech(tiny_models, short_speech, carphone_mp4, tmp_path, capsys):
    _, ws = tiny_models
    out = tmp_path / "new" / "dir" / "car.mp4"  # a folder that does not exist yet is made
    lm_out = tmp_path / "lm.npz"
    assert _run(ws, "render", "--audio", short_speech, "--emotion", "happy", "--target", carphone_mp4, "--out", out,
                "--landmarks-out", lm_out, "--json") == 0
    r = json.loads(capsys.readouterr().out)
    info = media.probe(out)
    speech_s = len(media.load_audio(short_speech)) / 16000
    assert info.size == (176, 144) and info.has_audio and abs(info.fps - 25) < 0.01
    assert abs(info.duration - speech_s) <= 0.08, (info.duration, speech_s)
    assert r["frames"] == int(round(speech_s * 25)) and r["emotion"]["description"] == "happy"
    assert r["model"]["origin"] == "workspace" and set(r["stage_seconds"]) >= {"target", "render"}
    frames = media.read_video(out).frames
    target = media.read_video(carphone_mp4, fps=25).frames[:len(frames)]
    lm = np.load(lm_out)
    assert lm["adapted"].shape == (r["frames"], 68, 2) and lm["frontal"].shape == (r["frames"], 68, 2)
    # only the face changes: far from the face the frames are the target's (up to H.264)
    far = np.ones(frames.shape[1:3], bool)
    box = np.concatenate([lm["tracked"], lm["adapted"]]).reshape(-1, 2)
    x0, y0 = box.min(0) - 25
    x1, y1 = box.max(0) + 25
    far[max(int(y0), 0):int(y1), max(int(x0), 0):int(x1)] = False
    mse = np.mean((frames[:, far].astype(float) - target[:, far].astype(float)) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30
    # and the face does change
    face = ~far
    assert np.abs(frames[:, face].astype(float) - target[:, face].astype(float)).mean() > 1.0
    # a second render reuses the cached fit and analysis
    assert _run(ws, "render", "--audio", short_speech, "--emotion", "sad", "--target", carphone_mp4, "--out",
                tmp_path / "again.mp4", "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["target"]["key"] == r["target"]["key"]


def test_render_a_still_portrait_with_head_motion_and_an_emotion_clip(tiny_models, short_speech, astronaut_png,
                                                                     arctic_wav, tmp_path, capsys):
    _, ws = tiny_models
    out = tmp_path / "still.mp4"
    guide = tmp_path / "guide.mp4"
    lm = tmp_path / "still.npz"
    assert _run(ws, "render", "--audio", short_speech, "--emotion-audio", arctic_wav, "--target", astronaut_png,
                "--head-motion", "--guidance-out", guide, "--out", out, "--landmarks-out", lm, "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["target"]["still"] and r["emotion"]["source"] == "audio"
    assert r["emotion"]["predicted"] in ("happy", "sad", "neutral") and 0 < r["emotion"]["probability"] <= 1
    info = media.probe(out)
    assert info.size == (256, 256) and info.has_audio
    frames = media.read_video(out).frames
    assert np.ptp(np.load(lm)["adapted"][:, 30], axis=0).max() > 0.4  # the head moves (nose tip, pixels)
    assert frames.std(axis=0).mean() > 0.05
    g = media.read_video(guide).frames
    assert len(g) == len(frames) and g.max() > 200  # sketch curves are drawn


def test_head_motion_moves_the_whole_head_and_not_the_body(tiny_models, short_speech, astronaut_png, tmp_path):
    """--head-motion moves the face, the hair and the head's outline as one; the shoulders stay (issue 22)."""
    from evpcli.face.landmarks import detect_landmarks
    from evpcli.render.pipeline import render

    _, ws = tiny_models
    out = tmp_path / "moving.mp4"
    render(ws, short_speech, astronaut_png, out, emotion="neutral", head_motion=True)
    photo = cv2.cvtColor(cv2.imread(str(astronaut_png)), cv2.COLOR_BGR2RGB)
    lm = detect_landmarks(photo)
    iod = float(np.linalg.norm(lm[45] - lm[36]))
    s = int(0.45 * iod)

    def motion(x, y) -> float:
        x, y = int(np.clip(x, s, 255 - s)), int(np.clip(y, s, 255 - s))
        a = cv2.cvtColor(photo[y - s:y + s, x - s:x + s], cv2.COLOR_RGB2GRAY).astype(np.float32)
        shifts = []
        for f in media.read_video(out).frames:
            b = cv2.cvtColor(f[y - s:y + s, x - s:x + s], cv2.COLOR_RGB2GRAY).astype(np.float32)
            shifts.append(cv2.phaseCorrelate(a, b)[0])
        return float(np.ptp(np.array(shifts), axis=0).max())

    hair = motion(lm[27, 0], lm[19:25, 1].min() - 0.75 * iod)
    shoulder = motion(lm[8, 0] + 1.6 * iod, lm[8, 1] + 1.6 * iod)
    assert hair > 0.02 * np.linalg.norm(lm[16] - lm[0])  # the hair moves with the head (2 % of the face width+)
    assert shoulder < 0.3


def test_any_number_of_renders_onto_the_same_photo_in_one_workspace(tiny_models, short_speech, astronaut_png,
                                                                     tmp_path, capsys):
    """The cached path of a photo target (issue 22: the second render failed after writing the video)."""
    _, ws = tiny_models
    runs = [("render", "--emotion", "sad"), ("render", "--emotion", "happy", "--head-motion"),
            ("interpolate", "--from", "sad", "--to", "happy"), ("interpolate", "--from", "happy", "--to", "sad",
                                                                "--head-motion")]
    keys = set()
    for k, (cmd, *args) in enumerate(runs):
        out = tmp_path / f"photo{k}.mp4"
        assert _run(ws, cmd, "--audio", short_speech, "--target", astronaut_png, "--out", out, *args, "--json") == 0
        r = json.loads(capsys.readouterr().out)
        assert r["size"] == [256, 256] and media.probe(out).has_audio
        keys.add(r["target"]["key"])
    assert len(keys) == 1  # one fit, cached


def test_a_run_that_fails_after_encoding_leaves_nothing_at_its_outputs(tiny_models, short_speech, carphone_mp4,
                                                                        tmp_path, monkeypatch):
    from evpcli.render import pipeline

    _, ws = tiny_models
    out, lm = tmp_path / "out.mp4", tmp_path / "lm.npz"

    def boom(td):
        raise RuntimeError("a failure after the video was encoded")

    monkeypatch.setattr(pipeline, "own_expression", boom)
    with pytest.raises(RuntimeError):
        pipeline.render(ws, short_speech, carphone_mp4, out, emotion="happy", landmarks_out=lm)
    assert not out.exists() and not lm.exists()
    assert not list(tmp_path.glob(".evp-render-*")) and not list(tmp_path.glob(".*mp4*"))


def test_audio_longer_than_the_target_plays_it_back_and_forth(tiny_models, arctic_wav, tmp_path, capsys):
    from evpcli.corpus.synth import make_clip

    _, ws = tiny_models
    clip = make_clip(0, "neutral", 1, 0, size=128, seed=3)
    target = tmp_path / "short.mp4"
    media.write_video(target, clip.frames[:30], fps=25.0)
    out = tmp_path / "pingpong.mp4"
    assert _run(ws, "render", "--audio", arctic_wav, "--emotion", "sad", "--target", target, "--out", out,
                "--json") == 0
    r = json.loads(capsys.readouterr().out)
    speech_s = len(media.load_audio(arctic_wav)) / 16000
    assert r["frames"] > 60 and abs(media.probe(out).duration - speech_s) <= 0.08


def test_interpolate_with_a_contact_sheet(tiny_models, short_speech, carphone_mp4, tmp_path, capsys):
    _, ws = tiny_models
    out, sheet = tmp_path / "ramp.mp4", tmp_path / "sheet.png"
    assert _run(ws, "interpolate", "--from", "sad", "--to", "happy", "--audio", short_speech, "--target",
                carphone_mp4, "--out", out, "--sheet", sheet, "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["emotion"]["description"] == "sad -> happy" and media.probe(out).has_audio
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[0] >= 5 * 100 and img.shape[1] > 4 * 100
    assert _run(ws, "interpolate", "--from", "sad", "--to", "happy", "--alpha", "0.5", "--audio", short_speech,
                "--target", carphone_mp4, "--out", tmp_path / "half.mp4", "--json") == 0
    assert json.loads(capsys.readouterr().out)["emotion"]["description"].startswith("0.50 x sad")


def test_bad_inputs_fail_with_one_line_and_write_nothing(tiny_models, short_speech, carphone_mp4, tmp_path, capsys):
    import soundfile as sf

    from tests.conftest import moving_square_frames

    _, ws = tiny_models
    out = tmp_path / "o.mp4"

    def fails(*args, message: str, code: int = 1):
        assert _run(ws, "render", *args) == code
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()

    common = ["--target", carphone_mp4, "--out", out]
    fails("--audio", short_speech, "--emotion", "bored", *common, message="unknown emotion 'bored'", code=2)
    fails("--audio", short_speech, *common, message="exactly one of --emotion", code=2)
    fails("--audio", short_speech, "--emotion", "sad", "--emotion-audio", short_speech, *common,
          message="exactly one of --emotion", code=2)
    fails("--audio", short_speech, "--emotion", "sad", "--intensity", "3", *common, message="--intensity",
          code=2)  # an option out of its range is a usage error, as in every command
    tiny = tmp_path / "tiny.wav"
    sf.write(tiny, np.zeros(300, np.float32), 16000)
    fails("--audio", tiny, "--emotion", "sad", *common, message="give at least 40 ms")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(500))
    fails("--audio", short_speech, "--emotion", "sad", "--target", corrupt, "--out", out, message="corrupt")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    fails("--audio", empty, "--emotion", "sad", *common, message="empty")
    faceless = tmp_path / "faceless.mp4"
    media.write_video(faceless, moving_square_frames(30), fps=25.0)
    fails("--audio", short_speech, "--emotion", "sad", "--target", faceless, "--out", out, message="face")
    # --out equal to an input is refused and the input survives
    before = short_speech.read_bytes()
    assert _run(ws, "render", "--audio", short_speech, "--emotion", "sad", "--target", carphone_mp4, "--out",
                short_speech) == 1
    assert "same file" in capsys.readouterr().err and short_speech.read_bytes() == before
    assert _run(ws, "render", "--audio", short_speech, "--emotion", "sad", "--target", carphone_mp4, "--out",
                "/proc/evp/out.mp4") == 1
    capsys.readouterr()


def test_silent_speech_keeps_the_mouth_closed_and_still_writes_a_video(tiny_models, carphone_mp4, tmp_path, capsys):
    import soundfile as sf

    from evpcli.face.parts import mouth_opening

    _, ws = tiny_models
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(16000, np.float32), 16000)
    out, lm = tmp_path / "quiet.mp4", tmp_path / "quiet.npz"
    assert _run(ws, "render", "--audio", silence, "--emotion", "neutral", "--target", carphone_mp4, "--out", out,
                "--landmarks-out", lm, "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert "silent" in " ".join(r["warnings"]) and media.probe(out).has_audio
    frontal = np.load(lm)["frontal"]
    assert np.ptp(mouth_opening(frontal)) < 1.0  # the mouth does not move


def test_batch_render_example_runs_and_reports_failures(tiny_models, short_speech, carphone_mp4, tmp_path):
    import os
    import shutil
    import sys

    _, ws = tiny_models
    speech_dir = tmp_path / "speech"
    speech_dir.mkdir()
    shutil.copy(short_speech, speech_dir / "a.wav")
    (speech_dir / "broken.wav").write_bytes(b"RIFF....not audio")
    media.save_wav(speech_dir / "tmp.wav", media.load_audio(short_speech))
    subprocess.run([__import__("imageio_ffmpeg").get_ffmpeg_exe(), "-loglevel", "error", "-i",
                    str(speech_dir / "tmp.wav"), str(speech_dir / "b.m4a")], check=True)
    (speech_dir / "tmp.wav").unlink()
    env = {**os.environ, "EVP_WORKSPACE": str(ws.root), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(EXAMPLES / "batch_render.sh"), str(speech_dir), str(carphone_mp4),
                        str(tmp_path / "out"), "happy"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 1, r.stderr
    assert "FAILED" in r.stderr and "broken.wav" in r.stderr
    assert media.probe(tmp_path / "out" / "a-happy.mp4").has_audio
    assert media.probe(tmp_path / "out" / "b-happy.mp4").has_audio  # not only *.wav
    assert not (tmp_path / "out" / "broken-happy.mp4").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = subprocess.run(["bash", str(EXAMPLES / "batch_render.sh"), str(empty), str(carphone_mp4),
                        str(tmp_path / "out2"), "happy"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 1 and "no speech clips" in r.stderr and "*" not in r.stderr


def test_ping_pong_frames_stream_in_schedule_order(tmp_path):
    """A target shorter than the speech plays forward then backward: the frames come out in schedule order, each
    decoded once (served while decoding on the first pass, then from the spill file)."""
    from types import SimpleNamespace

    from evpcli.face.pose import frame_schedule
    from evpcli.render.targets import _target_frames
    from tests.conftest import moving_square_frames

    path = media.write_video(tmp_path / "t.mp4", moving_square_frames(12), fps=25)
    decoded = media.read_video(path, fps=25).frames
    schedule = frame_schedule(40, len(decoded))
    td = SimpleNamespace(frames=None, still=False, n_frames=len(decoded), path=path)
    got = np.stack(list(_target_frames(td, schedule, 25.0, tmp_path)))
    assert np.array_equal(got, decoded[schedule])


def test_cached_alignment_equals_computing_it(tmp_path, arctic_wav):
    """prepare_target stores the reference aligned onto every target frame; drive gives the same landmarks with it
    as without it (computing the same fits itself), whether the speech visits every frame or only the first."""
    import dataclasses

    from evpcli import audio
    from evpcli.corpus.synth import make_clip
    from evpcli.models import load_audio2lm
    from evpcli.render.drive import drive
    from evpcli.render.targets import prepare_target
    from evpcli.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    clip = make_clip(0, "neutral", 1, 0, size=128, seed=3)
    target = media.write_video(tmp_path / "t.mp4", clip.frames[:20], fps=25.0)
    td = prepare_target(ws, target)
    assert td.neutral.shape == (20, 68, 2) and td.reference_scale > 0
    again = prepare_target(ws, target)  # from the cache
    assert np.array_equal(again.neutral, td.neutral) and again.reference_scale == td.reference_scale
    model = load_audio2lm(ws, backend="auto")
    wav = media.load_audio(arctic_wav)
    bare = dataclasses.replace(again, neutral=None, reference_scale=None)
    for seconds in (2.0, 0.5):  # 50 frames: back and forth over all 20; 12 frames: the first 12 only
        w = wav[:int(seconds * 16000)]
        win = audio.speech_windows(w)
        rms = audio.frame_rms(w, len(win))
        code = model.emotion_means["happy"]
        a = drive(model, again, win, rms, code)
        b = drive(model, bare, win, rms, code)
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y)


def test_the_output_keeps_the_speechs_sample_rate_and_channels(tiny_models, short_speech, carphone_mp4, tmp_path):
    """Issue 25: whatever the speech, the video carried 16 kHz mono AAC at 72 kb/s."""
    import re

    import imageio_ffmpeg

    from evpcli.render.pipeline import render

    _, ws = tiny_models
    out = tmp_path / "hifi.mp4"
    render(ws, short_speech, carphone_mp4, out, emotion="happy")  # the speech: 44.1 kHz stereo
    info = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(out)], capture_output=True, text=True).stderr
    audio = next(line for line in info.splitlines() if "Audio:" in line)
    assert "44100 Hz" in audio and "stereo" in audio, audio
    assert int(re.search(r"(\d+) kb/s", audio).group(1)) >= 128


def test_the_container_follows_the_extension(tiny_models, short_speech, astronaut_png, tmp_path, capsys):
    """Issue 25: --out x.gif / x.webm wrote MP4 under those names; an unknown one or '-' is a usage error."""
    import imageio_ffmpeg

    _, ws = tiny_models
    expect = {"webm": ("matroska,webm", "vp9", True), "gif": ("gif", "gif", False), "mkv": ("matroska", "h264", True),
              "mov": ("mov,mp4", "h264", True)}
    for ext, (fmt, codec, sound) in expect.items():
        out = tmp_path / f"o.{ext}"
        assert _run(ws, "render", "--audio", short_speech, "--emotion", "sad", "--target", astronaut_png, "--out",
                    out) == 0
        info = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(out)], capture_output=True, text=True).stderr
        assert f"Input #0, {fmt}" in info and f"Video: {codec}" in info, info
        assert ("Audio:" in info) == sound
    for bad in ("o.avi", "-", "noext"):
        capsys.readouterr()
        assert _run(ws, "render", "--audio", short_speech, "--emotion", "sad", "--target", astronaut_png, "--out",
                    bad) == 2
        assert "container" in capsys.readouterr().err or bad == "-"
