"""The neural renderer's training step split into its CPU data pipeline and its network, at 128 px and 512 px.

    python benchmarks/bench_renderer_data.py [--steps 8] [--masks dilate,distance] [--net-steps 4] [--net-512]

On carphone (real, 176x144), with the default training config (:class:`RendererTrainConfig`: 4 sequences of 3
frames a step, hybrid): the milliseconds per step of :func:`evpcli.train.renderer.make_batch` (everything the CPU
does to assemble a batch: crops, guidance maps, part maps, paste masks, the warp renderer's input), broken down
into its parts, for each mask method (``dilate``: the former ``cv2.dilate`` by an elliptical kernel, patched in
here for the comparison; ``distance``: the code as it is), at :data:`RENDERER_CPU` (128 px) and
:data:`RENDERER_GPU` (512 px). Then the network's share on this CPU (one torch thread): ``--net-steps`` training
steps of :func:`fit_renderer` at 128 px, minus their data time (``--net-512`` also at 512 px: minutes a step on
2 cores). Medians over steps; the load average is printed.

The projected GPU rate uses the lent H200's profile (issue 26): the 512 px generator's forward passes took
1.8 s for 8 steps (225 ms/step; the backward passes and discriminators were not in that figure, so the projection
is an upper bound): steps/s = 1 / (data + 225 ms) with the data made in the training process, as it is.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evpcli.face.guidance as guidance  # noqa: E402
import evpcli.engines.neural as neural  # noqa: E402
import evpcli.train.renderer as trainer  # noqa: E402
from evpcli.config import RENDERER_CPU, RENDERER_GPU, RendererTrainConfig  # noqa: E402
from tests.renderdata import carphone_target  # noqa: E402

H200_GENERATOR_MS = 1800.0 / 8  # issue 26: the generator's forward passes, 512 px, per step
PARTS = {"condition": (trainer, "condition"), "paste_mask": (trainer, "paste_mask"),
         "crop_image": (trainer, "crop_image")}


def face_region_dilate(landmarks, size, margin=0.08):
    """The former face_region: the polygon dilated by an elliptical kernel of 2 grow + 1 pixels."""
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(guidance.face_outline(landmarks) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    grow = int(round(margin * guidance._iod(np.asarray(landmarks, np.float64))))
    if grow > 0:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return mask.astype(bool)


class Timers:
    """Wraps module functions to add up their wall time (nested calls counted in each)."""

    def __init__(self):
        self.total = defaultdict(float)
        self.saved = []

    def wrap(self, module, name, label):
        fn = getattr(module, name)

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.total[label] += time.perf_counter() - t0

        self.saved.append((module, name, fn))
        setattr(module, name, timed)

    def restore(self):
        for module, name, fn in reversed(self.saved):
            setattr(module, name, fn)
        self.saved = []


def use_masks(kind: str):
    fn = face_region_dilate if kind == "dilate" else ORIGINAL_FACE_REGION
    guidance.face_region = fn
    neural.face_region = fn


ORIGINAL_FACE_REGION = guidance.face_region


def data_ms(data, net_cfg, cfg, steps: int) -> tuple[float, dict]:
    from evpcli.engines.warp import RenderConfig, WarpRenderer

    warp = WarpRenderer(data.bank, RenderConfig()) if net_cfg.hybrid else None
    starts = trainer.sequence_starts(data, cfg.seq_len)
    rng = np.random.default_rng(0)
    per_step, parts = [], defaultdict(list)
    for _ in range(steps):
        tm = Timers()
        for label, (mod, name) in PARTS.items():
            tm.wrap(mod, name, label)
        if warp is not None:
            tm.wrap(warp, "render", "warp.render")
        t0 = time.perf_counter()
        trainer.make_batch(data, starts, rng, net_cfg, cfg, warp)
        per_step.append(time.perf_counter() - t0)
        tm.restore()
        if warp is not None:
            del warp.render  # the instance attribute the wrapper set
        for k, v in tm.total.items():
            parts[k].append(v)
    return 1e3 * statistics.median(per_step), {k: 1e3 * statistics.median(v) for k, v in parts.items()}


def net_ms(data, net_cfg, cfg, steps: int) -> float:
    """Median ms/step of fit_renderer's steps minus their make_batch time (one epoch of ``steps``)."""
    tm = Timers()
    tm.wrap(trainer, "make_batch", "data")
    one = dataclasses.replace(cfg, epochs=1, steps_per_epoch=steps)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        trained = trainer.fit_renderer(data, net_cfg, one, Path(tmp) / "c.pt", Path(tmp) / "l.csv", heldout_every=0)
        total = time.perf_counter() - t0
    tm.restore()
    del trained
    return 1e3 * (total - tm.total["data"]) / steps


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=8, help="make_batch calls per configuration")
    ap.add_argument("--masks", default="dilate,distance")
    ap.add_argument("--net-steps", type=int, default=4, help="training steps for the network's share (0: skip)")
    ap.add_argument("--net-512", action="store_true", help="also time the 512 px network on this CPU")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = RendererTrainConfig()
    target = carphone_target()
    print(f"carphone {target.frames.shape[2]}x{target.frames.shape[1]}, {len(target.frames)} frames; batch "
          f"{cfg.batch_size} x {cfg.seq_len} frames, hybrid; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    for net_cfg in (RENDERER_CPU, RENDERER_GPU):
        data = trainer.prepare_target(iter(target.frames), target.landmarks, target.valid, net_cfg, cfg)
        print(f"\n{net_cfg.size} px (working scale {data.scale:.2f}):")
        rows = {}
        for kind in args.masks.split(","):
            use_masks(kind)
            ms, parts = data_ms(data, net_cfg, cfg, args.steps)
            rows[kind] = ms
            print(f"  data, masks by {kind:8}: {ms:7.1f} ms/step (median of {args.steps}; "
                  + ", ".join(f"{k} {v:.1f}" for k, v in sorted(parts.items())) + f"); load {os.getloadavg()[0]:.2f}")
        use_masks("distance")
        if "dilate" in rows and "distance" in rows:
            print(f"  data speed-up: {rows['dilate'] / rows['distance']:.1f}x")
        if net_cfg.size == 512:
            for kind, ms in rows.items():
                print(f"  projected H200 steps/s with masks by {kind}: {1e3 / (ms + H200_GENERATOR_MS):.2f} "
                      f"(data {ms:.0f} ms + generator {H200_GENERATOR_MS:.0f} ms a step, one process)")
        if args.net_steps and (net_cfg.size == 128 or args.net_512):
            print(f"  network on this CPU (1 thread): {net_ms(data, net_cfg, cfg, args.net_steps):.0f} ms/step "
                  f"(mean of {args.net_steps}); load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
