"""One streaming pass over a target video for the warp renderer: its mouth bank and per-frame reliability.

:func:`analyse_target` reads each frame once (frames may be a generator from the decoder) and keeps only small
things: a 64x64 canonical face per frame for the occlusion check (:mod:`evpcli.engines.reliability`), the mouth
canvases of the candidate frames for the bank (chosen beforehand from the landmarks alone,
:func:`evpcli.engines.mouth.candidate_frames`), a noise estimate and the skin colour. After the pass the
reliability is computed and the bank chosen among the reliable candidates (no hands in the bank).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from evpcli.config import RenderConfig
from evpcli.engines.mouth import MouthBank, bank_scale, candidate_frames, choose_bank, extract_mouth, noise_sigma
from evpcli.engines.reliability import appearance_scores, canonical_rgb, reliability_from_scores, skin_rgb, to_lab


def _check(landmarks: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (N, 68, 2), got {lm.shape}")
    v = np.ones(len(lm), bool) if valid is None else np.asarray(valid, bool)
    if v.shape != (len(lm),):
        raise ValueError(f"valid must be ({len(lm)},), got {v.shape}")
    return lm, v


def analyse_target(frames: Iterable[np.ndarray], landmarks: np.ndarray, valid: np.ndarray | None,
                   cfg: RenderConfig | None = None, with_bank: bool = True) -> tuple[MouthBank | None, np.ndarray]:
    """Mouth bank and reliability of a target in one pass over its frames.

    ``frames``: N frames (H, W, 3) uint8 RGB (any iterable; read once); ``landmarks`` (N, 68, 2) pixels, tracked;
    ``valid`` (N,) bool from the tracker (None: all valid). Returns (``bank`` or None without ``with_bank``,
    ``reliability`` (N,) float32 in [0, 1])."""
    cfg = cfg or RenderConfig()
    lm, valid = _check(landmarks, valid)
    n = len(lm)
    scale = bank_scale(lm, valid)
    wanted = set(int(i) for i in candidate_frames(lm, valid, cfg.bank_candidates)) if with_bank else set()
    faces = np.zeros((n, 64, 64, 3), np.float16)
    candidates: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    noise, skins = [], []
    seen = 0
    for i, frame in enumerate(frames):
        if i >= n:
            raise ValueError(f"more frames than landmarks ({n})")
        seen += 1
        frame = np.asarray(frame)
        small = canonical_rgb(frame, lm[i])
        faces[i] = to_lab(small)
        if i in wanted:
            candidates[i] = extract_mouth(frame, lm[i], scale)
            if len(noise) < 24:
                crop, _ = candidates[i]
                noise.append(noise_sigma(crop.mean(-1)))
        if valid[i] and i % 5 == 0 and len(skins) < 200:
            skins.append(skin_rgb(small))
    if seen != n:
        raise ValueError(f"got {seen} frames for {n} landmark rows")
    score = appearance_scores(faces.astype(np.float32), valid)
    reliability = reliability_from_scores(score, valid, cfg)
    if not with_bank:
        return None, reliability
    skin = np.median(np.array(skins), axis=0) if skins else np.array([190.0, 150.0, 130.0])
    bank = choose_bank(candidates, lm, reliability, cfg, scale, float(np.median(noise)) if noise else 0.0, skin)
    return bank, reliability


def build_mouth_bank(frames: Iterable[np.ndarray], landmarks: np.ndarray, valid: np.ndarray | None,
                     cfg: RenderConfig | None = None) -> MouthBank:
    """The target's :class:`MouthBank` (one pass over ``frames``; see :func:`analyse_target`)."""
    bank, _ = analyse_target(frames, landmarks, valid, cfg)
    return bank


def face_reliability(frames: Iterable[np.ndarray], landmarks: np.ndarray, valid: np.ndarray | None,
                     cfg: RenderConfig | None = None) -> np.ndarray:
    """(N,) float32 in [0, 1]: how far each target frame's face can be changed (0: occluded or lost; pass it
    through). One pass over ``frames``; see :mod:`evpcli.engines.reliability`."""
    return analyse_target(frames, landmarks, valid, cfg, with_bank=False)[1]
