"""Real amplitudes for a commanded emotion: how far the audio-to-landmark network's lasting expression is scaled.

The network learnt the synthetic corpus's whole-face prototypes (:mod:`evpcli.corpus.synth.expressions`, sized like
real faces at full intensity), but commands a fraction of them: an emotion name's code is the mean over the levels,
and a network trained by squared error regresses to the mean. Measured on real targets with ARCTIC speech (the
shipped models, ``benchmarks/bench_emotion_command.py``), the lasting expression of ``--emotion happy`` lifts the
lip corners 3.8-4.4 % of the inter-ocular distance (IOD) where the full prototype lifts them ~11 %, and an
independent expression judge needs more than that on a real face (``benchmarks/bench_emotion_amplitude.py``).

So the *lasting* part of the emotion's effect (what the emotion changes over the neutral prediction for the same
speech and face, averaged over ``SLOW_SECONDS``) is scaled by a per-emotion gain along the emotion's prototype
(its whole-face shape), and the rest (the speech's motion, how the emotion changes it) is left as the network made
it:

    c(t) = coefficient of slow(expressive - neutral) on the prototype P
    out  = expressive + (gain - 1) * c(t) * P

Each emotion's gain is measured on the prediction itself, per render: the mean of its expression over the neutral
prediction is projected on the emotion's prototype (a coefficient; 1 = the prototype at full intensity), and the
gain brings that coefficient to the code's weight of the emotion times :data:`TARGET` (clipped to ``[1,
MAX_GAIN]``). The weights are the code's step from the neutral mean code as non-negative multiples of the steps to
the emotions' mean codes: an emotion name at intensity K weighs K, so the expression grows linearly with the
intensity (the network alone gives ``--intensity 2`` only 1.3x the expression of 1) and 0 is the neutral face; a
clip, a face or an interpolation weighs each emotion it holds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SLOW_SECONDS = 1.0  # the lasting part of an expression: its centred moving average over this long
MAX_GAIN = 4.0
# The lasting expression commanded at intensity 1, as a coefficient of each emotion's own prototype (1 = the corpus's
# full intensity, sized like real faces). Chosen with the judge on the tuning targets (carphone, the astronaut;
# benchmarks/bench_emotion_amplitude.py, bench_emotion_real.py): see the README's judge table.
TARGET = {"happy": 1.2, "sad": 1.2, "angry": 0.9, "surprised": 0.9, "fear": 1.0, "disgusted": 1.0, "contempt": 1.0}


@lru_cache(maxsize=1)
def prototypes() -> tuple[tuple[str, ...], np.ndarray]:
    """(emotion names, (E, 68, 2) their prototypes at full intensity in the canonical 256 frame, pixels)."""
    from evpcli.face.expression import _bases

    _, protos, names = _bases()
    return names, protos.astype(np.float64)


def prototype_coefficient(displacement: np.ndarray, emotion: str) -> float:
    """How much of ``emotion``'s prototype a displacement (68, 2) canonical pixels holds: its least-squares
    projection on the prototype (1 = the prototype at full intensity, 0 = none of it, negative = the opposite)."""
    names, protos = prototypes()
    p = protos[names.index(emotion)].reshape(-1)
    return float(np.asarray(displacement, np.float64).reshape(-1) @ p / (p @ p))


def lasting(displacement: np.ndarray, fps: float = 25.0) -> np.ndarray:
    """The lasting part of a displacement sequence (T, 68, 2): its centred moving average over ``SLOW_SECONDS``."""
    from evpcli.face.pose import moving_average

    return moving_average(displacement, max(1, int(round(SLOW_SECONDS * fps)) | 1))


def emotion_gains(expressive: np.ndarray, neutral: np.ndarray, weights: dict[str, np.ndarray]) -> dict[str, float]:
    """Each emotion's gain for a prediction: ``expressive`` and ``neutral`` (T, 68, 2) canonical, the model's
    predictions for the same speech and face with the code and with the neutral mean code; ``weights`` the code's
    share of each emotion (:func:`code_weights`). The gain brings the mean coefficient of the emotion's prototype in
    ``expressive - neutral`` to its weight times :data:`TARGET` (clipped to ``[1, MAX_GAIN]``; emotions the code
    does not hold, or the model does not draw, get none)."""
    mean = np.mean(np.asarray(expressive, np.float64) - np.asarray(neutral, np.float64), axis=0)
    out = {}
    for emotion, w in weights.items():
        want = float(np.mean(w)) * TARGET.get(emotion, 1.0)
        c = prototype_coefficient(mean, emotion)
        if want > 1e-3 and c > 1e-3:
            out[emotion] = float(np.clip(want / c, 1.0, MAX_GAIN))
    return out


def code_weights(code: np.ndarray, means: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The share of each emotion in a code: non-negative least squares of its step from the neutral mean code on the
    steps to each emotion's mean code. ``code`` (D,) or per frame (T, D) -> emotion -> weight () or (T,) (an emotion
    name's code at intensity K: K for it, 0 for the others)."""
    from scipy.optimize import nnls

    names = [e for e in means if e != "neutral"]
    n = np.asarray(means["neutral"], np.float64)
    a = np.stack([np.asarray(means[e], np.float64) - n for e in names], axis=1)  # (D, E)
    c = np.asarray(code, np.float64)
    rows = c[None] if c.ndim == 1 else c
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    w = np.stack([nnls(a, r - n)[0] for r in uniq])[np.ravel(inverse)]  # (T, E)
    if c.ndim == 1:
        w = w[0]
    return {e: w[..., k] for k, e in enumerate(names)}


def amplify(expressive: np.ndarray, neutral: np.ndarray, factors: dict[str, float | np.ndarray],
            fps: float = 25.0) -> np.ndarray:
    """``expressive`` (T, 68, 2) canonical with each emotion's prototype added in proportion to how much of it the
    lasting part of (``expressive`` - ``neutral``) holds: ``factor_e x c_e(t) x prototype_e``, ``c_e(t)`` the
    lasting displacement's coefficient on the prototype (:func:`prototype_coefficient`, at least 0), ``factor_e`` a
    number or per frame (T,). A gain ``g`` (factor ``g - 1``, :func:`emotion_gains`) thus brings the coefficient
    from ``c`` to ``g c`` with the prototype's whole-face proportions (the network's happy widens the mouth twice as
    much as it lifts the corners; scaled as it is, the mouth became a wide slot), and leaves what the network does
    besides (the speech's motion, the emotion's effect on it) as it is. No prototype brings the inner lips together
    (speech opens the mouth in every emotion), so the lips are never pushed through each other."""
    names, protos = prototypes()
    e = np.asarray(expressive, np.float64)
    slow = lasting(e - np.asarray(neutral, np.float64), fps).reshape(len(e), -1)
    out = e.copy()
    for emotion, factor in factors.items():
        f = np.broadcast_to(np.asarray(factor, np.float64), (len(e),))
        if not f.any():
            continue
        p = protos[names.index(emotion)]
        c = np.maximum(slow @ p.reshape(-1) / (p.reshape(-1) @ p.reshape(-1)), 0.0)  # (T,)
        out += (f * c)[:, None, None] * p[None]
    return out.astype(np.float32)
