"""The 3D landmark model: a mean 68-point face plus identity and expression bases.

A face shape is ``mean + identity_basis · α + expression_basis · β`` with ``α`` shared by a person and ``β`` per
frame; all in the model's own frame (OpenCV camera axes: x to the image right, y down, z away from the camera;
about millimetres). The fitting in :mod:`evpcli.face.pose` puts it into an image with a scaled orthographic camera.

:func:`generic_mean_shape` is a generic 68-point 3D face (iBUG order), credited to the MIT-licensed ``head-pose``
package (DewMaple/head_pose, ``models/model_3D_68.txt``); it ships in ``evpcli/data/mean_face_68.txt``.

:func:`default_shape_model` adds bases built from anatomy rather than learned, because no 3D face data ships
here: identity = face width / height / depth, eye spacing, nose length, mouth width and height, jaw width, brow
height, chin length; expression = jaw open, lip stretch, lip corner raise (smile), pucker, upper lip raise, lip
press, brow raise, brow lower, eye close. One unit of a coefficient is about one typical deviation (a few mm),
so the fitting's priors are plain ``|α|²`` and ``|β|²``. :func:`learn_shape_model` learns bases from a
workspace's prepared landmarks instead (PCA of pose-normalised shapes) and stores them as a ``shape3d`` artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from evpcli.face.parts import BROWS, JAW, LOWER_LIP, MOUTH, MOUTH_CORNERS, NOSE, UPPER_LIP


@lru_cache(maxsize=1)
def _load_generic() -> np.ndarray:
    text = resources.files("evpcli").joinpath("data/mean_face_68.txt").read_text()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    values = np.array([float(ln) for ln in lines], np.float64)
    return values.reshape(3, 68).T


def generic_mean_shape(centred: bool = True) -> np.ndarray:
    """(68, 3) float64 generic face; ``centred`` subtracts the mean point."""
    shape = _load_generic().copy()
    return shape - shape.mean(axis=0) if centred else shape


@dataclass(frozen=True)
class ShapeModel:
    """A linear 3D landmark model.

    mean: (68, 3) float64, mm. identity_basis: (Ki, 68, 3). expression_basis: (Ke, 68, 3). The names say what
    each basis vector is (``"jaw_open"``, or ``"pc3"`` for learned ones); ``source`` where the model came from.
    """

    mean: np.ndarray
    identity_basis: np.ndarray
    expression_basis: np.ndarray
    identity_names: tuple[str, ...] = ()
    expression_names: tuple[str, ...] = ()
    source: str = "default"

    @property
    def n_identity(self) -> int:
        return int(self.identity_basis.shape[0])

    @property
    def n_expression(self) -> int:
        return int(self.expression_basis.shape[0])

    def shape(self, identity: np.ndarray | None = None, expression: np.ndarray | None = None) -> np.ndarray:
        """3D shapes: identity (Ki,) and expression (..., Ke) coefficients -> (..., 68, 3) mm."""
        out = self.mean.copy()
        if identity is not None:
            out = out + np.tensordot(np.asarray(identity, np.float64), self.identity_basis, axes=(-1, 0))
        if expression is not None:
            out = out + np.tensordot(np.asarray(expression, np.float64), self.expression_basis, axes=(-1, 0))
        return out

    def to_arrays(self, prefix: str = "model_") -> dict[str, np.ndarray]:
        return {f"{prefix}mean": self.mean, f"{prefix}identity_basis": self.identity_basis,
                f"{prefix}expression_basis": self.expression_basis,
                f"{prefix}identity_names": np.array(self.identity_names, dtype=str),
                f"{prefix}expression_names": np.array(self.expression_names, dtype=str),
                f"{prefix}source": np.array(self.source)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "model_") -> ShapeModel:
        return cls(mean=np.asarray(arrays[f"{prefix}mean"], np.float64),
                   identity_basis=np.asarray(arrays[f"{prefix}identity_basis"], np.float64),
                   expression_basis=np.asarray(arrays[f"{prefix}expression_basis"], np.float64),
                   identity_names=tuple(str(s) for s in arrays[f"{prefix}identity_names"]),
                   expression_names=tuple(str(s) for s in arrays[f"{prefix}expression_names"]),
                   source=str(arrays[f"{prefix}source"]))

    def save(self, path: str | Path) -> Path:
        from evpcli.workspace import save_npz

        return save_npz(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> ShapeModel:
        from evpcli.workspace import load_npz

        return cls.from_arrays(load_npz(path))


def _field(points: np.ndarray, delta: np.ndarray | list[float], weights: np.ndarray | None = None) -> np.ndarray:
    out = np.zeros((68, 3))
    w = np.ones(len(points)) if weights is None else np.asarray(weights, np.float64)
    out[points] = w[:, None] * np.asarray(delta, np.float64)
    return out


def _identity_basis(mean: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    x, y, z = mean[:, 0], mean[:, 1], mean[:, 2]
    mouth_c = mean[MOUTH].mean(axis=0)
    left_eye, right_eye = np.arange(36, 42), np.arange(42, 48)
    jaw_low = JAW[3:14]
    w_jaw = np.clip((y[jaw_low] - y[27]) / (y[8] - y[27]), 0, 1)
    in_mouth = np.isin(np.arange(68), MOUTH).astype(float)
    w_jaw68 = np.zeros(68)
    w_jaw68[jaw_low] = w_jaw
    zero = np.zeros(68)
    fields = {
        "face_width": np.stack([0.05 * x, zero, zero], 1),
        "face_height": np.stack([zero, 0.05 * y, zero], 1),
        "face_depth": np.stack([zero, zero, 0.08 * z], 1),
        "eye_spacing": _field(left_eye, [-3, 0, 0]) + _field(right_eye, [3, 0, 0]),
        "nose_length": _field(NOSE[3:], [0, 3, -2]) + _field(NOSE[:3], [0, 0, -1]),
        "mouth_width": np.stack([0.12 * (x - mouth_c[0]) * in_mouth, zero, zero], 1),
        "mouth_height": _field(MOUTH, [0, 3, 0]),
        "jaw_width": np.stack([0.08 * x * w_jaw68, zero, zero], 1),
        "brow_height": _field(BROWS, [0, -3, 0]),
        "chin_length": _field(JAW[5:12], [0, 4, 0], [0.3, 0.7, 1, 1, 1, 0.7, 0.3]),
    }
    return np.stack(list(fields.values())), tuple(fields)


def _expression_basis(mean: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    y = mean[:, 1]
    mouth_c = mean[MOUTH].mean(axis=0)
    # jaw open: a rotation of the lower face about the jaw hinge (behind and above the mouth), 8 degrees per unit
    hinge = np.array([0.0, mean[27, 1] + 20.0, mean[0, 2] + 20.0])
    weight = np.zeros(68)
    jaw_low = JAW[2:15]
    weight[jaw_low] = np.clip((y[jaw_low] - y[2]) / (y[8] - y[2]), 0, 1) ** 0.7
    weight[LOWER_LIP] = 1.0
    weight[MOUTH_CORNERS] = 0.5
    a = np.deg2rad(8.0)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    sign = 1.0 if ((rot @ (mean[8] - hinge))[1] > (mean[8] - hinge)[1]) else -1.0
    rot = np.array([[1, 0, 0], [0, np.cos(a), -sign * np.sin(a)], [0, sign * np.sin(a), np.cos(a)]])
    jaw_open = weight[:, None] * ((mean - hinge) @ rot.T + hinge - mean)

    rel = mean - mouth_c
    in_mouth = np.isin(np.arange(68), MOUTH)[:, None]
    lip_stretch = np.where(in_mouth, np.stack([0.15 * rel[:, 0], 0 * rel[:, 1], 0 * rel[:, 2]], 1), 0)
    corner_x = np.sign(rel[:, 0])
    smile = np.zeros((68, 3))
    for idx, w in ((MOUTH_CORNERS, 1.0), (np.array([49, 53, 55, 59, 61, 63, 65, 67]), 0.4)):
        smile[idx] = w * np.stack([2.5 * corner_x[idx], -4.0 * np.ones(len(idx)), 0 * idx], 1)
    pucker = np.where(in_mouth, np.stack([-0.15 * rel[:, 0], -0.05 * rel[:, 1], -4.0 + 0 * rel[:, 2]], 1), 0)
    upper_lip_raise = _field(UPPER_LIP, [0, -3, 0])
    lip_press = _field(np.array([61, 62, 63]), [0, 2, 0]) + _field(np.array([65, 66, 67]), [0, -2, 0])
    brow_raise = _field(BROWS, [0, -5, 0], [0.6, 0.8, 1, 1, 1, 1, 1, 1, 0.8, 0.6])
    inner = np.array([20, 21, 22, 23])
    brow_lower = _field(inner, [0, 3, 0]) + _field(np.array([21]), [2, 0, 0]) + _field(np.array([22]), [-2, 0, 0]) \
        + _field(np.array([19, 24]), [0, 1.5, 0])
    eye_close = _field(np.array([37, 38, 43, 44]), [0, 3, 0]) + _field(np.array([40, 41, 46, 47]), [0, -1, 0])
    fields = {"jaw_open": jaw_open, "lip_stretch": lip_stretch, "smile": smile, "pucker": pucker,
              "upper_lip_raise": upper_lip_raise, "lip_press": lip_press, "brow_raise": brow_raise,
              "brow_lower": brow_lower, "eye_close": eye_close}
    return np.stack(list(fields.values())), tuple(fields)


@lru_cache(maxsize=1)
def default_shape_model() -> ShapeModel:
    """The model that ships: the generic mean (head-pose package) plus anatomical identity/expression bases."""
    mean = generic_mean_shape()
    ident, ident_names = _identity_basis(mean)
    expr, expr_names = _expression_basis(mean)
    return ShapeModel(mean=mean, identity_basis=ident, expression_basis=expr, identity_names=ident_names,
                      expression_names=expr_names, source="default: generic mean (head-pose, MIT) + anatomical bases")


def _pca(data: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Principal directions (k, D) of centred rows, each scaled to one standard deviation, and those deviations."""
    if k <= 0 or len(data) < 2:
        return np.zeros((0, data.shape[1])), np.zeros(0)
    _, sv, vt = np.linalg.svd(data, full_matrices=False)
    std = sv / np.sqrt(len(data) - 1)
    k = min(k, int((std > 1e-6 * max(std[0], 1e-12)).sum()))
    return vt[:k] * std[:k, None], std[:k]


def learn_bases(shapes: np.ndarray, actors: np.ndarray, mean: np.ndarray, n_identity: int = 10,
                n_expression: int = 10, source: str = "learned") -> ShapeModel:
    """A model from pose-normalised shapes: (N, 68, 3) frontal shapes (model frame, mm) and their actor labels (N,).

    mean: the average shape (x, y from the data, its depth as given). Identity basis: PCA of the per-actor mean
    shapes (at most actors - 1 components; where the data has fewer actors than ``n_identity`` the remaining
    directions are the default anatomical ones). Expression basis: PCA of each frame's deviation from its actor's
    mean. Every component is scaled to one standard deviation of the data, so a coefficient of 1 is typical.
    """
    shapes = np.asarray(shapes, np.float64)
    shapes = shapes - shapes.mean(axis=1, keepdims=True)
    actors = np.asarray(actors)
    data_mean = shapes.mean(axis=0)
    new_mean = np.asarray(mean, np.float64).copy()
    new_mean[:, :2] = data_mean[:, :2]
    names = sorted(set(actors.tolist()))
    actor_means = np.stack([shapes[actors == a].mean(axis=0) for a in names])
    ident, _ = _pca((actor_means - data_mean).reshape(len(names), -1), min(n_identity, len(names) - 1))
    ident = ident.reshape(-1, 68, 3)
    ident_names = [f"pc{i + 1}" for i in range(len(ident))]
    if len(ident) < n_identity:
        default = default_shape_model()
        extra = default.identity_basis[: n_identity - len(ident)]
        ident = np.concatenate([ident, extra])
        ident_names += list(default.identity_names[: len(extra)])
    within = shapes - actor_means[np.searchsorted(names, actors)]
    expr, _ = _pca(within.reshape(len(shapes), -1), n_expression)
    return ShapeModel(mean=new_mean, identity_basis=ident, expression_basis=expr.reshape(-1, 68, 3),
                      identity_names=tuple(ident_names), expression_names=tuple(f"pc{i + 1}" for i in range(len(expr))),
                      source=source)
