import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evpcli.errors import EvpError
from evpcli.workspace import ClipRecord, Workspace, cache_key, load_npz, save_npz

ROOT = Path(__file__).resolve().parents[1]


def test_cache_key_depends_on_inputs_and_params():
    a = cache_key("hash1", params={"n_mels": 26, "hop": 160})
    assert a == cache_key("hash1", params={"hop": 160, "n_mels": 26})  # key order does not matter
    assert a != cache_key("hash2", params={"n_mels": 26, "hop": 160})
    assert a != cache_key("hash1", params={"n_mels": 40, "hop": 160})


def test_save_and_load_roundtrip(tmp_path):
    ws = Workspace(tmp_path / "ws")
    p = save_npz(ws.path("mfcc", "x.npz"), mfcc=np.arange(12, dtype=np.float32).reshape(1, 12), n=np.int64(3))
    ws.put_artifact("mfcc", "k1", p, clip_id="A/happy/level_1/001", params={"a": 1}, meta={"frames": 3})
    d = load_npz(p)
    assert d["mfcc"].shape == (1, 12) and int(d["n"]) == 3
    arts = ws.artifacts("mfcc")
    assert len(arts) == 1 and arts[0]["path"] == p and arts[0]["meta"] == {"frames": 3}
    assert ws.get_artifact("mfcc", "k1")["clip_id"] == "A/happy/level_1/001"


def test_artifacts_get_the_usual_file_mode(tmp_path):
    mask = os.umask(0o022)
    try:
        p = save_npz(tmp_path / "a.npz", x=np.zeros(3))
    finally:
        os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o644


def test_corrupt_artifact_gives_clear_error(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(EvpError, match="bad.npz: artifact is corrupt"):
        load_npz(p)


WRITER = r"""
import sys, time, numpy as np
from evpcli.workspace import atomic_path
target = sys.argv[1]
with atomic_path(target) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"x" * 1000)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
        f.write(b"y" * 1000)
"""


@pytest.mark.parametrize("existing", [False, True])
def test_killed_writer_leaves_no_corrupt_artifact(tmp_path, existing):
    target = tmp_path / "art" / "big.npz"
    if existing:
        save_npz(target, a=np.ones(5))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if existing:
        np.testing.assert_array_equal(load_npz(target)["a"], np.ones(5))  # the old version is intact
    else:
        assert not target.exists()
    visible = [p for p in target.parent.iterdir() if not p.name.startswith(".")]
    assert visible == ([target] if existing else [])


INDEX_WRITER = r"""
import sys
import time
from evpcli.workspace import ClipRecord, Workspace
ws = Workspace(sys.argv[1]); who = sys.argv[2]
for i in range(150):
    ws.put_clip(ClipRecord(clip_id=f"{who}/happy/level_1/{i:03d}", actor=who, emotion="happy", level=1,
                           sentence=str(i), video="v.mp4", status="ok"))
    ws.put_artifact("mfcc", f"{who}-{i}", sys.argv[1] + "/index.sqlite", clip_id=f"{who}/happy/level_1/{i:03d}")
"""


def test_two_processes_write_the_index_at_once(tmp_path):
    ws_dir = tmp_path / "ws"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", INDEX_WRITER, str(ws_dir), who], env=env,
                              stderr=subprocess.PIPE, text=True) for who in ("A", "B")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    ws = Workspace(ws_dir)
    clips = ws.clips()
    assert len(clips) == 300 and {c.actor for c in clips} == {"A", "B"}
    assert len(ws.artifacts("mfcc")) == 300
    import sqlite3

    assert sqlite3.connect(ws.index_path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_status_summary(tmp_path):
    ws = Workspace(tmp_path / "ws")
    assert ws.status()["clips"]["total"] == 0 and not ws.status()["exists"]
    ws.put_clips([
        ClipRecord("M1/happy/level_1/001", "M1", "happy", 1, "s1", "a.mp4", status="ok"),
        ClipRecord("M1/sad/level_1/001", "M1", "sad", 1, "s1", "b.mp4", status="ok"),
        ClipRecord("M1/sad/level_1/002", "M1", "sad", 1, "s2", "c.mp4", status="failed", message="no face"),
    ])
    s = ws.status()
    assert s["clips"]["ok"] == 2 and s["clips"]["failed"] == 1
    assert s["clips"]["by_actor"] == {"M1": {"happy": 1, "sad": 1}}
    json.dumps(s)
    assert [c.clip_id for c in ws.clips(emotion="sad")] == ["M1/sad/level_1/001"]
    assert ws.get_clip("M1/sad/level_1/002").message == "no face"


def test_clip_feature_is_the_newest(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(EvpError, match="no mfcc for clip X/happy/level_1/001"):
        ws.load_clip_feature("mfcc", "X/happy/level_1/001")
    for i, key in enumerate(["old", "new"]):
        p = save_npz(ws.path("mfcc", f"{key}.npz"), mfcc=np.full((2, 12), i, np.float32))
        ws.put_artifact("mfcc", key, p, clip_id="X/happy/level_1/001")
        time.sleep(0.01)
    assert ws.load_clip_feature("mfcc", "X/happy/level_1/001")["mfcc"][0, 0] == 1
