"""A second independent judge of facial expression: face-api.js's FaceExpressionNet, whose weights ship inside the
npm package ``@vladmandic/face-api`` (MIT; ``model/face_expression_model.bin`` and its manifest, 329 kB), run here
in torch.

Why a second judge: the FER2013 judge (``judge.py``) learned from 48x48 grey web faces and has almost no disgust
class; two recognizers trained on different data that agree are worth more than one. This one reads 112x112 colour
crops and was trained (by face-api.js's author) on public expression datasets and web images, not on FER2013 alone,
and nothing of evp's. Optional: never a dependency of evp. Get its weights with npm (or any copy of the package):

    scripts/get_faceapi_judge.sh     # npm pack @vladmandic/face-api@1.7.15 -> .cache/faceapi/package/model/
    # elsewhere: export EVP_FACEAPI_MODEL=.../package/model, or pass FaceApiJudge(model_dir)

    from judge_faceapi import FaceApiJudge
    judge = FaceApiJudge()
    probs = judge.frame(rgb_image)          # dict class -> probability (FER's class names, plus nothing else)

The network (face-api.js ``FaceFeatureExtractor`` + ``FaceExpressionNet``): four dense blocks of depthwise-separable
convolutions (each halving the size, 112 -> 7), a 7x7 average pool, one fully connected layer, a softmax over
neutral, happy, sad, angry, fearful, disgusted, surprised. Its input follows face-api.js's ``withFaceExpressions``
after ``withFaceLandmarks``: the bounding box of the 68 landmarks grown by 20 % (``alignMinBbox``), cut out, padded
with zeros to a centred square, resized to 112 by TensorFlow's legacy bilinear resize, minus the mean RGB
(122.782, 117.001, 104.298), over 255. dlib's 68 points stand in for face-api's own landmark net (the same iBUG
scheme). The forward pass, the zero padding and the resize equal face-api.js's own (tfjs 4.22, node;
``benchmarks/faceapi_reference.mjs``, installed by ``scripts/get_faceapi_judge.sh --reference``) to 7e-7 on real
crops (``tests/test_judge.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from judge import CLASSES, Judge  # the FER judge's class names, so both judges report in the same terms

FACEAPI_CLASSES = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
_TO_FER = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "fearful": "fear",
           "disgusted": "disgust", "surprised": "surprise"}
ORDER = [FACEAPI_CLASSES.index(next(k for k, v in _TO_FER.items() if v == c)) for c in CLASSES]
MEAN_RGB = np.array([122.782, 117.001, 104.298], np.float32)


CACHE = Path(__file__).resolve().parents[1] / ".cache" / "faceapi"


def model_dir() -> Path | None:
    env = os.environ.get("EVP_FACEAPI_MODEL")
    for p in ([Path(env)] if env else []) + [CACHE / "package" / "model"]:
        if (p / "face_expression_model-weights_manifest.json").exists():
            return p
    return None


def load_weights(directory: Path) -> dict[str, np.ndarray]:
    """tfjs weights manifest + shards -> name -> float32 array (uint8-quantized weights dequantized as tfjs does:
    q * scale + min)."""
    manifest = json.loads((directory / "face_expression_model-weights_manifest.json").read_text())
    out = {}
    for group in manifest:
        data = b"".join((directory / p).read_bytes() for p in group["paths"])
        pos = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                dt = np.dtype(q["dtype"])
                raw = np.frombuffer(data, dt, n, pos)
                pos += n * dt.itemsize
                arr = raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
            else:
                raw = np.frombuffer(data, np.float32, n, pos)
                pos += 4 * n
                arr = raw.astype(np.float32)
            out[w["name"]] = arr.reshape(w["shape"])
        if pos != len(data):
            raise ValueError(f"weights manifest does not match its shards ({pos} of {len(data)} bytes read)")
    return out


def resize_bilinear_legacy(img: np.ndarray, size: int) -> np.ndarray:
    """TensorFlow's resizeBilinear with alignCorners=false, halfPixelCenters=false: source = dest * in / out."""
    h, w = img.shape[:2]
    ys = np.arange(size) * (h / size)
    xs = np.arange(size) * (w / size)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    img = img.astype(np.float32)
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bottom = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def pad_to_square(img: np.ndarray) -> np.ndarray:
    """face-api.js's padToSquare(isCenterImage=true): zeros, round(diff / 2) after, the rest before."""
    h, w = img.shape[:2]
    if h == w:
        return img
    diff = abs(h - w)
    after = int(np.floor(diff * 0.5 + 0.5))  # Math.round
    before = diff - after
    if h > w:
        return np.pad(img, ((0, 0), (before, after), (0, 0)))
    return np.pad(img, ((before, after), (0, 0), (0, 0)))


class FaceApiJudge(Judge):
    classes = CLASSES

    def __init__(self, directory: str | Path | None = None):
        import torch

        directory = Path(directory) if directory else model_dir()
        if directory is None:
            raise RuntimeError("face-api.js's model not found: run scripts/get_faceapi_judge.sh (npm), or set "
                               "EVP_FACEAPI_MODEL to the package/model folder of @vladmandic/face-api")
        self.torch = torch
        w = load_weights(directory)
        t = torch.from_numpy
        self.params = {}
        for block in ("dense0", "dense1", "dense2", "dense3"):
            for i in range(4):
                name = f"{block}/conv{i}"
                if f"{name}/filters" in w:  # the first block's first layer: a plain convolution
                    self.params[name] = ("conv", t(w[f"{name}/filters"].transpose(3, 2, 0, 1).copy()),
                                         t(w[f"{name}/bias"].copy()))
                else:
                    dw = w[f"{name}/depthwise_filter"]  # (3, 3, in, 1)
                    self.params[name] = ("sep", t(dw.transpose(2, 3, 0, 1).copy()),
                                         t(w[f"{name}/pointwise_filter"].transpose(3, 2, 0, 1).copy()),
                                         t(w[f"{name}/bias"].copy()))
        self.fc_w = t(w["fc/weights"].copy())
        self.fc_b = t(w["fc/bias"].copy())

    # ------------------------------------------------------------------ network
    def _conv(self, x, name: str, stride: int):
        import torch.nn.functional as F

        p = self.params[name]
        # TensorFlow's 'same' padding: for a 3x3 kernel, stride 1 pads 1 each side; stride 2 on an even size pads
        # only the bottom/right by 1
        if stride == 1:
            x = F.pad(x, (1, 1, 1, 1))
        else:
            n = x.shape[2]
            total = max((-(-n // 2) - 1) * 2 + 3 - n, 0)
            x = F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))
        if p[0] == "conv":
            return F.conv2d(x, p[1], p[2], stride=stride)
        out = F.conv2d(x, p[1], stride=stride, groups=p[1].shape[0])
        return F.conv2d(out, p[2], p[3])

    def _dense4(self, x, block: str):
        relu = self.torch.relu
        out1 = relu(self._conv(x, f"{block}/conv0", 2))
        out2 = self._conv(out1, f"{block}/conv1", 1)
        out3 = self._conv(relu(out1 + out2), f"{block}/conv2", 1)
        out4 = self._conv(relu(out1 + out2 + out3), f"{block}/conv3", 1)
        return relu(out1 + out2 + out3 + out4)

    def forward(self, x: np.ndarray, raw: bool = False) -> np.ndarray:
        """(N, 112, 112, 3) RGB float in 0..255 -> (N, 7) probabilities in face-api's class order (``raw``) or, by
        default, in FER's (``CLASSES``)."""
        import torch.nn.functional as F

        t = self.torch
        with t.no_grad():
            v = (t.from_numpy(np.asarray(x, np.float32)) - t.from_numpy(MEAN_RGB)) / 255.0
            v = v.permute(0, 3, 1, 2).contiguous()
            for block in ("dense0", "dense1", "dense2", "dense3"):
                v = self._dense4(v, block)
            v = F.avg_pool2d(v, 7, 2)  # 7x7 -> 1x1
            v = v.permute(0, 2, 3, 1).reshape(v.shape[0], -1)  # tfjs flattens NHWC
            p = t.softmax(v @ self.fc_w + self.fc_b, -1).numpy()
        return p if raw else p[:, ORDER]

    # ------------------------------------------------------------------ faces
    def crop(self, image: np.ndarray, near: np.ndarray | None = None,
             points: np.ndarray | None = None) -> np.ndarray | None:
        """The 112x112x3 float input for the face nearest ``near`` (or given by its 68 ``points``); None without a
        face."""
        if points is None:
            from bench_render_real import dlib_landmarks

            points = dlib_landmarks(image, near)
            if points is None:
                return None
        x0, y0 = points.min(0)
        x1, y1 = points.max(0)
        w, h = x1 - x0, y1 - y0
        x, y, w, h = x0 - 0.1 * w, y0 - 0.1 * h, 1.2 * w, 1.2 * h
        # FaceDetection.box.floor(), then clipped at the image's borders
        x, y, w, h = int(np.floor(x)), int(np.floor(y)), int(np.floor(w)), int(np.floor(h))
        H, W = image.shape[:2]
        cx, cy = max(x, 0), max(y, 0)
        cw, ch = min(x + w, W) - cx, min(y + h, H) - cy
        if cw <= 0 or ch <= 0:
            return None
        face = pad_to_square(image[cy:cy + ch, cx:cx + cw].astype(np.float32))
        return resize_bilinear_legacy(face, 112)
