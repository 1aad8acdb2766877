"""The inference engines over torch modules: the same interface as :class:`evpcli.npinfer.NumpyAudio2Landmark`.

:mod:`evpcli.infer` drives a face through an *engine*, whatever runs the network; numpy arrays in and out:

- ``emotion_code(windows)``: raw MFCC windows (N, 28, 12) -> the clip-level emotion code (emotion_dim,) float32,
  the mean of Ee over them;
- ``logits(code)``: a clip-level code (emotion_dim,) -> the classifier Ce's logits (8,) float32;
- ``content_codes(windows)``: one clip's windows (T, 28, 12) -> Ec's codes (T, content_dim) to compute ahead, or
  None where :meth:`displacements` computes them itself;
- ``displacements(windows, emotion, identity, content=None)``: windows (T, 28, 12), an emotion code (D,) or per
  frame (T, D) or None (the clip's own), identity features (136,) -> displacements (T, 68, 2) float32 from the
  reference face, pixels of the canonical 256 frame;
- ``disp_scale``: the displacement scale the identity features are divided by.

Two engines implement it: :class:`evpcli.npinfer.NumpyAudio2Landmark` (CPU, without importing torch) and
:class:`TorchAudio2Landmark` here (any device; training and evaluation wrap their own networks in it). They are
equal to float32 rounding, and that equality is their contract (``tests/test_npinfer.py``). The loaders of
:mod:`evpcli.models` put the engine of each model in its bundle's ``engine``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class TorchAudio2Landmark:
    """The engine of an :class:`~evpcli.nets.audio2lm.Audio2LandmarkModel`, or of a
    :class:`~evpcli.nets.disentangle.Disentangle` (its emotion encoder and classifier: :meth:`emotion_code` and
    :meth:`logits` only). Runs on the network's device, without gradients, in whatever mode the network is in."""

    def __init__(self, net: Any):
        self.net = net
        self.disentangle = getattr(net, "disentangle", net)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def disp_scale(self) -> float:
        return float(self.net.disp_scale)

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, np.float32)).to(self.device)

    def emotion_code(self, windows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.disentangle.emotion(self._tensor(windows)).mean(0).cpu().numpy().astype(np.float32)

    def logits(self, code: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.disentangle.classifier(self._tensor(code)[None])[0].cpu().numpy()

    def content_codes(self, windows: np.ndarray) -> None:
        """None: the torch forward pass computes the content codes itself (in chunks, see the network)."""
        return None

    def displacements(self, windows: np.ndarray, emotion: np.ndarray | None, identity: np.ndarray,
                      content: np.ndarray | None = None) -> np.ndarray:
        """``content`` is ignored (see :meth:`content_codes`)."""
        net = self.net
        w = self._tensor(windows)
        with torch.no_grad():
            emo = net.emotion_code(w) if emotion is None else self._tensor(emotion)
            coeffs = net(w[None], emo[None], self._tensor(identity)[None])
            return net.decode(coeffs)[0].cpu().numpy()


class TorchLandmarkEmotion:
    """The engine of a landmark emotion classifier (:class:`~evpcli.nets.lm_emotion.LandmarkEmotionClassifier`)."""

    def __init__(self, net: Any):
        self.net = net

    def probabilities(self, displacement: np.ndarray) -> np.ndarray:
        """(T, 68, 2) landmark displacements (:func:`evpcli.infer.landmark_displacement`) -> (8,) probabilities.
        Puts the network in eval mode."""
        x = torch.from_numpy(np.asarray(displacement, np.float32)[None]).to(next(self.net.parameters()).device)
        with torch.no_grad():
            return torch.softmax(self.net.eval()(x), -1)[0].cpu().numpy()
