"""Output paths are checked before any work: never an input, never a folder, always writable (issue 13, items 2, 4)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from evpcli.cli import main
from evpcli.errors import EvpError
from evpcli.paths import check_output, check_output_dir
from evpcli.workspace import Workspace


def _evp(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "evpcli", "-q", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_check_output_refuses_inputs_folders_and_unwritable_places(tmp_path):
    src = tmp_path / "in.wav"
    src.write_bytes(b"x")
    with pytest.raises(EvpError, match="same file as --audio"):
        check_output(src, [src], "--out", ["--audio"])
    with pytest.raises(EvpError, match="same file"):
        check_output(tmp_path / "sub" / ".." / "in.wav", [src])  # another spelling of the same path
    link = tmp_path / "link.mp4"
    link.symlink_to(src)
    with pytest.raises(EvpError, match="same file"):
        check_output(link, [src])
    hard = tmp_path / "hard.mp4"
    os.link(src, hard)
    with pytest.raises(EvpError, match="same file"):
        check_output(hard, [src])
    with pytest.raises(EvpError, match="is a folder"):
        check_output(tmp_path, [src])
    with pytest.raises(EvpError, match="is a file, not a folder"):
        check_output(src / "x.mp4", [])
    with pytest.raises(EvpError, match="cannot (write|make)"):
        check_output("/proc/x.mp4", [])
    with pytest.raises(EvpError, match="is a file"):
        check_output_dir(src)
    # fine: a new file in a folder that does not exist yet (made), and an existing unrelated file
    assert check_output(tmp_path / "new" / "deeper" / "o.mp4", [src]) == tmp_path / "new" / "deeper" / "o.mp4"
    assert (tmp_path / "new" / "deeper").is_dir() and not list((tmp_path / "new" / "deeper").iterdir())
    other = tmp_path / "old.mp4"
    other.write_bytes(b"y")
    check_output(other, [src, None])


def test_preview_landmarks_refuses_its_own_audio_as_output(tmp_path, arctic_wav, capsys):
    speech = tmp_path / "s.wav"
    shutil.copy(arctic_wav, speech)
    before = speech.read_bytes()
    code = main(["-q", "--workspace", str(tmp_path / "ws"), "preview-landmarks", "--audio", str(speech),
                 "--emotion", "happy", "--out", str(speech)])
    err = capsys.readouterr().err
    assert code == 1 and speech.read_bytes() == before
    assert "same file as --audio" in err and len(err.strip().splitlines()) == 1


def test_fit_pose_preview_onto_the_target_is_refused_before_fitting(tmp_path, carphone_mp4):
    target = tmp_path / "t.mp4"
    shutil.copy(carphone_mp4, target)
    before = target.read_bytes()
    ws = tmp_path / "ws"
    proc = _evp("--workspace", str(ws), "fit-pose", "--target", str(target), "--preview", str(target))
    assert proc.returncode == 1 and target.read_bytes() == before
    assert "same file as --target" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not Workspace(ws).artifacts("fits")  # refused before the (cached) fit was made


@pytest.mark.parametrize("bad", ["/proc/x.mp4", "{dir}", "{file}/x.mp4"])
def test_bad_preview_paths_fail_fast_with_one_line(tmp_path, carphone_mp4, bad):
    (tmp_path / "afile").write_bytes(b"x")
    bad = bad.format(dir=tmp_path, file=tmp_path / "afile")
    ws = tmp_path / "ws"
    proc = _evp("--workspace", str(ws), "fit-pose", "--target", str(carphone_mp4), "--preview", bad)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" not in lines[0] and "--preview" in lines[0], lines
    assert not Workspace(ws).artifacts("fits")


def test_synth_corpus_checks_its_folder_and_preview_first(tmp_path):
    (tmp_path / "afile").write_bytes(b"x")
    assert main(["-q", "synth-corpus", str(tmp_path / "afile")]) == 1
    code = main(["-q", "synth-corpus", str(tmp_path / "corpus"), "--actors", "1", "--sentences", "1", "--emotions",
                 "neutral", "--preview", str(tmp_path)])
    assert code == 1 and not list((tmp_path / "corpus").glob("*/video"))  # no clip made
