"""Helpers of the fault-injection tests: run an evp command in its own process, kill it with SIGKILL at a given
moment, and check what a killed run may leave in a workspace.

After any kill, a workspace must hold: an index that passes ``PRAGMA integrity_check``; an artifact row only for a
file that exists and loads; under a real (not hidden) name only complete files (arrays load, checkpoints load with
``weights_only=True``, videos decode to the end). Hidden temp files (``.name.*``) may be left by the killed writer;
the next run of the same work removes them.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def env(marker: str) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]), "OMP_NUM_THREADS": "1",
            "EVP_TEST_MARKER": marker}


def marked_processes(marker: str) -> list[int]:
    """Live processes that carry EVP_TEST_MARKER=marker in their environment (a run, its workers, their ffmpeg)."""
    needle = f"EVP_TEST_MARKER={marker}".encode()
    found = []
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


@dataclass
class Run:
    code: int | None  # exit code; -9 when killed
    killed: bool
    seconds: float
    stderr: str


def run(cmd: list[str], kill_after: float | None = None, timeout: float = 600, log: Path | None = None) -> Run:
    """Run ``cmd`` (argv after the python executable) in a new process; with ``kill_after``, SIGKILL it after that
    many seconds unless it ended before. Waits until no process of the run (workers included) is left."""
    marker = uuid.uuid4().hex
    log = log or Path(os.environ.get("TMPDIR", "/tmp")) / f"evp-fault-{marker}.err"
    t0 = time.monotonic()
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, *cmd], env=env(marker), stdout=subprocess.DEVNULL, stderr=err,
                                cwd=ROOT)
        killed = False
        try:
            proc.wait(timeout=kill_after if kill_after is not None else timeout)
        except subprocess.TimeoutExpired:
            if kill_after is None:
                raise
            proc.send_signal(signal.SIGKILL)
            killed = True
            proc.wait(timeout=30)
    seconds = time.monotonic() - t0
    end = time.monotonic() + 10
    while marked_processes(marker) and time.monotonic() < end:
        time.sleep(0.05)
    left = marked_processes(marker)
    for pid in left:  # only this run's processes: found by its own marker
        os.kill(pid, signal.SIGKILL)
    text = log.read_text()
    log.unlink(missing_ok=True)
    assert not left, f"processes of a killed run kept running: {left}"
    return Run(proc.returncode, killed, seconds, text)


def evp(*args: str) -> list[str]:
    return ["-m", "evpcli", "-q", *args]


def check_file(path: Path) -> None:
    """Raise if ``path`` is not a complete file of its kind."""
    suffix = path.suffix
    if suffix == ".npz":
        from evpcli.workspace import load_npz

        load_npz(path)
    elif suffix == ".pt":
        import torch

        torch.load(path, map_location="cpu", weights_only=True)
    elif suffix == ".json":
        json.loads(path.read_text())
    elif suffix == ".png":
        import cv2

        assert cv2.imread(str(path)) is not None, f"{path}: not a complete PNG"
    elif suffix == ".mp4":
        from evpcli.media import read_video

        read_video(path)  # raises for a truncated file
    elif suffix == ".csv":
        import csv

        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        assert rows and all(len(r) == len(rows[0]) for r in rows), f"{path}: ragged CSV"


def check_workspace(root: Path) -> dict:
    """The invariants every killed run must keep (module docstring). Returns counts of what was checked."""
    root = Path(root)
    counts = {"rows": 0, "files": 0, "temp_files": 0, "clips": 0}
    if not (root / "index.sqlite").exists():
        return counts
    conn = sqlite3.connect(root / "index.sqlite", timeout=60)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "artifacts" not in tables:  # killed between creating the index file and its schema: nothing was indexed
            assert "clips" not in tables or not conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0]
            conn.close()
            from evpcli.workspace import Workspace

            assert Workspace(root).artifacts("landmarks") == []  # the next run opens it and writes the schema
            return counts
        rows = conn.execute("SELECT kind, key, path FROM artifacts").fetchall()
        counts["clips"] = conn.execute("SELECT COUNT(*) FROM clips WHERE status = 'ok'").fetchone()[0]
        bad_clips = conn.execute("SELECT clip_id FROM clips WHERE status = 'ok' AND clip_id NOT IN "
                                 "(SELECT clip_id FROM artifacts WHERE kind = 'landmarks')").fetchall()
    finally:
        conn.close()
    assert not bad_clips, f"clips indexed ready without landmarks: {bad_clips}"
    for kind, key, rel in rows:
        path = root / rel
        assert path.exists(), f"artifact {kind}/{key} is indexed but {path} is missing"
        check_file(path)
        counts["rows"] += 1
    for path in root.rglob("*"):
        if not path.is_file() or path.name.startswith(".") or path.parent.name == "claims":
            continue
        if path.suffix in (".npz", ".pt", ".json", ".png", ".mp4", ".csv"):
            check_file(path)
            counts["files"] += 1
    counts["temp_files"] = sum(1 for p in root.rglob(".*") if p.is_file())
    return counts


def temp_files(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob(".*") if p.is_file()]
