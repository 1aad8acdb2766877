"""Exact dynamic time warping over two sequences of feature rows, compiled with numba (used by build-pairs).

The paper's DTW: frame cost L1 (or Euclidean), steps (i+1, j), (i, j+1), (i+1, j+1), path from (0, 0) to
(N-1, M-1). One compiled pass computes every row's frame costs (in float64, the L1 or Euclidean distance of the
rows) and the accumulated cost ``D[i, j] = c(i, j) + min(D[i-1, j-1], D[i-1, j], D[i, j-1])``; a second walks
back from (N-1, M-1), preferring the diagonal, then (i-1, j), then (i, j-1) on ties. The result is the optimum of
the problem as stated, not an approximation (the tests compare it with a plain dynamic programme).

``window`` > 0 restricts the path to a Sakoe-Chiba band: in every row i, the columns within ``window`` of the
straight line from (0, 0) to (N-1, M-1) (so clips of different lengths keep a band around *their* diagonal),
widened where needed so that a path always exists. The banded optimum can cost more than the exact one.

Compiled functions are cached on disk (``cache=True``): the first call in a fresh environment compiles for
about a second, later processes load the compiled code.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _accumulate(a: np.ndarray, bT: np.ndarray, lo: np.ndarray, hi: np.ndarray, l1: bool) -> np.ndarray:
    """Accumulated cost (N, M) of rows ``a`` (N, D) against ``bT`` (D, M), columns ``lo[i] .. hi[i]`` of row i
    (inf elsewhere)."""
    n, d = a.shape
    m = bT.shape[1]
    D = np.full((n, m), np.inf)
    buf = np.empty(m)
    for i in range(n):
        j0 = lo[i]
        w = hi[i] + 1 - j0
        # frame costs of row i over its band; the loops run over slices from 0 so that numba can drop its
        # negative-index checks and vectorise them (a loop over range(j0, j1) is ~7x slower)
        c = buf[:w]
        c[:] = 0.0
        for k in range(d):
            x = a[i, k]
            bk = bT[k, j0:j0 + w]
            if l1:
                for j in range(w):
                    c[j] += abs(x - bk[j])
            else:
                for j in range(w):
                    y = x - bk[j]
                    c[j] += y * y
        if not l1:
            for j in range(w):
                c[j] = np.sqrt(c[j])
        row = D[i, j0:j0 + w]
        if i == 0:  # lo[0] == 0: only steps (0, 1)
            left = 0.0
            for j in range(w):
                left += c[j]
                row[j] = left
            continue
        up = D[i - 1, j0:j0 + w]
        if j0 == 0:  # column 0: only the step (1, 0)
            left = up[0] + c[0]
            row[0] = left
            first = 1
        else:
            left = np.inf
            first = 0
        for j in range(first, w):
            best = D[i - 1, j0 + j - 1]  # diagonal
            if up[j] < best:
                best = up[j]
            if left < best:
                best = left
            left = c[j] + best
            row[j] = left
    return D


@njit(cache=True, nogil=True)
def _backtrack(D: np.ndarray) -> np.ndarray:
    """The optimal path through an accumulated cost matrix, (L, 2) int64 from (0, 0) to (N-1, M-1)."""
    n, m = D.shape
    i, j = n - 1, m - 1
    path = np.empty((n + m - 1, 2), np.int64)
    k = 0
    path[0, 0], path[0, 1] = i, j
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            diag, up, left = D[i - 1, j - 1], D[i - 1, j], D[i, j - 1]
            if diag <= up and diag <= left:
                i -= 1
                j -= 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        k += 1
        path[k, 0], path[k, 1] = i, j
    return path[: k + 1][::-1].copy()


def band(n: int, m: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Column range ``lo[i] .. hi[i]`` (int64, inclusive) of every row i of an (n, m) DTW; ``window`` 0: all.

    Row i keeps the columns within ``window`` of ``i (m - 1) / (n - 1)``; ``hi`` is widened so that consecutive
    rows overlap by a step (a path from (0, 0) to (n-1, m-1) exists for every window >= 0).
    """
    if window <= 0 or n == 1:
        return np.zeros(n, np.int64), np.full(n, m - 1, np.int64)
    centre = np.arange(n) * ((m - 1) / (n - 1))
    lo = np.clip(np.ceil(centre - window - 1e-9), 0, m - 1).astype(np.int64)
    hi = np.clip(np.floor(centre + window + 1e-9), 0, m - 1).astype(np.int64)
    lo[0], hi[-1] = 0, m - 1
    hi = np.maximum(hi, lo)
    hi[:-1] = np.maximum(hi[:-1], lo[1:] - 1)
    return lo, hi


def dtw(a: np.ndarray, b: np.ndarray, frame_cost: str = "l1", window: int = 0) -> tuple[np.ndarray, float]:
    """Optimal warping path (L, 2) int64 and its cost (the sum of frame costs along it) of (N, D) and (M, D) rows.

    ``frame_cost``: "l1" (sum of absolute differences) or "l2" (Euclidean); ``window`` > 0: Sakoe-Chiba band of
    that many rows around the diagonal (see the module's docstring), 0: unconstrained.
    """
    if frame_cost not in ("l1", "l2"):
        raise ValueError(f"unknown frame cost {frame_cost!r}")
    a = np.ascontiguousarray(a, np.float64)
    bT = np.ascontiguousarray(np.asarray(b, np.float64).T)
    if a.ndim != 2 or bT.ndim != 2 or a.shape[1] != bT.shape[0] or not len(a) or not bT.shape[1]:
        raise ValueError(f"need two non-empty (N, D) and (M, D) arrays, got {np.shape(a)} and {np.shape(b)}")
    lo, hi = band(len(a), bT.shape[1], int(window))
    D = _accumulate(a, bT, lo, hi, frame_cost == "l1")
    return _backtrack(D), float(D[-1, -1])
