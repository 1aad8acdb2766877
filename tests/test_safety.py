"""Data safety (issue 24): no output lands on an input, a model or the workspace; no user file is overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evpcli.cli import main


def _run(ws, *args) -> int:
    return main(["--workspace", str(ws.root), "-q", *map(str, args)])


@pytest.fixture(scope="module")
def speech(tmp_path_factory, arctic_wav) -> Path:
    import soundfile as sf

    from evpcli import media

    path = tmp_path_factory.mktemp("safety") / "speech.wav"
    sf.write(path, media.load_audio(arctic_wav)[4800:4800 + 12000], 16000)
    return path


def test_no_output_may_land_on_the_model_or_in_the_workspace(tiny_models, speech, carphone_mp4, tmp_path, capsys):
    _, ws = tiny_models
    model = tmp_path / "my.pt"
    model.write_bytes(b"model bytes the user cares about")
    for option, value in (("--out", model), ("--landmarks-out", model)):
        args = ["render", "--audio", speech, "--emotion", "happy", "--target", carphone_mp4, "--model", model]
        args += ["--out", tmp_path / "o.mp4"] if option != "--out" else []
        assert _run(ws, *args, option, value) == 1
        assert model.read_bytes() == b"model bytes the user cares about"
        assert "same file" in capsys.readouterr().err
    index = ws.root / "index.sqlite"
    before = index.read_bytes() if index.exists() else None
    assert _run(ws, "render", "--audio", speech, "--emotion", "happy", "--target", carphone_mp4, "--out", index) == 1
    err = capsys.readouterr().err
    assert "inside the workspace" in err and len(err.strip().splitlines()) == 1
    assert (index.read_bytes() if index.exists() else None) == before
    assert _run(ws, "interpolate", "--from", "sad", "--to", "happy", "--audio", speech, "--target", carphone_mp4,
                "--out", ws.root / "models" / "x.mp4") == 1


def test_demo_never_overwrites_a_users_folder(tmp_path, capsys):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "index.html").write_text("my page")
    assert main(["-q", "demo", str(folder)]) == 1
    assert (folder / "index.html").read_text() == "my page"
    assert "did not write" in capsys.readouterr().err


def test_batch_outputs_stay_in_the_csv_folder_and_user_files_are_left_alone(tiny_models, speech, carphone_mp4,
                                                                           tmp_path, capsys):
    _, ws = tiny_models
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "speech.wav").write_bytes(Path(speech).read_bytes())
    (jobs / "t.mp4").write_bytes(Path(carphone_mp4).read_bytes())
    (jobs / "empty.mp4").write_bytes(b"")
    outside = tmp_path / "victim.txt"
    outside.write_text("precious")
    csv = jobs / "jobs.csv"
    csv.write_text("audio,emotion,target,out\n"
                   "speech.wav,happy,t.mp4,../elsewhere.mp4\n"
                   f"speech.wav,happy,t.mp4,{outside}\n"
                   "speech.wav,happy,t.mp4,empty.mp4\n"
                   "speech.wav,happy,t.mp4,ok.mp4\n")
    assert _run(ws, "batch-render", csv, "--json") == 1
    r = json.loads(capsys.readouterr().out)
    reasons = {f["line"]: f["reason"] for f in r["failed"]}
    assert "outside" in reasons[2] and "outside" in reasons[3]
    assert "not a finished render" in reasons[4]
    assert outside.read_text() == "precious" and (jobs / "empty.mp4").read_bytes() == b""
    assert r["rendered"] == 1 and (jobs / "ok.mp4").exists()
    # a second run: the finished render is done, the others still fail, nothing is overwritten
    assert _run(ws, "batch-render", csv, "--json") == 1
    r = json.loads(capsys.readouterr().out)
    assert r["skipped"] == 1 and r["rendered"] == 0
    # with --allow-outside the ../ row may write (into a new file); the user's file is still left alone
    assert _run(ws, "batch-render", csv, "--allow-outside", "--json") == 1
    r = json.loads(capsys.readouterr().out)
    assert (tmp_path / "elsewhere.mp4").exists() and r["rendered"] == 1
    assert outside.read_text() == "precious"


def _crafted_checkpoint(path: Path, size, stride, offset=0, numel=10) -> Path:
    """A torch-format zip whose one tensor has the given size/stride/offset over a storage of ``numel`` floats (40
    bytes): what a crafted file can claim."""
    import io
    import pickle
    import zipfile
    from collections import OrderedDict

    import numpy as np
    import torch

    class Tensor:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (STORAGE, offset, size, stride, False, OrderedDict())

    class Storage:
        pass

    STORAGE = Storage()

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", numel) if obj is STORAGE else None

    buf = io.BytesIO()
    P(buf, protocol=2).dump({"w": Tensor()})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/data/0", np.arange(10, dtype=np.float32).tobytes())
    return path


@pytest.mark.parametrize("size,stride,offset,numel", [((4,), (1_000_000_000,), 0, 10), ((200_000,), (1,), 0, 10),
                                                      ((2, 2), (2, 1), 9, 10), ((3,), (1,), 0, 1000)])
def test_a_crafted_checkpoint_is_refused_before_any_memory_is_read(tmp_path, size, stride, offset, numel):
    from evpcli import npinfer

    path = _crafted_checkpoint(tmp_path / "evil.pt", size, stride, offset, numel)
    with pytest.raises(npinfer.BadCheckpoint):
        npinfer.read_checkpoint(path)


def test_a_valid_strided_tensor_still_reads(tmp_path):
    import numpy as np

    from evpcli import npinfer

    path = _crafted_checkpoint(tmp_path / "ok.pt", (2, 3), (1, 2), 1, 10)  # a transposed view inside the storage
    w = npinfer.read_checkpoint(path)["w"]
    assert np.array_equal(w, np.arange(10, dtype=np.float32)[1:][np.array([[0, 2, 4], [1, 3, 5]])])


def test_a_crafted_model_in_render_is_one_line(tiny_models, speech, carphone_mp4, tmp_path, capsys):
    _, ws = tiny_models
    evil = _crafted_checkpoint(tmp_path / "evil.pt", (4,), (1_000_000_000,))
    assert _run(ws, "render", "--audio", speech, "--emotion", "happy", "--target", carphone_mp4, "--model", evil,
                "--out", tmp_path / "o.mp4") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "evil.pt" in err[0] and not (tmp_path / "o.mp4").exists()


def test_paths_with_rich_markup_are_printed_as_they_are(tiny_models, speech, carphone_mp4, tmp_path, capsys):
    _, ws = tiny_models
    out = tmp_path / "a[/]b" / "x[red].mp4"
    assert main(["--workspace", str(ws.root), "render", "--audio", str(speech), "--emotion", "happy", "--target",
                 str(carphone_mp4), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert out.exists() and "x[red].mp4" in err.replace("\n", "")


def test_a_poisoned_checkpoint_never_quotes_torchs_unsafe_advice(tmp_path):
    import pickle

    from evpcli.errors import EvpError
    from evpcli.workspace import load_checkpoint

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "audio2lm-checkpoint.pt"
    import torch

    torch.save({"x": Evil()}, path, pickle_module=pickle)
    with pytest.raises(EvpError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert "weights_only" not in msg and "\n" not in msg and "start over" in msg


def test_a_silent_emotion_clip_is_an_error(tiny_models, speech, carphone_mp4, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    _, ws = tiny_models
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    assert _run(ws, "render", "--audio", speech, "--emotion-audio", silent, "--target", carphone_mp4, "--out",
                tmp_path / "o.mp4") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "silent" in err[0] and not (tmp_path / "o.mp4").exists()


def test_a_killed_renders_spill_is_removed_by_the_next_run_but_a_live_ones_is_not(tmp_path):
    import subprocess
    import sys

    from evpcli.render.targets import SPILL_PREFIX, _hold, remove_stale_spills

    dead = tmp_path / (SPILL_PREFIX + "dead")
    dead.mkdir()
    (dead / "frames.raw").write_bytes(b"x" * 1000)
    # a process takes the folder and is killed -9: its lock goes with it
    code = ("import sys, time; from pathlib import Path; from evpcli.render.targets import _hold; "
            "f = _hold(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(dead)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    live = tmp_path / (SPILL_PREFIX + "live")
    live.mkdir()
    holder = _hold(live)
    assert remove_stale_spills(tmp_path) == []  # both held
    proc.kill()
    proc.wait()
    assert remove_stale_spills(tmp_path) == [dead] and not dead.exists() and live.exists()
    holder.close()


def test_a_full_disk_is_one_line_before_the_spill(tiny_models, arctic_wav, carphone_mp4, tmp_path, monkeypatch,
                                                 capsys):
    """Speech longer than the target spills its frames beside --out: with no room, one line and nothing left."""
    import shutil as sh
    from collections import namedtuple

    import numpy as np
    import soundfile as sf

    from evpcli import media

    from evpcli.render.targets import prepare_target

    _, ws = tiny_models
    prepare_target(ws, carphone_mp4)  # fitted and cached: the render decodes the video as it goes
    long_speech = tmp_path / "long.wav"
    wav = media.load_audio(arctic_wav)
    sf.write(long_speech, np.concatenate([wav, wav]), 16000)  # 8 s onto the 4 s carphone: ping-pong
    usage = namedtuple("usage", "total used free")
    real = sh.disk_usage
    monkeypatch.setattr(sh, "disk_usage", lambda p: usage(10 << 20, 10 << 20, 1 << 20) if ".evp-render" in str(p)
                        else real(p))
    out = tmp_path / "o.mp4"
    assert _run(ws, "render", "--audio", long_speech, "--emotion", "happy", "--target", carphone_mp4, "--out", out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".evp-render-*"))


def test_an_unusable_workspace_is_one_line_before_any_work(tmp_path, carphone_mp4, arctic_wav, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a workspace")
    garbage = tmp_path / "ws"
    garbage.mkdir()
    (garbage / "index.sqlite").write_bytes(b"garbage, not SQLite " * 10)
    for ws, words in ((a_file, "is a file"), (garbage, "not an evp workspace index")):
        for args in (["status"], ["render", "--audio", str(arctic_wav), "--emotion", "happy", "--target",
                                  str(carphone_mp4), "--out", str(tmp_path / "o.mp4")]):
            capsys.readouterr()
            assert main(["-q", "-w", str(ws), *args]) == 1
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and words in err[0], err
    assert a_file.read_text() == "not a workspace"


def test_a_full_disk_while_writing_is_one_line(tmp_path, monkeypatch):
    """libsndfile's 'System error' and torch's 'unexpected pos' on a full disk become one line that says so."""
    import shutil as sh
    from collections import namedtuple

    import numpy as np

    from evpcli import media
    from evpcli.errors import EvpError
    from evpcli.workspace import save_checkpoint

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(sh, "disk_usage", lambda p: usage(1 << 30, 1 << 30, 0))

    def no_space(*a, **k):
        raise RuntimeError("Error opening 'x.wav': System error.")

    monkeypatch.setattr(media, "save_wav", no_space)
    with pytest.raises(EvpError) as err:
        media.write_video(tmp_path / "o.mp4", iter([np.zeros((16, 16, 3), np.uint8)] * 3), audio=np.zeros(800))
    assert "disk is full" in str(err.value) and not (tmp_path / "o.mp4").exists()
    import torch

    def enforce(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 1 vs 0")

    monkeypatch.setattr(torch, "save", enforce)
    with pytest.raises(EvpError) as err:
        save_checkpoint(tmp_path / "run-checkpoint.pt", {"x": 1})
    assert "disk is full" in str(err.value) and "--resume" in str(err.value)
