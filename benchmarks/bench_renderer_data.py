"""The neural renderer's CPU data pipeline per training step, at 128 px and 512 px: per step (as main had it)
against cached once per target (issue 26), in the training process and with 2 worker processes.

    python benchmarks/bench_renderer_data.py [--steps 16] [--workers 0,2] [--sizes 128,512]

On carphone (real, 176x144), with the default training config (:class:`RendererTrainConfig`: 4 sequences of 3
frames a step, hybrid):

- ``per step``: the former ``make_batch`` (kept here as :func:`per_step_batch`, the code before the cache): every
  step crops, draws the guidance and part maps and paste masks of 12 frames, renders 12 warp inputs and converts
  all of it to float32;
- ``cached``: :func:`evpcli.train.renderer_data.cache_frames` once (its time printed), then the training's
  ``DataLoader`` (:func:`~evpcli.train.renderer_data.batch_loader`): a step gathers uint8 arrays from the cache and
  crops the first frames' previous frames; the conversion to floats and the paste masks' smoothstep are done on
  the training device (:func:`~evpcli.train.renderer_data.batch_tensors`, not counted here: a GPU's work).

With 0 workers the time is the median of the steps; with workers it is the wall time of ``--steps`` batches after
the first (workers overlap), over that count. The projected GPU rate uses the lent H200's profile (issue 26): the
512 px generator's forward passes took 1.8 s for 8 steps (225 ms a step; backward passes and discriminators were
not in that figure, so it is an upper bound): steps/s = 1 / (data + 225 ms) in the training process, 1 / max(data,
225 ms) with workers (the data is made while the GPU trains). The load average is printed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evpcli.train.renderer_data as rdata  # noqa: E402
from evpcli.config import RENDERER_CPU, RENDERER_GPU, RendererTrainConfig  # noqa: E402
from evpcli.face.normalize import apply_transform  # noqa: E402
from evpcli.engines.neural import condition, crop_affine, crop_image, paste_mask, to_unit  # noqa: E402
from tests.renderdata import carphone_target  # noqa: E402

H200_GENERATOR_MS = 1800.0 / 8  # issue 26: the generator's forward passes, 512 px, per step


def per_step_batch(data, starts, rng, net_cfg, cfg, warp) -> dict:
    """The batch as training made it before the cache (main before issue 26's second part), float32 arrays."""
    L, n_tr = cfg.seq_len, data.n_train
    conds, reals, masks, prevs, warps = [], [], [], [], []
    usable = np.flatnonzero(data.usable[:n_tr])
    for t0 in rng.choice(starts, size=cfg.batch_size):
        ts = np.arange(t0, t0 + L)
        affine = crop_affine(data.landmarks[ts[L // 2]], net_cfg, tuple(rng.uniform(-cfg.jitter_px, cfg.jitter_px, 2)))
        crops = [crop_image(data.frames[t], affine, net_cfg.size) for t in ts]
        lmc = [apply_transform(data.landmarks[t], affine) for t in ts]
        conds.append(np.stack([condition(c, lm, net_cfg) for c, lm in zip(crops, lmc, strict=True)]))
        reals.append(np.stack([to_unit(c) for c in crops]))
        masks.append(np.stack([paste_mask(lm, lm, net_cfg.size)[None] for lm in lmc]))
        offset = int(rng.integers(1, cfg.source_offset + 1)) * int(rng.choice([-1, 1]))
        src = np.clip(ts + offset, 0, n_tr - 1)
        src = np.array([s if data.usable[s] else usable[np.abs(usable - s).argmin()] for s in src])
        warp.reset()
        warps.append(np.stack([to_unit(crop_image(warp.render(data.frames[s], data.landmarks[s], data.landmarks[t]),
                                                  affine, net_cfg.size)) for s, t in zip(src, ts, strict=True)]))
        prev_idx = np.clip([src[0] - k for k in range(1, net_cfg.n_prev + 1)], 0, n_tr - 1)
        prevs.append(np.stack([to_unit(crop_image(data.frames[p], affine, net_cfg.size)) for p in prev_idx]))
    return {"cond": np.stack(conds), "real": np.stack(reals), "mask": np.stack(masks), "prev": np.stack(prevs),
            "warp": np.stack(warps)}


class PerStepDataset:
    """Batch i of :func:`per_step_batch` (its own random draws), for a DataLoader with workers."""

    def __init__(self, data, starts, net_cfg, cfg, n):
        from evpcli.engines.warp import RenderConfig, WarpRenderer

        self.args, self.n = (data, starts, net_cfg, cfg), n
        self.warp = WarpRenderer(data.bank, RenderConfig())

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        data, starts, net_cfg, cfg = self.args
        return per_step_batch(data, starts, np.random.default_rng([0, i]), net_cfg, cfg, self.warp)


def loader_ms(loader, steps: int, workers: int) -> float:
    """ms a batch: the median step in-process; with workers the wall time of ``steps`` batches after the first."""
    it = iter(loader)
    next(it)
    times = []
    t_all = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        next(it)
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_all
    del it
    return 1e3 * (statistics.median(times) if workers == 0 else total / steps)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=16, help="batches timed per configuration")
    ap.add_argument("--workers", default="0,2")
    ap.add_argument("--sizes", default="128,512")
    args = ap.parse_args()
    torch.set_num_threads(1)
    workers = [int(w) for w in args.workers.split(",")]
    target = carphone_target()
    print(f"carphone {target.frames.shape[2]}x{target.frames.shape[1]}, {len(target.frames)} frames; batch 4 x 3 "
          f"frames, hybrid; {args.steps} steps a row; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for net_cfg in (c for c in (RENDERER_CPU, RENDERER_GPU) if str(c.size) in args.sizes.split(",")):
        cfg = RendererTrainConfig(epochs=1, steps_per_epoch=args.steps + 1)
        data = rdata.prepare_training_target(iter(target.frames), target.landmarks, target.valid, net_cfg, cfg)
        starts = rdata.sequence_starts(data, cfg.seq_len)
        print(f"\n{net_cfg.size} px (working scale {data.scale:.2f}, {data.n_train} training frames):")
        t0 = time.perf_counter()
        cache = rdata.cache_frames(data, net_cfg, cfg)
        print(f"  cache: {time.perf_counter() - t0:.1f} s once, {cache.nbytes / 2**20:.0f} MiB; "
              f"load {os.getloadavg()[0]:.2f}")
        rows = {}
        for w in workers:
            per_step = torch.utils.data.DataLoader(PerStepDataset(data, starts, net_cfg, cfg, args.steps + 1),
                                                   batch_size=None, num_workers=w)
            cached = rdata.batch_loader(rdata.SequenceDataset(data, cache, starts, net_cfg, cfg), w)
            rows[("per step", w)] = loader_ms(per_step, args.steps, w)
            rows[("cached", w)] = loader_ms(cached, args.steps, w)
            for kind in ("per step", "cached"):
                ms = rows[(kind, w)]
                proj = 1e3 / (ms + H200_GENERATOR_MS) if w == 0 else 1e3 / max(ms, H200_GENERATOR_MS)
                print(f"  data {kind:8}, {w} workers: {ms:7.1f} ms/step"
                      + (f"; projected H200 {proj:.2f} steps/s (generator {H200_GENERATOR_MS:.0f} ms a step)"
                         if net_cfg.size == 512 else "") + f"; load {os.getloadavg()[0]:.2f}")
        for w in workers:
            print(f"  cached vs per step, {w} workers: {rows[('per step', w)] / rows[('cached', w)]:.1f}x")


if __name__ == "__main__":
    main()
