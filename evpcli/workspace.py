"""The workspace: one folder shared by every subcommand, holding cached artifacts and an index.

Layout::

    <root>/index.sqlite            clips and artifacts (SQLite, WAL: several evp processes may share it)
    <root>/<kind>/<name>.<ext>     artifacts, e.g. mfcc/M003-happy-1-001-3fa2c1d0.npz, models/..., fits/...

Every artifact is keyed by :func:`cache_key` of the content hashes of its inputs plus the parameters that made
it, so changing a parameter makes a new artifact and re-running with the same ones reuses the cache. Every write
is atomic (temp file in the same folder + ``os.replace``): an interrupted run leaves no half file. Arrays are
``.npz``; models are torch checkpoints of plain tensors and dicts, loadable with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evpcli.atomic import atomic_path
from evpcli.config import FPS
from evpcli.errors import EvpError

DEFAULT_WORKSPACE = "./evp-workspace"
SCHEMA_VERSION = 1

# Artifact kinds used by the stages (also the sub-folder names).
KIND_MFCC = "mfcc"
KIND_LANDMARKS = "landmarks"
KIND_ACTOR = "actors"  # per-actor reference landmarks + PCA
KIND_PAIRS = "pairs"
KIND_MODEL = "models"
KIND_FIT = "fits"  # 3D pose fits of target videos
KIND_SHAPE3D = "shape3d"
KIND_EMOTION_CODES = "emotion_codes"  # per-clip emotion codes of a disentanglement run (analysis, plots)
KIND_TARGET = "targets"  # per-target analysis for the warp renderer (mouth bank, reliability, reference face)
CLAIMS = "claims"  # <workspace>/claims/<clip>.lock: the clip is being prepared by a live run (not indexed)


def canonical_json(obj: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, (np.integer, np.floating)):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        if hasattr(o, "__dataclass_fields__"):
            return asdict(o)
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default)


def cache_key(*inputs: str, params: Any = None, length: int = 16) -> str:
    """Hex key of input content hashes plus the parameters (any JSON-able value or dataclass)."""
    h = hashlib.sha256()
    for s in inputs:
        h.update(str(s).encode())
        h.update(b"\0")
    h.update(canonical_json(params).encode())
    return h.hexdigest()[:length]


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def save_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    """Atomically write arrays (uncompressed .npz; loads fast and without pickle)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
    return Path(path)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise EvpError(f"{path}: artifact missing; re-run the stage that makes it") from None
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError
        raise EvpError(f"{path}: artifact is corrupt ({type(exc).__name__}); delete it and re-run") from None


def save_json(path: str | os.PathLike, obj: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json.loads(canonical_json(obj)), indent=2) + "\n")
    return Path(path)


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Atomically ``torch.save`` a dict of tensors/plain values (config included as a dict)."""
    import torch

    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except Exception as exc:
        from evpcli.errors import disk_full

        if disk_full(exc, Path(path).parent):
            raise EvpError(f"{path}: the disk is full (no space left to save the checkpoint); free some space and "
                           "resume with --resume (the last finished checkpoint is kept)") from None
        raise
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    import torch

    if not Path(path).exists():
        raise EvpError(f"{path}: checkpoint missing; train it first")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a damaged or poisoned file: never torch's advice to load it unsafely
        kind = "resumable checkpoint" if "checkpoint" in Path(path).name else "model"
        raise EvpError(f"{path}: unreadable {kind} ({type(exc).__name__}); evp reads only plain tensors. Delete it to "
                       "start over (training: run again without --resume), or give another file") from None


@contextlib.contextmanager
def claim(path: str | os.PathLike, wait: bool = False) -> Iterator[bool]:
    """Hold an exclusive claim on a piece of work (a lock file at ``path``) for the ``with`` block; yields whether it
    is held. ``wait``: block until the claim is free instead of yielding False.

    Claims are ``flock`` locks, so the kernel drops the claim of a process that dies (``kill -9`` included) and the
    next run takes a dead run's work over. The file is removed on release (while still locked; a process that
    locked a removed file retries on the new one). Without ``fcntl`` (Windows) every claim is granted at once.
    """
    try:
        import fcntl
    except ImportError:  # no advisory locks: claims are not enforced
        yield True
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:  # removed by the holder we waited for
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for people looking; the lock is what counts
        yield True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


@dataclass
class ClipRecord:
    """One dataset clip in the index. ``clip_id`` is ``actor/emotion/level_k/NNN`` (MEAD-style)."""

    clip_id: str
    actor: str
    emotion: str
    level: int
    sentence: str  # sentence id: clips with equal ids say the same text (used for pairing)
    video: str
    audio: str = ""  # empty: the video's own track
    text: str = ""
    video_hash: str = ""
    audio_hash: str = ""
    n_frames: int = 0
    fps: float = FPS
    status: str = "pending"  # pending | ok | failed
    message: str = ""
    extra: dict = field(default_factory=dict)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS clips (
    clip_id TEXT PRIMARY KEY, actor TEXT, emotion TEXT, level INTEGER, sentence TEXT, video TEXT, audio TEXT,
    text TEXT, video_hash TEXT, audio_hash TEXT, n_frames INTEGER, fps REAL, status TEXT, message TEXT,
    extra TEXT, updated REAL);
CREATE INDEX IF NOT EXISTS clips_actor ON clips(actor, emotion);
CREATE TABLE IF NOT EXISTS artifacts (
    kind TEXT, key TEXT, clip_id TEXT, path TEXT, params TEXT, meta TEXT, created REAL,
    PRIMARY KEY (kind, key));
CREATE INDEX IF NOT EXISTS artifacts_clip ON artifacts(kind, clip_id);
"""


class Workspace:
    """A workspace folder. Cheap to construct; folders and the index are created on first write."""

    def __init__(self, root: str | os.PathLike = DEFAULT_WORKSPACE):
        self.root = Path(root).expanduser().resolve()
        self._conn: sqlite3.Connection | None = None
        self._conn_pid: int | None = None

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    # ---------------------------------------------------------------- paths
    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite"

    def path(self, kind: str, name: str) -> Path:
        """Path of an artifact file ``<root>/<kind>/<name>`` (folder created)."""
        d = self.root / kind
        d.mkdir(parents=True, exist_ok=True)
        return d / name

    # ---------------------------------------------------------------- index
    def _db(self) -> sqlite3.Connection:
        """One connection per process (connections must not cross a fork)."""
        if self._conn is None or self._conn_pid != os.getpid():
            self.check_usable()
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.index_path, timeout=60.0, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=60000")
                self._wal(conn)
                conn.execute("PRAGMA synchronous=NORMAL")
                self._write(conn, _SCHEMA, script=True)
                self._write(conn, "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            except sqlite3.DatabaseError as exc:
                msg = str(exc)
                if "readonly" in msg or "read-only" in msg or "unable to open" in msg:
                    raise EvpError(f"workspace {self.root} cannot be written ({msg}); give a writable folder with -w "
                                   "(or EVP_WORKSPACE)") from None
                raise EvpError(f"{self.index_path} is not an evp workspace index ({msg}): damaged or another "
                               "program's file; move it away to start over, or give another folder with -w") from None
            except PermissionError as exc:
                raise EvpError(f"workspace {self.root} cannot be written ({exc.strerror}); give a writable folder with "
                               "-w (or EVP_WORKSPACE)") from None
            self._conn, self._conn_pid = conn, os.getpid()
        return self._conn

    def check_usable(self) -> None:
        """EvpError (one line) when the workspace path cannot be a workspace: a file, or inside a file."""
        for p in (self.root, *self.root.parents):
            if p.exists():
                if not p.is_dir():
                    raise EvpError(f"workspace {self.root}: {p} is a file, not a folder; give a folder with -w "
                                   "(or EVP_WORKSPACE)")
                break

    @staticmethod
    def _retrying(step, attempts: int) -> None:
        """Run ``step()``, again while another process holds the index ("locked" / "busy"), backing off a little
        more each time; EvpError after ``attempts``."""
        for attempt in range(attempts):
            try:
                step()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                time.sleep(0.01 + 0.002 * attempt)
        raise EvpError("workspace index is locked by another process for too long; retry")

    @classmethod
    def _wal(cls, conn: sqlite3.Connection) -> None:
        """Switch the index to WAL, retried while another process holds it: SQLite answers a journal-mode change
        "database is locked" at once, without waiting out the busy timeout (two processes opening a new workspace
        together: the second failed, seen under load)."""

        def step() -> None:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")

        cls._retrying(step, 400)

    @classmethod
    def _write(cls, conn: sqlite3.Connection, sql: str, args: tuple = (), script: bool = False,
               many: list | None = None) -> None:
        """A write in its own IMMEDIATE transaction, retried while another process holds the lock."""

        def step() -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if script:
                    for stmt in sql.split(";"):
                        if stmt.strip():
                            conn.execute(stmt)
                elif many is not None:
                    conn.executemany(sql, many)
                else:
                    conn.execute(sql, args)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        cls._retrying(step, 200)

    def close(self) -> None:
        if self._conn is not None and self._conn_pid == os.getpid():
            self._conn.close()
        self._conn = None

    def put_clips(self, records: list[ClipRecord]) -> None:
        rows = [(r.clip_id, r.actor, r.emotion, int(r.level), r.sentence, r.video, r.audio, r.text, r.video_hash,
                 r.audio_hash, int(r.n_frames), float(r.fps), r.status, r.message, canonical_json(r.extra),
                 time.time()) for r in records]
        self._write(self._db(), "INSERT OR REPLACE INTO clips VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", many=rows)

    def put_clip(self, record: ClipRecord) -> None:
        self.put_clips([record])

    def clips(self, actor: str | None = None, emotion: str | None = None, status: str | None = "ok",
              clip_id: str | None = None) -> list[ClipRecord]:
        """Clips in the index, sorted by id; filters are exact matches (None: any)."""
        if not self.index_path.exists():
            return []
        sql, args = "SELECT * FROM clips WHERE 1=1", []
        for col, val in (("actor", actor), ("emotion", emotion), ("status", status), ("clip_id", clip_id)):
            if val is not None:
                sql += f" AND {col} = ?"
                args.append(val)
        cur = self._db().execute(sql + " ORDER BY clip_id", args)
        cols = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            d = dict(zip(cols, row, strict=True))
            d.pop("updated", None)
            d["extra"] = json.loads(d["extra"] or "{}")
            out.append(ClipRecord(**d))
        return out

    def get_clip(self, clip_id: str) -> ClipRecord | None:
        if not self.index_path.exists():
            return None
        found = self.clips(status=None, clip_id=clip_id)
        return found[0] if found else None

    def put_artifact(self, kind: str, key: str, path: str | os.PathLike, clip_id: str | None = None,
                     params: Any = None, meta: Any = None) -> None:
        """Record an artifact file (already written atomically) in the index."""
        rel = os.path.relpath(Path(path).resolve(), self.root)
        self._write(self._db(), "INSERT OR REPLACE INTO artifacts VALUES (?,?,?,?,?,?,?)",
                    (kind, key, clip_id, rel, canonical_json(params), canonical_json(meta), time.time()))

    def artifacts(self, kind: str | None = None, clip_id: str | None = None, key: str | None = None) -> list[dict]:
        """Index rows (kind, key, clip_id, path (absolute), params, meta, created) whose file still exists."""
        if not self.index_path.exists():
            return []
        sql, args = "SELECT kind, key, clip_id, path, params, meta, created FROM artifacts WHERE 1=1", []
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        if clip_id is not None:
            sql += " AND clip_id = ?"
            args.append(clip_id)
        if key is not None:
            sql += " AND key = ?"
            args.append(key)
        out = []
        for k, key, cid, path, params, meta, created in self._db().execute(sql + " ORDER BY created", args):
            p = self.root / path
            if p.exists():
                out.append({"kind": k, "key": key, "clip_id": cid, "path": p, "params": json.loads(params),
                            "meta": json.loads(meta), "created": created})
        return out

    def get_artifact(self, kind: str, key: str) -> dict | None:
        found = self.artifacts(kind, key=key)
        return found[0] if found else None

    def clip_artifact(self, kind: str, clip_id: str) -> dict | None:
        """The newest artifact of ``kind`` recorded for a clip, or None."""
        rows = self.artifacts(kind, clip_id=clip_id)
        return rows[-1] if rows else None

    def load_clip_feature(self, kind: str, clip_id: str) -> dict[str, np.ndarray]:
        """Arrays of the newest ``kind`` artifact of a clip (e.g. ``mfcc``, ``landmarks``)."""
        row = self.clip_artifact(kind, clip_id)
        if row is None:
            raise EvpError(f"no {kind} for clip {clip_id} in {self.root}; run `evp prepare-dataset` first")
        return load_npz(row["path"])

    def unfinished_runs(self) -> list[dict]:
        """Training runs interrupted before they finished: their staging checkpoints
        (``runs/<stage>-<run>-checkpoint.pt``), as ``{stage, run, epochs_done, path}``."""
        out = []
        for path in sorted((self.root / "runs").glob("*-checkpoint.pt")):
            stage, _, run = path.name[:-len("-checkpoint.pt")].rpartition("-")
            try:
                done = int(load_checkpoint(path)["epoch"])
            except Exception:  # unreadable: being replaced right now, or foreign
                continue
            out.append({"stage": stage, "run": run, "epochs_done": done, "path": str(path)})
        return out

    # ---------------------------------------------------------------- summary
    def status(self) -> dict:
        """What the workspace holds, as plain JSON-able data (``evp status``)."""
        self.check_usable()
        if self.index_path.exists():
            self._db()  # a damaged index or an unwritable folder: one line now
        clips = self.clips(status=None)
        by_actor: dict[str, dict[str, int]] = {}
        counts = {"ok": 0, "failed": 0, "pending": 0}
        for c in clips:
            counts[c.status] = counts.get(c.status, 0) + 1
            if c.status == "ok":
                by_actor.setdefault(c.actor, {}).setdefault(c.emotion, 0)
                by_actor[c.actor][c.emotion] += 1
        arts = self.artifacts()
        kinds: dict[str, int] = {}
        for a in arts:
            kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
        newest_pairs: dict[tuple, dict] = {}  # the pairs in use: the newest artifact of each actor/sentence group
        for a in arts:  # ordered by creation time (build-pairs refreshes the groups it reuses)
            if a["kind"] == KIND_PAIRS and isinstance(a["meta"], dict):
                newest_pairs[(a["meta"].get("actor"), a["meta"].get("sentence"))] = a["meta"]
        pairs = sum(int(m.get("n_pairs", 0)) for m in newest_pairs.values())
        return {
            "workspace": str(self.root),
            "exists": self.index_path.exists(),
            "clips": {"total": len(clips), **counts, "by_actor": by_actor},
            "artifacts": kinds,
            "pairs": pairs,
            "models": [{"key": a["key"], **({"stage": a["meta"].get("stage")} if isinstance(a["meta"], dict) else {}),
                        "path": str(a["path"])} for a in arts if a["kind"] == KIND_MODEL],
            "fitted_targets": [{"key": a["key"], **(a["meta"] if isinstance(a["meta"], dict) else {})}
                               for a in arts if a["kind"] == KIND_FIT],
            "unfinished_runs": self.unfinished_runs(),
        }
