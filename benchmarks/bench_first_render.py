"""The first render onto a target against a cached one (issue 25: at most about twice), as a user runs them.

    python benchmarks/bench_first_render.py [--runs 3]

Each run: a new workspace, ``evp render`` onto the target (fit + analysis + render), then again with another
emotion (cached). Targets: the astronaut photo and carphone (4 s of ARCTIC speech). Prints the medians and their
ratio; wall times of whole processes (imports included), on a shared machine: compare the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    from real_faces import real_targets

    tmp = Path(tempfile.mkdtemp(prefix="bench-first-"))
    speech = REPO / "tests" / "data" / "arctic_a0007.wav"
    for name, target in real_targets(["astronaut", "carphone"], tmp).items():
        first, cached = [], []
        for k in range(args.runs):
            ws = tmp / f"ws-{name}-{k}"
            for emotion, into in (("happy", first), ("sad", cached)):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "evpcli", "-q", "-w", str(ws), "render", "--audio", str(speech),
                                "--emotion", emotion, "--target", str(target), "--out", str(tmp / f"{name}.mp4")],
                               check=True)
                into.append(time.perf_counter() - t0)
        f, c = statistics.median(first), statistics.median(cached)
        print(f"{name}: first render {f:.1f} s, cached {c:.1f} s (medians of {args.runs}); ratio {f / c:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
