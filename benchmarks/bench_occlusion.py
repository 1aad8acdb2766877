"""Occlusion detection on the real composited clips of ``occlusion_clips.py``: per clip, the share of occluded
frames detected and the false alarms on its clean frames, for the current detector of
``evpcli/engines/reliability.py`` (dlib tracking, canonical faces, :func:`appearance_scores`).

Occluded frames: the occluder covers >= 15 % of the lower face; clean frames: it covers none of it (false
alarms are counted there); the frames in between (the hand entering or leaving) are reported apart ("part.":
the share of them detected, either way acceptable). A frame counts as detected when its reliability is below 1
(score >= ``reliability_high``, "any fade") and, separately, when it passes through (score >=
``reliability_low``), or when the tracker marks it invalid.
The held-out clip (``carphone+handDst``) is listed apart. Usage::

    python benchmarks/occlusion_clips.py --hand-dir DIR --out /tmp/occ_clips --no-mp4
    python benchmarks/bench_occlusion.py /tmp/occ_clips [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from occlusion_clips import HELD_OUT  # noqa: E402


def measure(path: Path) -> dict:
    from evpcli.config import RenderConfig
    from evpcli.face.landmarks import track_video
    from evpcli.engines.reliability import appearance_scores, canonical_face

    cfg = RenderConfig()
    z = np.load(path)
    frames, occ, covered = z["frames"], z["occluded"].astype(bool), z["covered"]
    clean = covered <= 0.0  # no occluder pixel over the lower face (frames touched by it are neither)
    partial = ~occ & ~clean
    tr = track_video(frames)
    faces = np.stack([canonical_face(f, lm) for f, lm in zip(frames, tr.landmarks, strict=True)])
    s = appearance_scores(faces, tr.valid)
    out = {"frames": int(len(frames)), "occluded": int(occ.sum()), "held_out": path.stem in HELD_OUT,
           "peak_occluded": float(s[occ].max()) if occ.any() else None, "peak_clean": float(s[clean].max()),
           "partial": int(partial.sum()),
           "partial_detected": float(((s >= cfg.reliability_high) | ~tr.valid)[partial].mean()) if partial.any() else None}
    for key, thr in (("fade", cfg.reliability_high), ("pass", cfg.reliability_low)):
        det = (s >= thr) | ~tr.valid
        out[f"detected_{key}"] = float(det[occ].mean()) if occ.any() else None
        out[f"false_alarm_{key}"] = float(det[clean].mean())
    return out


def main(argv=None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", type=Path, help="folder written by occlusion_clips.py")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = {p.stem: measure(p) for p in sorted(args.clips.glob("*.npz"))}
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    pct = lambda v: "   -" if v is None else f"{100 * v:4.0f}"  # noqa: E731
    print(f"{'clip':22s} {'occ':>4s} {'det>=6':>7s} {'det>=9':>7s} {'fa>=6':>6s} {'fa>=9':>6s} {'part.':>5s} "
          f"{'peak occ':>8s} {'peak clean':>10s}")
    for held in (False, True):
        print("held out" if held else "tuning")
        for name, r in rows.items():
            if r["held_out"] != held:
                continue
            po = "-" if r["peak_occluded"] is None else f"{r['peak_occluded']:.1f}"
            print(f"{name:22s} {r['occluded']:4d} {pct(r['detected_fade']):>6s}% {pct(r['detected_pass']):>6s}% "
                  f"{pct(r['false_alarm_fade']):>5s}% {pct(r['false_alarm_pass']):>5s}% "
                  f"{pct(r['partial_detected']):>4s}% {po:>8s} {r['peak_clean']:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
