"""Worker processes die with their parent (kill -9 included); SIGTERM stops a run like Ctrl-C (issue 13, item 3)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from evpcli.media import save_wav, write_video
from evpcli.workspace import Workspace, load_npz
from tests.conftest import sine
from tests.faults import marked_processes
from tests.test_landmarks import moving_portrait

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the workers")


def make_manifest(root: Path, n_clips: int, n_frames: int = 40) -> Path:
    """``n_clips`` manifest rows over one real-looking clip (a moving portrait with a tone): each row is its own
    clip id, so each is prepared on its own."""
    frames, _ = moving_portrait(n_frames)
    write_video(root / "v.mp4", frames, fps=25.0)
    save_wav(root / "a.wav", sine(n_frames / 25))
    rows = ["video,audio,actor,emotion,level,sentence,clip"]
    rows += [f"v.mp4,a.wav,A,{'happy' if k % 2 else 'neutral'},1,s{k // 2},{k:03d}" for k in range(n_clips)]
    path = root / "clips.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def start_prepare(ws: Path, manifest: Path, marker: str, jobs: int = 2) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "EVP_TEST_MARKER": marker, "OMP_NUM_THREADS": "1"}
    # stderr to a file, not a pipe: orphaned workers would hold a pipe open and block the reader
    log = open(ws.parent / f"prepare-{marker}.err", "w")
    return subprocess.Popen([sys.executable, "-m", "evpcli", "-q", "--workspace", str(ws), "prepare-dataset",
                             str(manifest), "--layout", "manifest", "--jobs", str(jobs)],
                            env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)


def wait_for(predicate, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def wait_for_workers(proc: subprocess.Popen, marker: str, ws: Path) -> None:
    """Until both workers run and at least one clip is indexed (the run is in the middle of its work)."""
    def busy() -> bool:
        assert proc.poll() is None, "the run ended before it could be killed"
        if len(marked_processes(marker)) < 3:
            return False
        return bool(Workspace(ws).clips())
    assert wait_for(busy, 120), "the workers never started"


def assert_consistent(ws_path: Path) -> int:
    ws = Workspace(ws_path)
    assert ws._db().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ready = ws.clips()
    for c in ready:
        for kind in ("mfcc", "landmarks"):
            ws.load_clip_feature(kind, c.clip_id)
    for kind in ("mfcc", "landmarks"):
        for row in ws.artifacts(kind):
            load_npz(row["path"])
    ws.close()
    return len(ready)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_killing_prepare_leaves_no_worker_behind(tmp_path, how):
    manifest = make_manifest(tmp_path, 16)
    marker = uuid.uuid4().hex
    ws = tmp_path / "ws"
    proc = start_prepare(ws, manifest, marker)
    try:
        wait_for_workers(proc, marker, ws)
        proc.send_signal(getattr(signal, how))
        code = proc.wait(timeout=30)
        err = (tmp_path / f"prepare-{marker}.err").read_text()
        # kill -9: the kernel's parent-death signal (or the watchdog, within a second) ends the workers
        assert wait_for(lambda: not marked_processes(marker), 10), f"left running: {marked_processes(marker)}"
    finally:
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
    if how == "SIGTERM":  # handled like Ctrl-C: exit 130, one line, the report says interrupted
        assert code == 130, err
        assert "interrupted" in err and "Traceback" not in err, err
    else:
        assert code == -9
    done = assert_consistent(ws)
    assert 0 < done < 16
    if how == "SIGTERM":  # a re-run resumes and finishes the rest
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        again = subprocess.run([sys.executable, "-m", "evpcli", "-q", "--workspace", str(ws), "prepare-dataset",
                                str(manifest), "--layout", "manifest", "--jobs", "2", "--json"],
                               env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert assert_consistent(ws) == 16


def test_a_worker_kills_itself_when_its_parent_is_gone(tmp_path):
    """The portable watchdog alone (no Linux parent-death signal): a grandchild whose parent exits dies."""
    script = tmp_path / "orphan.py"
    script.write_text(
        "import os, sys, time\n"
        "from evpcli import workers\n"
        "workers._parent_death_signal = lambda: False\n"
        "parent = os.getpid()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    workers.init_worker(parent, interval=0.2)\n"
        "    print(os.getpid(), flush=True)\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(1.0)\n"
        "os._exit(0)\n")
    marker = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "EVP_TEST_MARKER": marker}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    child = int(out.stdout.split()[0])
    try:
        assert wait_for(lambda: not marked_processes(marker), 5), "the orphaned worker kept running"
    finally:
        if marked_processes(marker):
            os.kill(child, signal.SIGKILL)


# ------------------------------------------------------------------ concurrent runs on one workspace
def _prepare_json(ws: Path, manifest: Path, jobs: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "evpcli", "-q", "--workspace", str(ws), "prepare-dataset",
                             str(manifest), "--layout", "manifest", "--jobs", str(jobs), "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_runs_share_the_clips_instead_of_both_doing_all(tmp_path):
    import json

    n = 12
    manifest = make_manifest(tmp_path, n, n_frames=30)
    ws = tmp_path / "ws"
    a = _prepare_json(ws, manifest, 1)
    time.sleep(0.5)
    b = _prepare_json(ws, manifest, 2)
    (out_a, err_a), (out_b, err_b) = a.communicate(timeout=600), b.communicate(timeout=600)
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    ra, rb = json.loads(out_a), json.loads(out_b)
    assert ra["ok"] == n and rb["ok"] == n and not ra["failed"] and not rb["failed"]
    assert ra["prepared"] + rb["prepared"] == n, (ra["prepared"], rb["prepared"])  # no clip computed twice
    assert rb["prepared"] > 0  # the second run did part of the work, rather than wait for all of it
    assert assert_consistent(ws) == n
    assert not list((ws / "claims").glob("*.lock"))


def test_a_dead_runs_claim_and_half_files_are_taken_over(tmp_path):
    from evpcli.prepare import prepare_dataset

    manifest = make_manifest(tmp_path, 2, n_frames=30)
    ws = Workspace(tmp_path / "ws")
    claim_file = ws.root / "claims" / "A-neutral-level_1-000.lock"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom evpcli.workspace import claim\n"
                               f"with claim({str(claim_file)!r}) as held:\n"
                               "    print(held, flush=True)\n    time.sleep(120)\n"],
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        (ws.root / "mfcc").mkdir(parents=True, exist_ok=True)
        from evpcli.config import AudioConfig, LandmarkConfig
        from evpcli.prepare import _params
        from evpcli.workspace import cache_key, hash_file

        mkey = cache_key(hash_file(tmp_path / "v.mp4"), hash_file(tmp_path / "a.wav"),
                         params={"clip": "A/neutral/level_1/000", **_params(LandmarkConfig(), AudioConfig())[0]})
        half = ws.root / "mfcc" / f".A-neutral-level_1-000-{mkey}.npz.x1y2.tmp.npz"
        half.write_bytes(b"half")  # what a writer killed mid-write leaves
        holder.kill()  # kill -9: the claim file stays, its lock goes with the process
        holder.wait(timeout=10)
        assert claim_file.exists()
        report = prepare_dataset(ws, manifest, "manifest")
    finally:
        if holder.poll() is None:
            holder.kill()
    assert report.prepared == 2 and not report.failed
    assert not list((ws.root / "mfcc").glob(".*"))  # no temp file left behind
