"""prepare-dataset throughput by executor: local ``--jobs 1`` and ``2``, Ray with 1 and 2 workers (CPUs).

    python benchmarks/bench_scale.py [--sentences 4] [--emotions neutral,happy,sad] [--size 256] [--corpus DIR]
        [--json out.json]

Writes (once, or uses ``--corpus``) a small synthetic MEAD-layout corpus, then prepares it into a fresh workspace
with each executor and prints clips/s and video frames/s (decode + MFCC + landmark tracking + atomic writes + the
index). Ray's start (``ray.init`` of a local cluster) is timed apart: the rate is the steady one a long run on a
running cluster sees. These per-worker rates are what the capacity plan of docs/scale.md scales up. Needs
``pip install 'evpcli[ray]'`` for the Ray rows (they are skipped without it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from evpcli.prepare import prepare_dataset
from evpcli.workspace import Workspace


def run_prepare(corpus: Path, executor: str, workers: int) -> dict:
    """One prepare-dataset of ``corpus`` into a fresh workspace; the rate and how long the executor took to start."""
    start_s = 0.0
    ray = None
    if executor == "ray":
        import logging

        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        start_s = time.perf_counter() - t0
    root = Path(tempfile.mkdtemp(prefix="evp-bench-scale-"))
    try:
        ws = Workspace(root)
        t0 = time.perf_counter()
        report = prepare_dataset(ws, corpus, "mead", jobs=workers, executor=executor)
        wall = time.perf_counter() - t0
        ws.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if ray is not None:
            ray.shutdown()
    assert report.prepared == report.total and not report.failed, report.failed
    return {"executor": executor, "workers": workers, "clips": report.prepared, "frames": report.frames,
            "seconds": wall, "clips_per_s": report.prepared / wall, "frames_per_s": report.frames / wall,
            "start_seconds": start_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=4)
    ap.add_argument("--emotions", default="neutral,happy,sad")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--corpus", type=Path, help="an existing MEAD-layout corpus to prepare instead")
    ap.add_argument("--repeats", type=int, default=2, help="runs per executor (the median is printed)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args()

    tmp = None
    corpus = args.corpus
    if corpus is None:
        from evpcli.corpus.synth import synth_corpus

        tmp = Path(tempfile.mkdtemp(prefix="evp-bench-corpus-"))
        corpus = tmp / "corpus"
        synth_corpus(corpus, actors=1, sentences=args.sentences, emotions=args.emotions.split(","), levels=(3,),
                     size=args.size, seed=0, jobs=2)
    try:
        import ray  # noqa: F401

        have_ray = True
    except ImportError:
        have_ray = False
    rows = []
    try:
        run_prepare(corpus, "local", 1)  # warm-up: file cache, compiled code on disk
        for executor, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
            if executor == "ray" and not have_ray:
                print(f"{executor} {workers}: skipped (pip install 'evpcli[ray]')")
                continue
            runs = sorted((run_prepare(corpus, executor, workers) for _ in range(args.repeats)),
                          key=lambda r: r["seconds"])
            r = {**runs[len(runs) // 2], "all_seconds": [round(x["seconds"], 2) for x in runs]}
            rows.append(r)
            start = f"; executor start {r['start_seconds']:.1f} s (not counted)" if executor == "ray" else ""
            print(f"{executor:5s} {workers} worker(s): {r['clips']} clips, {r['frames']} frames in {r['seconds']:.1f} s "
                  f"= {r['clips_per_s']:.2f} clips/s, {r['frames_per_s']:.0f} frames/s (runs: {r['all_seconds']} s)"
                  f"{start}", flush=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
