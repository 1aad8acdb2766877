"""3D fit speed: frames per second of the whole-video pose fit on a 250-frame video (landmarks given).

    python benchmarks/bench_fitpose.py [--frames 250] [--runs 7]

The landmarks are those of a talking, moving synthetic head (±20°, noise 0.8 px, 2 % outliers), so the
number measures the fitting alone (landmark tracking is prepare-dataset's cost). Prints the median over runs
(machines are shared and noisy), the iterations' accuracy as a sanity check, and the One-Euro and alignment
costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evpcli.face.pose import align_to_target, fit_landmarks  # noqa: E402
from tests.posedata import posed_sequence, rotation_error_deg  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    lm, _, _, rot = posed_sequence(T=args.frames, seed=0)
    fit_landmarks(lm[:20])  # warm-up
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        fit = fit_landmarks(lm)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    err = rotation_error_deg(fit.rotation, rot)
    print(f"fit {args.frames} frames: median {med * 1000:.0f} ms = {args.frames / med:.0f} frames/s "
          f"(min {min(times) * 1000:.0f} ms, {args.runs} runs)")
    print(f"  rotation error median {np.median(err):.2f}°, 95th percentile {np.percentile(err, 95):.2f}°; "
          f"mean reprojection error {fit.mean_error_px():.2f} px")
    pred = fit.fitted[:, :, :] * 0 + lm[:1]  # any (T, 68, 2) frontal-ish landmarks
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        align_to_target(pred, fit)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"align_to_target {args.frames} frames: median {med * 1000:.0f} ms = {args.frames / med:.0f} frames/s")


if __name__ == "__main__":
    main()
