"""Which target frames show the face reliably: occlusion detection by the appearance of the face parts.

The landmark tracker does not notice occlusion: a hand over the face gets landmarks on the fingers and a
plausible shape. What does change is how the face *looks* once aligned by those landmarks. Each frame's face is
resampled by the similarity of its stable points onto a small canonical face (64x64, :data:`TEMPLATE` scaled by
1/4), in Lab; eight parts (both eyes, nose, mouth, both cheeks, chin, forehead) are compared with the median
look of the same part over the clip (the target's own unoccluded frames dominate any median). Per part the
distance is one minus the normalised correlation of the lightness patch plus the shift of its mean colour, and
it is turned into a robust z-score over the clip (median, MAD). A frame's score is the mean of its three worst
parts' z-scores (an occluder covers several parts; a blink or a word moves one), and the reference is refined
once from the better half of the frames.

That distance misses a real hand: skin over skin, it changes the colour and the lightness of the lower face
little, and a talking face's mouth and chin vary as much (carphone: fingers over the mouth scored 5, clean frames
up to 4.9). Two measures of the face's *structure* see it (:func:`structure_evidence`): the lips are redder than
the skin around them (the contrast of Lab a* between the lip band and a ring of skin around it vanishes under a
hand, a microphone or a cup), and the lower face is drawn by horizontal edges (lips, the mouth line, the chin)
where fingers, a microphone's handle or a cup's sides draw vertical ones. Both are taken relative to the clip's
own unoccluded frames (the better half by the appearance score), so a face with pale lips or a beard is compared
with itself; the lip contrast is left out when the reference has none (grey video, a drawn face). Their evidence
is opened over :data:`MIN_OCCLUSION_FRAMES` frames (an occluder stays; a puckered mouth or a blur in one or two
frames does not count) and put on the appearance score's scale: evidence 1 reaches ``reliability_low``.

Reliability: 1 below ``cfg.reliability_high``, 0 above ``cfg.reliability_low`` (smooth in between), 0 where the
tracker lost the face. It is then eroded and smoothed over ``cfg.reliability_ramp`` frames, so an unreliable
stretch fades out before it starts and back in after it ends (no pops).
"""

from __future__ import annotations

import cv2
import numpy as np

from evpcli.config import RenderConfig
from evpcli.face.normalize import TEMPLATE
from evpcli.face.parts import INNER_LIP, JAW, OUTER_LIP
from evpcli.engines.geometry import Box, frame_points, make_rig, pwa_maps

SMALL = 64
_K = SMALL / 256.0


def _part_boxes() -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) boxes of the eight parts on the 64x64 canonical face."""
    t = TEMPLATE.astype(np.float64)
    iod = np.linalg.norm(t[45] - t[36])
    m = 0.1 * iod

    def box(points, grow=m):
        lo, hi = points.min(0) - grow, points.max(0) + grow
        return lo, hi

    boxes = [box(t[36:42]), box(t[42:48]), box(t[27:36]), box(t[48:68])]
    for side, nose in ((range(1, 5), 31), (range(12, 16), 35)):  # cheeks: between jaw, eye and nose
        pts = np.concatenate([t[list(side)], t[[nose]], t[[40 if nose == 31 else 47]]])
        c = pts.mean(0)
        boxes.append((c - 0.16 * iod, c + 0.16 * iod))
    boxes.append(box(t[[57, 7, 8, 9]], 0.05 * iod))  # chin
    brows = t[17:27]
    boxes.append((np.array([t[19, 0], brows[:, 1].min() - 0.45 * iod]), np.array([t[24, 0], brows[:, 1].min() - 0.08 * iod])))
    out = []
    for lo, hi in boxes:
        x0, y0 = np.floor(lo * _K).astype(int)
        x1, y1 = np.ceil(hi * _K).astype(int)
        out.append((max(x0, 0), max(y0, 0), min(x1, SMALL), min(y1, SMALL)))
    return out


MIN_SPREAD = 0.12
"""Floor of a part's robust spread (1.4826 MAD): a near-static clip must not turn a blink or a word into a
z-score of 10. Occluded parts lie 0.4-2.6 from the median look, clean ones below 0.35 (synthetic and carphone)."""

PARTS = ("right_eye", "left_eye", "nose", "mouth", "right_cheek", "left_cheek", "chin", "forehead")
BOXES = _part_boxes()


def canonical_rgb(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(64, 64, 3) uint8 RGB: the face's shape-free texture, i.e. the frame warped piecewise-affinely from its
    landmarks (and the renderer's skin points) onto the canonical template scaled to 64x64, so that speech, jaw
    motion and pose move no part out of its box; sampled at 128 px and area-averaged down."""
    rig = make_rig()
    src, _, _ = frame_points(rig, landmarks, landmarks)
    box = Box(0, 0, 2 * SMALL, 2 * SMALL, 2 * SMALL, 2 * SMALL)
    map_x, map_y = pwa_maps(box, src, rig.canonical * (2 * _K), rig.triangles)
    big = cv2.remap(frame, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(big, (SMALL, SMALL), interpolation=cv2.INTER_AREA)


def to_lab(small: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def canonical_face(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(64, 64, 3) float32 Lab of :func:`canonical_rgb`."""
    return to_lab(canonical_rgb(frame, landmarks))


def skin_rgb(small: np.ndarray) -> np.ndarray:
    """(3,) mean RGB of the cheek patches of a :func:`canonical_rgb` face."""
    px = [small[y0:y1, x0:x1].reshape(-1, 3) for x0, y0, x1, y1 in (BOXES[4], BOXES[5])]
    return np.concatenate(px).astype(np.float64).mean(0)


def part_distances(faces: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(N, 8) distance of each part of ``faces`` (N, 64, 64, 3) Lab to the ``reference`` (64, 64, 3)."""
    out = np.empty((len(faces), len(BOXES)))
    for j, (x0, y0, x1, y1) in enumerate(BOXES):
        p = faces[:, y0:y1, x0:x1].astype(np.float64)
        r = reference[y0:y1, x0:x1].astype(np.float64)
        lp = p[..., 0].reshape(len(p), -1)
        lr = r[..., 0].reshape(-1)
        lp = lp - lp.mean(1, keepdims=True)
        lr = lr - lr.mean()
        ncc = (lp @ lr) / np.maximum(np.linalg.norm(lp, axis=1) * np.linalg.norm(lr), 1e-6)
        colour = np.linalg.norm(p[..., 1:].mean((1, 2)) - r[..., 1:].mean((0, 1)), axis=-1) / 10.0
        light = np.abs(p[..., 0].mean((1, 2)) - r[..., 0].mean()) / 25.0
        out[:, j] = (1.0 - ncc) + colour + light
    return out


def _robust_z(d: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Robust z-scores of the columns of ``d`` (N, P), with median and MAD from the rows ``fit``."""
    ref = d[fit] if fit.any() else d
    med = np.median(ref, axis=0)
    mad = 1.4826 * np.median(np.abs(ref - med), axis=0)
    return (d - med) / np.maximum(mad, MIN_SPREAD)


def _template_mask(points: np.ndarray, grow: int = 0) -> np.ndarray:
    """(64, 64) bool: the polygon of template ``points`` on the canonical face, dilated by ``grow`` pixels."""
    m = np.zeros((SMALL, SMALL), np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(points) * _K).astype(np.int32)], 1)
    if grow:
        m = cv2.dilate(m, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return m.astype(bool)


_T = TEMPLATE.astype(np.float64)
LIP_BAND = _template_mask(_T[OUTER_LIP]) & ~_template_mask(_T[INNER_LIP])
LIP_RING = _template_mask(_T[OUTER_LIP], 4) & ~_template_mask(_T[OUTER_LIP], 1)
_lo = np.floor(_T[OUTER_LIP].min(0) * _K - 3).astype(int)
_hi = np.ceil(np.array([_T[OUTER_LIP, 0].max() * _K + 3, _T[JAW[8], 1] * _K])).astype(int)
LOWER_FACE = (slice(max(_lo[1], 0), min(_hi[1], SMALL)), slice(max(_lo[0], 0), min(_hi[0], SMALL)))
"""(rows, cols) of the canonical face from just above the lips to the chin, a little wider than the mouth."""

MIN_LIP_CONTRAST = 2.0
"""Lab a* units: below this the reference face has no lip colour to lose (grey video, a drawn face)."""
LIP_KEPT = 0.9  # a clean face keeps this share of its lip contrast (speech, a pout and blur take up to ~15 %) ...
LIP_LOSS = 0.4  # ... and a further loss of this share counts as evidence 1 (fingers take 45-70 %)
EDGE_SLACK = 1.1  # a clean face's edge orientation stays within this ratio of its reference (a head turn, a drawn
# face's outline: up to ~1.25 for a few frames) ...
EDGE_GAIN = 0.3  # ... and a rise of this much more counts as evidence 1 (fingers, a handle: 1.3-2.6)
MIN_OCCLUSION_FRAMES = 5
"""Structural evidence must last this many frames (a hand raised to the face stays; a pout does not)."""


def lip_contrast(faces: np.ndarray) -> np.ndarray:
    """(N,) mean Lab a* of the lip band minus that of the skin ring around the lips, of (N, 64, 64, 3) Lab faces."""
    a = np.asarray(faces, np.float32)[..., 1]
    return a[:, LIP_BAND].mean(1) - a[:, LIP_RING].mean(1)


def edge_orientation(faces: np.ndarray) -> np.ndarray:
    """(N,) mean |d/dx| over mean |d/dy| of the lightness of the lower face (vertical over horizontal edges)."""
    out = np.empty(len(faces))
    for i, face in enumerate(np.asarray(faces, np.float32)):
        light = np.ascontiguousarray(face[LOWER_FACE][..., 0])
        gx = np.abs(cv2.Sobel(light, cv2.CV_32F, 1, 0)).mean()
        gy = np.abs(cv2.Sobel(light, cv2.CV_32F, 0, 1)).mean()
        out[i] = (gx + 1.0) / (gy + 1.0)
    return out


def structure_evidence(faces: np.ndarray, reference_rows: np.ndarray) -> np.ndarray:
    """(N,) occlusion evidence from the face's structure (module docstring): the lip contrast lost beyond
    :data:`LIP_KEPT` over :data:`LIP_LOSS` plus the edge orientation's rise beyond :data:`EDGE_SLACK` over
    :data:`EDGE_GAIN`, both against their medians
    over ``reference_rows`` (N,) bool, opened over :data:`MIN_OCCLUSION_FRAMES` frames (the clip's ends padded with
    clean frames, so a short run at an end does not count either). 0 on a clean face, >= 1
    where a hand or an object covers the mouth."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d  # only the target's analysis needs it

    faces = np.asarray(faces, np.float32)
    ref = np.asarray(reference_rows, bool)
    if not ref.any():
        ref = np.ones(len(faces), bool)
    evidence = np.zeros(len(faces))
    contrast = lip_contrast(faces)
    ref_contrast = float(np.median(contrast[ref]))
    if ref_contrast >= MIN_LIP_CONTRAST:
        evidence += np.clip((LIP_KEPT - contrast / ref_contrast) / LIP_LOSS, 0.0, None)
    orient = edge_orientation(faces)
    evidence += np.clip((orient / np.median(orient[ref]) - EDGE_SLACK) / EDGE_GAIN, 0.0, None)
    if len(evidence) >= MIN_OCCLUSION_FRAMES:
        k = MIN_OCCLUSION_FRAMES
        evidence = maximum_filter1d(minimum_filter1d(evidence, k, mode="constant", cval=0.0), k, mode="nearest")
    return evidence


STRUCTURE_SCALE = 9.0
"""Evidence 1 of :func:`structure_evidence` scores as a face at ``RenderConfig.reliability_low`` (passed through)."""


def appearance_scores(faces: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N,) occlusion score of each frame: the mean of its three worst part z-scores, or the structural evidence
    on the same scale where that is higher (see the module docstring).
    ``faces`` (N, 64, 64, 3) Lab canonical faces, ``valid`` (N,) bool tracker validity."""
    faces = np.asarray(faces, np.float32)
    valid = np.asarray(valid, bool)
    use = valid if valid.any() else np.ones(len(faces), bool)
    reference = np.median(faces[use], axis=0)
    score = np.zeros(len(faces))
    for it in range(2):
        z = _robust_z(part_distances(faces, reference), use)
        score = np.sort(z, axis=1)[:, -3:].mean(1)
        if it == 0 and use.sum() >= 4:  # refine the reference from the better half of the usable frames
            reference = np.median(faces[use & (score <= np.median(score[use]))], axis=0)
    better = use & (score <= np.median(score[use]))
    return np.maximum(score, STRUCTURE_SCALE * structure_evidence(faces, better))


def reliability_from_scores(score: np.ndarray, valid: np.ndarray, cfg: RenderConfig) -> np.ndarray:
    """(N,) reliability in [0, 1] from occlusion scores, zero where the tracker is not valid, faded over time."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d  # only the target's analysis needs it

    score = np.asarray(score, np.float64)
    t = np.clip((cfg.reliability_low - score) / (cfg.reliability_low - cfg.reliability_high), 0.0, 1.0)
    raw = t * t * (3 - 2 * t)
    raw[~np.asarray(valid, bool)] = 0.0
    r = cfg.reliability_ramp
    if r > 0 and len(raw) > 1:
        raw = minimum_filter1d(raw, size=2 * r + 1, mode="nearest")
        raw = uniform_filter1d(raw, size=2 * r + 1, mode="nearest")
    return np.clip(raw, 0.0, 1.0).astype(np.float32)
