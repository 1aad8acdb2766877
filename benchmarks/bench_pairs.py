"""build-pairs speed: DTW-aligned pairs per second, before (dtaidistance C over thermometer codes) and after (exact
compiled DTW, :mod:`evpcli.dtw`), on the same pairs; the alternatives measured; the --window band.

    python benchmarks/bench_pairs.py [--runs 5] [--windows 5,10,20,50]
    python benchmarks/bench_pairs.py --workspace WS [--limit 300]   # also every pair of a prepared workspace

The clips are 3.0 s of real speech (CMU ARCTIC a0007) and emotional variants of it (librosa tempo, pitch and
gain changes; 2.3-4.0 s), so paths are not diagonal. Timed per pair: MFCC rows to what build-pairs stores (the
warping path, the aligned window indices and the two row maps). "Before" is the implementation build-pairs used
until now, kept here verbatim (:func:`old_dtw_path`): dtaidistance's C DTW over thermometer codes, the exact
optimum of L1 on a 2-unit grid only. "After" is :func:`evpcli.pairs.dtw_path`, the exact L1 optimum. With
``--workspace``, the pairs are those build-pairs would align (every two clips of one actor and sentence in
different emotions), read from the MFCC artifacts, with the old method timed on the first ``--limit`` pairs
only (it is slow) and both on those same pairs. Prints medians over runs (pairs/s; before and after in alternating
runs, and the median of their per-run ratios), and the numba compile and cache-load times (fresh processes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from evpcli import audio, media
from evpcli.config import PairsConfig
from evpcli.pairs import align_windows, dtw_path, row_map

ARCTIC = Path(__file__).resolve().parents[1] / "tests" / "data" / "arctic_a0007.wav"


# --------------------------------------------------------------------------- before: the previous implementation
def thermometer_code(a: np.ndarray, b: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Codes whose squared Euclidean distance is the L1 distance of the rows quantised to a grid of ``step``."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    lo = np.minimum(a.min(0), b.min(0))
    qa = np.floor((a - lo) / step).astype(np.int64)
    qb = np.floor((b - lo) / step).astype(np.int64)
    qmax = np.maximum(qa.max(0), qb.max(0))
    scale = np.sqrt(step)

    def code(q: np.ndarray) -> np.ndarray:
        cols = [(q[:, d:d + 1] > np.arange(qmax[d])[None, :]) for d in range(q.shape[1])]
        return np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float64) * scale

    return code(qa), code(qb)


def old_dtw_path(a: np.ndarray, b: np.ndarray, frame_cost: str = "l1", step: float = 2.0,
                 **dtai) -> tuple[np.ndarray, float]:
    """build-pairs' DTW until now: dtaidistance C; L1 via thermometer codes (``dtai``: window=, use_pruning=)."""
    from dtaidistance import dtw, dtw_ndim

    if frame_cost == "l1":
        ca, cb = thermometer_code(a, b, step)
        if ca.shape[1] == 0:  # both sequences constant: any monotone path costs 0
            ca, cb = np.zeros((len(a), 1)), np.zeros((len(b), 1))
        path, dist = dtw_ndim.warping_path(ca, cb, use_c=True, include_distance=True, **dtai)
        return np.asarray(path, dtype=np.int64), float(dist) ** 2
    a64, b64 = np.ascontiguousarray(a, np.float64), np.ascontiguousarray(b, np.float64)
    dist, paths = dtw_ndim.warping_paths(a64, b64, use_c=True, inner_dist="euclidean", **dtai)
    return np.asarray(dtw.best_path(paths), dtype=np.int64), float(dist)


# --------------------------------------------------------------------------- other exact options measured
def librosa_dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """scipy's C cityblock cost matrix + librosa.sequence.dtw (numba DP and backtrack)."""
    import librosa
    from scipy.spatial.distance import cdist

    D, wp = librosa.sequence.dtw(C=cdist(a, b, "cityblock"), backtrack=True)
    return np.ascontiguousarray(wp[::-1], dtype=np.int64), float(D[-1, -1])


_matrix_dp = None


def cdist_numba_dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """scipy's C cityblock cost matrix + a numba DP over it, the same backtrack as evpcli.dtw."""
    global _matrix_dp
    from scipy.spatial.distance import cdist

    from evpcli.dtw import _backtrack

    if _matrix_dp is None:
        from numba import njit

        @njit(cache=False)
        def dp(C):
            n, m = C.shape
            D = np.empty((n, m))
            D[0, 0] = C[0, 0]
            for j in range(1, m):
                D[0, j] = D[0, j - 1] + C[0, j]
            for i in range(1, n):
                D[i, 0] = D[i - 1, 0] + C[i, 0]
                for j in range(1, m):
                    D[i, j] = C[i, j] + min(D[i - 1, j - 1], D[i - 1, j], D[i, j - 1])
            return D

        _matrix_dp = dp
    D = _matrix_dp(cdist(a, b, "cityblock"))
    return _backtrack(D), float(D[-1, -1])


def plain_dtw_cost(a: np.ndarray, b: np.ndarray) -> float:
    """Textbook DTW: Python loops over a numpy L1 cost matrix."""
    cost = np.abs(a[:, None, :].astype(np.float64) - b[None, :, :]).sum(-1)
    n, m = cost.shape
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, n + 1):
        row, prev, ci = D[i], D[i - 1], cost[i - 1]
        for j in range(1, m + 1):
            row[j] = ci[j - 1] + min(prev[j], row[j - 1], prev[j - 1])
    return float(D[n, m])


def l1_along(path: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a[path[:, 0]].astype(np.float64) - b[path[:, 1]]).sum())


# --------------------------------------------------------------------------- timing
def stored(fn, a: np.ndarray, b: np.ndarray, na: int, nb: int):
    """What build-pairs computes per pair: path, aligned windows, row maps both ways."""
    path, cost = fn(a, b)
    return path, cost, align_windows(path, na, nb), row_map(path, len(a)), row_map(path[:, ::-1], len(b))


def _run(fn, pairs, min_seconds: float) -> float:
    """Pairs/s of one run: through the pairs at least once, repeated until ``min_seconds`` have passed (so fast
    methods are not timed over a few milliseconds)."""
    done, t0 = 0, time.perf_counter()
    while done < len(pairs) or time.perf_counter() - t0 < min_seconds:
        stored(fn, *pairs[done % len(pairs)])
        done += 1
    return done / (time.perf_counter() - t0)


def rate(fn, pairs, runs: int, min_seconds: float = 0.3) -> float:
    """Median pairs/s over runs (one warm-up pair first)."""
    stored(fn, *pairs[0])
    return statistics.median(_run(fn, pairs, min_seconds) for _ in range(runs))


def compare(before, after, pairs, runs: int, min_seconds: float = 0.3) -> tuple[float, float, float]:
    """Median pairs/s of two methods timed in alternating runs (the shared machine's load changes by the minute),
    and the median of the per-run ratios after / before."""
    stored(before, *pairs[0])
    stored(after, *pairs[0])
    rb, ra = [], []
    for _ in range(runs):
        rb.append(_run(before, pairs, min_seconds))
        ra.append(_run(after, pairs, min_seconds))
    return statistics.median(rb), statistics.median(ra), statistics.median(a / b for a, b in zip(ra, rb, strict=True))


def jit_times() -> tuple[float, float]:
    """Seconds for the first dtw_path call in a fresh process: compiling (empty numba cache), loading the cache."""
    code = ("import time, numpy as np; t0 = time.perf_counter(); from evpcli.pairs import dtw_path; "
            "dtw_path(np.zeros((3, 12), np.float32), np.ones((4, 12), np.float32)); print(time.perf_counter() - t0)")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": os.pathsep.join(sys.path)}
        out = [float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True).stdout) for _ in range(2)]
    return out[0], out[1]


def clips() -> list[np.ndarray]:
    import librosa

    wav = media.load_audio(ARCTIC)[: 3 * 16000]
    out = [wav]
    for rate_, steps, gain in ((1.25, 2.0, 1.5), (0.75, -2.0, 0.6), (1.1, 4.0, 1.2)):
        v = librosa.effects.pitch_shift(librosa.effects.time_stretch(wav, rate=rate_), sr=16000, n_steps=steps)
        out.append((gain * v).astype(np.float32))
    return out


def workspace_pairs(root: str) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """Every pair build-pairs would align in a prepared workspace (read only): (mfcc a, mfcc b, frames a, b)."""
    from evpcli.pairs import _groups, candidate_pairs
    from evpcli.workspace import KIND_MFCC, Workspace, load_npz

    ws = Workspace(root)
    mfcc = {a["clip_id"]: a for a in ws.artifacts(KIND_MFCC)}
    out = []
    for group in _groups(ws.clips(status="ok")).values():
        feats = []
        for c in group:
            f = load_npz(mfcc[c.clip_id]["path"])
            feats.append((np.asarray(f["mfcc"], np.float32), int(f["n_frames"])))
        for a, b in candidate_pairs(group):
            out.append((feats[a][0], feats[b][0], feats[a][1], feats[b][1]))
    return out


def report_window(pairs, windows: list[int], runs: int) -> None:
    """Speed of the banded DTW and how often / how much its path costs more than the exact optimum."""
    exact = [dtw_path(a, b)[1] for a, b, _, _ in pairs]
    for w in windows:
        cfg = PairsConfig(window=w)
        _, r, speed_up = compare(dtw_path, lambda a, b, cfg=cfg: dtw_path(a, b, cfg), pairs, runs)
        excess = np.array([dtw_path(a, b, cfg)[1] / e - 1 for (a, b, _, _), e in zip(pairs, exact, strict=True)])
        worse = excess > 1e-12
        print(f"  --window {w:4d} ({w * 10} ms): {r:8.1f} pairs/s = {speed_up:4.1f}x exact; costs more than "
              f"the exact optimum in {worse.sum()} of {len(pairs)} pairs ({100 * worse.mean():.1f} %), "
              f"by {100 * excess[worse].mean() if worse.any() else 0:.2f} % on average, "
              f"{100 * excess.max():.2f} % at most")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--windows", default="5,10,20,50", help="--window values (MFCC rows) to report")
    ap.add_argument("--workspace", help="also time every pair of this prepared workspace (read only)")
    ap.add_argument("--limit", type=int, default=300, help="workspace pairs timed with the old method")
    args = ap.parse_args()
    windows = [int(w) for w in args.windows.split(",") if w]

    compile_s, load_s = jit_times()
    print(f"numba: first call in a fresh process {compile_s:.2f} s compiling, {load_s:.2f} s from its disk cache "
          "(import included)")

    wavs = clips()
    feats = [(audio.mfcc(w), audio.n_video_frames(len(w))) for w in wavs]
    pairs = [(feats[a][0], feats[b][0], feats[a][1], feats[b][1]) for a in range(4) for b in range(a + 1, 4)]
    print(f"clips: {', '.join(f'{len(w) / 16000:.2f} s' for w in wavs)} ({len(pairs)} pairs per run)")

    a, b = pairs[1][0], pairs[1][1]
    exact = plain_dtw_cost(a, b)
    p_old, _ = old_dtw_path(a, b)
    p_new, c_new = dtw_path(a, b)
    print(f"L1 path cost, pair 0-2: textbook DP optimum {exact:.4f}; after {l1_along(p_new, a, b):.4f} "
          f"(reported {c_new:.4f}); before {l1_along(p_old, a, b):.4f} (+{100 * (l1_along(p_old, a, b) / exact - 1):.2f} %)")

    before, after, ratio = compare(old_dtw_path, dtw_path, pairs, args.runs)
    print(f"L1 before (dtaidistance C, thermometer codes): {before:8.1f} pairs/s")
    print(f"L1 after  (evpcli.dtw, exact):                  {after:8.1f} pairs/s; after / before {ratio:.0f}x "
          "(median of alternating runs)")
    before2, after2, ratio2 = compare(lambda a, b: old_dtw_path(a, b, "l2"),
                                      lambda a, b: dtw_path(a, b, PairsConfig(frame_cost="l2")), pairs, args.runs)
    print(f"l2 before (dtaidistance C warping_paths + best_path): {before2:8.1f} pairs/s; after (evpcli.dtw): "
          f"{after2:8.1f} pairs/s; {ratio2:.1f}x")
    print("other options, L1 (pairs/s; all but the thermometer codes exact):")
    options = [
        ("dtaidistance thermometer, window=50", lambda a, b: old_dtw_path(a, b, window=50)),
        ("dtaidistance thermometer, use_pruning", lambda a, b: old_dtw_path(a, b, use_pruning=True)),
        ("scipy cdist cityblock + librosa.sequence.dtw(C=)", librosa_dtw_path),
        ("scipy cdist cityblock + numba DP over the matrix", cdist_numba_dtw_path),
    ]
    for name, fn in options:
        print(f"  {name:50s} {rate(fn, pairs, args.runs):8.1f}")
    print("band (--window), against the exact optimum:")
    report_window(pairs, windows, args.runs)

    if args.workspace:
        wpairs = workspace_pairs(args.workspace)
        some = wpairs[: args.limit]
        secs = [(len(a) + len(b)) / 200 for a, b, _, _ in wpairs]
        print(f"workspace {args.workspace}: {len(wpairs)} pairs of {min(secs):.1f}-{max(secs):.1f} s (mean length)")
        before, after_some, ratio = compare(old_dtw_path, dtw_path, some, max(1, args.runs // 2))
        print(f"  first {len(some)} pairs: before {before:.1f} pairs/s, after {after_some:.1f} pairs/s; "
              f"after / before {ratio:.0f}x")
        check = wpairs[:: max(1, len(wpairs) // 5)][:5]
        gap = max(abs(dtw_path(a, b)[1] / plain_dtw_cost(a, b) - 1) for a, b, _, _ in check)
        print(f"  after vs the textbook DP on {len(check)} pairs: largest relative difference {gap:.1e}")
        worse = [l1_along(old_dtw_path(a, b)[0], a, b) / dtw_path(a, b)[1] - 1 for a, b, _, _ in some]
        print(f"  before's paths cost {100 * np.mean(worse):.2f} % more than the exact L1 optimum on average "
              f"({100 * np.max(worse):.2f} % at most)")
        after_all = rate(dtw_path, wpairs, max(1, args.runs // 2))
        print(f"  all {len(wpairs)} pairs after: {after_all:.1f} pairs/s ({len(wpairs) / after_all:.1f} s)")
        report_window(wpairs, windows, max(1, args.runs // 2))


if __name__ == "__main__":
    main()
