"""Landmark sequences with known pose: a 3D face unlike the model's mean, projected with a scaled orthographic camera."""

from __future__ import annotations

import numpy as np

from evpcli.face.pose import project, rotation_from_euler
from evpcli.face.shape3d import default_shape_model


def other_identity(seed: int = 0, off_basis_mm: float = 1.5) -> np.ndarray:
    """(68, 3) a face that differs from the generic mean: random identity coefficients plus per-point noise
    that no basis can express."""
    rng = np.random.default_rng(seed)
    m = default_shape_model()
    return m.shape(rng.normal(0, 1.5, m.n_identity)) + rng.normal(0, off_basis_mm, (68, 3))


def posed_sequence(T: int = 120, seed: int = 0, amp: float = 20.0, noise_px: float = 0.8, outliers: float = 0.02,
                   fps: float = 25.0, identity_seed: int | None = None):
    """Landmarks (T, 68, 2) px of a talking, moving head; returns (landmarks, clean, euler_deg, rotation).

    Yaw/pitch/roll follow slow sines within ±amp, expressions (jaw open etc.) change over time; Gaussian noise
    of ``noise_px`` and a fraction ``outliers`` of landmarks thrown 15 px off. The face is
    ``other_identity(identity_seed)`` (default: ``seed``).
    """
    rng = np.random.default_rng(seed)
    m = default_shape_model()
    t = np.arange(T) / fps
    euler = np.stack([amp * np.sin(2 * np.pi * 0.23 * t + rng.uniform(0, 6)),
                      0.7 * amp * np.sin(2 * np.pi * 0.31 * t + rng.uniform(0, 6)),
                      0.5 * amp * np.sin(2 * np.pi * 0.17 * t + rng.uniform(0, 6))], axis=1)
    freqs, phases = rng.uniform(0.3, 2, m.n_expression), rng.uniform(0, 6, m.n_expression)
    beta = np.abs(np.sin(2 * np.pi * freqs * t[:, None] + phases)) * rng.uniform(0, 1.5, m.n_expression)
    face = other_identity(seed if identity_seed is None else identity_seed)
    shapes = face + np.tensordot(beta, m.expression_basis, axes=(1, 0))
    rot = rotation_from_euler(euler)
    scale = 0.5 * (1 + 0.1 * np.sin(t))
    trans = np.stack([88 + 10 * np.sin(0.7 * t), 72 + 5 * np.cos(t)], axis=1)
    clean = project(shapes, rot, scale, trans)
    noisy = clean + rng.normal(0, noise_px, clean.shape)
    bad = rng.random((T, 68)) < outliers
    noisy[bad] += rng.normal(0, 15, (int(bad.sum()), 2))
    return noisy, clean, euler, rot


def rotation_error_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle (T,) in degrees between rotations (T, 3, 3)."""
    c = (np.einsum("tij,tij->t", a, b) - 1) / 2
    return np.rad2deg(np.arccos(np.clip(c, -1, 1)))


def synth_expected_rotation(gt: dict, config=None) -> np.ndarray:
    """(T, 3, 3) the rotation a fit of a synthetic clip should find: ground truth times the actor's rest pose.

    The synthetic corpus builds each actor's neutral ``shape3d`` from the portrait's 2D landmarks (x, y) and the
    generic depth (z), so at ground-truth rotation I the face still shows the portrait's own head pose (about
    7° of pitch and ±3° of roll, mirrored actors flip the roll). That rest pose is measured once per actor by
    fitting the frontal projection of ``shape3d``; the expected rotation is ``rotation[t] @ R_rest``.
    """
    import dataclasses

    from evpcli.config import FitConfig
    from evpcli.face.pose import fit_landmarks

    cfg = dataclasses.replace(config or FitConfig(), one_euro=False)
    shape = np.asarray(gt["shape3d"], np.float64)
    rest = project(np.repeat(shape[None], 2, 0), np.repeat(np.eye(3)[None], 2, 0), np.ones(2), np.zeros((2, 2)))
    r_rest = fit_landmarks(rest, config=cfg).rotation[0]
    return np.asarray(gt["rotation"], np.float64) @ r_rest
