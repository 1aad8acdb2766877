"""What every training stage shares: the epoch driver, seeding, resumable checkpoints, a CSV log and a loss plot.

A training stage is its data, its loss and its held-out metrics; the rest is written once here. The skeleton of a
workspace stage (:class:`StageRun`): claim the run, find where it resumes, open its CSV log, take this rank's part of
each batch; restore a checkpoint or start afresh; the epochs (:func:`run_epochs`: a seeded generator per epoch, the
stage's optimisation steps with gradients averaged over the ranks (:func:`descend`), the ranks' weights checked in
sync, a log row and the staged checkpoint after each epoch); the loss plot; publishing the finished model.

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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evpcli.errors import EvpError
from evpcli.atomic import atomic_path
from evpcli.workspace import KIND_MODEL, Workspace, claim, load_checkpoint, save_checkpoint


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


@dataclass
class EpochStats:
    """What :func:`run_epochs` trained: ``steps`` optimisation steps in ``seconds`` (logging and saving not counted)
    and, under torchrun, every rank's weight hash after the last epoch (:func:`evpcli.train.distributed.check_in_sync`;
    empty for a single process)."""

    steps: int = 0
    seconds: float = 0.0
    rank_hashes: list[str] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


def descend(loss, optimizer, model, ranks=None, params=None) -> None:
    """One optimisation step of (possibly data-parallel) training: the gradients of ``loss``, averaged over the ranks,
    applied by ``optimizer``; then the model's batch-norm statistics averaged. ``params``: the parameters whose
    gradients to average (default: all of ``model``'s)."""
    from evpcli.train.distributed import Ranks, average_buffers, average_gradients

    ranks = ranks or Ranks()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(model.parameters() if params is None else params, ranks)
    optimizer.step()
    average_buffers(model, ranks)


def run_epochs(progress, title: str, *, seed: int, start: int, epochs: int, steps_per_epoch: int,
               step: Callable[[np.random.Generator], dict[str, float]],
               begin_epoch: Callable[[int], None] | None = None,
               shown: Callable[[dict[str, float]], dict[str, float]] | None = None,
               log: CsvLog | None = None, log_row: Callable[[int, dict[str, float]], dict[str, Any]] | None = None,
               save: Callable[[int], Any] | None = None, ranks=None, model=None) -> EpochStats:
    """The epoch loop of every training stage. For each epoch ``e`` from ``start`` to ``epochs`` (0-based):

    1. ``rng = epoch_rng(seed, e)`` (it seeds torch too), so a resumed run draws what an uninterrupted one would;
    2. ``begin_epoch(e)``: the stage's learning rates and train modes;
    3. ``steps_per_epoch`` times ``step(rng)``: one optimisation step (the stage draws its batch, takes its rank's
       part, computes its named loss and calls :func:`descend`), returning its loss terms ``{name: float}``, which
       are summed; the progress bar shows ``shown(terms)`` (default: the terms);
    4. under torchrun (``ranks``), the sums averaged over the ranks and ``model``'s weights checked in sync;
    5. on rank 0 only: the epoch's mean terms through ``log_row(e, means)`` (the stage's row: its total, held-out
       numbers; default: the means) appended to ``log`` with ``epoch`` (1-based), ``seconds`` and
       ``steps_per_second``, then ``save(e + 1)`` (the staged checkpoint of the epochs done).

    Workspace stages call it through :meth:`StageRun.train`; a loop without a workspace (the neural renderer's
    ``fit_renderer``) calls it directly with its own ``log`` and ``save``."""
    from evpcli.train.distributed import Ranks, check_in_sync

    ranks = ranks or Ranks()
    stats = EpochStats()
    with progress.task(title, total=(epochs - start) * steps_per_epoch, unit="steps") as bar:
        for epoch in range(start, epochs):
            rng = epoch_rng(seed, epoch)
            if begin_epoch is not None:
                begin_epoch(epoch)
            sums: dict[str, float] = {}
            t0 = time.perf_counter()
            for _ in range(steps_per_epoch):
                terms = step(rng)
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.advance(1, epoch=epoch + 1, **(shown(terms) if shown is not None else terms))
            dt = time.perf_counter() - t0
            stats.seconds += dt
            stats.steps += steps_per_epoch
            if ranks.distributed:  # the losses of the whole batch: the mean of the ranks' parts
                sums = dict(zip(sums, ranks.mean(list(sums.values())), strict=True))
                stats.rank_hashes = check_in_sync(model, ranks)
            if not ranks.main:
                continue
            means = {k: v / steps_per_epoch for k, v in sums.items()}
            row = log_row(epoch, means) if log_row is not None else means
            if log is not None:
                log.append({"epoch": epoch + 1, **row, "seconds": dt,
                            "steps_per_second": steps_per_epoch / max(dt, 1e-9)})
            if save is not None:
                save(epoch + 1)
    return stats


class StageRun:
    """One training run of a workspace stage under the shared skeleton.

    Opening it claims the run (:class:`TrainingRun`, rank 0 only; ``stack`` releases it), asks rank 0 where it
    resumes (``resume``: :meth:`TrainingRun.resume_point`, else afresh) and tells every rank (``source``, ``start``),
    opens the run's CSV log with ``log_fields`` (rank 0) and takes this rank's ``part`` of each batch of
    ``batch_size``. Then the stage builds its model and optimiser and calls :meth:`restore` (or starts afresh),
    :meth:`train`, :meth:`plot` and :meth:`finish`, and returns :meth:`result`. (The renderer, whose run holds a
    generator, two discriminators and two optimisers, restores them and calls :func:`run_epochs` itself in
    ``fit_renderer``, on this run's ``source``, staging checkpoint and ``log``, then sets ``stats``.)"""

    def __init__(self, ws: Workspace, stage: str, key: str, epochs: int, *, resume: bool, ranks, stack, progress,
                 log_fields: list[str], batch_size: int):
        self.stage, self.key, self.epochs, self.ranks, self.progress = stage, key, int(epochs), ranks, progress
        self.run = stack.enter_context(TrainingRun(ws, stage, key, epochs)) if ranks.main else None
        # rank 0 holds the run and says where it continues; the others load the same checkpoint
        self.source, self.start = ranks.broadcast((self.run.resume_point() if resume else (None, 0))
                                                  if ranks.main else None)
        self.log = CsvLog(self.run.log, log_fields) if ranks.main else None
        self.part = ranks.shard(batch_size)
        self.stats = EpochStats()

    def restore(self, model, optimizer, device) -> bool:
        """Load the resume point's model and optimiser states (and keep the log's rows of its epochs); False when
        the run starts afresh."""
        if self.source is None:
            return False
        load_training_state(self.source, model, optimizer, map_location=device)
        if self.ranks.main:
            self.log.resume(self.start)
        self.progress.log(f"resuming {self.stage} run {self.key} after epoch {self.start}")
        return True

    def save_staging(self, model, optimizer, epoch: int, config: dict) -> None:
        """The resumable checkpoint of ``epoch`` epochs done (rank 0 writes it)."""
        if self.ranks.main:
            save_training_state(self.run.staging, model=model, optimizer=optimizer, epoch=epoch, config=config,
                                key=self.key)

    def train(self, *, seed: int, steps_per_epoch: int, step, model, optimizer, config: dict, begin_epoch=None,
              shown=None, log_row=None) -> bool:
        """The epochs from the resume point (:func:`run_epochs`, the staged checkpoint after each). True on rank 0,
        which goes on to evaluate and publish; the other ranks return ``ranks.broadcast(None)``."""
        self.stats = run_epochs(self.progress, f"train {self.stage}", seed=seed, start=self.start, epochs=self.epochs,
                                steps_per_epoch=steps_per_epoch, step=step, begin_epoch=begin_epoch, shown=shown,
                                log=self.log, log_row=log_row,
                                save=lambda epoch: self.save_staging(model, optimizer, epoch, config),
                                ranks=self.ranks, model=model)
        return self.ranks.main

    def plot(self, columns: list[str], title: str) -> Path:
        """The loss curves of the log (``losses.png`` of the finished model)."""
        return plot_curves(self.log, self.run.file("losses.png"), columns, title)

    def training_metrics(self) -> dict[str, Any]:
        """The metrics every stage reports about its training itself."""
        s = self.stats
        return {"epochs": self.epochs, "steps": s.steps, "train_seconds": s.seconds,
                "steps_per_second": s.steps / s.seconds if s.seconds else None}

    def data_parallel_metrics(self) -> dict[str, Any]:
        """Under torchrun: ``{"data_parallel": {world_size, rank_weight_sha256}}``; empty for a single process."""
        if not self.ranks.distributed:
            return {}
        return {"data_parallel": {"world_size": self.ranks.world_size, "rank_weight_sha256": self.stats.rank_hashes}}

    def finish(self, params: dict, meta: dict, extra_rows: tuple = ()) -> None:
        """Publish the finished model (:meth:`TrainingRun.finish`)."""
        self.run.finish(params, meta, extra_rows)

    def result(self, cls: type, metrics: dict, files: dict[str, Path]) -> TrainResult:
        """The stage's result (``cls``, a :class:`TrainResult`), rank 0's on every rank."""
        s = self.stats
        return self.ranks.broadcast(cls(self.stage, self.run.model_key, self.run.model, self.epochs, self.start,
                                        s.steps, s.seconds, s.steps_per_second, metrics, files, self.key))


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
