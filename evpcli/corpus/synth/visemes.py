"""Visemes: espeak phonemes -> mouth tracks (opening, width, rounding) per video frame, with coarticulation,
and the 3D lip and jaw offsets those tracks make."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import scipy.ndimage

from evpcli.corpus.synth.style import FPS
from evpcli.face.parts import LOWER_OUTER_LIP, MOUTH, side_of_midline

# (opening 0..1, width -1..1, rounding 0..1) per phoneme class; espeak English mnemonics.
_CONSONANTS: dict[str, tuple[float, float, float]] = {
    **dict.fromkeys(["p", "b", "m"], (0.0, 0.0, 0.0)),
    **dict.fromkeys(["f", "v"], (0.06, 0.0, 0.0)),
    **dict.fromkeys(["T", "D"], (0.2, 0.1, 0.0)),
    **dict.fromkeys(["t", "d", "n", "l", "s", "z", "t#", "d#", "l/", "n-", "l-", "?"], (0.16, 0.15, 0.0)),
    **dict.fromkeys(["S", "Z", "tS", "dZ"], (0.18, 0.0, 0.55)),
    **dict.fromkeys(["k", "g", "N", "h", "x"], (0.28, 0.0, 0.0)),
    **dict.fromkeys(["r", "r-", "*", "R"], (0.2, 0.0, 0.45)),
    **dict.fromkeys(["w", "W"], (0.1, 0.0, 0.9)),
    "j": (0.18, 0.4, 0.0),
}
_VOWELS: tuple[tuple[str, tuple[float, float, float]], ...] = (  # longest prefix first
    ("aI", (0.95, 0.3, 0.0)), ("aU", (0.95, 0.0, 0.3)), ("oU", (0.55, 0.0, 0.75)), ("oI", (0.65, 0.0, 0.6)),
    ("eI", (0.55, 0.5, 0.0)), ("e@", (0.6, 0.3, 0.0)), ("i@", (0.35, 0.6, 0.0)), ("U@", (0.4, 0.0, 0.6)),
    ("A", (1.0, 0.1, 0.0)), ("a", (0.95, 0.2, 0.0)), ("0", (0.8, 0.0, 0.5)), ("O", (0.75, 0.0, 0.7)),
    ("o", (0.6, 0.0, 0.75)), ("u", (0.3, 0.0, 1.0)), ("U", (0.35, 0.0, 0.6)), ("i", (0.3, 0.8, 0.0)),
    ("I", (0.35, 0.6, 0.0)), ("E", (0.65, 0.45, 0.0)), ("e", (0.6, 0.5, 0.0)), ("V", (0.7, 0.1, 0.0)),
    ("3", (0.5, 0.1, 0.2)), ("@", (0.45, 0.1, 0.0)),
)


def viseme(name: str) -> tuple[float, float, float, bool]:
    """(opening, width, rounding, lips closed) for an espeak phoneme name; stress opens vowels wider."""
    stressed = name.startswith("'")
    core = re.sub(r"^['',%=]+", "", name).replace(":", "").replace(";", "")
    if not core or core.startswith("_"):
        return 0.0, 0.0, 0.0, False
    if core in _CONSONANTS:
        o, w, r = _CONSONANTS[core]
        return o, w, r, core in ("p", "b", "m")
    for prefix, (o, w, r) in _VOWELS:
        if core.startswith(prefix):
            return min(1.2, o * (1.15 if stressed else 1.0)), w, r, False
    return 0.25, 0.0, 0.0, False


def mouth_tracks(phonemes: Sequence[tuple[float, float, str]], n_frames: int, fps: float = FPS) -> np.ndarray:
    """(n_frames, 3) float64 opening, width, rounding per video frame, with coarticulation.

    Targets are held over each phoneme at 200 Hz, smoothed with a 30 ms Gaussian (neighbouring phonemes
    blend), bilabials then close the lips (a sharper 12 ms closure), and each video frame averages its span.
    """
    hz = 200
    n = int(np.ceil(n_frames / fps * hz)) + 1
    target = np.zeros((n, 3))
    closed = np.zeros(n)
    for t0, t1, name in phonemes:
        i0, i1 = int(round(t0 * hz)), max(int(round(t1 * hz)), int(round(t0 * hz)) + 1)
        o, w, r, c = viseme(name)
        target[i0:i1] = (o, w, r)
        closed[i0:i1] = float(c)
    smooth = scipy.ndimage.gaussian_filter1d(target, sigma=0.030 * hz, axis=0, mode="nearest")
    closure = np.clip(scipy.ndimage.gaussian_filter1d(closed, sigma=0.012 * hz, mode="nearest") * 1.6, 0, 1)
    smooth[:, 0] *= 1 - 0.95 * closure
    edges = np.round(np.arange(n_frames + 1) * hz / fps).astype(int)
    csum = np.concatenate([np.zeros((1, 3)), np.cumsum(smooth, axis=0)])
    return (csum[edges[1:]] - csum[edges[:-1]]) / np.maximum(np.diff(edges), 1)[:, None]


def speech_offsets(tracks: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """(T, 68, 3) float64 offsets (~mm) of the lips and jaw for mouth tracks (T, 3) (opening, width, rounding)."""
    o, w, r = tracks[:, 0:1], tracks[:, 1:2], tracks[:, 2:3]
    side = side_of_midline(shape)
    t = len(tracks)
    d = np.zeros((t, 68, 3))
    drop = 20.0 * o  # (T, 1) jaw drop, mm
    d[:, [65, 66, 67], 1] += drop * np.array([0.95, 1.0, 0.95])
    d[:, LOWER_OUTER_LIP, 1] += drop * np.array([0.75, 0.95, 1.0, 0.95, 0.75])
    d[:, [48, 54, 60, 64], 1] += 0.3 * drop
    d[:, [49, 50, 51, 52, 53, 61, 62, 63], 1] -= 0.08 * drop
    d[:, 3:14, 1] += drop * np.array([0.1, 0.3, 0.55, 0.8, 0.95, 1.0, 0.95, 0.8, 0.55, 0.3, 0.1])
    corners = [48, 54, 60, 64]
    near = [49, 53, 55, 59, 61, 63, 65, 67]
    d[:, corners, 0] += side[corners] * (3.5 * w - 0.8 * o - 6.0 * r)
    d[:, near, 0] += side[near] * (1.5 * w - 3.0 * r)
    d[:, MOUTH, 2] -= 5.0 * r  # rounded lips protrude toward the camera
    d[:, [50, 51, 52], 1] -= 1.2 * r
    d[:, [56, 57, 58], 1] += 1.2 * r
    return d
