"""Calibration of what ``--emotion-audio`` says about an emotion clip (issue 23: it must read honestly).

The emotion classifier Ce and the emotion codes were trained on synthetic (espeak) speech. On real recorded speech
the code lands near, or far from, the training emotions' code clouds and Ce reads it with a probability that means
little (a neutral CMU ARCTIC reading: disgusted, p 0.82). Three numbers, all computed from data by
:func:`fit_calibration` (``scripts/calibrate_emotion_audio.py`` runs it and stores them in the model as
``code_temperature``, ``code_confident``, ``code_limit``), decide what a clip's reading says:

- ``temperature`` T: Ce's logits are divided by T before the softmax; T minimises the negative log-likelihood of the
  corpus's held-out clips (sentences never trained on), standard temperature scaling;
- ``limit``: the distance of a code to its nearest training emotion mean (per-dimension scaled, see
  :func:`code_distance`) beyond which the code is "far from every training emotion": the largest distance of a
  held-out corpus clip (every held-out synthetic clip is in distribution), unless a larger value still flags every
  real calibration clip the smaller one flags;
- ``confident``: the calibrated probability a reading needs to be stated as that emotion: just above the highest
  calibrated probability of a wrong (non-neutral) reading among the real calibration clips that are in distribution
  (all of them neutral speech), and never below the level at which the corpus's held-out readings are 90 % right.

A reading is confident only when the code is in distribution AND its calibrated probability reaches ``confident``.
Otherwise it is stated as uncertain; a code far from every training emotion drives the face with the neutral mean
code instead (the network never learnt what such a code looks like), with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the share of confident readings of the corpus's held-out clips that must be right at the confidence threshold
HELDOUT_PRECISION = 0.9


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of integer ``labels`` (N,) under ``softmax(logits / temperature)`` (N, K)."""
    p = softmax(logits, temperature)
    return float(-np.log(np.maximum(p[np.arange(len(labels)), labels], 1e-300)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lo: float = 0.05, hi: float = 50.0) -> float:
    """The temperature minimising :func:`nll` (a grid over log T, then golden-section search in the best cell)."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, int)
    if len(labels) == 0:
        raise ValueError("no clips to fit a temperature on")
    grid = np.exp(np.linspace(np.log(lo), np.log(hi), 61))
    k = int(np.argmin([nll(logits, labels, t) for t in grid]))
    a, b = np.log(grid[max(k - 1, 0)]), np.log(grid[min(k + 1, len(grid) - 1)])
    g = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = b - g * (b - a), a + g * (b - a)
        if nll(logits, labels, np.exp(c)) < nll(logits, labels, np.exp(d)):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))


def code_distance(means: np.ndarray, scale: np.ndarray, code: np.ndarray) -> float:
    """Distance of a clip-level code (D,) to the nearest emotion mean (E, D), each dimension divided by the training
    codes' spread ``scale`` (D,), per sqrt(dimension)."""
    means = np.asarray(means, np.float64)
    d = np.linalg.norm((np.asarray(code, np.float64)[None] - means) / np.asarray(scale, np.float64)[None], axis=1)
    return float(d.min() / np.sqrt(means.shape[1]))


@dataclass
class Calibration:
    temperature: float
    limit: float
    confident: float
    report: dict

    def stats(self) -> dict[str, np.ndarray]:
        """What the model stores (``code_`` + key)."""
        return {"temperature": np.float32(self.temperature), "limit": np.float32(self.limit),
                "confident": np.float32(self.confident)}


def read(probs: np.ndarray, distance: float, limit: float | None, confident: float | None,
         emotions: tuple[str, ...] | list[str]) -> dict:
    """What a reading says: ``reading`` (an emotion name, or "uncertain"), ``confident``, ``out_of_distribution``
    and the two most probable emotions (the blend the code is)."""
    probs = np.asarray(probs, np.float64)
    order = np.argsort(-probs)
    ood = None if limit is None else bool(distance > limit)
    sure = bool(not ood and (confident is None or probs[order[0]] >= confident))
    return {"reading": emotions[order[0]] if sure else "uncertain", "confident": sure, "out_of_distribution": ood,
            "blend": {emotions[k]: float(probs[k]) for k in order[:2]}}


def _balanced_limit(held: np.ndarray, real: np.ndarray) -> float:
    """The largest held-out distance, or, when a larger threshold keeps flagging exactly the same real clips, the
    midpoint up to the next real distance (a margin that costs nothing on the calibration clips)."""
    base = float(held.max())
    above = np.sort(real[real > base])
    return float((base + above[0]) / 2) if len(above) else base


def fit_calibration(heldout_logits: np.ndarray, heldout_labels: np.ndarray, heldout_dist: np.ndarray,
                    real_logits: np.ndarray, real_dist: np.ndarray, neutral: int) -> Calibration:
    """Fit the temperature, the distance limit and the confidence threshold (see the module's docstring).

    ``heldout_*``: the corpus's held-out clips (logits (N, K), labels (N,), distances (N,)); ``real_*``: the real
    calibration clips, all neutral speech (logits (M, K), distances (M,)); ``neutral``: the neutral class index."""
    hl, hy, hd = np.asarray(heldout_logits), np.asarray(heldout_labels, int), np.asarray(heldout_dist, float)
    rl, rd = np.asarray(real_logits), np.asarray(real_dist, float)
    t = fit_temperature(hl, hy)
    limit = _balanced_limit(hd, rd)
    hp, rp = softmax(hl, t), softmax(rl, t)
    # the corpus's precision floor: the lowest threshold at which held-out confident readings are >= 90 % right
    conf_h = hp.max(1)
    right = hp.argmax(1) == hy
    floor = 0.0
    for thr in np.sort(np.unique(conf_h)):
        keep = conf_h >= thr
        if keep.any() and right[keep].mean() >= HELDOUT_PRECISION:
            floor = float(thr)
            break
    wrong_in = (rp.argmax(1) != neutral) & (rd <= limit)
    worst = float(rp.max(1)[wrong_in].max()) if wrong_in.any() else 0.0
    confident = max(floor, min(np.nextafter(worst, 2.0), 1.0)) if wrong_in.any() else floor
    report = {"temperature": t, "limit": limit, "confident": float(confident),
              "heldout_clips": int(len(hy)), "real_calibration_clips": int(len(rd)),
              "heldout_nll": {"before": nll(hl, hy, 1.0), "after": nll(hl, hy, t)},
              "heldout_accuracy": float(right.mean()),
              "heldout_max_distance": float(hd.max()),
              "heldout_confident_share": float(((conf_h >= confident) & (hd <= limit)).mean()),
              "heldout_confident_accuracy": float(right[(conf_h >= confident) & (hd <= limit)].mean())
              if ((conf_h >= confident) & (hd <= limit)).any() else None,
              "real_calibration_out_of_distribution": float((rd > limit).mean())}
    return Calibration(t, limit, float(confident), report)
