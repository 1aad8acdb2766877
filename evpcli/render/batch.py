"""``evp batch-render jobs.csv``: many renders from one CSV, each through :func:`evpcli.render.pipeline.render`.

The CSV (header row required) has one render per row. Columns: ``audio`` (the speech), ``target`` (video or still
portrait), ``out`` (the mp4 to write), and exactly one of ``emotion`` (a name) or ``emotion_audio`` (an emotion clip)
per row (a CSV may have both columns, each row filling one); optional ``intensity`` (0-2, default 1) and ``renderer``
(warp or neural, default warp). Relative paths are relative to the CSV's folder.

- Resumable: a row whose ``out`` is already a finished render (a video with audio: render writes its output only
  when complete) is skipped; re-running the same CSV after an interruption or a failure does only what is missing.
  Anything else at ``out`` (an empty file, a document) fails that row and is never overwritten.
- Outputs stay under the CSV's folder (or ``--out-dir``): a row whose ``out`` leads outside it (``../``, an absolute
  path, a link) fails unless ``--allow-outside``; no output may land inside the workspace.
- One bad row fails that job only (empty or extra fields, both or neither emotion, a missing or unreadable file,
  a target without a face, two rows writing the same ``out``); the run goes on and :class:`BatchReport` lists each
  failure by its CSV line with a one-line reason.
- Each distinct target is fitted and analysed once, here, before the renders start (cached in the workspace as
  render does: the workers find it there), so the workspace index is written by this process only; the renders run
  on the chosen executor (:mod:`evpcli.executors`: this process, ``jobs`` processes, or Ray tasks).
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evpcli.errors import EvpError
from evpcli.progress import Progress
from evpcli.workspace import Workspace

PATH_COLUMNS = ("audio", "target", "out", "emotion_audio")
REQUIRED = ("audio", "target", "out")
EMOTION_COLUMNS = ("emotion", "emotion_audio")


@dataclass
class BatchReport:
    """What a batch did. ``failed``: one dict per failed row (``line``: its CSV line, ``out``, ``reason``)."""

    jobs_csv: str
    executor: str
    workers: int = 1
    total: int = 0  # rows
    rendered: int = 0  # written in this run
    skipped: int = 0  # ``out`` already there
    failed: list[dict] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # written in this run
    frames: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        return (f"{self.rendered} rendered, {self.skipped} already done, {len(self.failed)} failed of {self.total} "
                f"jobs in {self.jobs_csv} ({self.executor}, {self.workers} worker{'s' * (self.workers != 1)}) in "
                f"{self.seconds:.1f} s")


def read_jobs(jobs_csv: str | os.PathLike, out_dir: str | os.PathLike | None = None,
              allow_outside: bool = False) -> tuple[list[dict], list[dict]]:
    """(jobs, bad rows) of a jobs CSV. A job: ``line``, ``audio``, ``target``, ``out`` (absolute paths), ``emotion``
    or ``emotion_audio`` (the other None), ``intensity`` (float), ``renderer``. A bad row: ``line``, ``out``,
    ``reason``. Raises :class:`EvpError` when the file is missing or its header lacks required columns.

    The outputs rule: a row's ``out`` is relative to ``out_dir`` (default: the CSV's folder) and must stay inside
    it (no ``../``, no absolute path elsewhere, no link leading out) unless ``allow_outside``: a CSV from elsewhere
    cannot make evp write over ``/etc/passwd`` or a user's files."""
    path = Path(jobs_csv)
    if not path.is_file():
        raise EvpError(f"{path}: file not found (the jobs CSV)")
    base = path.resolve().parent
    out_base = Path(out_dir).expanduser().resolve() if out_dir is not None else base
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvpError(f"{path}: cannot read the jobs CSV ({type(exc).__name__}: {exc})") from None
    if not rows:
        raise EvpError(f"{path} is empty; it needs a header row: audio,emotion,target,out (see evp batch-render --help)")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing or not any(c in header for c in EMOTION_COLUMNS):
        need = missing + ([] if any(c in header for c in EMOTION_COLUMNS) else ["emotion or emotion_audio"])
        raise EvpError(f"{path}: the header lacks {', '.join(need)} (columns: audio, emotion or emotion_audio, target, "
                       "out; optional intensity, renderer)")
    jobs, bad = [], []
    for line, values in enumerate(rows[1:], start=2):
        if not any(v.strip() for v in values):
            continue  # blank line
        row = {h: v.strip() for h, v in zip(header, values, strict=False)}
        out = row.get("out", "")
        fail = _failer(bad, line, str(base / out) if out else "")
        if len(values) != len(header):
            fail(f"{len(values)} fields, the header has {len(header)}")
            continue
        empty = [c for c in REQUIRED if not row.get(c)]
        if empty:
            fail(f"empty {', '.join(empty)}")
            continue
        emotion, emotion_audio = row.get("emotion") or None, row.get("emotion_audio") or None
        if (emotion is None) == (emotion_audio is None):
            fail("give exactly one of emotion or emotion_audio" + (" (both are filled)" if emotion else ""))
            continue
        try:
            intensity = float(row["intensity"]) if row.get("intensity") else 1.0
        except ValueError:
            fail(f"intensity {row['intensity']!r} is not a number")
            continue
        renderer = (row.get("renderer") or "warp").lower()
        paths = {c: str(base / row[c]) for c in PATH_COLUMNS if row.get(c)}
        paths["out"] = str(out_base / row["out"])
        if not allow_outside and not _inside(Path(paths["out"]), out_base):
            fail(f"out {row['out']!r} is outside {out_base} (outputs stay in the CSV's folder or --out-dir; "
                 "--allow-outside to permit it)")
            continue
        jobs.append({"line": line, "audio": paths["audio"], "target": paths["target"], "out": paths["out"],
                     "emotion": emotion, "emotion_audio": paths.get("emotion_audio"), "intensity": intensity,
                     "renderer": renderer})
    return jobs, bad


def _inside(path: Path, folder: Path) -> bool:
    real = os.path.realpath(path)
    root = os.path.realpath(folder)
    try:
        return os.path.commonpath([real, root]) == root and real != root
    except ValueError:
        return False


def finished_render(path: Path) -> bool:
    """Whether ``path`` is a video a render wrote (a readable file with a video and an audio stream): only those
    count as done; anything else at a row's ``out`` (an empty file, a user's document) is never overwritten."""
    from evpcli import media

    try:
        info = media.probe(path)
    except Exception:
        return False
    return bool(info.has_audio) and info.n_frames > 0


def _failer(bad: list[dict], line: int, out: str):
    def fail(reason: str) -> None:
        bad.append({"line": line, "out": out, "reason": reason})

    return fail


def render_job(job: dict) -> dict:
    """A worker's job: one render (``job`` from :func:`read_jobs` plus ``workspace`` and ``device``). Never raises
    for the job's own failure: returns ``{ok, reason, frames, seconds}``."""
    from evpcli.render.pipeline import render

    t0 = time.perf_counter()
    ws = Workspace(job["workspace"])
    try:
        r = render(ws, job["audio"], job["target"], job["out"], emotion=job["emotion"],
                   emotion_audio=job["emotion_audio"], intensity=job["intensity"], renderer=job["renderer"],
                   device=job["device"])
        return {"ok": True, "reason": "", "frames": r.frames, "seconds": time.perf_counter() - t0}
    except EvpError as exc:
        return {"ok": False, "reason": str(exc).splitlines()[0] if str(exc) else type(exc).__name__, "frames": 0,
                "seconds": time.perf_counter() - t0}
    except Exception as exc:  # a bug or an odd file: this job fails, the batch goes on
        first = str(exc).splitlines()[0] if str(exc) else ""
        return {"ok": False, "reason": f"internal error: {type(exc).__name__}: {first}", "frames": 0,
                "seconds": time.perf_counter() - t0}
    finally:
        ws.close()


def _prepare_targets(ws: Workspace, jobs: list[dict], progress: Progress) -> dict[str, str]:
    """Fit and analyse each distinct target once (cached in the workspace); {target: why it cannot be used}."""
    from evpcli.render.targets import prepare_target

    bad: dict[str, str] = {}
    targets = sorted({j["target"] for j in jobs})
    with progress.task("fit targets", total=len(targets), unit="targets") as bar:
        for target in targets:
            if not Path(target).is_file():
                bad[target] = f"{target}: file not found (target)"
            else:
                try:
                    prepare_target(ws, target)
                except EvpError as exc:
                    bad[target] = str(exc).splitlines()[0]
                except Exception as exc:  # an odd file: its jobs fail, the others go on
                    bad[target] = f"{target}: cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0]})"
            bar.advance(1)
    return bad


def batch_render(ws: Workspace, jobs_csv: str | os.PathLike, *, executor: str = "local", jobs: int = 1,
                 ray_address: str | None = None, device: str = "auto", progress: Progress | None = None,
                 out_dir: str | os.PathLike | None = None, allow_outside: bool = False) -> BatchReport:
    """Render every row of ``jobs_csv`` not rendered yet (see the module docstring); returns the
    :class:`BatchReport` (failures inside, never raised). Raises :class:`EvpError` for a missing CSV or one without
    the required columns, :class:`~evpcli.errors.UsageError` for a bad executor choice."""
    from evpcli.executors import make_executor, open_executor

    make_executor(executor, jobs, ray_address)  # a bad choice fails before any work
    t_start = time.perf_counter()
    progress = progress or Progress()
    todo, bad = read_jobs(jobs_csv, out_dir, allow_outside)
    report = BatchReport(str(jobs_csv), executor, total=len(todo) + len(bad))
    report.failed.extend(bad)
    first_line: dict[str, int] = {}
    pending = []
    for job in todo:
        key = os.path.abspath(job["out"])
        if key in first_line:
            report.failed.append({"line": job["line"], "out": job["out"],
                                  "reason": f"the same out as line {first_line[key]}"})
            continue
        first_line[key] = job["line"]
        out_path = Path(job["out"])
        if out_path.exists() or out_path.is_symlink():
            if out_path.is_file() and not out_path.is_symlink() and finished_render(out_path):
                report.skipped += 1
            else:
                report.failed.append({"line": job["line"], "out": job["out"],
                                      "reason": f"{out_path} exists and is not a finished render; it is left as it "
                                                "is (remove it or choose another out)"})
            continue
        try:
            from evpcli.paths import check_outside

            check_outside(out_path, ws.root, "out")
        except EvpError as exc:
            report.failed.append({"line": job["line"], "out": job["out"], "reason": str(exc)})
            continue
        pending.append({**job, "workspace": str(ws.root), "device": device})
    unusable = _prepare_targets(ws, pending, progress) if pending else {}
    for job in [j for j in pending if j["target"] in unusable]:
        report.failed.append({"line": job["line"], "out": job["out"], "reason": unusable[job["target"]]})
    pending = [j for j in pending if j["target"] not in unusable]
    with open_executor(executor, jobs, ray_address, n_jobs=len(pending)) as pool, \
            progress.task("batch-render", total=len(pending), unit="jobs") as bar:
        report.workers = pool.workers
        for i, result, error in pool.run(render_job, pending):
            job = pending[i]
            if error is not None:  # the worker died under the job
                first = str(error).splitlines()[0] if str(error) else type(error).__name__
                result = {"ok": False, "reason": first, "frames": 0}
            if result["ok"]:
                report.rendered += 1
                report.frames += result["frames"]
                report.outputs.append(job["out"])
            else:
                report.failed.append({"line": job["line"], "out": job["out"], "reason": result["reason"]})
            bar.advance(1, failed=len(report.failed))
    report.failed.sort(key=lambda f: f["line"])
    report.seconds = time.perf_counter() - t_start
    return report
