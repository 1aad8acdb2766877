"""MFCC throughput: how many times faster than real time the audio front end runs on 60 s of audio.

    python benchmarks/bench_mfcc.py [--seconds 60] [--runs 7]

Prints the median over several runs (the machines are shared and noisy), for MFCC alone and for MFCC plus
per-frame windows and RMS (what prepare-dataset does per clip).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from evpcli import audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = int(args.seconds * 16000)
    # speech-like test signal: noise shaped by a syllable-rate envelope
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / 16000)
    wav = (0.1 * rng.standard_normal(n) * env).astype(np.float32)
    audio.mfcc(wav[:16000])  # warm-up (imports, filterbank)

    def timed(fn) -> list[float]:
        out = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return out

    frames = audio.n_video_frames(n)
    t_mfcc = timed(lambda: audio.mfcc(wav))
    t_all = timed(lambda: (audio.frame_windows(audio.mfcc(wav), frames), audio.frame_rms(wav, frames)))
    for name, ts in (("mfcc", t_mfcc), ("mfcc+windows+rms", t_all)):
        med = statistics.median(ts)
        print(f"{name:18s} {args.seconds:.0f} s of audio: median {med * 1000:.1f} ms over {args.runs} runs "
              f"= {args.seconds / med:.0f}x real time")


if __name__ == "__main__":
    main()
