"""3D fit speed: frames per second of the whole-video pose fit on a 250-frame video (landmarks given).

    python benchmarks/bench_fitpose.py [--frames 250] [--runs 7] [--synth]

The landmarks are those of a talking, moving synthetic head (±20°, noise 0.8 px, 2 % outliers), so the
number measures the fitting alone (landmark tracking is prepare-dataset's cost). Prints the median over runs
(machines are shared and noisy), the iterations' accuracy as a sanity check, and the One-Euro and alignment
costs. ``--synth`` also measures accuracy on the synthetic corpus (every emotion at levels 1 and 3, four
actors): rotation error of the fit of dlib-tracked landmarks of the rendered video, and of the ground-truth
landmarks, against the known pose (times each actor's rest pose, see ``tests/posedata.synth_expected_rotation``).
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
    ap.add_argument("--synth", action="store_true", help="also measure accuracy on synthetic videos")
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
    if args.synth:
        synth_accuracy()


def synth_accuracy() -> None:
    from evpcli.config import EMOTIONS
    from evpcli.corpus.synth import make_clip
    from evpcli.face.landmarks import track_video
    from tests.posedata import synth_expected_rotation

    tracked, truth = {}, {}
    for i, emotion in enumerate(EMOTIONS):
        for level in (1, 3):
            clip = make_clip(i % 4, emotion, level, i % 6)
            expected = synth_expected_rotation(clip.gt)
            track = track_video(clip.frames)
            tracked.setdefault(emotion, []).append(
                rotation_error_deg(fit_landmarks(track.landmarks, track.valid).rotation, expected))
            truth.setdefault(emotion, []).append(rotation_error_deg(fit_landmarks(clip.gt["landmarks"]).rotation, expected))
    for name, errs in (("dlib-tracked landmarks", tracked), ("ground-truth landmarks", truth)):
        every = np.concatenate([e for v in errs.values() for e in v])
        per = "  ".join(f"{k} {np.median(np.concatenate(v)):.1f}/{np.percentile(np.concatenate(v), 95):.1f}"
                        for k, v in errs.items())
        print(f"synthetic videos, {name}: rotation error median {np.median(every):.2f}°, 95th percentile "
              f"{np.percentile(every, 95):.2f}° ({len(every)} frames)\n  per emotion median/p95: {per}")


if __name__ == "__main__":
    main()
