"""``evp ui``: a local web page to make emotional videos (render and interpolate), for people who do not use a
terminal.

A small HTTP server of the standard library (no web framework, no extra dependency) serves one page
(``evpcli/data/ui.html``, plain HTML and JavaScript, nothing fetched from elsewhere) and a JSON API:

- ``GET /api/info``: the emotion names, the workspace's fitted targets, the upload limit;
- ``POST /api/upload`` (the file as the request body, its name in ``X-Filename``): stores it in the server's
  temporary folder -> ``{"id", "name", "bytes"}``; over ``max_upload_mb`` -> 413 and one line;
- ``POST /api/jobs`` (JSON: ``mode`` "render" or "interpolate", ``target`` an upload id or a listed target,
  ``audio``, ``emotion`` / ``emotion_audio`` / ``from`` / ``to`` / ``alpha`` / ``intensity`` / ``head_motion``)
  -> ``{"id"}``; ``GET /api/jobs/ID``: its state (queued with its place in the queue, running with the stage and
  its progress, done with the result, failed with the CLI's one-line error);
- ``GET /files/NAME``: a finished video (with HTTP ranges, so the page's player can seek).

Jobs run one at a time in one worker thread, through the same :func:`evpcli.render.pipeline.render` and
:func:`~evpcli.render.pipeline.interpolate` the CLI calls; the audio-to-landmark model is loaded once and kept
(:func:`evpcli.models.load_audio2lm` caches it by file), so requests queue instead of running over one another in
the workspace. Uploads and outputs live in one temporary folder, removed when the server stops. The server binds
to 127.0.0.1 unless told otherwise and sends nothing anywhere.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from evpcli.errors import EvpError
from evpcli.progress import Progress, Task

MAX_UPLOAD_MB = 500.0
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def one_line(exc: BaseException) -> str:
    """The CLI's one-line message for an error: the message of a bad input, ``internal error: ...`` for a bug."""
    if isinstance(exc, EvpError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"internal error: {type(exc).__name__}: {first}"


@dataclass
class Job:
    id: str
    request: dict
    state: str = "queued"  # queued, running, done, failed
    stage: str = ""
    done: int = 0
    total: int | None = None
    unit: str = ""
    error: str | None = None
    result: dict | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    def to_dict(self, position: int | None = None) -> dict:
        out = {"id": self.id, "state": self.state, "stage": self.stage, "done": self.done, "total": self.total,
               "unit": self.unit, "error": self.error, "result": self.result}
        if position is not None:
            out["position"] = position
        if self.started:
            out["elapsed"] = round((self.finished or time.time()) - self.started, 1)
        return out


class _JobTask(Task):
    def __init__(self, job: Job):
        self.job = job

    def advance(self, k: int = 1, **fields: object) -> None:
        self.job.done += k


class JobProgress(Progress):
    """Progress of the pipeline's stages written into the job (the page polls it)."""

    def __init__(self, job: Job):
        self.job = job

    def task(self, description: str, total: int | None = None, unit: str = "it"):
        import contextlib

        @contextlib.contextmanager
        def run():
            self.job.stage, self.job.done, self.job.total, self.job.unit = description, 0, total, unit
            yield _JobTask(self.job)

        return run()


class Server:
    """The app: a workspace, a temporary folder, the job queue and its worker. :meth:`start` binds and serves in
    a thread (tests) and returns the address; :meth:`serve_forever` serves in the caller's thread (the CLI)."""

    def __init__(self, workspace: Path, host: str = "127.0.0.1", port: int = 0, device: str = "auto",
                 max_upload_mb: float = MAX_UPLOAD_MB):
        from evpcli.workspace import Workspace

        self.ws = Workspace(workspace)
        self.device = device
        self.max_upload = int(max_upload_mb * 1024 * 1024)
        self.tmp = Path(tempfile.mkdtemp(prefix="evp-ui-"))
        (self.tmp / "uploads").mkdir()
        (self.tmp / "out").mkdir()
        self.uploads: dict[str, Path] = {}
        self.jobs: dict[str, Job] = {}
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"app": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.worker = threading.Thread(target=self._work, name="evp-ui-worker", daemon=True)
        self.worker.start()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> str:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="evp-ui-http", daemon=True)
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        finally:
            self.close()

    def close(self) -> None:
        self.queue.put(None)
        try:
            self.httpd.shutdown()
        except Exception:
            pass
        self.httpd.server_close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ the API
    def info(self) -> dict:
        from evpcli.config import EMOTIONS
        from evpcli.workspace import KIND_TARGET

        targets = []
        for row in self.ws.artifacts(KIND_TARGET):
            meta = row.get("meta") or {}
            path = meta.get("target") if isinstance(meta, dict) else None
            if path and Path(path).exists() and path not in targets:
                targets.append(path)
        return {"emotions": list(EMOTIONS), "targets": targets, "max_upload_mb": self.max_upload / 1024 / 1024}

    def upload(self, name: str, body: bytes) -> dict:
        uid = uuid.uuid4().hex[:12]
        safe = _NAME.sub("_", Path(name or "upload").name)[-80:] or "upload"
        folder = self.tmp / "uploads" / uid
        folder.mkdir()
        path = folder / safe
        path.write_bytes(body)
        with self.lock:
            self.uploads[uid] = path
        return {"id": uid, "name": safe, "bytes": len(body)}

    def _file(self, ref: Any, what: str, listed: bool = False) -> Path:
        """An upload id (or, for targets, a listed workspace target) -> its path; EvpError otherwise."""
        if isinstance(ref, dict) and "upload" in ref:
            ref = ref["upload"]
            if ref in self.uploads:
                return self.uploads[ref]
        elif isinstance(ref, dict) and "path" in ref and listed:
            if ref["path"] in self.info()["targets"]:
                return Path(ref["path"])
        elif isinstance(ref, str) and ref in self.uploads:
            return self.uploads[ref]
        raise EvpError(f"no {what} given; upload one" + (" or pick a fitted target" if listed else ""))

    def submit(self, request: dict) -> dict:
        mode = request.get("mode", "render")
        if mode not in ("render", "interpolate"):
            raise EvpError(f"unknown mode {mode!r}; use render or interpolate")
        self._file(request.get("target"), "target (a video or a photo)", listed=True)
        self._file(request.get("audio"), "speech")
        job = Job(uuid.uuid4().hex[:12], request)
        with self.lock:
            self.jobs[job.id] = job
        self.queue.put(job)
        return {"id": job.id}

    def status(self, job_id: str) -> dict | None:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            waiting = [j for j in self.jobs.values() if j.state == "queued"]
        position = sorted(waiting, key=lambda j: j.created).index(job) + 1 if job.state == "queued" else None
        return job.to_dict(position)

    # ------------------------------------------------------------------ the worker
    def _work(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            job.state, job.started = "running", time.time()
            try:
                job.result = self._run(job)
                job.state = "done"
            except BaseException as exc:  # one line, never a traceback, and the worker goes on
                job.error, job.state = one_line(exc), "failed"
                if not isinstance(exc, EvpError):
                    traceback.print_exc()
            finally:
                job.finished = time.time()

    def _run(self, job: Job) -> dict:
        from evpcli.render.pipeline import interpolate, render

        req = job.request
        target = self._file(req.get("target"), "target (a video or a photo)", listed=True)
        audio = self._file(req.get("audio"), "speech")
        out = self.tmp / "out" / f"{job.id}.mp4"
        intensity = float(req.get("intensity", 1.0))
        head_motion = bool(req.get("head_motion", False))
        progress = JobProgress(job)
        if req.get("mode", "render") == "interpolate":
            ends = []
            for key in ("from", "to"):
                end = req.get(key)
                if isinstance(end, dict) and "upload" in end:  # an emotion clip, or a face (photo/video)
                    path = self._file(end, f"--{key} clip")
                    ends.append(f"face:{path}" if end.get("face") else str(path))
                elif isinstance(end, str) and end:
                    ends.append(end)
                else:
                    raise EvpError(f"give the emotion at the {'start' if key == 'from' else 'end'} (--{key})")
            alpha = req.get("alpha")
            result = interpolate(self.ws, audio, target, out, ends[0], ends[1],
                                 alpha=None if alpha in (None, "") else float(alpha), intensity=intensity,
                                 head_motion=head_motion, device=self.device, progress=progress)
        else:
            emotion_audio = self._file(req["emotion_audio"], "emotion clip") if req.get("emotion_audio") else None
            emotion_face = self._file(req["emotion_face"], "emotion face") if req.get("emotion_face") else None
            emotion = req.get("emotion") if emotion_audio is None and emotion_face is None else None
            result = render(self.ws, audio, target, out, emotion=emotion or None, emotion_audio=emotion_audio,
                            emotion_face=emotion_face, intensity=intensity, head_motion=head_motion,
                            device=self.device, progress=progress)
        d = result.to_dict()
        return {"video": f"/files/{job.id}.mp4", "summary": result.summary(), "seconds": d["seconds"],
                "frames": d["frames"], "emotion": d["emotion"], "stage_seconds": d["stage_seconds"],
                "warnings": d["warnings"], "target": {k: d["target"].get(k) for k in
                                                     ("frames", "still", "reliable_pct", "own_expression")}}


class _Handler(BaseHTTPRequestHandler):
    app: Server
    server_version = "evp-ui"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints its own line
        pass

    def _json(self, obj: Any, status: int = 200) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, message: str, status: int = 400) -> None:
        self._json({"error": message}, status)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        from urllib.parse import urlsplit

        self.path = urlsplit(self.path).path
        if self.path in ("/", "/index.html"):
            body = resources.files("evpcli").joinpath("data/ui.html").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/api/info":
            self._json(self.app.info())
        elif self.path.startswith("/api/jobs/"):
            st = self.app.status(self.path.rsplit("/", 1)[1])
            self._json(st) if st is not None else self._error("no such job", 404)
        elif self.path.startswith("/files/"):
            self._file(self.path[len("/files/"):])
        else:
            self._error("not found", 404)

    def do_POST(self) -> None:  # noqa: N802
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return self._error("bad Content-Length")
        if length > self.app.max_upload:
            left = length  # read and drop it (never stored): a client still sending would get a broken pipe
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
            return self._error(f"the file is {length / 1024 / 1024:.0f} MB; the limit is "
                               f"{self.app.max_upload / 1024 / 1024:.0f} MB (evp ui --max-upload-mb)", 413)
        body = self.rfile.read(length) if length else b""
        try:
            if self.path == "/api/upload":
                from urllib.parse import unquote

                if not body:
                    raise EvpError("the file is empty")
                self._json(self.app.upload(unquote(self.headers.get("X-Filename", "upload")), body))
            elif self.path == "/api/jobs":
                self._json(self.app.submit(json.loads(body or b"{}")))
            else:
                self._error("not found", 404)
        except (EvpError, ValueError) as exc:
            self._error(one_line(exc))

    def _file(self, name: str) -> None:
        path = self.app.tmp / "out" / Path(name).name
        if not path.is_file():
            return self._error("no such file", 404)
        size = path.stat().st_size
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        m = re.match(r"bytes=(\d*)-(\d*)$", rng or "")
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else size - 1
            else:
                start = max(0, size - int(m.group(2)))
            end = min(end, size - 1)
            if start > end:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Disposition", f'inline; filename="{path.name}"')
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = f.read(min(1 << 20, left))
                if not chunk:
                    break
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return
                left -= len(chunk)
