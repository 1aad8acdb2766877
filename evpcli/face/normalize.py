"""Normalised landmarks: a canonical frontal 68-point template and similarity alignment onto it.

EVP predicts landmarks in a frame where head motion is removed. Here each frame's 68 landmarks are mapped onto
:data:`TEMPLATE` by the similarity transform (rotation, uniform scale, translation) that best fits the *stable
points* (eye corners 36, 39, 42, 45 and the nose 27-35, which do not move when a person speaks or smiles), so
the mouth, jaw, brows and eyelids keep their motion relative to the skull.

:data:`TEMPLATE` is built from real data: the generic 3D face of :func:`evpcli.face.shape3d.generic_mean_shape`
(MIT ``head-pose`` package) seen from the front (orthographic projection: drop z), scaled so that the face is
154 px wide (60 % of the frame) and its bounding box centred at (128, 136) of a 256x256 frame (a little below the
centre, leaving room for the forehead above the brows).

Per actor (:func:`actor_model`): the reference landmarks (mean normalised landmarks of the neutral clips) and a
landmark PCA (16 components, as the EVP release uses per person).
"""

from __future__ import annotations

import numpy as np

from evpcli.face.parts import STABLE
from evpcli.face.shape3d import generic_mean_shape

FRAME_SIZE = 256
STABLE_POINTS: tuple[int, ...] = tuple(int(i) for i in STABLE)
"""Indices used for the similarity fit: outer/inner eye corners and the nose (bridge and base)."""

FACE_WIDTH = 0.6 * FRAME_SIZE
FACE_CENTRE = (128.0, 136.0)


def _build_template() -> np.ndarray:
    xy = generic_mean_shape(centred=True)[:, :2]  # frontal orthographic view, OpenCV axes (y down)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    scale = FACE_WIDTH / (hi[0] - lo[0])
    centre = (lo + hi) / 2
    return ((xy - centre) * scale + np.asarray(FACE_CENTRE)).astype(np.float32)


TEMPLATE: np.ndarray = _build_template()
"""(68, 2) float32, pixels of a 256x256 frame: the canonical frontal face (see the module docstring)."""
TEMPLATE.setflags(write=False)


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama, no reflection) mapping points ``src`` onto ``dst``.

    ``src``, ``dst``: (..., N, 2). Returns (..., 2, 3) float64 ``A`` with ``dst ~= src @ A[:, :2].T + A[:, 2]``.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    src, dst = np.broadcast_arrays(src, dst)
    mu_s, mu_d = src.mean(axis=-2, keepdims=True), dst.mean(axis=-2, keepdims=True)
    s, d = src - mu_s, dst - mu_d
    # for 2D similarity: dst = [[a, -b], [b, a]] src + t, closed form
    a_num = (s[..., 0] * d[..., 0] + s[..., 1] * d[..., 1]).sum(-1)
    b_num = (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]).sum(-1)
    den = np.maximum((s ** 2).sum(axis=(-1, -2)), 1e-12)
    a, b = a_num / den, b_num / den
    rot = np.stack([np.stack([a, -b], -1), np.stack([b, a], -1)], -2)  # (..., 2, 2)
    t = mu_d[..., 0, :] - np.einsum("...ij,...j->...i", rot, mu_s[..., 0, :])
    return np.concatenate([rot, t[..., None]], axis=-1)


def apply_transform(points: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Apply (..., 2, 3) affine transforms to (..., N, 2) points."""
    points = np.asarray(points, np.float64)
    transforms = np.asarray(transforms, np.float64)
    return np.einsum("...ij,...nj->...ni", transforms[..., :2], points) + transforms[..., None, :, 2]


def invert_transform(transforms: np.ndarray) -> np.ndarray:
    """Inverse of (..., 2, 3) affine transforms."""
    transforms = np.asarray(transforms, np.float64)
    inv = np.linalg.inv(transforms[..., :2])
    t = -np.einsum("...ij,...j->...i", inv, transforms[..., 2])
    return np.concatenate([inv, t[..., None]], axis=-1)


def normalise(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Similarity-align landmarks onto :data:`TEMPLATE` by their stable points.

    ``landmarks``: (T, 68, 2) (or (68, 2)) pixels of the source frames.
    Returns ``normalised`` (T, 68, 2) float32, pixels of the 256x256 template frame, and ``transforms``
    (T, 2, 3) float32, each mapping source pixels to template pixels: ``normalised = A[:, :2] @ p + A[:, 2]``.
    """
    lm = np.asarray(landmarks, np.float64)
    single = lm.ndim == 2
    if single:
        lm = lm[None]
    if lm.shape[-2:] != (68, 2):
        raise ValueError(f"landmarks must be (T, 68, 2), got {lm.shape}")
    transforms = similarity_fit(lm[:, STABLE], TEMPLATE[STABLE][None])
    normalised = apply_transform(lm, transforms)
    if single:
        return normalised[0].astype(np.float32), transforms[0].astype(np.float32)
    return normalised.astype(np.float32), transforms.astype(np.float32)


def denormalise(normalised: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Map normalised landmarks (T, 68, 2) back to source pixels with the (T, 2, 3) ``transforms`` of
    :func:`normalise` (inverts them). Returns (T, 68, 2) float32."""
    return apply_transform(normalised, invert_transform(transforms)).astype(np.float32)


def procrustes_residual(points: np.ndarray, reference: np.ndarray = TEMPLATE) -> np.ndarray:
    """Shape plausibility: RMS distance of (..., 68, 2) points to the best similarity fit of ``reference``
    onto them, divided by the fitted face size (the reference's RMS radius after scaling). Unitless: 0.05-0.12 for
    real frontal faces, up to about 0.22 for turned or tilted heads (measured on the carphone clip; the template
    is a 3D mean face, whose projected jaw differs from dlib's 2D contour), 0.35 for the template plus 15 px noise."""
    points = np.asarray(points, np.float64)
    ref = np.asarray(reference, np.float64)
    a = similarity_fit(ref, points)
    fitted = apply_transform(ref, a)
    rms = np.sqrt(((fitted - points) ** 2).sum(-1).mean(-1))
    size = np.sqrt(((fitted - fitted.mean(axis=-2, keepdims=True)) ** 2).sum(-1).mean(-1))
    return rms / np.maximum(size, 1e-9)


N_PCA = 16


def actor_model(normalised: list[np.ndarray] | np.ndarray, neutral: list[np.ndarray] | np.ndarray | None = None,
                n_components: int = N_PCA) -> dict[str, np.ndarray]:
    """Per-actor reference landmarks and landmark PCA, from normalised landmarks.

    ``normalised``: all the actor's normalised frames, (N, 68, 2) or a list of (T_i, 68, 2) arrays.
    ``neutral``: the frames of the neutral clips (same form); empty or None: the reference is the mean of all.
    Returns ``reference`` (68, 2) float32 (mean normalised landmarks), ``pca_mean`` (136,) float32 (mean of all
    frames, flattened x0, y0, x1, y1, ...), ``pca_components`` (16, 136) float32 (orthonormal rows, largest
    variance first; the sign makes each row's largest entry positive), ``pca_variance`` (16,) float32 (variance
    along each, pixels^2). With fewer than 16 independent directions in the data the remaining rows are zero with
    variance 0.
    """
    frames = np.concatenate([np.asarray(x, np.float64).reshape(-1, 68, 2) for x in
                             (normalised if isinstance(normalised, list) else [normalised])])
    if len(frames) == 0:
        raise ValueError("no frames to build an actor model from")
    neutral_frames = None
    if neutral is not None:
        parts = [np.asarray(x, np.float64).reshape(-1, 68, 2) for x in (neutral if isinstance(neutral, list) else [neutral])]
        if parts and sum(len(p) for p in parts):
            neutral_frames = np.concatenate(parts)
    reference = (neutral_frames if neutral_frames is not None else frames).mean(axis=0)
    flat = frames.reshape(len(frames), 136)
    mean = flat.mean(axis=0)
    centred = flat - mean
    cov = centred.T @ centred / max(len(flat) - 1, 1)  # (136, 136): cheap for any number of frames
    var, vecs = np.linalg.eigh(cov)
    order = np.argsort(var)[::-1][:n_components]
    vt = vecs[:, order].T
    vt *= np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])[:, None]  # a fixed sign per component
    k = len(order)
    components = np.zeros((n_components, 136))
    variance = np.zeros(n_components)
    components[:k], variance[:k] = vt, np.maximum(var[order], 0.0)
    tiny = variance < 1e-10 * max(variance.max(), 1e-30)
    components[tiny], variance[tiny] = 0.0, 0.0
    return {"reference": reference.astype(np.float32), "pca_mean": mean.astype(np.float32),
            "pca_components": components.astype(np.float32), "pca_variance": variance.astype(np.float32)}
