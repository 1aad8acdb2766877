"""Synthetic actors: the astronaut portrait (its dlib landmarks, the smile closed) made into a voice and a face
per actor, with its own mirroring, colour, face shape and depth."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from evpcli.corpus.synth.style import actor_name, voice_of
from evpcli.errors import EvpError
from evpcli.face.landmarks import dlib_models
from evpcli.face.parts import (BROWS, EYES, INNER_LIP, JAW, LOWER_INNER_LIP, LOWER_OUTER_LIP, MIDLINE, MIRROR, MOUTH,
                               NOSE_BASE, UPPER_INNER_LIP)
from evpcli.face.shape3d import generic_mean_shape

_CROP = (111, 15, 230)  # x, y, side of the face crop in the 512x512 astronaut photo


_KNOWN_LANDMARKS: np.ndarray | None = None  # set in corpus worker processes by their parent


def use_portrait_landmarks(landmarks: np.ndarray) -> None:
    """Give this process the portrait's landmarks found elsewhere (a corpus worker gets its parent's), so it
    need not load dlib."""
    global _KNOWN_LANDMARKS
    _KNOWN_LANDMARKS = landmarks


@lru_cache(maxsize=1)
def astronaut_landmarks() -> np.ndarray:
    """(68, 2) float64 dlib landmarks of skimage's astronaut photo, pixels of the 512x512 image."""
    if _KNOWN_LANDMARKS is not None:
        return _KNOWN_LANDMARKS.copy()
    import dlib
    from skimage import data

    image = data.astronaut()
    detector, predictor = dlib_models()
    faces = detector(image, 1)
    if not faces:
        raise EvpError("dlib found no face in the astronaut portrait; reinstall dlib-bin and scikit-image")
    face = max(faces, key=lambda r: r.width() * r.height())
    shape = predictor(image, dlib.rectangle(face.left(), face.top(), face.right(), face.bottom()))
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64)


@lru_cache(maxsize=4)
def _portrait(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut face crop at ``size`` px (RGB uint8) and its 68 landmarks in that crop's pixels."""
    from skimage import data

    x, y, side = _CROP
    photo = data.astronaut()
    full = astronaut_landmarks()
    # The photo smiles with its teeth showing: paint the inner mouth over with lips (inpainting), so a closed
    # mouth joins lip to lip; the open mouth is painted per frame by draw_mouth.
    mask = np.zeros(photo.shape[:2], np.uint8)
    inner = full[INNER_LIP].copy()
    inner[[1, 2, 3], 1] -= 0.5
    inner[[5, 6, 7], 1] += 0.5
    for poly in (inner, full[[48, 60, 67, 59]], full[[54, 64, 65, 55]]):
        cv2.fillPoly(mask, [np.round(poly * 8).astype(np.int32)], 255, shift=3)
    photo = cv2.inpaint(photo, mask, 3, cv2.INPAINT_TELEA)
    crop = photo[y:y + side, x:x + side]
    interp = cv2.INTER_AREA if size < side else cv2.INTER_CUBIC
    image = cv2.resize(crop, (size, size), interpolation=interp)
    lm = (full - [x, y] + 0.5) * (size / side) - 0.5
    return image, lm


@dataclass
class Actor:
    """A synthetic actor: a voice and a face.

    ``image`` (S, S, 3) uint8 the recoloured (maybe mirrored) portrait the frames are warped from;
    ``image_landmarks`` (68, 2) its landmarks; ``shape3d`` (68, 3) the neutral 3D face (centred, ~mm);
    ``scale``/``translation`` the projection that puts ``shape3d`` at the actor's neutral landmarks (pixels);
    ``head3d`` (K, 3) points around the head (hair, neck) that move with it; ``image_head`` (K, 2) where they
    are in ``image``.
    """

    index: int
    name: str
    voice: str
    mirrored: bool
    image: np.ndarray
    image_landmarks: np.ndarray
    shape3d: np.ndarray
    scale: float
    translation: np.ndarray
    head3d: np.ndarray
    image_head: np.ndarray
    colour: tuple[float, float, float] = field(default=(1.0, 0.0, 0.0))


def _head_ring(lm: np.ndarray, n: int = 16) -> np.ndarray:
    """(n, 2) points on an ellipse around the face reaching the hair and neck (pixels)."""
    cx = 0.5 * (lm[0, 0] + lm[16, 0])
    half_w = 0.5 * (lm[16, 0] - lm[0, 0])
    top, chin = lm[27, 1], lm[8, 1]
    cy = 0.5 * (top + chin) - 0.1 * (chin - top)
    ax, ay = 1.5 * half_w, 1.15 * (chin - top)
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + ax * np.cos(ang), cy + ay * np.sin(ang)], 1)


@lru_cache(maxsize=16)
def make_actor(index: int, size: int = 256, seed: int = 0) -> Actor:
    """Actor ``index`` (0-based): voice from :func:`~evpcli.corpus.synth.style.voice_of`, face from the astronaut
    portrait with its own mirroring, colour, face shape and depth, all drawn from ``seed``."""
    rng = np.random.default_rng([seed, 7, index])
    image, lm = _portrait(size)
    image, lm = image.copy(), lm.copy()
    mirrored = index % 2 == 1
    if mirrored:
        image = np.ascontiguousarray(image[:, ::-1])
        lm = lm[MIRROR].copy()
        lm[:, 0] = size - 1 - lm[:, 0]
    # Colour: lightness gain, warm/cool and green/magenta shifts in Lab (skin stays plausible).
    gain, da, db = (1.0, 0.0, 0.0) if index == 0 else (rng.uniform(0.85, 1.1), rng.uniform(-7, 7), rng.uniform(-10, 8))
    if index:
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
        lab[..., 0] *= gain
        lab[..., 1] += da
        lab[..., 2] += db
        image = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)

    # The actor's neutral 2D face: the portrait's landmarks with the mouth closed and the smile relaxed,
    # then this actor's identity: jaw width, face length, eye spacing, nose length, mouth width, brow height.
    rest = lm.copy()
    iod = np.linalg.norm(rest[45] - rest[36])
    gap = rest[LOWER_INNER_LIP, 1] - rest[UPPER_INNER_LIP, 1]  # the smile shows teeth
    rest[LOWER_INNER_LIP, 1] -= 0.85 * gap  # mostly the jaw closes: the upper lip keeps its thickness
    rest[UPPER_INNER_LIP, 1] += 0.15 * gap
    rest[LOWER_OUTER_LIP, 1] -= 0.75 * gap.mean()
    rest[5:12, 1] -= 0.5 * gap.mean()
    rest[[48, 54, 60, 64], 1] += 0.05 * iod
    mouth_c = rest[MOUTH].mean(0)
    rest[[48, 54, 60, 64], 0] = mouth_c[0] + 0.93 * (rest[[48, 54, 60, 64], 0] - mouth_c[0])
    mid = rest[MIDLINE[~np.isin(MIDLINE, INNER_LIP)], 0].mean()
    rest[JAW, 0] = mid + rng.uniform(0.92, 1.08) * (rest[JAW, 0] - mid)
    lower = np.arange(3, 14)
    rest[lower, 1] += rng.uniform(-0.04, 0.07) * iod * np.array([0.2, 0.4, 0.6, 0.8, 0.95, 1, 0.95, 0.8, 0.6, 0.4, 0.2])
    rest[EYES, 0] += rng.uniform(-0.03, 0.03) * iod * np.sign(rest[EYES, 0] - mid)
    rest[NOSE_BASE, 1] += rng.uniform(-0.04, 0.04) * iod
    mouth_c = rest[MOUTH].mean(0)
    rest[MOUTH, 0] = mouth_c[0] + rng.uniform(0.92, 1.08) * (rest[MOUTH, 0] - mouth_c[0])
    rest[MOUTH, 1] += rng.uniform(-0.02, 0.03) * iod
    rest[BROWS, 1] += rng.uniform(-0.04, 0.03) * iod

    # 3D: x, y from the 2D face in generic-model units; depth from the generic face, scaled and perturbed.
    generic = generic_mean_shape()
    scale = iod / np.linalg.norm(generic[45] - generic[36])
    centre = rest.mean(0)
    shape = np.zeros((68, 3))
    shape[:, :2] = (rest - centre) / scale
    z = generic[:, 2] * rng.uniform(0.8, 1.2) + rng.normal(0.0, 2.0, 68)
    shape[:, 2] = z - z.mean()
    ring = _head_ring(rest)
    head3d = np.zeros((len(ring), 3))
    head3d[:, :2] = (ring - centre) / scale
    head3d[:, 2] = 25.0
    return Actor(index=index, name=actor_name(index), voice=voice_of(index)[1], mirrored=mirrored,
                 image=image, image_landmarks=lm, shape3d=shape, scale=float(scale), translation=centre,
                 head3d=head3d, image_head=_head_ring(lm), colour=(float(gain), float(da), float(db)))
