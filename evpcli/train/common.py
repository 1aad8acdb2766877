"""Utilities every training loop shares: seeding, resumable checkpoints, a CSV log and a loss-curve plot.

A *run* of a stage is identified by its key: the data it trains on and every setting except the number of epochs.
A run in progress writes a staging checkpoint (``runs/<stage>-<run>-checkpoint.pt``, replaced atomically after
every epoch, so an interrupted run loses at most the epoch in progress) holding the model and optimiser states,
the epochs done and its configs as plain dicts; everything loads with ``torch.load(weights_only=True)``. Only a
run that completes writes a finished model, ``models/<stage>-<run>-e<epochs>.pt``, and then its index row (so
:mod:`evpcli.models` keeps using the previous model until that moment); a finished model is never written by a
run that has not finished, and retraining with other epochs makes another file. See :class:`TrainingRun`.
Randomness is drawn per epoch from :func:`epoch_rng` (seed, epoch), so a resumed run continues exactly as an
uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evpcli.errors import EvpError
from evpcli.workspace import KIND_MODEL, Workspace, atomic_path, claim, load_checkpoint, save_checkpoint


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed everything and make torch pick deterministic kernels for the duration of a training run (CPU runs are
    then bit-for-bit repeatable; on CUDA kernels without a deterministic version only warn). The previous torch
    setting is restored afterwards, so library callers keep theirs."""
    import torch

    seed_everything(seed)
    before = torch.are_deterministic_algorithms_enabled()
    warn_before = torch.is_deterministic_algorithms_warn_only_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_before)


def epoch_rng(seed: int, epoch: int, phase: int = 0) -> np.random.Generator:
    """The numpy generator of one epoch of one training phase (also seeds torch for it: dropout, shuffles)."""
    import torch

    torch.manual_seed((seed * 1_000_003 + phase * 10_007 + epoch) % 2**63)
    return np.random.default_rng([seed, phase, epoch])


def save_training_state(path: str | os.PathLike, *, model, optimizer, epoch: int, config: dict[str, Any],
                        **extra: Any) -> Path:
    """Write a resumable checkpoint: ``model``/``optimizer`` state dicts, ``epoch`` (epochs completed), configs."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict() if optimizer is not None else {},
             "epoch": int(epoch), "config": config, **extra}
    return save_checkpoint(path, state)


def load_training_state(path: str | os.PathLike, model=None, optimizer=None, map_location: Any = "cpu") -> dict:
    """Load a checkpoint; restore ``model`` and ``optimizer`` in place when given. Returns the whole dict."""
    state = load_checkpoint(path, map_location=map_location)
    if model is not None:
        model.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer"):
        optimizer.load_state_dict(state["optimizer"])
    return state


class TrainingRun:
    """The files of one run of a stage, held exclusively for the ``with`` block (another process training the same
    run at the same time is refused; a dead one's claim is taken over).

    ``staging``: the resumable checkpoint of the run in progress. ``model``: the finished model of ``epochs``
    epochs, written by :meth:`finish` only. ``model_key`` (``<run>-e<epochs>``) names the finished model's index row
    and its files (:meth:`file`); ``log`` is the run's per-epoch log (shared by its resumptions).
    """

    def __init__(self, ws: Workspace, stage: str, run_key: str, epochs: int):
        self.ws, self.stage, self.run_key, self.epochs = ws, stage, run_key, int(epochs)
        self.model_key = f"{run_key}-e{self.epochs}"
        self.staging = ws.path("runs", f"{stage}-{run_key}-checkpoint.pt")
        self.model = ws.path(KIND_MODEL, f"{stage}-{self.model_key}.pt")
        self.log = ws.path("runs", f"{stage}-{run_key}-log.csv")
        self._claim = None

    def file(self, suffix: str, kind: str = "runs") -> Path:
        """A file of the finished model, e.g. ``file("metrics.json")`` -> ``runs/<stage>-<model_key>-metrics.json``."""
        return self.ws.path(kind, f"{self.stage}-{self.model_key}-{suffix}")

    def __enter__(self) -> TrainingRun:
        self._claim = claim(self.ws.root / "claims" / f"train-{self.stage}-{self.run_key}.lock")
        if not self._claim.__enter__():
            self._claim = None
            raise EvpError(f"another evp process is training this {self.stage} run (same data and settings) right now; "
                           "wait for it to finish or stop it, then re-run with --resume")
        for path in (self.staging, self.model):  # temp files of a writer killed mid-write (this run's, by the claim)
            for tmp in path.parent.glob(f".{path.name}.*"):
                tmp.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._claim is not None:
            self._claim.__exit__(*exc)
            self._claim = None

    def finished_models(self) -> dict[int, Path]:
        """Finished models of this run on disk: {epochs: path}."""
        out = {}
        for path in self.model.parent.glob(f"{self.stage}-{self.run_key}-e*.pt"):
            tail = path.stem[len(f"{self.stage}-{self.run_key}-e"):]
            if tail.isdigit():
                out[int(tail)] = path
        return out

    def resume_point(self) -> tuple[Path | None, int]:
        """(checkpoint to continue from, epochs it has done) for ``--resume``: the furthest of the staging checkpoint
        and this run's finished models that does not pass ``epochs``; (None, 0) when there is none. Raises
        :class:`EvpError` when the run has already trained more epochs than asked (going back is not resuming)."""
        points = dict(self.finished_models())
        if self.staging.exists():
            try:
                points.setdefault(int(load_checkpoint(self.staging)["epoch"]), self.staging)
            except Exception:  # an unreadable staging file: nothing to resume from it
                pass
        usable = [e for e in points if e <= self.epochs]
        if not usable and points:
            done = min(points)
            raise EvpError(f"this {self.stage} run has trained {done} epochs already; --resume cannot go back to "
                           f"{self.epochs} (give --epochs {done} or more, or leave out --resume to train afresh)")
        if not usable:
            return None, 0
        best = max(usable)
        return points[best], best

    def finish(self, params: dict, meta: dict, extra_rows: tuple = ()) -> None:
        """Publish the finished model (its file already written atomically at ``self.model``): index rows of
        ``extra_rows`` ((kind, path) pairs, under ``model_key``) first, then the model's row (from this moment it is
        the stage's newest finished model), then drop the staging checkpoint."""
        for kind, path in extra_rows:
            self.ws.put_artifact(kind, self.model_key, path, params=params, meta=meta)
        self.ws.put_artifact(KIND_MODEL, self.model_key, self.model, params=params,
                             meta={**meta, "run": self.run_key, "epochs": self.epochs})
        self.staging.unlink(missing_ok=True)


class CsvLog:
    """A per-epoch CSV log, rewritten atomically on every append (small files; never half-written)."""

    def __init__(self, path: str | os.PathLike, fields: list[str]):
        self.path = Path(path)
        self.fields = list(fields)
        self.rows: list[dict[str, Any]] = []

    def resume(self, completed: int) -> CsvLog:
        """Keep the rows of the first ``completed`` epochs (numbered from 1) of an existing file, for a resumed run."""
        if self.path.exists():
            with open(self.path, newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(float(r.get("epoch", 0))) <= completed]
        return self

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.fields, extrasaction="ignore")
        w.writeheader()
        for r in self.rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        with atomic_path(self.path) as tmp:
            tmp.write_text(buf.getvalue())

    def column(self, name: str) -> np.ndarray:
        return np.array([float(r[name]) if r.get(name) not in (None, "") else np.nan for r in self.rows])


def plot_curves(log: CsvLog, png: str | os.PathLike, columns: list[str], title: str, x: str = "epoch") -> Path:
    """Line plot of some columns of a log against ``x`` (log-scale y), written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    xs = log.column(x)
    for c in columns:
        ys = log.column(c)
        if np.isfinite(ys).any() and (ys[np.isfinite(ys)] > 0).any():
            ax.plot(xs, ys, marker="o", ms=3, label=c)
    ax.set_xlabel(x)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png = Path(png)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return png


@dataclass
class TrainResult:
    """What every training stage returns: the run's key and checkpoint, how much it trained (epochs run from
    ``start_epoch`` to ``epochs``, ``steps`` in ``train_seconds``), its held-out ``metrics`` and its other files
    (log, plots, metrics JSON) by name."""

    stage: str
    key: str
    checkpoint: Path
    epochs: int
    start_epoch: int
    steps: int
    train_seconds: float
    steps_per_second: float
    metrics: dict = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    run_key: str = ""  # the run (data + settings but epochs) that ``key`` (``<run>-e<epochs>``) finished

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["checkpoint"] = str(self.checkpoint)
        d["files"] = {k: str(v) for k, v in self.files.items()}
        return d

    def summary(self) -> str:
        """One line on the training itself; stages add their metrics."""
        resumed = f", resumed after epoch {self.start_epoch}" if self.start_epoch else ""
        return (f"trained {self.stage}: {self.steps} steps in {self.train_seconds:.0f} s "
                f"({self.steps_per_second:.2f} steps/s){resumed}; model {self.checkpoint}")


def augmented_mfcc(ws, clip_ids: list[str], copies: int, seed: int = 0, cfg=None, progress=None,
                   jobs: int = 1) -> dict[str, list[np.ndarray]]:
    """``copies`` augmented versions of every clip's MFCC rows (each (N, 12) float32, the same N as the clip's own
    ``mfcc`` artifact): the clip's audio through :func:`evpcli.augment.augment` with a generator seeded by
    (seed, clip id, copy), so the copies are the same in every run and every stage. Empty when ``copies`` is 0; a
    clip whose audio file cannot be read gets no copies (it trains on its clean features only)."""
    if copies <= 0:
        return {}
    from evpcli.config import AugmentConfig
    from evpcli.progress import Progress

    cfg = cfg or AugmentConfig()
    records = {c.clip_id: c for c in ws.clips(status="ok")}
    jobs_args = [(cid, records[cid].audio or records[cid].video, copies, seed, cfg) for cid in clip_ids
                 if cid in records]
    out: dict[str, list[np.ndarray]] = {}
    progress = progress or Progress()
    with progress.task("augmented copies", total=len(jobs_args), unit="clips") as bar:
        if jobs > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(jobs) as pool:
                for cid, rows in pool.map(_augmented_clip, jobs_args, chunksize=8):
                    out[cid] = rows
                    bar.advance(1)
        else:
            for args in jobs_args:
                cid, rows = _augmented_clip(args)
                out[cid] = rows
                bar.advance(1)
    return out


def _augmented_clip(args: tuple) -> tuple[str, list[np.ndarray]]:
    import zlib

    from evpcli import audio, media
    from evpcli.augment import augment

    clip_id, path, copies, seed, cfg = args
    try:
        wav = media.load_audio(path)
    except Exception:  # no audio file (features prepared elsewhere, or moved): the clip trains on its clean audio
        return clip_id, []
    rows = []
    for k in range(copies):
        rng = np.random.default_rng([seed, zlib.crc32(clip_id.encode()), k])
        rows.append(audio.mfcc(augment(wav, rng, cfg)))
    return clip_id, rows
