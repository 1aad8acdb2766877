"""Fault injection (issue 13): kill -9 at random moments of prepare-dataset, training and render, then re-run.

After every kill: the index passes ``PRAGMA integrity_check``, every indexed artifact exists and loads, every file
under a real name is complete, and the model that was the newest finished one before the run still is (same file,
same bytes) and loads. The re-run then finishes the work. The kill moments are random (``EVP_FAULT_SEED`` repeats
a sequence; the seed is in every failure message). ``test_kill_points_short`` (one kill per command) runs by
default; ``test_kill_points_many`` (15 kills: 5 per command) is marked slow.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.faults import check_file, check_workspace, evp, run, temp_files

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the processes")

SEED = int(os.environ.get("EVP_FAULT_SEED", time.time_ns() % 2**32))
FIRST_EPOCHS = 3  # the finished model every training kill must leave in place
RETRAIN_EPOCHS = 6  # the run that is killed: the same stage retrained with other epochs


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def newest_audio2lm(ws_root: Path) -> Path:
    """Path of the model every command would use (the newest finished audio2lm model), after loading it."""
    from evpcli.models import load_audio2lm
    from evpcli.workspace import Workspace

    ws = Workspace(ws_root)
    try:
        return Path(load_audio2lm(ws).source.path)
    finally:
        ws.close()


@pytest.fixture(scope="module")
def base(tiny_pipeline, tmp_path_factory, arctic_wav, carphone_mp4):
    """The tiny pipeline's workspace with a finished tiny audio-to-landmark model, 1.6 s of real speech and the real
    carphone video as render inputs, and how long whole prepare, retraining and render runs take."""
    from evpcli.media import load_audio, save_wav

    root = tmp_path_factory.mktemp("faults")
    shutil.copytree(tiny_pipeline["ws"], root / "ws")
    r = run(evp("--workspace", str(root / "fresh"), "prepare-dataset", str(tiny_pipeline["corpus"]), "--jobs", "2"))
    assert r.code == 0, r.stderr
    prepare_seconds = r.seconds
    shutil.rmtree(root / "fresh")
    r = run(["-m", "tests.fault_train", str(root / "ws"), str(FIRST_EPOCHS)])
    assert r.code == 0, r.stderr
    first = newest_audio2lm(root / "ws")
    train_seconds = r.seconds * 1.5  # the killed runs train twice the epochs; start-up counts once
    speech = root / "speech.wav"
    save_wav(speech, load_audio(arctic_wav)[int(0.3 * 16000):int(1.9 * 16000)])
    probe = root / "probe"
    shutil.copytree(root / "ws", probe)
    r = run(render_cmd({"speech": speech, "target": carphone_mp4}, probe, root / "probe-out"))
    assert r.code == 0, r.stderr
    shutil.rmtree(probe)
    return {"root": root, "corpus": tiny_pipeline["corpus"], "ws": root / "ws", "model": first,
            "model_sha": _sha(first), "prepare_seconds": prepare_seconds, "train_seconds": train_seconds,
            "render_seconds": r.seconds, "speech": speech, "target": carphone_mp4}


def kill_prepare(base, tmp: Path, when: float) -> tuple[bool, str, float]:
    ws = tmp / "ws"
    cmd = evp("--workspace", str(ws), "prepare-dataset", str(base["corpus"]), "--jobs", "2")
    killed = run(cmd, kill_after=when)
    at_kill = check_workspace(ws)
    note = f"{at_kill['clips']} clips ready, {at_kill['temp_files']} temp files"
    again = run(cmd)
    assert again.code == 0, again.stderr
    counts = check_workspace(ws)
    from evpcli.workspace import Workspace

    w = Workspace(ws)
    assert len(w.clips()) == 6 and counts["rows"] >= 12
    assert not [p for p in temp_files(ws) if p.parent.name in ("mfcc", "landmarks")]
    w.close()
    return killed.killed, note, killed.seconds


def kill_train(base, tmp: Path, when: float) -> tuple[bool, str, float]:
    ws = tmp / "ws"
    shutil.copytree(base["ws"], ws)
    model = ws / base["model"].relative_to(base["ws"])
    killed = run(["-m", "tests.fault_train", str(ws), str(RETRAIN_EPOCHS)], kill_after=when)
    at_kill = check_workspace(ws)
    assert _sha(model) == base["model_sha"]  # the finished model is untouched, and loads
    in_use = newest_audio2lm(ws)
    # the model in use is still that one, unless the run was killed after it had published its own
    assert in_use == model or in_use.name == model.name.replace(f"-e{FIRST_EPOCHS}.pt", f"-e{RETRAIN_EPOCHS}.pt")
    from evpcli.workspace import Workspace

    runs = Workspace(ws).unfinished_runs()
    note = ("new model published" if in_use != model else
            f"staging after epoch {runs[0]['epochs_done']}" if runs else "no staging yet") + \
        f", {at_kill['temp_files']} temp files"
    again = run(["-m", "tests.fault_train", str(ws), str(RETRAIN_EPOCHS), "--resume"])
    assert again.code == 0, again.stderr
    check_workspace(ws)
    newest = newest_audio2lm(ws)
    assert newest != model and _sha(model) == base["model_sha"]  # the new one is in use; the old one kept
    return killed.killed, note, killed.seconds


def render_cmd(base, ws: Path, out: Path) -> list[str]:
    return evp("--workspace", str(ws), "render", "--audio", str(base["speech"]), "--emotion", "happy", "--target",
               str(base["target"]), "--out", str(out / "o.mp4"), "--landmarks-out", str(out / "lm.npz"))


def kill_render(base, tmp: Path, when: float) -> tuple[bool, str, float]:
    ws, out = tmp / "ws", tmp / "out"
    shutil.copytree(base["ws"], ws)
    model = ws / base["model"].relative_to(base["ws"])
    killed = run(render_cmd(base, ws, out), kill_after=when)
    check_workspace(ws)
    present = []
    for name in ("o.mp4", "lm.npz"):  # complete or absent
        if (out / name).exists():
            check_file(out / name)
            present.append(name)
    note = f"outputs present: {', '.join(present) or 'none'}, {len(temp_files(out))} temp files beside them"
    assert newest_audio2lm(ws) == model and _sha(model) == base["model_sha"]
    again = run(render_cmd(base, ws, out))
    assert again.code == 0, again.stderr
    check_workspace(ws)
    check_file(out / "o.mp4")
    check_file(out / "lm.npz")
    assert not temp_files(out)  # the killed writer's temp files went with the re-run's writes
    return killed.killed, note, killed.seconds


def _kill_points(base, tmp_path, n_prepare: int, n_train: int, n_render: int) -> dict:
    """Kill each command ``n`` times (drawing more moments when a run ended before its kill, at most 2n draws, then
    within the time that run took: on the shared machine one run of a command can take half as long as another)."""
    rng = random.Random(SEED)
    done = {"prepare": 0, "train": 0, "render": 0, "finished first": 0}
    for stage, n, fn, span in (("prepare", n_prepare, kill_prepare, base["prepare_seconds"]),
                               ("train", n_train, kill_train, base["train_seconds"]),
                               ("render", n_render, kill_render, base["render_seconds"])):
        for k in range(2 * n):
            if done[stage] >= n:
                break
            when = rng.uniform(0.1, 0.9) * span
            try:
                killed, note, seconds = fn(base, tmp_path / f"{stage}-{k}", when)
            except AssertionError as exc:
                raise AssertionError(f"{stage} killed after {when:.2f} s (EVP_FAULT_SEED={SEED}): {exc}") from None
            done[stage if killed else "finished first"] += 1
            if not killed:
                span = min(span, seconds)
            print(f"{stage} {'killed' if killed else 'had finished'} at {when:.2f} s: {note}")
    print(f"kill points (seed {SEED}): {done}; whole runs: prepare {base['prepare_seconds']:.1f} s, "
          f"train {base['train_seconds']:.1f} s, render {base['render_seconds']:.1f} s")
    return done


def test_kill_points_short(base, tmp_path):
    done = _kill_points(base, tmp_path, 1, 1, 1)
    assert done["prepare"] == done["train"] == done["render"] == 1, done


@pytest.mark.slow
def test_kill_points_many(base, tmp_path):
    done = _kill_points(base, tmp_path, 5, 5, 5)
    assert done["prepare"] + done["train"] + done["render"] >= 12, done
