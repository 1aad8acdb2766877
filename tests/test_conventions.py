"""The conventions users of video tools expect (issue 25): --device on every command that computes, its help."""

from __future__ import annotations

import pytest

from evpcli.cli import global_options_first, main


def test_device_may_follow_the_command_and_takes_cuda_n(capsys):
    assert global_options_first(["render", "--device", "cpu", "--audio", "a.wav"]) == ["--device", "cpu", "render",
                                                                                      "--audio", "a.wav"]
    assert global_options_first(["render", "--device=cuda:1"]) == ["--device=cuda:1", "render"]
    # train keeps its own --device
    assert global_options_first(["train", "--device", "cpu"]) == ["train", "--device", "cpu"]
    assert main(["--device", "tpu", "status"]) == 2
    assert "cuda:N" in capsys.readouterr().err


def test_cuda_n_is_checked_against_the_machine(monkeypatch):
    torch = pytest.importorskip("torch")
    from evpcli.device import resolve_device
    from evpcli.errors import EvpError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert str(resolve_device("cuda:1")) == "cuda:1"
    with pytest.raises(EvpError, match="has 2 CUDA GPUs"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EvpError, match="no CUDA GPU"):
        resolve_device("cuda:0")
    assert str(resolve_device("auto")) == "cpu"


@pytest.mark.parametrize("command", ["render", "interpolate", "batch-render", "evaluate", "demo", "ui", "fit-pose",
                                     "preview-landmarks", "prepare-dataset", "build-pairs"])
def test_every_computing_command_shows_device_in_its_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert "--device" in capsys.readouterr().out


def test_status_in_a_new_folder_names_the_model_render_would_use(tmp_path, capsys):
    assert main(["-w", str(tmp_path / "new"), "status"]) == 0
    out = capsys.readouterr().out
    assert "render would use the shipped" in out and "0 models" not in out


def test_the_exactly_one_emotion_error_is_a_usage_error(tmp_path, arctic_wav, carphone_mp4, capsys):
    assert main(["-q", "-w", str(tmp_path / "ws"), "render", "--audio", str(arctic_wav), "--target",
                 str(carphone_mp4), "--out", str(tmp_path / "o.mp4")]) == 2
    assert "exactly one" in capsys.readouterr().err


def test_sar_crf_and_preset(tiny_models, arctic_wav, carphone_mp4, tmp_path, capsys):
    """The input's pixel shape is kept (a 128:117 clip came out 9 % narrower); --crf and --preset reach x264."""
    import subprocess

    import imageio_ffmpeg

    from evpcli import media

    _, ws = tiny_models
    ff = imageio_ffmpeg.get_ffmpeg_exe()
    wide = tmp_path / "sar.mp4"
    subprocess.run([ff, "-loglevel", "error", "-i", str(carphone_mp4), "-t", "1", "-vf", "setsar=128/117",
                    "-c:v", "libx264", "-c:a", "aac", str(wide)], check=True)
    sar = media.probe(wide).sar
    assert abs(sar[0] / sar[1] - 128 / 117) < 0.01  # ffmpeg may reduce it (93:85)
    small, big = tmp_path / "small.mp4", tmp_path / "big.mp4"
    for out, crf in ((small, "40"), (big, "5")):
        assert main(["-q", "-w", str(ws.root), "render", "--audio", str(arctic_wav), "--emotion", "happy",
                     "--target", str(wide), "--out", str(out), "--crf", crf, "--preset", "ultrafast"]) == 0
    sar = media.probe(big).sar
    assert abs(sar[0] / sar[1] - 128 / 117) < 0.01
    assert small.stat().st_size < 0.5 * big.stat().st_size
    assert main(["-q", "-w", str(ws.root), "render", "--audio", str(arctic_wav), "--emotion", "happy",
                 "--target", str(wide), "--out", str(tmp_path / "x.mp4"), "--preset", "warp9"]) == 2


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory, carphone_mp4):
    """carphone beside its mirror image: two people in every frame."""
    import numpy as np

    from evpcli import media

    frames = [np.concatenate([f, f[:, ::-1]], 1) for f in media.iter_frames(carphone_mp4, 25.0)][:40]
    return media.write_video(tmp_path_factory.mktemp("two") / "two.mp4", iter(frames), fps=25.0)


def test_several_faces_are_reported_and_the_chosen_one_is_followed(tiny_models, two_faces, arctic_wav, tmp_path,
                                                                   capsys):
    """Issues 24 (item 12) and 25: with two faces the left one was animated silently, with no way to choose."""
    import json

    import numpy as np

    _, ws = tiny_models
    args = ["--audio", str(arctic_wav), "--emotion", "happy", "--target", str(two_faces)]
    assert main(["-q", "-w", str(ws.root), "render", *args, "--out", str(tmp_path / "a.mp4"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["target"]["faces_seen"] == 2 and any("2 faces" in w for w in r["warnings"])
    for choice in ("right", "1", "265,60"):
        lm = tmp_path / f"{choice}.npz"
        assert main(["-q", "-w", str(ws.root), "render", *args, "--out", str(tmp_path / "b.mp4"), "--face", choice,
                     "--landmarks-out", str(lm), "--json"]) == 0
        r = json.loads(capsys.readouterr().out)
        assert r["target"]["face"] == choice
        nose_x = np.load(lm)["tracked"][:, 30, 0]
        assert (nose_x > 176).all(), choice  # the right person in every frame
    assert main(["-q", "-w", str(ws.root), "render", *args, "--out", str(tmp_path / "c.mp4"), "--face", "tallest"]) == 2
