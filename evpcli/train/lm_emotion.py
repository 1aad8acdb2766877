"""The evaluation emotion classifier: emotion of a normalised landmark sequence.

EVP measures emotion accuracy of generated video with a classifier trained on real MEAD video. Ours classifies
landmark sequences (what the audio-to-landmark stage produces), trained on the real (detected) normalised
landmarks of the training clips: input = displacement from the actor's reference face in the canonical 256 px
frame, divided by 256 so that values are about ±0.05.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from evpcli.config import EMOTIONS, LandmarkEmotionConfig
from evpcli.nets.lm_emotion import LandmarkEmotionClassifier
from evpcli.progress import Progress
from evpcli.train.common import seed_everything

SCALE = 256.0


@dataclass(frozen=True)
class LandmarkEmotionTrainConfig:
    epochs: int = 60
    batch_size: int = 32
    crop: int = 40  # frames per training crop (1.6 s); whole clips at evaluation
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


def displacement(normalised: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(T, 68, 2) normalised landmarks -> classifier input (T, 68, 2) float32."""
    return ((np.asarray(normalised, np.float32) - np.asarray(reference, np.float32)[None]) / SCALE).astype(np.float32)


def _crops(seqs: list[np.ndarray], labels: np.ndarray, crop: int, rng: np.random.Generator):
    xs = []
    for s in seqs:
        if len(s) <= crop:
            xs.append(np.pad(s, ((0, crop - len(s)), (0, 0), (0, 0)), mode="edge"))
        else:
            start = rng.integers(0, len(s) - crop + 1)
            xs.append(s[start:start + crop])
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(labels)


def train_landmark_emotion(seqs: list[np.ndarray], labels: list[int],
                           cfg: LandmarkEmotionTrainConfig = LandmarkEmotionTrainConfig(),
                           net_cfg: LandmarkEmotionConfig = LandmarkEmotionConfig(), device: torch.device | str = "cpu",
                           progress: Progress | None = None) -> LandmarkEmotionClassifier:
    """Train on displacement sequences (each (T, 68, 2), see :func:`displacement`) with emotion labels 0..7."""
    if not seqs:
        raise ValueError("no sequences to train the landmark emotion classifier on")
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = LandmarkEmotionClassifier(net_cfg).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    y = np.asarray(labels, np.int64)
    n = len(seqs)
    steps_per_epoch = max(1, int(np.ceil(n / cfg.batch_size)))
    with (progress or Progress()).task("emotion classifier", total=cfg.epochs, unit="epochs") as task:
        for _ in range(cfg.epochs):
            net.train()
            order = rng.permutation(n)
            total = 0.0
            for b in range(steps_per_epoch):
                idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                x, t = _crops([seqs[i] for i in idx], y[idx], cfg.crop, rng)
                x = x + 0.002 * torch.randn_like(x)  # detector-noise augmentation
                loss = nn.functional.cross_entropy(net(x.to(device)), t.to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            task.advance(1, loss=total / steps_per_epoch)
    net.eval()
    return net


@torch.no_grad()
def predict_emotion(net: LandmarkEmotionClassifier, seqs: list[np.ndarray], device: torch.device | str = "cpu") -> np.ndarray:
    """Predicted labels for whole sequences (one forward per sequence; any length)."""
    net.eval()
    return np.array([int(net(torch.from_numpy(s[None]).to(device)).argmax(1)) for s in seqs], np.int64)


def classifier_state(net: LandmarkEmotionClassifier) -> dict:
    return {"config": asdict(net.cfg), "state_dict": net.state_dict(), "emotions": list(EMOTIONS)}


def classifier_from_state(state: dict) -> LandmarkEmotionClassifier:
    net = LandmarkEmotionClassifier(LandmarkEmotionConfig(**state["config"]))
    net.load_state_dict(state["state_dict"])
    return net.eval()
