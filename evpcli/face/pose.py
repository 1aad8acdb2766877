"""Head pose: fitting the 3D landmark model to a video's 2D landmarks, One-Euro smoothing, 3D-aware alignment.

Camera: scaled orthographic, ``landmarks = scale * (R @ shape.T)[:2].T + translation`` (EVP's
``l = s · Pr · R · L3d + t``), with ``shape = mean + identity_basis·α + expression_basis·β_t`` from
:class:`~evpcli.face.shape3d.ShapeModel` (x right, y down, z away from the camera, mm).

Euler convention (used everywhere in evp): ``euler_deg = (yaw, pitch, roll)`` in degrees, yaw about the y axis,
pitch about the x axis, roll about the z axis, ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``.

The fit (:func:`fit_landmarks`) is a Levenberg–Marquardt over the whole video at once: per frame 3 angles, scale,
2D translation and the expression coefficients; one identity for the video. The normal equations are sparse
(block diagonal per frame, a band for the temporal smoothness terms, a dense border for the shared identity)
and are built with batched numpy and solved with one sparse factorisation per iteration, so there is no Python
loop over frames. Huber weights (iteratively reweighted) make bad landmarks count less; the jaw contour, brows and
lips count less than eyes and nose (:func:`landmark_weights`); frames without a face get their pose from their
neighbours through the smoothness terms. The poses are then smoothed with a One-Euro
filter (:func:`evpcli.face.filters.one_euro`, as the EVP release does).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from evpcli.config import FPS, FitConfig
from evpcli.errors import EvpError
from evpcli.face.filters import one_euro
from evpcli.face.parts import BROWS, JAW, MOUTH
from evpcli.face.shape3d import ShapeModel, default_shape_model


# ----------------------------------------------------------------------------------------------- rotations
def rotation_from_euler(euler_deg: np.ndarray) -> np.ndarray:
    """(..., 3) degrees (yaw, pitch, roll) -> (..., 3, 3) rotation ``Rz(roll) @ Ry(yaw) @ Rx(pitch)``."""
    return _rot_and_jac(np.deg2rad(np.asarray(euler_deg, np.float64)), jac=False)[0]


def euler_from_rotation(rotation: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation -> (..., 3) degrees (yaw, pitch, roll); the inverse of :func:`rotation_from_euler`."""
    r = np.asarray(rotation, np.float64)
    yaw = np.arcsin(np.clip(-r[..., 2, 0], -1.0, 1.0))
    pitch = np.arctan2(r[..., 2, 1], r[..., 2, 2])
    roll = np.arctan2(r[..., 1, 0], r[..., 0, 0])
    return np.rad2deg(np.stack([yaw, pitch, roll], axis=-1))


def _rot_and_jac(angles: np.ndarray, jac: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """angles (..., 3) radians (yaw, pitch, roll) -> R (..., 3, 3) and dR/dangle (..., 3, 3, 3) (angle first)."""
    yaw, pitch, roll = angles[..., 0], angles[..., 1], angles[..., 2]
    o, z = np.ones_like(yaw), np.zeros_like(yaw)

    def mats(c, s, axis):
        if axis == "x":
            m = [[o, z, z], [z, c, -s], [z, s, c]]
            d = [[z, z, z], [z, -s, -c], [z, c, -s]]
        elif axis == "y":
            m = [[c, z, s], [z, o, z], [-s, z, c]]
            d = [[-s, z, c], [z, z, z], [-c, z, -s]]
        else:
            m = [[c, -s, z], [s, c, z], [z, z, o]]
            d = [[-s, -c, z], [c, -s, z], [z, z, z]]
        return np.moveaxis(np.array(m), (0, 1), (-2, -1)), np.moveaxis(np.array(d), (0, 1), (-2, -1))

    rx, drx = mats(np.cos(pitch), np.sin(pitch), "x")
    ry, dry = mats(np.cos(yaw), np.sin(yaw), "y")
    rz, drz = mats(np.cos(roll), np.sin(roll), "z")
    r = rz @ ry @ rx
    if not jac:
        return r, None
    d = np.stack([rz @ dry @ rx, rz @ ry @ drx, drz @ ry @ rx], axis=-3)
    return r, d


# ----------------------------------------------------------------------------------------------- the fit
@dataclass
class PoseFit:
    """A 3D fit of a landmark sequence (T frames).

    rotation (T, 3, 3), euler_deg (T, 3) yaw/pitch/roll degrees, scale (T,) pixels per model mm,
    translation (T, 2) pixels: the One-Euro-smoothed pose used downstream; ``*_raw`` the same before smoothing.
    identity (Ki,) shared by the video, expression (T, Ke). fitted (T, 68, 2) float32 pixels: the model projected
    with the smoothed pose. error_px (T,) mean distance between fitted and observed landmarks (NaN where the
    frame had no landmarks). valid (T,) bool: the frame had landmarks.
    """

    model: ShapeModel
    rotation: np.ndarray
    euler_deg: np.ndarray
    scale: np.ndarray
    translation: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    fitted: np.ndarray
    error_px: np.ndarray
    valid: np.ndarray
    euler_deg_raw: np.ndarray
    scale_raw: np.ndarray
    translation_raw: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.rotation.shape[0])

    def shapes3d(self) -> np.ndarray:
        """(T, 68, 3) the fitted 3D shapes (identity + per-frame expression), model mm."""
        return self.model.shape(self.identity, self.expression)

    def mean_error_px(self) -> float:
        e = self.error_px[np.isfinite(self.error_px)]
        return float(e.mean()) if e.size else float("nan")


def project(shapes: np.ndarray, rotation: np.ndarray, scale: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Scaled orthographic projection: (T, N, 3), (T, 3, 3), (T,), (T, 2) -> (T, N, 2)."""
    rx = np.einsum("tij,tnj->tni", rotation[:, :2], shapes)
    return scale[:, None, None] * rx + translation[:, None, :]


def _initial_pose(y: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form per-frame pose: affine camera by least squares, then its nearest scaled rotation.

    y (T, 68, 2) normalised landmarks, mean (68, 3) -> angles (T, 3) rad, scale (T,), translation (T, 2).
    """
    xc = mean - mean.mean(axis=0)
    pinv = np.linalg.pinv(xc)  # (3, 68)
    yc = y - y.mean(axis=1, keepdims=True)
    m = np.einsum("in,tnj->tji", pinv, yc)  # (T, 2, 3): y ≈ M x
    r1, r2 = m[:, 0], m[:, 1]
    scale = 0.5 * (np.linalg.norm(r1, axis=1) + np.linalg.norm(r2, axis=1))
    r3 = np.cross(r1, r2)
    full = np.stack([r1, r2, r3 / np.maximum(np.linalg.norm(r3, axis=1, keepdims=True), 1e-12) * scale[:, None]], 1)
    u, _, vt = np.linalg.svd(full)
    rot = u @ vt
    det = np.linalg.det(rot)
    u[:, :, 2] *= det[:, None]
    rot = u @ vt
    translation = y.mean(axis=1) - scale[:, None] * np.einsum("tij,j->ti", rot[:, :2], mean.mean(axis=0))
    return np.deg2rad(euler_from_rotation(rot)), scale, translation


def _fill_invalid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace rows of invalid frames by linear interpolation between valid ones (nearest at the ends)."""
    if valid.all():
        return values
    t = np.arange(len(values))
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(t, t[valid], flat[valid, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape(values.shape)


@dataclass
class _Problem:
    y: np.ndarray  # (T, 68, 2) normalised landmarks
    point_w: np.ndarray  # (T, 68) 0/1 (or confidence) per landmark
    model: ShapeModel  # normalised model (unit RMS radius)
    cfg: FitConfig
    free_rotation: bool = True
    free_identity: bool = True


def _unpack(x_frames: np.ndarray, ke: int):
    return x_frames[:, :3], x_frames[:, 3], x_frames[:, 4:6], x_frames[:, 6:6 + ke]


def _residuals(prob: _Problem, xf: np.ndarray, alpha: np.ndarray, jac: bool):
    m = prob.model
    ke = m.n_expression
    ang, s, t, beta = _unpack(xf, ke)
    shape = m.mean + np.tensordot(alpha, m.identity_basis, axes=(0, 0)) + np.tensordot(beta, m.expression_basis,
                                                                                     axes=(1, 0))
    r, dr = _rot_and_jac(ang, jac=jac)
    r2t = np.swapaxes(r[:, :2], 1, 2)  # (T, 3, 2)
    rx = shape @ r2t  # (T, 68, 2)
    res = s[:, None, None] * rx + t[:, None, :] - prob.y
    if not jac:
        return res, None, None
    T = len(xf)
    sc = s[:, None, None, None]
    jf = np.empty((T, 68, 2, 6 + ke))
    # d/dangle: (T, 3, 68, 2) = shape @ dR^T, one product per angle
    jf[..., 0:3] = np.moveaxis(sc[:, None, :, :, 0] * (shape[:, None] @ np.swapaxes(dr[:, :, :2], 2, 3)), 1, 3)
    jf[..., 3] = rx
    jf[..., 4:6] = 0.0
    jf[..., 0, 4] = 1.0
    jf[..., 1, 5] = 1.0

    def basis_jac(basis: np.ndarray) -> np.ndarray:  # (K, 68, 3) -> (T, 68, 2, K)
        k = basis.shape[0]
        out = (basis.reshape(k * 68, 3) @ r2t).reshape(T, k, 68, 2)
        return sc * np.moveaxis(out, 1, 3)

    jf[..., 6:] = basis_jac(m.expression_basis)
    return res, jf, basis_jac(m.identity_basis)


def _robust_weights(res: np.ndarray, point_w: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber IRLS weights per landmark (T, 68) and the robust cost per landmark."""
    norm = np.linalg.norm(res, axis=-1)
    w = np.where(norm <= delta, 1.0, delta / np.maximum(norm, 1e-12))
    cost = np.where(norm <= delta, 0.5 * norm ** 2, delta * (norm - 0.5 * delta))
    return w * point_w, cost * point_w


def _smooth_weights(prob: _Problem) -> np.ndarray:
    cfg, ke = prob.cfg, prob.model.n_expression
    return np.concatenate([[cfg.smooth_rotation] * 3, [cfg.smooth_scale], [cfg.smooth_translation] * 2,
                           [cfg.smooth_expression] * ke])


def _total_cost(prob: _Problem, xf: np.ndarray, alpha: np.ndarray) -> float:
    res, _, _ = _residuals(prob, xf, alpha, jac=False)
    _, cost = _robust_weights(res, prob.point_w, prob.cfg.huber)
    cfg = prob.cfg
    beta = xf[:, 6:]
    diff = np.diff(xf, axis=0)
    return float(cost.sum() + 0.5 * cfg.prior_expression * (beta ** 2).sum() + 0.5 * cfg.prior_identity * (alpha ** 2).sum()
                 + 0.5 * (_smooth_weights(prob) * diff ** 2).sum())


def _solve(prob: _Problem, xf: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Levenberg–Marquardt with IRLS weights over all frames at once; returns frames, identity, final cost."""
    import scipy.sparse as sp  # here, not at the top: a cached render fits nothing and skips the import (0.3 s)
    from scipy.sparse.linalg import spsolve

    cfg = prob.cfg
    T, p = xf.shape
    ki = prob.model.n_identity
    n = T * p + ki
    lam_t = _smooth_weights(prob)
    prior_f = np.zeros(p)
    prior_f[6:] = cfg.prior_expression
    frozen = np.zeros(p, bool)
    if not prob.free_rotation:
        frozen[:3] = True
    # sparse structure (fixed): block diagonal, temporal band, identity border
    blk_r = (np.arange(T)[:, None, None] * p + np.arange(p)[None, :, None]).repeat(p, axis=2)
    blk_c = np.swapaxes(blk_r, 1, 2)
    band_i = (np.arange(T - 1)[:, None] * p + np.arange(p)[None, :]).ravel()
    band_j = band_i + p
    bord_r = (np.arange(T)[:, None, None] * p + np.arange(p)[None, :, None]).repeat(ki, axis=2)
    bord_c = np.broadcast_to(T * p + np.arange(ki), bord_r.shape)
    id_r, id_c = np.meshgrid(T * p + np.arange(ki), T * p + np.arange(ki), indexing="ij")
    rows = np.concatenate([blk_r.ravel(), band_i, band_j, bord_r.ravel(), bord_c.ravel(), id_r.ravel()])
    cols = np.concatenate([blk_c.ravel(), band_j, band_i, bord_c.ravel(), bord_r.ravel(), id_c.ravel()])
    deg = np.zeros((T, 1))
    deg[:-1] += 1
    deg[1:] += 1

    mu = cfg.damping
    cost = _total_cost(prob, xf, alpha)
    for _ in range(cfg.iterations):
        res, jf, ji = _residuals(prob, xf, alpha, jac=True)
        w, _ = _robust_weights(res, prob.point_w, cfg.huber)
        jf2 = jf.reshape(T, 136, p)
        ji2 = ji.reshape(T, 136, ki)
        w2 = np.repeat(w, 2, axis=1)  # (T, 136)
        r2 = res.reshape(T, 136)
        jwt = np.swapaxes(jf2 * w2[..., None], 1, 2)  # (T, p, 136)
        jiw = ji2 * w2[..., None]
        a_ff = jwt @ jf2
        a_fi = jwt @ ji2
        a_ii = jiw.reshape(T * 136, ki).T @ ji2.reshape(T * 136, ki)
        g_f = (jwt @ r2[..., None])[..., 0] + prior_f * xf
        g_i = jiw.reshape(T * 136, ki).T @ r2.reshape(-1) + cfg.prior_identity * alpha
        diff = np.diff(xf, axis=0) * lam_t
        g_f[:-1] -= diff
        g_f[1:] += diff
        diag_f = prior_f + deg * lam_t  # (T, p)
        a_ff[:, np.arange(p), np.arange(p)] += diag_f
        a_ii = a_ii + cfg.prior_identity * np.eye(ki)
        if not prob.free_identity:
            a_fi = np.zeros_like(a_fi)
            a_ii = np.eye(ki)
            g_i = np.zeros(ki)
        band = -np.broadcast_to(lam_t, (T - 1, p)).ravel()
        base_diag_f = np.einsum("tpp->tp", a_ff).copy()
        base_diag_i = np.diag(a_ii).copy()
        while True:
            a_ff_d = a_ff.copy()
            a_ff_d[:, np.arange(p), np.arange(p)] += mu * (base_diag_f + 1e-9) + frozen * 1e12
            a_ii_d = a_ii + np.diag(mu * (base_diag_i + 1e-9))
            vals = np.concatenate([a_ff_d.ravel(), band, band, a_fi.ravel(), a_fi.ravel(), a_ii_d.ravel()])
            a = sp.csc_matrix((vals, (rows, cols)), shape=(n, n))
            delta = spsolve(a, -np.concatenate([g_f.ravel(), g_i]))
            if not np.all(np.isfinite(delta)):
                mu *= 10
                if mu > 1e8:
                    return xf, alpha, cost
                continue
            xf_new = xf + delta[:T * p].reshape(T, p)
            alpha_new = alpha + delta[T * p:]
            new_cost = _total_cost(prob, xf_new, alpha_new)
            if new_cost <= cost:
                converged = cost - new_cost < cfg.tolerance * max(cost, 1e-12)
                xf, alpha, cost = xf_new, alpha_new, new_cost
                mu = max(mu / 3, 1e-7)
                break
            mu *= 4
            if mu > 1e8:
                return xf, alpha, cost
        if converged:
            break
    return xf, alpha, cost


def _normalised_model(model: ShapeModel) -> tuple[ShapeModel, float]:
    rms = float(np.sqrt((model.mean[:, :2] ** 2).sum(axis=1).mean()))
    return ShapeModel(model.mean / rms, model.identity_basis / rms, model.expression_basis / rms,
                      model.identity_names, model.expression_names, model.source), rms


def fit_landmarks(landmarks: np.ndarray, valid: np.ndarray | None = None, model: ShapeModel | None = None,
                  config: FitConfig | None = None, fps: float = FPS, free_rotation: bool = True,
                  identity: np.ndarray | None = None) -> PoseFit:
    """Fit the 3D model to a landmark sequence.

    landmarks (T, 68, 2) pixels; valid (T,) bool (frames without a face are ignored, their pose interpolated by
    the smoothness terms); ``free_rotation=False`` keeps every frame frontal (R = I, used to lift frontal
    predictions); ``identity`` (Ki,) fixes the identity instead of fitting it. Returns a :class:`PoseFit`.
    """
    cfg = config or FitConfig()
    model = model or default_shape_model()
    y_px = np.asarray(landmarks, np.float64)
    if y_px.ndim != 3 or y_px.shape[1:] != (68, 2):
        raise EvpError(f"landmarks must be (T, 68, 2), got {y_px.shape}")
    T = y_px.shape[0]
    valid = np.ones(T, bool) if valid is None else np.asarray(valid, bool).copy()
    valid &= np.isfinite(y_px).all(axis=(1, 2))
    if not valid.any():
        raise EvpError("no frame has landmarks to fit; use a video where the face is visible")
    # normalise: centre and unit RMS radius (robust over frames), so weights are independent of the image size
    centre = np.median(y_px[valid].mean(axis=1), axis=0)
    radius = float(np.median(np.sqrt(((y_px[valid] - y_px[valid].mean(axis=1, keepdims=True)) ** 2)
                                     .sum(-1).mean(-1))))
    radius = max(radius, 1e-6)
    y = np.where(valid[:, None, None], (y_px - centre) / radius, 0.0)
    nmodel, rms = _normalised_model(model)
    ke, ki = nmodel.n_expression, nmodel.n_identity

    if free_rotation:
        ang, s, t = _initial_pose(y[valid], nmodel.mean)
        ang, s, t = (_fill_invalid(_scatter(v, valid, T), valid) for v in (ang, s, t))
    else:
        ang = np.zeros((T, 3))
        cy = y[valid].mean(axis=1)
        mc = nmodel.mean[:, :2].mean(axis=0)
        s_v = np.sqrt(((y[valid] - cy[:, None]) ** 2).sum((1, 2)) / ((nmodel.mean[:, :2] - mc) ** 2).sum())
        s = _fill_invalid(_scatter(s_v, valid, T), valid)
        t = _fill_invalid(_scatter(cy - s_v[:, None] * mc, valid, T), valid)
    xf = np.concatenate([ang, s[:, None], t, np.zeros((T, ke))], axis=1)
    alpha = np.zeros(ki) if identity is None else np.asarray(identity, np.float64) * 1.0
    point_w = valid[:, None].astype(np.float64) * landmark_weights(cfg)[None]
    prob = _Problem(y, point_w, nmodel, cfg, free_rotation=free_rotation, free_identity=identity is None)
    xf, alpha, _ = _solve(prob, xf, alpha)

    ang, s_n, t_n, beta = _unpack(xf, ke)
    euler_raw = np.rad2deg(ang)
    scale_raw = s_n * radius / rms  # pixels per model mm
    trans_raw = t_n * radius + centre
    if cfg.one_euro and T > 1:
        euler = one_euro(euler_raw, fps, cfg.one_euro_min_cutoff, cfg.one_euro_beta, cfg.one_euro_d_cutoff)
        rel = one_euro(scale_raw[:, None] / np.median(scale_raw) * 100.0, fps, cfg.one_euro_min_cutoff,
                       cfg.one_euro_beta, cfg.one_euro_d_cutoff)[:, 0]
        scale = rel * np.median(scale_raw) / 100.0
        trans = one_euro(trans_raw, fps, cfg.one_euro_min_cutoff, cfg.one_euro_beta, cfg.one_euro_d_cutoff)
    else:
        euler, scale, trans = euler_raw.copy(), scale_raw.copy(), trans_raw.copy()
    rot = rotation_from_euler(euler)
    shapes = model.shape(alpha, beta)
    fitted = project(shapes, rot, scale, trans)
    err = np.linalg.norm(fitted - y_px, axis=-1).mean(axis=-1)
    err[~valid] = np.nan
    return PoseFit(model=model, rotation=rot, euler_deg=euler, scale=scale, translation=trans, identity=alpha,
                   expression=beta, fitted=fitted.astype(np.float32), error_px=err, valid=valid,
                   euler_deg_raw=euler_raw, scale_raw=scale_raw, translation_raw=trans_raw)


def landmark_weights(config: FitConfig) -> np.ndarray:
    """(68,) weight of each landmark in the fit.

    The jaw contour (0-16) counts ``config.contour_weight``: its points are where the face's outline meets the
    background, not fixed points of the face; they slide over the skin as the head turns and detectors place
    them least reliably. Brows and mouth count ``config.brow_weight`` and ``config.mouth_weight``: they move most
    with expression, and what the expression basis cannot express would otherwise leak into the pose. Eyes and
    nose count 1.
    """
    w = np.ones(68)
    w[JAW] = config.contour_weight
    w[BROWS] = config.brow_weight
    w[MOUTH] = config.mouth_weight
    return w


def _scatter(values: np.ndarray, valid: np.ndarray, T: int) -> np.ndarray:
    out = np.zeros((T,) + values.shape[1:])
    out[valid] = values
    return out


# ----------------------------------------------------------------------------------------------- alignment
def expression_config(config: FitConfig) -> FitConfig:
    """The fit settings for recovering expression rather than pose (lifting frontal predictions to 3D): every
    landmark counts fully and the expression prior is 10× weaker than ``config``'s; no One-Euro."""
    return dataclasses.replace(config, one_euro=False, contour_weight=1.0, brow_weight=1.0, mouth_weight=1.0,
                               prior_expression=config.prior_expression / 10)


def frame_schedule(n_audio: int, n_video: int) -> np.ndarray:
    """Target frame index for each of ``n_audio`` output frames: forward then backward (ping-pong), as EVP's release.

    E.g. n_video 4 -> 0 1 2 3 2 1 0 1 2 3 ...; (n_audio,) int64.
    """
    if n_video <= 0:
        raise EvpError("the target video has no frames")
    if n_video == 1:
        return np.zeros(n_audio, np.int64)
    period = 2 * n_video - 2
    k = np.arange(n_audio) % period
    return np.where(k < n_video, k, period - k).astype(np.int64)


def frontalise(landmarks: np.ndarray, fit: PoseFit) -> np.ndarray:
    """Undo each frame's pose: (T, 68, 2) pixels posed as in ``fit`` -> (T, 68, 3) frontal points, model mm.

    x, y come from the landmarks (scale and translation removed), the depth along each camera ray from the fit's
    3D shape; rotating by R^T puts the points back in the model frame (project with R = I to see them frontal).
    """
    pts = (np.asarray(landmarks, np.float64) - fit.translation[:, None]) / fit.scale[:, None, None]
    depth = np.einsum("tj,tnj->tn", fit.rotation[:, 2], fit.shapes3d())[..., None]
    return np.einsum("tji,tnj->tni", fit.rotation, np.concatenate([pts, depth], axis=-1))


def align_to_target(pred_frontal: np.ndarray, fit: PoseFit, schedule: np.ndarray | None = None,
                    config: FitConfig | None = None, fps: float = FPS) -> np.ndarray:
    """3D-aware keypoint alignment: predicted frontal landmarks -> landmarks in each target frame (pixels).

    pred_frontal (T, 68, 2) in the canonical frontal 256×256 frame; ``fit`` the target's :class:`PoseFit`;
    ``schedule`` (T,) target frame per output frame (default :func:`frame_schedule`). The prediction is lifted to
    3D (frontal pose, expression fitted, its own identity absorbed), the target's identity replaces it, the mouth
    keeps the prediction's shape (scaled to the target's mouth width, so its aspect ratio is unchanged), and each
    frame is rotated, scaled and translated with the target frame's pose:
    ``l = s_t · Pr · R_t · L3d + t_t``. Returns (T, 68, 2) float32 target pixels.
    """
    pred = np.asarray(pred_frontal, np.float64)
    if pred.ndim != 3 or pred.shape[1:] != (68, 2):
        raise EvpError(f"predicted landmarks must be (T, 68, 2), got {pred.shape}")
    T = len(pred)
    sched = frame_schedule(T, fit.n_frames) if schedule is None else np.asarray(schedule, np.int64)
    if sched.shape != (T,) or sched.min(initial=0) < 0 or sched.max(initial=0) >= fit.n_frames:
        raise EvpError(f"schedule must be {T} target frame indices below {fit.n_frames}")
    cfg = config or FitConfig()
    lifted = fit_landmarks(pred, model=fit.model, config=expression_config(cfg), fps=fps, free_rotation=False)
    # the face: the target's identity with the predicted expression
    shapes = fit.model.shape(fit.identity, lifted.expression)
    # the mouth: the prediction's own lifted mouth (its identity, expression and the 2D detail the basis cannot
    # express), uniformly scaled to the target's mouth width and placed on the target's mouth: keeps its shape
    own = lifted.shapes3d()
    own[:, MOUTH, :2] += (pred - project(own, lifted.rotation, lifted.scale, lifted.translation))[:, MOUTH] \
        / lifted.scale[:, None, None]
    neutral_pred, neutral_tgt = fit.model.shape(lifted.identity), fit.model.shape(fit.identity)
    k = np.linalg.norm(neutral_tgt[54] - neutral_tgt[48]) / np.linalg.norm(neutral_pred[54] - neutral_pred[48])
    shapes[:, MOUTH] = (own[:, MOUTH] - neutral_pred[MOUTH].mean(axis=0)) * k + neutral_tgt[MOUTH].mean(axis=0)
    out = project(shapes, fit.rotation[sched], fit.scale[sched], fit.translation[sched])
    return out.astype(np.float32)
