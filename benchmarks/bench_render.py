"""Warp renderer: speed on 640x360 frames and the four properties of issue 11, piecewise-affine vs thin-plate.

    python benchmarks/bench_render.py [--frames 100] [--runs 5]

Speed: the carphone clip (real, 176x144) scaled 2.5x and padded to 640x360 (a face about 150 px wide, like a
webcam video), every frame re-rendered with its mouth opened by a commanded sequence; frames/s of
``WarpRenderer.render`` alone (median over runs; one thread, as the pipeline runs it beside the decoder and
encoder), and of the one-pass target analysis (mouth bank + reliability).
Properties (the tests assert them): (a) mean distance of dlib's landmarks on rendered synthetic frames to the
commanded ones, canonical 256 px frame (and of the unrendered frames, for scale); (b) correlation of rendered and
commanded mouth opening; (c) PSNR outside the face mask; (d) carphone cross-frame reenactment, SSIM/PSNR of the
face box against the real frame, beside pasting the source frame.
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

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evpcli.config import RenderConfig  # noqa: E402
from evpcli.engines.warp import WarpRenderer, analyse_target  # noqa: E402
from tests.renderdata import (Target, carphone_target, commanded_openings, landmark_property, open_mouth,  # noqa: E402
                              outside_mask_psnr, reenactment, reenactment_pairs, synth_target)


def widescreen(target: Target, size=(640, 360)) -> Target:
    """The target scaled to the frame height and padded (edge pixels) to ``size``."""
    w, h = size
    k = h / target.frames.shape[1]
    sw = int(round(target.frames.shape[2] * k))
    x0 = (w - sw) // 2
    frames = np.empty((len(target.frames), h, w, 3), np.uint8)
    for i, f in enumerate(target.frames):
        big = cv2.resize(f, (sw, h), interpolation=cv2.INTER_CUBIC)
        frames[i] = cv2.copyMakeBorder(big, 0, 0, x0, w - sw - x0, cv2.BORDER_REPLICATE)
    return Target(frames, target.landmarks * k + [x0, 0], target.valid)


def speed(target: Target, bank, cfg: RenderConfig, n: int, runs: int) -> float:
    idx = np.arange(n) % len(target.frames)
    cmds = [open_mouth(target.landmarks[i], a) for i, a in zip(idx, commanded_openings(n), strict=True)]
    r = WarpRenderer(bank, cfg)
    r.render(target.frames[0], target.landmarks[0], cmds[0], 1.0)  # warm-up
    rates = []
    for _ in range(runs):
        r.reset()
        t0 = time.perf_counter()
        for i, cmd in zip(idx, cmds, strict=True):
            r.render(target.frames[i], target.landmarks[i], cmd, 1.0)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    car = carphone_target()
    wide = widescreen(car)
    t0 = time.perf_counter()
    bank, _ = analyse_target(iter(wide.frames), wide.landmarks, wide.valid)
    analyse_fps = len(wide.frames) / (time.perf_counter() - t0)
    face_w = float(np.median(wide.landmarks[:, 16, 0] - wide.landmarks[:, 0, 0]))
    print(f"speed target: carphone scaled to 640x360, face {face_w:.0f} px wide; bank {len(bank)} entries, "
          f"{bank.crops.nbytes / 1024:.0f} kB; target analysis {analyse_fps:.0f} frames/s")

    synth = synth_target()
    sbank, _ = analyse_target(iter(synth.frames), synth.landmarks, synth.valid)
    cbank, _ = analyse_target(iter(car.frames), car.landmarks, car.valid)
    idx = np.linspace(0, len(synth.frames) - 1, 30).round().astype(int)
    amounts = commanded_openings(len(idx))
    pairs = reenactment_pairs(len(car.frames))

    print(f"{'warp':5} {'frames/s':>9} {'(a) mean px':>11} {'mouth px':>8} {'unrendered':>10} {'(b) r':>6} "
          f"{'(c) PSNR':>8} {'(d) SSIM':>8} {'paste':>6} {'PSNR':>6} {'paste':>6}")
    for warp in ("pwa", "tps"):
        cfg = RenderConfig(warp=warp)
        fps = speed(wide, bank, cfg, args.frames, args.runs)
        a = landmark_property(WarpRenderer(sbank, cfg), synth, idx, amounts)
        c, _ = outside_mask_psnr(WarpRenderer(sbank, cfg), synth, idx[:10], amounts[:10])
        d = reenactment(WarpRenderer(cbank, cfg), car, pairs)
        print(f"{warp:5} {fps:9.0f} {a['mean_px']:11.2f} {a['mouth_px']:8.2f} {a['unrendered_mouth_px']:10.2f} "
              f"{a['opening_r']:6.3f} {c:8.1f} {d['ssim']:8.3f} {d['ssim_paste']:6.3f} {d['psnr']:6.2f} "
              f"{d['psnr_paste']:6.2f}")


if __name__ == "__main__":
    main()
