"""Utilities every training loop shares: seeding, resumable checkpoints, a CSV log and a loss-curve plot.

A stage keeps one checkpoint per run (overwritten atomically after every epoch, so an interrupted run loses at
most the epoch in progress) holding the model and optimiser states, the next epoch to run and its configs as
plain dicts; everything loads with ``torch.load(weights_only=True)``. Randomness is drawn per epoch from
:func:`epoch_rng` (seed, epoch), so a resumed run continues exactly as an uninterrupted one would.
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

from evpcli.workspace import atomic_path, load_checkpoint, save_checkpoint


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
