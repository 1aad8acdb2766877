"""Temporal filters over tracks (numpy only, along axis 0 of (T, ...) arrays): what landmark tracking, pose fitting
and the emotion readings smooth their per-frame values with.

- :func:`savgol`: zero-phase Savitzky-Golay smoothing (scipy's ``savgol_filter`` with ``mode="interp"``, without
  importing scipy.signal); the landmark tracks' (:func:`evpcli.face.landmarks.smooth_landmarks`).
- :func:`moving_average`: a centred moving average, the edges held.
- :func:`one_euro`: the One-Euro filter (causal, adaptive cutoff), the head poses' (:func:`evpcli.face.pose.fit_landmarks`,
  as the EVP release smooths them).
"""

from __future__ import annotations

import math

import numpy as np


def savgol(x: np.ndarray, window: int, order: int) -> np.ndarray:
    """Savitzky-Golay smoothing along axis 0, as ``scipy.signal.savgol_filter(x, window, order, axis=0,
    mode="interp")`` (equal to float64 rounding; tests compare) without importing scipy.signal (0.5-1 s): inside,
    the least-squares polynomial of the ``window`` samples around each one, at its centre; in the first and last
    ``window // 2`` samples, the polynomial fitted to the first (last) ``window`` samples. ``window`` odd, at most
    len(x), greater than ``order``."""
    x = np.asarray(x, np.float64)
    n, half = len(x), window // 2
    if window % 2 == 0 or window > n or window <= order:
        raise ValueError(f"savgol needs an odd window in ({order}, {n}], got {window}")
    flat = x.reshape(n, -1)
    pos = np.arange(window, dtype=np.float64)
    vander = pos[:, None] ** np.arange(order + 1)[None, :]  # (window, order + 1)
    hat = vander @ np.linalg.pinv(vander)  # (window, window): samples -> the fitted polynomial at each position
    out = np.empty_like(flat)
    centre = hat[half]
    strided = np.lib.stride_tricks.sliding_window_view(flat, window, axis=0)  # (n - window + 1, D, window)
    out[half:n - half] = strided @ centre
    out[:half] = hat[:half] @ flat[:window]
    out[n - half:] = hat[window - half:] @ flat[n - window:]
    return out.reshape(x.shape)


def moving_average(x: np.ndarray, k: int) -> np.ndarray:
    """Centred moving average of ``x`` (T, ...) over ``k`` frames along axis 0, the edges held (float64)."""
    x = np.asarray(x, np.float64)
    if k <= 1 or len(x) == 0:
        return x.copy()
    padded = np.pad(x, ((k // 2, k - 1 - k // 2),) + ((0, 0),) * (x.ndim - 1), mode="edge")
    c = np.cumsum(np.concatenate([np.zeros((1, *x.shape[1:])), padded], axis=0), axis=0)
    return (c[k:] - c[:-k]) / k


def one_euro(x: np.ndarray, fps: float, min_cutoff: float = 0.01, beta: float = 0.7, d_cutoff: float = 1.0) -> np.ndarray:
    """One-Euro filter (Casiez et al. 2012) along axis 0 of (T, D), each column on its own.

    The cutoff is ``min_cutoff + beta * |dx/dt|`` (Hz, with dx/dt in the column's units per second), so slow
    changes are smoothed hard and fast ones follow with little lag. EVP's release: min cutoff 0.01, beta 0.7.
    """
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    out[0] = x[0]
    dx_prev = np.zeros(x.shape[1:])
    te = 1.0 / fps

    def alpha(cutoff):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    a_d = alpha(d_cutoff)
    for i in range(1, len(x)):  # a recursive filter: the loop over time is inherent (cheap: D values per step)
        dx = (x[i] - out[i - 1]) / te
        dx_hat = a_d * dx + (1 - a_d) * dx_prev
        a = alpha(min_cutoff + beta * np.abs(dx_hat))
        out[i] = a * x[i] + (1 - a) * out[i - 1]
        dx_prev = dx_hat
    return out
