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
from tests.test_landmarks import moving_portrait

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the workers")


def marked_processes(marker: str) -> list[int]:
    """Live (not zombie) processes whose environment holds EVP_TEST_MARKER=marker: the evp process, its workers
    and their ffmpeg children all inherit it."""
    found = []
    needle = f"EVP_TEST_MARKER={marker}".encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if needle not in (d / "environ").read_bytes().split(b"\0"):
                continue
            state = next(ln for ln in (d / "status").read_text().splitlines() if ln.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if "Z" not in state.split()[1]:
            found.append(int(d.name))
    return found


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
