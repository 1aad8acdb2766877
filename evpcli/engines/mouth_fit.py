"""Carrying one mouth's interior onto another mouth's lips, and which interiors suit a smiling command.

- :func:`lip_maps`: inverse maps, piecewise-affine over a strip across the opening (each upper inner-lip point with
  the lower one below it, and a rim beyond), so a source's inner-lip outline lands on the commanded one exactly;
  :func:`prefilter` blurs the source first where that squeezes it. One affine fitted to all twenty lip points could
  not follow a smile: the commanded opening, curved up to its corners, held the source's lower lip (a second lip
  inside the mouth, with a light line where the two met).
- :func:`smile_amount`: how much a command smiles over the target frame it is drawn on (its mouth corners raised
  towards the upper lip's middle), 0-1.
- :func:`upper_teeth`: how much of a mouth's opening is upper teeth (well brighter than its lips) over a dark
  cavity.

A smiling mouth that opens shows its upper teeth under the upper lip: for a smiling command the mouth filler
(:class:`~evpcli.engines.mouth.MouthFiller`) prefers the target's own mouths that show them, by
:data:`TEETH_PREFERENCE`, and carries them under the commanded upper lip.
"""

from __future__ import annotations

import cv2
import numpy as np

from evpcli.engines.geometry import Box, pwa_maps
from evpcli.face.parts import INNER_LIP, LOWER_INNER_LIP, OUTER_LIP, UPPER_INNER_LIP

SMILE_FULL = 0.08  # corners raised this far towards the upper lip's middle (IOD, over the target's own): a full smile
TEETH_PREFERENCE = 4.0  # a smiling command's cost of a source without upper teeth: (1 + this) x its shape cost
MIN_TEETH = 0.03  # a bank whose best mouth shows less than this share of upper teeth has none to prefer
MIN_DARK = 0.3  # the share of a mouth's opening that is dark from which it reads open (upper_teeth)
TEETH_MARGIN = 5.0  # CIELAB L* (0-100) above the lips' median that counts as teeth


RIM = 0.08  # the rim beyond the opening (covers its rounded outline): each inner-lip point moved out along the
# outline's normal by this share of the opening's width


def _strip(landmarks: np.ndarray) -> np.ndarray:
    """(16, 2) control points of a mouth's opening: its 8 inner-lip points (60-67) and a rim beyond each (out along
    the outline's normal there)."""
    inner = np.asarray(landmarks, np.float64)[INNER_LIP]
    tangent = np.roll(inner, -1, axis=0) - np.roll(inner, 1, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    area2 = float(np.dot(inner[:, 0], np.roll(inner[:, 1], -1)) - np.dot(inner[:, 1], np.roll(inner[:, 0], -1)))
    if area2 < 0:  # the outline runs the other way round: its outward normal is the other one
        normal = -normal
    width = float(np.linalg.norm(inner[4] - inner[0]))
    return np.concatenate([inner, inner + RIM * width * normal])


def _strip_triangles() -> np.ndarray:
    """Triangles over :func:`_strip`'s points: the opening as a strip from corner to corner (each upper point with
    the lower one below it), and a ring out to the rim along both lips."""
    tri = [[0, 1, 7], [1, 2, 7], [2, 6, 7], [2, 3, 6], [3, 5, 6], [3, 4, 5]]
    for chain in ([0, 1, 2, 3, 4], [4, 5, 6, 7, 0]):
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            tri += [[a, 8 + a, 8 + b], [a, 8 + b, b]]
    return np.array(tri, np.int64)


STRIP_TRIANGLES = _strip_triangles()


def _inner_area(lm: np.ndarray) -> float:
    q = lm[INNER_LIP]
    return 0.5 * abs(float(np.dot(q[:, 0], np.roll(q[:, 1], -1)) - np.dot(q[:, 1], np.roll(q[:, 0], -1))))


def lip_maps(src: np.ndarray, dst: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
    """Inverse maps (h, w) float32 that carry a mouth's opening, whose landmarks are ``src`` (68, 2, its image's
    pixels), onto the opening of the lips ``dst`` (68, 2) in an output of ``size`` (w, h) (``cv2.remap`` of the
    source image): piecewise-affine over a strip across the opening, each upper inner-lip point with the lower one
    below it, and a rim beyond (:func:`_strip`), so the source's inner-lip outline lands on the command's exactly
    and its upper teeth hang under the commanded upper lip; and the opening's linear scale (output over source, from
    the inner lips' areas). Neither the lips' own band (a smile's inner corner lifted past the upper lip's outline
    folds it) nor a fan from the opening's centre (a smile's thin crescent of an opening does not hold its centre)
    would do: their folded triangles drawn over the opening made a sawtooth of lip and teeth along the upper lip."""
    w, h = size
    map_x, map_y = pwa_maps(Box(0, 0, w, h, w, h), _strip(src), _strip(dst), STRIP_TRIANGLES)
    a_src, a_dst = _inner_area(np.asarray(src, np.float64)), _inner_area(np.asarray(dst, np.float64))
    return map_x, map_y, float(np.sqrt(a_dst / a_src)) if a_src > 1.0 else 1.0


def prefilter(image: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``image`` (the source mouth, landmarks ``src``) blurred as much as carrying it onto ``dst`` squeezes it, along
    each axis (a Gaussian of 0.5 sqrt(r^2 - 1) source pixels for a squeeze by r: the opening's height over the
    command's, its width over the command's): a wide-open source squeezed into a narrow opening otherwise aliases
    its teeth's edges into a sawtooth of light and dark pixels along the lip."""
    s, d = np.asarray(src, np.float64), np.asarray(dst, np.float64)

    def extent(lm: np.ndarray) -> tuple[float, float]:
        gap = float(np.mean(lm[LOWER_INNER_LIP, 1] - lm[UPPER_INNER_LIP, 1]))
        return float(np.linalg.norm(lm[INNER_LIP[4]] - lm[INNER_LIP[0]])), gap

    (ws, hs), (wd, hd) = extent(s), extent(d)
    sig = [0.5 * np.sqrt(max((a / max(b, 0.5)) ** 2 - 1.0, 0.0)) if a > 0 else 0.0 for a, b in ((ws, wd), (hs, hd))]
    sig = [min(v, 4.0) for v in sig]
    if max(sig) < 0.3:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigmaX=max(sig[0], 0.01), sigmaY=max(sig[1], 0.01))


def smile_amount(tracked: np.ndarray, adapted: np.ndarray) -> float:
    """How much the command ``adapted`` (68, 2) smiles over the frame's own mouth ``tracked`` (68, 2), in [0, 1]:
    how far its outer mouth corners rise towards the upper lip's middle (51), against the tracked mouth's, over
    :data:`SMILE_FULL` inter-ocular distances. Measured across the mouth's own axis (a tilted head does not count)."""
    def rise(lm: np.ndarray) -> float:
        lm = np.asarray(lm, np.float64)
        axis = lm[54] - lm[48]
        n = np.array([axis[1], -axis[0]]) / max(float(np.linalg.norm(axis)), 1e-6)  # points up the face
        return float(np.dot(0.5 * (lm[48] + lm[54]) - lm[51], n))  # the corners above the lip's middle: > 0

    iod = float(np.linalg.norm(np.asarray(tracked, np.float64)[45] - np.asarray(tracked, np.float64)[36]))
    return float(np.clip((rise(adapted) - rise(tracked)) / max(SMILE_FULL * iod, 1e-6), 0.0, 1.0))


def upper_teeth(image: np.ndarray, landmarks: np.ndarray) -> float:
    """How well a mouth's interior suits a smile that opens: the share of the upper half of its opening (inside
    its inner lip, above the inner lip's centre) that is teeth (CIELAB lightness more than :data:`TEETH_MARGIN`
    above the median of its lips), times how much of the whole opening is dark (under 0.6 of the lips' lightness,
    as a share of :data:`MIN_DARK`, at most 1): teeth between lips barely apart, the tracker's opening full of lip,
    read as a closed grin when opened wide. ``image`` (h, w, 3) RGB, ``landmarks`` (68, 2) its pixels; 0 for a
    closed mouth."""
    lm = np.asarray(landmarks, np.float64)
    h, w = image.shape[:2]

    def mask(poly: np.ndarray) -> np.ndarray:
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
        return m > 0

    inner = mask(lm[INNER_LIP])
    lips = mask(lm[OUTER_LIP]) & ~inner
    upper = inner.copy()
    upper[int(np.ceil(lm[INNER_LIP, 1].mean())):] = False
    if upper.sum() < 6 or lips.sum() < 6:
        return 0.0
    lightness = cv2.cvtColor(np.ascontiguousarray(image, np.uint8), cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    lightness *= 100.0 / 255.0
    lip = float(np.median(lightness[lips]))
    teeth = float((lightness[upper] > lip + TEETH_MARGIN).mean())
    dark = float((lightness[inner] < 0.6 * lip).mean())
    return teeth * min(1.0, dark / MIN_DARK)
