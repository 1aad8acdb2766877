"""build-pairs speed: DTW-aligned pairs per second for 3 s clips, against a plain dynamic programme.

    python benchmarks/bench_pairs.py [--runs 5] [--pairs 8]

The clips are 3.0 s of real speech (CMU ARCTIC a0007) and emotional variants of it (librosa tempo, pitch and
gain changes; 2.3-4.0 s), so paths are not diagonal. Timed per pair: MFCC rows to aligned window indices, i.e.
:func:`evpcli.pairs.dtw_path` (dtaidistance C; L1 via thermometer codes, and the Euclidean variant) plus
:func:`evpcli.pairs.align_windows`. The plain implementation is the textbook DP with the same L1 cost and steps in
Python loops over a numpy cost matrix, then a backtrack; the DP of the tests (frame cost computed in the loop) is
timed too. Prints medians over runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from evpcli import audio, media
from evpcli.config import PairsConfig
from evpcli.pairs import align_windows, dtw_path

ARCTIC = Path(__file__).resolve().parents[1] / "tests" / "data" / "arctic_a0007.wav"


def plain_dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """Textbook DTW: L1 frame costs, D[i,j] = c + min(D[i-1,j], D[i,j-1], D[i-1,j-1]), then backtrack."""
    cost = np.abs(a[:, None, :].astype(np.float64) - b[None, :, :]).sum(-1)
    n, m = cost.shape
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, n + 1):
        row, prev, ci = D[i], D[i - 1], cost[i - 1]
        for j in range(1, m + 1):
            row[j] = ci[j - 1] + min(prev[j], row[j - 1], prev[j - 1])
    i, j, path = n, m, [(n - 1, m - 1)]
    while (i, j) != (1, 1):
        steps = [(D[i - 1, j - 1], i - 1, j - 1), (D[i - 1, j], i - 1, j), (D[i, j - 1], i, j - 1)]
        _, i, j = min(steps)
        path.append((i - 1, j - 1))
    return np.array(path[::-1]), float(D[n, m])


def test_style_plain_dtw(a: np.ndarray, b: np.ndarray) -> float:
    """The plain DP of tests/test_pairs.py: frame costs computed inside the double loop."""
    n, m = len(a), len(b)
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            D[i, j] = np.abs(a[i - 1] - b[j - 1]).sum() + min(D[i - 1, j], D[i, j - 1], D[i - 1, j - 1])
    return float(D[n, m])


def clips() -> list[np.ndarray]:
    import librosa

    wav = media.load_audio(ARCTIC)[: 3 * 16000]
    out = [wav]
    for rate, steps, gain in ((1.25, 2.0, 1.5), (0.75, -2.0, 0.6), (1.1, 4.0, 1.2)):
        v = librosa.effects.pitch_shift(librosa.effects.time_stretch(wav, rate=rate), sr=16000, n_steps=steps)
        out.append((gain * v).astype(np.float32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=6, help="pairs per run (all pairs of the 4 clips)")
    args = ap.parse_args()
    wavs = clips()
    feats = [(audio.mfcc(w), audio.n_video_frames(len(w))) for w in wavs]
    pairs = [(a, b) for a in range(len(feats)) for b in range(a + 1, len(feats))][: args.pairs]
    print(f"clips: {', '.join(f'{len(w) / 16000:.2f} s' for w in wavs)} ({len(pairs)} pairs per run)")

    def rate(fn, runs: int) -> float:
        fn(*pairs[0])  # warm-up
        per = []
        for _ in range(runs):
            t0 = time.perf_counter()
            for a, b in pairs:
                fn(a, b)
            per.append(len(pairs) / (time.perf_counter() - t0))
        return statistics.median(per)

    def ours(cfg: PairsConfig):
        def run(a, b):
            path, _ = dtw_path(feats[a][0], feats[b][0], cfg)
            return align_windows(path, feats[a][1], feats[b][1])
        return run

    def plain(a, b):
        path, _ = plain_dtw_path(feats[a][0], feats[b][0])
        return align_windows(path, feats[a][1], feats[b][1])

    # the two L1 implementations agree on the optimum up to the documented quantisation
    p_c, c_c = dtw_path(feats[0][0], feats[2][0])
    _, c_plain = plain_dtw_path(feats[0][0], feats[2][0])
    exact_cost_of_c_path = float(np.abs(feats[0][0][p_c[:, 0]] - feats[2][0][p_c[:, 1]]).sum())
    print(f"L1 path cost: C (thermometer) path {exact_cost_of_c_path:.1f} vs plain optimum {c_plain:.1f} "
          f"(+{100 * (exact_cost_of_c_path / c_plain - 1):.2f} %)")

    r_l1 = rate(ours(PairsConfig()), args.runs)
    r_l2 = rate(ours(PairsConfig(frame_cost="l2")), args.runs)
    r_plain = rate(plain, max(1, args.runs // 2))
    t0 = time.perf_counter()
    test_style_plain_dtw(feats[0][0], feats[1][0])
    r_test = 1.0 / (time.perf_counter() - t0)
    print(f"C DTW, L1 (thermometer, step {PairsConfig().l1_step}): {r_l1:8.1f} pairs/s  = {r_l1 / r_plain:6.1f}x plain, "
          f"{r_l1 / r_test:6.1f}x the tests' plain DP")
    print(f"C DTW, Euclidean frame cost:        {r_l2:8.1f} pairs/s  = {r_l2 / r_plain:6.1f}x plain, "
          f"{r_l2 / r_test:6.1f}x the tests' plain DP")
    print(f"plain DP (Python loops over a numpy L1 cost matrix): {r_plain:6.1f} pairs/s")
    print(f"plain DP as written in tests/test_pairs.py (cost per cell in the loop): {r_test:6.2f} pairs/s")


if __name__ == "__main__":
    main()
