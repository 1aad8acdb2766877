"""The audio-to-landmark network's inference in numpy, for CPU renders that should not pay for importing torch.

Importing torch costs 1-2 s of CPU (more on a busy machine), half of what a cached ``evp render`` of 10 s of
speech may take in all; the network itself is small (convolutions over 28 x 12 MFCC windows, a 3-layer LSTM over
the frames). This module runs the same forward pass as :class:`evpcli.nets.audio2lm.Audio2LandmarkModel` in eval
mode with numpy (float32, BLAS matrix products), reading the weights straight from the torch checkpoint:

- :func:`read_checkpoint`: a torch zip checkpoint -> the same nested dict ``torch.load(weights_only=True)`` gives,
  with numpy arrays for tensors (a restricted unpickler that knows tensors, storages and ordered dicts only;
  anything else raises :class:`UnsupportedCheckpoint` and the caller loads it with torch).
- :class:`NumpyAudio2Landmark`: content encoder Ec, emotion encoder Ee, classifier Ce, identity MLP, LSTM, head,
  displacement PCA; batch norms folded into the convolutions. An inference engine of :mod:`evpcli.infer` (the
  interface is described in :mod:`evpcli.torchinfer`, whose :class:`~evpcli.torchinfer.TorchAudio2Landmark` is the
  other one), equal to the torch modules to float32 rounding (tests/test_npinfer.py: landmarks within 1e-3 px on
  real speech, with and without per-clip CMVN).

The training code, evaluation and GPU runs keep the torch modules; :func:`evpcli.models.load_audio2lm` picks this
one only for CPU inference (``backend="auto"`` on a machine without a GPU, or ``"numpy"``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

_STORAGE_DTYPES = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                   "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}
BN_EPS = 1e-5  # torch's BatchNorm default (the nets use it)
CHUNK = 64  # windows per convolution batch: bounds the im2col buffers (about 50 MB) whatever the speech length


class UnsupportedCheckpoint(Exception):
    """The checkpoint holds something the numpy reader does not know (load it with torch instead)."""


class BadCheckpoint(ValueError):
    """A tensor whose size, stride or offset does not fit its storage (a damaged or crafted file)."""


def _rebuild_tensor(storage, offset, size, stride, *_):
    """A tensor as a numpy array, after checking that every element it names lies inside its storage: ``as_strided``
    checks nothing, so a crafted stride or offset would read (or crash on) memory outside the file's data."""
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise BadCheckpoint("a tensor without a storage")
    size, stride = tuple(size), tuple(stride)
    ints = (offset, *size, *stride)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints) or len(size) != len(stride):
        raise BadCheckpoint(f"a tensor with size {size}, stride {stride}, offset {offset!r}")
    n = len(storage)
    if not size:
        if offset >= n:
            raise BadCheckpoint(f"a scalar at offset {offset} of a storage of {n}")
        return np.array(storage[offset])
    if any(d == 0 for d in size):
        return np.zeros(size, storage.dtype)
    last = offset + sum((d - 1) * s for d, s in zip(size, stride, strict=True))
    if last >= n or int(np.prod(size, dtype=np.float64)) > 1 << 31:
        raise BadCheckpoint(f"a tensor of size {size} and stride {stride} at offset {offset} reaches element {last} "
                            f"of a storage of {n}")
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=tuple(s * itemsize for s in stride)).copy()


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self.archive, self.prefix, self.storages = archive, prefix, {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise UnsupportedCheckpoint(f"{module}.{name}")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid
        if kind != "storage" or not isinstance(dtype, type):
            raise UnsupportedCheckpoint(str(pid))
        if key not in self.storages:
            raw = self.archive.read(f"{self.prefix}/data/{key}")
            itemsize = np.dtype(dtype).itemsize
            if not isinstance(numel, int) or numel < 0 or numel * itemsize > len(raw):
                raise BadCheckpoint(f"storage {key} claims {numel} elements but holds {len(raw) // itemsize}")
            self.storages[key] = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"), count=numel)
        return self.storages[key]


def read_checkpoint(path: str | Path) -> dict:
    """A torch checkpoint (zip format, as ``torch.save`` writes) -> its dict with numpy arrays for tensors.
    Raises UnsupportedCheckpoint for other formats or contents (legacy pickles, classes other than tensors)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsupportedCheckpoint(str(exc)) from None
    with archive:
        names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(names) != 1:
            raise UnsupportedCheckpoint("no data.pkl")
        prefix = names[0][: -len("/data.pkl")]
        order = f"{prefix}/byteorder"
        if order in archive.namelist() and archive.read(order).strip() != b"little":
            raise UnsupportedCheckpoint("big-endian checkpoint")
        with archive.open(names[0]) as f:
            return _Unpickler(f, archive, prefix).load()


# --------------------------------------------------------------------------- layers
def _blas_threads(n: int):
    """numpy's BLAS limited to ``n`` threads inside the block (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(n, user_api="blas")


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, np.float32))


def _fold_bn(w: np.ndarray, b: np.ndarray, sd: dict, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """A convolution (weight (Cout, ...), bias (Cout,)) followed by an eval-mode batch norm -> one convolution."""
    s = np.asarray(sd[bn + ".weight"], np.float64) / np.sqrt(np.asarray(sd[bn + ".running_var"], np.float64) + BN_EPS)
    w = np.asarray(w, np.float64) * s.reshape(-1, *([1] * (w.ndim - 1)))
    b = (np.asarray(b, np.float64) - np.asarray(sd[bn + ".running_mean"], np.float64)) * s + np.asarray(sd[bn + ".bias"],
                                                                                                         np.float64)
    return w.astype(np.float32), b.astype(np.float32)


def _conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 convolution, padding 1, NHWC: x (B, H, W, C), w (9 C, Cout) in (ky, kx, C) order -> (B, H, W, Cout).
    One matrix product over the nine shifted copies of the input side by side (channels contiguous)."""
    n, h, wd, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = np.empty((n, h, wd, 9 * c), np.float32)
    for k in range(9):
        dy, dx = divmod(k, 3)
        cols[..., k * c:(k + 1) * c] = xp[:, dy:dy + h, dx:dx + wd]
    return (cols.reshape(n * h * wd, 9 * c) @ w + b).reshape(n, h, wd, -1)


def _maxpool2(x: np.ndarray) -> np.ndarray:
    """MaxPool2d(2, ceil_mode=True), NHWC."""
    n, h, w, c = x.shape
    if h % 2 or w % 2:
        x = np.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-np.inf)
    return x.reshape(n, (h + 1) // 2, 2, (w + 1) // 2, 2, c).max(axis=(2, 4))


def _conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray, k: int, stride: int) -> np.ndarray:
    """1D convolution along time, padding k // 2: x (B, T, C), w (C k, Cout) in (C, k) order -> (B, T', Cout)."""
    n, t, c = x.shape
    xp = np.pad(x, ((0, 0), (k // 2, k // 2), (0, 0)))
    cols = np.lib.stride_tricks.sliding_window_view(xp, k, axis=1)[:, ::stride]  # (B, T', C, k)
    return (cols.reshape(-1, c * k) @ w + b).reshape(n, cols.shape[1], -1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


class NumpyAudio2Landmark:
    """:class:`~evpcli.nets.audio2lm.Audio2LandmarkModel` (eval mode) in numpy, built from its state dict
    (``model`` of the checkpoint) and configs. Methods take and return numpy arrays, float32."""

    def __init__(self, state: dict, cfg, dis_cfg):
        sd = {k: np.asarray(v) for k, v in state.items()}
        self.cfg, self.dis_cfg = cfg, dis_cfg
        self.cmvn = bool(getattr(dis_cfg, "cmvn", False))
        d = "disentangle."
        self.mfcc_mean, self.mfcc_std = _f32(sd[d + "mfcc_mean"]), _f32(sd[d + "mfcc_std"])
        # content encoder: (conv + BN + ReLU) per channel count, a max-pool after some, then the FC
        self.content_layers: list[tuple[np.ndarray, np.ndarray, bool]] = []
        idx = 0
        for k, _cout in enumerate(dis_cfg.content_channels):
            p = f"{d}content_encoder.convs.{idx}."
            w, b = _fold_bn(sd[p + "0.weight"], sd[p + "0.bias"], sd, p + "1")
            pool = k in dis_cfg.content_pool_after
            self.content_layers.append((_f32(w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0])), b, pool))
            idx += 2 if pool else 1
        fc = np.asarray(sd[d + "content_encoder.fc.weight"], np.float32)  # (D, C*h*w) over NCHW
        c_last = dis_cfg.content_channels[-1]
        h, w = dis_cfg.window, dis_cfg.n_coeffs
        for _ in dis_cfg.content_pool_after:
            h, w = -(-h // 2), -(-w // 2)
        self.content_fc = _f32(fc.reshape(-1, c_last, h, w).transpose(2, 3, 1, 0).reshape(-1, fc.shape[0]))
        self.content_fc_b = _f32(sd[d + "content_encoder.fc.bias"])
        # emotion encoder: (conv1d + BN + ReLU) x n, mean and std over time, FC + ReLU
        self.emotion_layers = []
        for k in range(len(dis_cfg.emotion_channels)):
            p = f"{d}emotion_encoder.convs."
            w, b = _fold_bn(sd[f"{p}{3 * k}.weight"], sd[f"{p}{3 * k}.bias"], sd, f"{p}{3 * k + 1}")
            self.emotion_layers.append((_f32(w.reshape(w.shape[0], -1).T), b, w.shape[2], 2 if k else 1))
        self.emotion_fc = _f32(np.asarray(sd[d + "emotion_encoder.fc.0.weight"]).T)
        self.emotion_fc_b = _f32(sd[d + "emotion_encoder.fc.0.bias"])
        self.classifier_w = _f32(np.asarray(sd[d + "classifier.fc.weight"]).T)
        self.classifier_b = _f32(sd[d + "classifier.fc.bias"])
        # identity MLP, LSTM, head
        self.identity = [(_f32(np.asarray(sd[f"lstm.identity.net.{i}.weight"]).T), _f32(sd[f"lstm.identity.net.{i}.bias"]))
                         for i in (0, 2)]
        self.lstm = [(_f32(np.asarray(sd[f"lstm.lstm.weight_ih_l{k}"]).T), _f32(np.asarray(sd[f"lstm.lstm.weight_hh_l{k}"]).T),
                      _f32(np.asarray(sd[f"lstm.lstm.bias_ih_l{k}"], np.float32) + np.asarray(sd[f"lstm.lstm.bias_hh_l{k}"],
                                                                                                np.float32)))
                     for k in range(cfg.lstm_layers)]
        self.head_w, self.head_b = _f32(np.asarray(sd["lstm.head.weight"]).T), _f32(sd["lstm.head.bias"])
        self.pca_mean, self.pca_components = _f32(sd["pca_mean"]), _f32(sd["pca_components"])
        self.disp_scale = float(np.asarray(sd["disp_scale"]))

    # ----------------------------------------------------------------- the encoders
    def normalise(self, windows: np.ndarray) -> np.ndarray:
        return (np.asarray(windows, np.float32) - self.mfcc_mean) / self.mfcc_std

    def content_input(self, windows: np.ndarray) -> np.ndarray:
        """What Ec reads for one clip's consecutive raw windows (T, 28, 12) (see Disentangle.content_input)."""
        windows = np.asarray(windows, np.float32)
        if not self.cmvn:
            return self.normalise(windows)
        rows = np.concatenate([windows[0], windows[1:, -4:].reshape(-1, windows.shape[-1])])
        speech = rows[np.abs(rows).sum(-1) > 0]
        if len(speech) < 8:
            speech = rows
        return (windows - speech.mean(0)) / np.maximum(speech.std(0), 1e-2)

    def content(self, x: np.ndarray) -> np.ndarray:
        """Ec of encoder inputs (B, 28, 12) (:meth:`content_input`) -> (B, content_dim).

        Batches of CHUNK windows, spread over up to two threads that each run single-threaded matrix products:
        on an idle machine as fast as two BLAS threads, and on a busy one no CPU lost to BLAS threads spinning while
        they wait for each other (measured: 2 BLAS threads took 1.7-2x the CPU time of one on the shared machine)."""
        from concurrent.futures import ThreadPoolExecutor

        x = np.asarray(x, np.float32)
        starts = range(0, len(x), CHUNK)
        with _blas_threads(1), ThreadPoolExecutor(max(1, min(2, os.cpu_count() or 1, len(starts)))) as pool:
            parts = list(pool.map(lambda i: self._content_chunk(x[i:i + CHUNK]), starts))
        return np.concatenate(parts) if parts else np.zeros((0, self.content_fc.shape[1]), np.float32)

    def _content_chunk(self, x: np.ndarray) -> np.ndarray:
        h = x[..., None]  # NHWC, one channel
        for w, b, pool in self.content_layers:
            h = _relu(_conv3x3(h, w, b))
            if pool:
                h = _maxpool2(h)
        return h.reshape(len(h), -1) @ self.content_fc + self.content_fc_b

    def emotion(self, windows: np.ndarray) -> np.ndarray:
        """Ee of raw windows (B, T, 12) -> (B, emotion_dim)."""
        out = []
        for i in range(0, len(windows), CHUNK):
            h = self.normalise(windows[i:i + CHUNK])
            for w, b, k, stride in self.emotion_layers:
                h = _relu(_conv1d(h, w, b, k, stride))
            feats = np.concatenate([h.mean(1), h.std(1)], axis=1)
            out.append(_relu(feats @ self.emotion_fc + self.emotion_fc_b))
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.emotion_fc.shape[1]), np.float32)

    def emotion_code(self, windows: np.ndarray) -> np.ndarray:
        """Clip-level emotion code (emotion_dim,): the mean of Ee over the windows."""
        return self.emotion(windows).mean(0)

    def logits(self, code: np.ndarray) -> np.ndarray:
        """The classifier Ce's logits (8,) of a clip-level code (emotion_dim,)."""
        return np.asarray(code, np.float32) @ self.classifier_w + self.classifier_b

    # ----------------------------------------------------------------- the landmarks
    def content_codes(self, windows: np.ndarray) -> np.ndarray:
        """Content codes (T, content_dim) of one clip's consecutive raw windows (T, 28, 12)."""
        return self.content(self.content_input(windows))

    def forward(self, windows: np.ndarray, emotion: np.ndarray, identity: np.ndarray,
                content: np.ndarray | None = None) -> np.ndarray:
        """One clip: raw windows (T, 28, 12), emotion (emotion_dim,) or (T, emotion_dim), identity features (136,)
        -> PCA coefficients (T, pca_dim). ``content``: :meth:`content_codes` of the windows if already computed."""
        t = len(windows)
        content = self.content_codes(windows) if content is None else np.asarray(content, np.float32)
        ident = np.asarray(identity, np.float32)
        for w, b in self.identity:
            ident = _relu(ident @ w + b)
        emotion = np.asarray(emotion, np.float32)
        x = np.concatenate([np.broadcast_to(ident, (t, len(ident))), content,
                            np.broadcast_to(emotion, (t, emotion.shape[-1]))], axis=1)
        for w_ih, w_hh, bias in self.lstm:
            x = self._lstm_layer(x @ w_ih + bias, w_hh)
        return x @ self.head_w + self.head_b

    @staticmethod
    def _lstm_layer(gates_in: np.ndarray, w_hh: np.ndarray) -> np.ndarray:
        """torch's LSTM recursion (gates i, f, g, o; zero initial state) over precomputed input gates (T, 4H)."""
        hidden = w_hh.shape[0]
        h = np.zeros(hidden, np.float32)
        c = np.zeros(hidden, np.float32)
        out = np.empty((len(gates_in), hidden), np.float32)
        for t in range(len(gates_in)):
            g = gates_in[t] + h @ w_hh
            i, f = _sigmoid(g[:hidden]), _sigmoid(g[hidden:2 * hidden])
            o = _sigmoid(g[3 * hidden:])
            c = f * c + i * np.tanh(g[2 * hidden:3 * hidden])
            h = o * np.tanh(c)
            out[t] = h
        return out

    def displacements(self, windows: np.ndarray, emotion: np.ndarray | None, identity: np.ndarray,
                      content: np.ndarray | None = None) -> np.ndarray:
        """One clip's displacements (T, 68, 2) from the reference face: :meth:`forward` (with the clip's own emotion
        code where ``emotion`` is None), decoded."""
        emo = self.emotion_code(windows) if emotion is None else np.asarray(emotion, np.float32)
        return self.decode(self.forward(windows, emo, identity, content))

    def decode(self, coeffs: np.ndarray) -> np.ndarray:
        """PCA coefficients (..., pca_dim) -> displacements (..., 68, 2) pixels of the canonical frame."""
        flat = coeffs @ self.pca_components + self.pca_mean
        return (flat * self.disp_scale).reshape(*coeffs.shape[:-1], 68, 2)
