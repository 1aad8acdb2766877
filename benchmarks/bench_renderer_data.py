"""The CPU side of neural-renderer training (issue 26): milliseconds per step spent assembling batches
(``train.renderer.make_batch``: crops, guidance maps, part maps, paste masks, the hybrid's warp renders), at the CPU
configuration (128 px) and the GPU one (512 px), apart from the network.

    python benchmarks/bench_renderer_data.py [--steps 6] [--dilate]

carphone is the target (real, 100 frames). ``--dilate`` measures the face region grown by dilation with a disc,
as before (to compare). Prints the median ms per step and what a GPU that runs the generator and discriminators in
``--net-ms`` per step could reach if the data came from this one CPU core (steps/s = 1000 / max(data, net)).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--dilate", action="store_true")
    ap.add_argument("--net-ms", type=float, default=225.0, help="network ms/step on the GPU (H200, measured: 1.8 s "
                                                                 "for 8 steps)")
    args = ap.parse_args(argv)
    import cv2

    from evpcli import media
    from evpcli.config import RENDERER_CPU, RENDERER_GPU, RendererTrainConfig
    from evpcli.face import guidance
    from evpcli.face.landmarks import track_video
    from evpcli.render.warp import WarpRenderer
    from evpcli.train.renderer import make_batch, prepare_target, sequence_starts
    from tests.renderdata import carphone_target

    if args.dilate:
        def face_region(landmarks, size, margin=0.08):
            w, h = size
            mask = np.zeros((h, w), np.uint8)
            cv2.fillPoly(mask, [np.round(guidance.face_outline(landmarks) * 16).astype(np.int32)], 1, cv2.LINE_8,
                         shift=4)
            g = int(round(margin * guidance._iod(np.asarray(landmarks, np.float64))))
            if g > 0:
                mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1)))
            return mask.astype(bool)

        guidance.face_region = face_region
        import evpcli.render.neural as neural

        neural.face_region = face_region
    target = carphone_target()
    cfg = RendererTrainConfig()
    for name, net_cfg in (("128 px (CPU config)", RENDERER_CPU), ("512 px (GPU config)", RENDERER_GPU)):
        data = prepare_target(iter(target.frames), target.landmarks, target.valid, net_cfg, cfg)
        starts = sequence_starts(data, cfg.seq_len)
        rng = np.random.default_rng(0)
        warp = WarpRenderer(data.bank) if net_cfg.hybrid else None
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            make_batch(data, starts, rng, net_cfg, cfg, warp)
            times.append(1000 * (time.perf_counter() - t0))
        ms = statistics.median(times)
        print(f"{name}: data {ms:.0f} ms/step (median of {args.steps}, batch {cfg.batch_size} x {cfg.seq_len} "
              f"frames{', hybrid' if net_cfg.hybrid else ''}); with a GPU network at {args.net_ms:.0f} ms/step: "
              f"{1000 / max(ms, args.net_ms):.1f} steps/s at most from one CPU core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
