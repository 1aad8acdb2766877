"""Real amplitudes for a commanded emotion: the network's lasting expression brought up to the emotion's own.

The network learnt the synthetic corpus's whole-face prototypes (:mod:`evpcli.corpus.synth.expressions`, sized like
real faces at full intensity), but commands a fraction of them: an emotion name's code is the mean over the levels,
and a network trained by squared error regresses to the mean. Measured on real targets with ARCTIC speech (the
shipped models, ``benchmarks/bench_emotion_command.py --plain``), the lasting expression of ``--emotion happy`` holds
0.38-0.42 of its prototype (the lip corners 3.8-4.4 % of the inter-ocular distance up, where the prototype lifts
them ~11 %), sad 0.26-0.34, disgusted 0.22-0.25, angry 0.63, surprised 0.85-0.88; an independent expression judge
needs about the full prototype on a real face (``benchmarks/bench_emotion_amplitude.py``).

So the *lasting* part of the emotion's effect (what the emotion changes over the neutral prediction for the same
speech and face, averaged over ``SLOW_SECONDS``) is topped up along the emotion's prototype (its whole-face shape)
to the amount the code asks for, and the rest (the speech's motion, how the emotion changes it) is left as the
network made it:

    c(t)  = coefficient of slow(expressive - neutral) on the prototype P   (1 = P at full intensity)
    a(t)  = the code's weight of the emotion x TARGET, at most LIMIT
    out   = expressive + max(a(t) - c(t), 0) * P

The weights are the code's step from the neutral mean code as non-negative multiples of the steps to the emotions'
mean codes (:func:`code_weights`): an emotion name at intensity K weighs K, so the expression grows linearly with
the intensity up to the limit (the network alone gives ``--intensity 2`` 1.1-1.8x the expression of 1, and 0.5
0-0.4x of it) and 0 is the neutral face; a clip, a face or an interpolation weighs each emotion it holds, frame by
frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from evpcli.config import FPS

SLOW_SECONDS = 1.0  # the lasting part of an expression: its centred moving average over this long
# The lasting expression commanded at intensity 1, as a coefficient of each emotion's own prototype (1 = the corpus's
# full intensity, sized like real faces). Chosen with the judge on the tuning targets (carphone, the astronaut;
# benchmarks/bench_emotion_amplitude.py, bench_emotion_real.py): see the README's judge table. Angry 0.9 -> 1.2 with
# the frown's shading (engines.shading): carphone's angry rise over the neutral render +0.07 -> +0.13 alone, +0.34
# with the shading; lip sync of its renders 0.70 -> 0.73 (4 real clips). Angry 1.2 -> 1.5 for its brows and nose,
# its lids and lips kept at 1.2 (LIDS_LIPS_SHARE; stop 53): the second judge, face-api.js, read carphone's and the
# smiler's angry renders neutral at 1.2 (docs/commands.md, "Emotion on real faces").
TARGET = {"happy": 1.2, "sad": 1.2, "angry": 1.5, "surprised": 0.9, "fear": 1.0, "disgusted": 1.0, "contempt": 1.0}
# The most any intensity commands: beyond it the warp no longer draws a face. The renderer adds the tracker's 1.25
# (face.landmarks.TRACKER_GAIN); through the warp a happy mouth at 2x the prototype is a dark slit and angry brows at
# 1.5x pressed the upper lids shut (bench_emotion_amplitude.py, looked at) while its lids were topped up with them;
# with its lids and lips held at 0.8 of the rest (LIDS_LIPS_SHARE) angry goes to 1.6 (2.0 drawn): at --intensity 2
# carphone's frame 78 squints as it did at 1.3, dlib finds it in 20 of 25 frames (19 at 1.3). The emotions that
# raise the brows stop at 1.3: at 1.6
# (--intensity 2) dlib's detector lost carphone's face in 16-19 of 25 frames of its sad, surprised and fear renders
# and its frame 60's (a photo) in 20-25 (the brows high on a small forehead, the eyes wide: a caricature by eye), and
# the judges read them less than at intensity 1; at 1.3 it lost 10-13 and 1-19 (bench_emotion_real.py --intensity
# 2; carphone's frame 78 is lost either way, and in 6-15 of 25 at intensity 1). Happy keeps 1.6: its faces stay.
LIMIT = {"angry": 1.6, "sad": 1.3, "surprised": 1.3, "fear": 1.3}
MAX_COEFFICIENT = 1.6
# Emotions whose mouth is left to the network (the top-up moves the rest of the face): sad's whole mouth pulled down by
# its prototype cost lip sync (dlib's inner-lip opening against the speech, 4 real clips: the astronaut 0.76 -> 0.64,
# carphone 0.65 -> 0.56; the open mouth's interior comes from the target's own mouths, the astronaut's one grin, and an
# affine fit cannot bend it into a frown) and bought the judge nothing (carphone's sad rise +0.16 either way).
# Each maps to the points of its mouth topped up with the rest of the face all the same: sad's mouth corners pulled
# down (AU15, ~9 % of the inter-ocular distance outside, ~7 % inside), the opening between them (the inner lips' middle
# points) left to the network. The corners move as one: with the outer corners (48, 54) alone (stop 43) the warp
# stretched the target's own corner into a wedge below the inner one (engines.commissure redrew it), the lower lip
# became a flat pink trapezoid and dlib read the bearded man's mouth as shut (his sad lip sync 0.07); with the inner
# corners (60, 64) too the opening itself turns down at its ends, a frowning mouth (stop 44). Measured
# (bench_emotion_real.py --judge fer,faceapi; bench_render_real.py, 18 sad renders of the six README targets x 3
# real speeches), outer corners only -> both: FER's sad rise / top-1 carphone +0.30 / 0.67 -> +0.34 / 0.69, the
# astronaut +0.40 / 0.84 -> +0.53 / 0.84, carphone-photo +0.42 -> +0.46, the smiler +0.37 -> +0.41, face-api's
# +0.78 / +0.89 / +0.96 / +0.99 -> +0.81 / +0.99 / +0.97 / +1.00; lip sync 0.673 -> 0.764 (the bearded man 0.07 ->
# 0.66, carphone-closed 0.797 -> 0.735, the four tuning targets 0.793 -> 0.799).
MOUTH_FROM_NETWORK = {"sad": (48, 54, 60, 64)}
# The brows the prototype raises are topped up point by point as well (after the whole face): the network's surprise
# drops the jaw further than its prototype and raises the inner brows, so its whole-face coefficient reached 0.9 while
# its outer brows rose 1.4 % of the inter-ocular distance where the prototype raises them 10 %
# (bench_emotion_command.py --plain): the inner brows alone, a worried face rather than a surprised one. Each brow
# point the prototype raises by at least BROW_MIN_PX canonical pixels (~0.5 % IOD) is brought to the wanted
# coefficient of its own displacement, at most BROW_LIMIT (intensity 1 wants 0.9 of surprise, 1.0 of fear; at the
# emotions' LIMIT 1.3 for --intensity 2 dlib lost carphone-photo's surprised face in 12 of 25 frames instead of 1).
# Surprised's rise of the judges' p over the neutral render (bench_emotion_real.py, intensity 1), FER / face-api:
# carphone-photo +0.56 / 0.50 -> +0.71 / 0.79 (FER), the bearded man +0.26 / 0.28 -> +0.42 / 0.48 (face-api); the
# other emotions' commands are unchanged but contempt's raised brow and fear's outer brows (+0.25 % IOD). Lowered
# brows are left to the whole face: sad's outer brows pushed down to their share (-1.9 % IOD instead of the
# network's -0.6) bought no judge anything and dlib lost carphone-closed's face more often (its sad lip sync 0.79 ->
# 0.70).
BROW_MIN_PX = 0.5
BROW_LIMIT = 1.0
# The lids and the lips (points 36-67) of these emotions are topped up to this share of the wanted coefficient only,
# the rest (the brows, the nose) to the whole of it. Angry at 1.5 of its prototype all over: its tightened lower lids
# and the lowered brows left carphone's frame 78 looking out of slits (read sad by face-api: 0.09 -> 0.30) and its
# pressed lips cost lip sync (the astronaut with LibriVox 0.80 -> 0.71); so its lids and lips stay at the 1.2 they had
# (1.28 at the limit, where 1.3 gave them 1.3) and the brows take the rest.
LIDS_LIPS_SHARE = {"angry": 0.8}


@lru_cache(maxsize=1)
def prototypes() -> tuple[tuple[str, ...], np.ndarray]:
    """(emotion names, (E, 68, 2) their prototypes at full intensity in the canonical 256 frame, pixels)."""
    from evpcli.face.expression import _bases

    _, protos, names = _bases()
    return names, protos.astype(np.float64)


def prototype_coefficient(displacement: np.ndarray, emotion: str) -> np.ndarray:
    """How much of ``emotion``'s prototype displacements (..., 68, 2) canonical pixels hold: their least-squares
    projection on the prototype (1 = the prototype at full intensity, 0 = none of it, negative = the opposite);
    shape (...)."""
    names, protos = prototypes()
    p = protos[names.index(emotion)].reshape(-1)
    d = np.asarray(displacement, np.float64)
    return d.reshape(*d.shape[:-2], -1) @ p / (p @ p)


def lasting(displacement: np.ndarray, fps: float = FPS) -> np.ndarray:
    """The lasting part of a displacement sequence (T, 68, 2): its centred moving average over ``SLOW_SECONDS``."""
    from evpcli.face.filters import moving_average

    return moving_average(displacement, max(1, int(round(SLOW_SECONDS * fps)) | 1))


def code_weights(code: np.ndarray, means: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The share of each emotion in a code: non-negative least squares of its step from the neutral mean code on the
    steps to each emotion's mean code. ``code`` (D,) or per frame (T, D) -> emotion -> weight () or (T,) (an emotion
    name's code at intensity K: K for it, 0 for the others).

    Codes are non-negative (the emotion encoder ends in a ReLU, and ``--intensity`` clips at 0), so a component at 0
    only says the step went at least that far down: those components are left out of the fit. Fitted on them, sad at
    intensity 2 read as sad 1.7 + happy 0.9 + contempt 1.1."""
    from scipy.optimize import nnls

    names = [e for e in means if e != "neutral"]
    n = np.asarray(means["neutral"], np.float64)
    a = np.stack([np.asarray(means[e], np.float64) - n for e in names], axis=1)  # (D, E)
    c = np.asarray(code, np.float64)
    rows = c[None] if c.ndim == 1 else c
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    w = np.stack([nnls(a[r > 1e-7], (r - n)[r > 1e-7])[0] for r in uniq])[np.ravel(inverse)]  # (T, E)
    if c.ndim == 1:
        w = w[0]
    return {e: w[..., k] for k, e in enumerate(names)}


def targets(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The lasting coefficient each emotion's prototype should reach: its weight times :data:`TARGET`, at most its
    :data:`LIMIT` (:data:`MAX_COEFFICIENT`); emotions the code does not hold are left out."""
    return {e: np.minimum(np.asarray(w, np.float64) * TARGET.get(e, 1.0), LIMIT.get(e, MAX_COEFFICIENT))
            for e, w in weights.items() if np.max(w) > 1e-3}


def amplify(expressive: np.ndarray, neutral: np.ndarray, wanted: dict[str, float | np.ndarray],
            fps: float = FPS) -> np.ndarray:
    """``expressive`` (T, 68, 2) canonical with each emotion's prototype topped up: where the lasting part of
    (``expressive`` - ``neutral``) holds less than ``wanted[e]`` (a coefficient, a number or per frame (T,);
    :func:`targets`) of the prototype, the difference is added, with the prototype's whole-face proportions (the
    network's own happy widens the mouth twice as much as it lifts the corners: scaled up as it is, the mouth became a
    wide slot). What the network does besides (the speech's motion, the emotion's effect on it) stays as it is; the
    emotions of :data:`MOUTH_FROM_NETWORK` keep the network's mouth but for the points listed there. No prototype
    brings the inner lips together (speech opens the mouth in every emotion), so the lips are never pushed through
    each other."""
    from evpcli.face.parts import BROWS, EYES, MOUTH

    names, protos = prototypes()
    e = np.asarray(expressive, np.float64)
    slow = lasting(e - np.asarray(neutral, np.float64), fps)
    out = e.copy()
    for emotion, want in wanted.items():
        a = np.broadcast_to(np.asarray(want, np.float64), (len(e),))
        p = protos[names.index(emotion)].copy()
        if emotion in MOUTH_FROM_NETWORK:  # the rest of the face measured and topped up alone
            kept = list(MOUTH_FROM_NETWORK[emotion])
            corners = p[kept].copy()
            p[MOUTH] = 0.0
            p[kept] = corners
        flat = p.reshape(-1)
        have = slow.reshape(len(e), -1) @ flat / (flat @ flat)  # (T,) the coefficient on (that part of) the prototype
        added = np.maximum(a - have, 0.0)[:, None, None] * p[None]
        if emotion in LIDS_LIPS_SHARE:
            held = np.concatenate([EYES, MOUTH])
            added[:, held] = np.maximum(LIDS_LIPS_SHARE[emotion] * a - have, 0.0)[:, None, None] * p[None, held]
        out += added
        pb = p[BROWS]  # then each raised brow point on its own (BROW_MIN_PX)
        norm = np.sum(pb * pb, -1)
        held = np.sum((slow[:, BROWS] + added[:, BROWS]) * pb[None], -1) / np.maximum(norm, 1e-9)  # (T, 10)
        raised = pb[:, 1] <= -BROW_MIN_PX  # (10,) the points it raises (y down)
        short = np.where(raised[None], np.maximum(np.minimum(a, BROW_LIMIT)[:, None] - held, 0.0), 0.0)
        out[:, BROWS] += short[..., None] * pb[None]
    return out.astype(np.float32)
