"""Warp geometry of the warp renderer: control points, the fixed triangulation, dense maps on a face crop.

Control points of one frame (all pixels of that frame):

- the 68 landmarks (tracked -> adapted: they move);
- *skin points* on the cheeks, chin, jaw-side and forehead, each a blend of landmarks that moves with the same
  blend of their displacements (damped outside the jaw and on the forehead), so the skin bends evenly instead of
  along the edges of long thin triangles; under each brow (whose landmarks run along the hair's upper edge) a
  point moves with its brow point, so a raised brow carries its hair instead of stretching it towards the lid;
- a *ring* of fixed points on an ellipse around the head (beyond the hair line, the ears and below the chin);
  they do not move, so the warp is the identity on and outside the ring.

Every point set is defined in the canonical 256x256 frame of :data:`~evpcli.face.normalize.TEMPLATE` and mapped
into each frame by the similarity transform of its tracked stable points (eye corners and nose), so the ring
turns and scales with the head. The triangulation is a Delaunay triangulation of the canonical points, made once:
the same topology in every frame (no triangle flips from frame to frame). A frame whose tracked points fold a
triangle over (an unusual pose) is triangulated afresh.

Dense maps are computed on a grid of at most ``map_side`` points a side over the ring's bounding box and
upsampled linearly (exact for the piecewise-affine warp inside each triangle), so their cost does not grow with
the face's size in pixels. Two warps: :func:`pwa_maps` (piecewise-affine) and :func:`tps_maps` (thin-plate
spline through the same control points).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from evpcli.engines.light import box
from evpcli.face.normalize import TEMPLATE, apply_transform, invert_transform, similarity_fit
from evpcli.face.parts import BROWS, INNER_LIP, LEFT_EYE, OUTER_LIP, OUTER_LIP_CORNERS, RIGHT_EYE, STABLE



BROW_BAND = ((18, (37,)), (19, (37, 38)), (20, (38,)), (23, (43,)), (24, (43, 44)), (25, (44,)))
"""Each brow point and the upper-lid point(s) below it: a skin point :data:`BROW_BAND_DEPTH` of the way down
moves as its brow point does, so a raised brow carries its hair as one band (with nothing under the brow points a
raised brow stretched its hair down to the lid: sad's brows came out thick and arched)."""
BROW_BAND_DEPTH = 0.35


def _skin_rules(lm: np.ndarray) -> list[tuple[dict[int, float], np.ndarray, dict[int, float]]]:
    """Skin control points as rules (position weights, constant offset, displacement weights) over the 68
    landmarks ``lm`` (canonical): position = sum w_k lm_k + offset; displacement = sum v_k d_k. Points between
    two landmarks move as the same blend of them, so a lip opening wide never overtakes the chin's skin."""
    iod = np.linalg.norm(lm[45] - lm[36])
    zero = np.zeros(2)
    rules = []
    for k in (1, 2, 3, 4, 12, 13, 14, 15):  # cheeks, between the jaw line and the nose tip
        for f in (0.3, 0.6):
            w = {k: 1 - f, 33: f}
            rules.append((w, zero, w))
    for a, b in ((57, 8), (58, 7), (56, 9), (59, 6), (55, 10)):  # chin, between the lower lip and the jaw
        w = {a: 0.5, b: 0.5}
        rules.append((w, zero, w))
    for k in (17, 19, 24, 26):  # forehead, above the brows: half their motion
        rules.append(({k: 1.0}, np.array([0.0, -0.35 * iod]), {k: 0.5}))
    rules.append(({21: 0.5, 22: 0.5}, np.array([0.0, -0.4 * iod]), {21: 0.25, 22: 0.25}))
    for k, j in ((31, 3), (35, 13), (48, 4), (54, 12)):  # between the nose wings / mouth corners and the jaw
        w = {k: 0.5, j: 0.5}
        rules.append((w, zero, w))
    for k in (2, 4, 6, 8, 10, 12, 14):  # outside the jaw line, along its normal: half the jaw's motion, and
        tangent = lm[k + 1] - lm[k - 1]  # further out (the neck, the hair by the cheeks) almost none of it, so the
        normal = np.array([tangent[1], -tangent[0]]) / max(np.linalg.norm(tangent), 1e-9)  # region that moves ends
        if np.dot(normal, lm[k] - lm[30]) < 0:  # where the face ends (a collar a ring's distance below the chin
            normal = -normal  # was pushed down with a lowered jaw)
        rules.append(({k: 1.0}, 0.2 * iod * normal, {k: 0.5}))
        rules.append(({k: 1.0}, 0.5 * iod * normal, {k: 0.1}))
    for k, lid in BROW_BAND:  # under the brow's hair (dlib's points run along its upper edge): the band moves
        w = {k: 1 - BROW_BAND_DEPTH, **{j: BROW_BAND_DEPTH / len(lid) for j in lid}}  # with its brow point
        rules.append((w, zero, {k: 1.0}))
    return rules


def _skin_points(lm: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skin control points of canonical landmarks ``lm``: positions (K, 2), (K, 68) displacement weights and the
    indices of the rules used. Without ``keep``, rules whose point falls too near a landmark (slivers) or near
    the lips (a smile or an open mouth would fold them over) are left out."""
    iod = np.linalg.norm(lm[45] - lm[36])
    rules = _skin_rules(lm)
    pts, weights, used = [], [], []
    for i, (w, offset, v) in enumerate(rules):
        p = sum(c * lm[k] for k, c in w.items()) + offset
        if keep is None:
            if np.linalg.norm(lm - p, axis=1).min() <= 0.06 * iod or np.linalg.norm(lm[48:68] - p, axis=1).min() <= 0.2 * iod:
                continue
        elif i not in keep:
            continue
        row = np.zeros(68)
        for k, c in v.items():
            row[k] = c
        pts.append(p)
        weights.append(row)
        used.append(i)
    return np.array(pts), np.array(weights), np.array(used)


def _ring(lm: np.ndarray, n: int, width: float, height: float) -> np.ndarray:
    """(n, 2) points on an ellipse around the face (canonical landmarks ``lm``)."""
    cx = 0.5 * (lm[0, 0] + lm[16, 0])
    half_w = 0.5 * (lm[16, 0] - lm[0, 0])
    top, chin = lm[27, 1], lm[8, 1]
    cy = 0.5 * (top + chin) - 0.1 * (chin - top)
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + width * half_w * np.cos(ang), cy + height * (chin - top) * np.sin(ang)], 1)


@dataclass(frozen=True)
class Rig:
    """The canonical control points and their fixed triangulation (see the module docstring)."""

    canonical: np.ndarray  # (P, 2): 68 landmarks, K skin points, R ring points
    n_skin: int
    n_ring: int
    skin_weights: np.ndarray  # (K, 68): each skin point's share of every landmark's displacement
    skin_rules: tuple[int, ...]  # which of _skin_rules make the skin points
    ring_width: float
    ring_height: float
    triangles: np.ndarray  # (M, 3) int
    orientation: np.ndarray  # (M,) sign of each triangle's area in the canonical frame
    inner_only: np.ndarray  # (M,) bool, triangles of inner-lip points only (slivers when the mouth is closed)

    @property
    def n_points(self) -> int:
        return len(self.canonical)


TRIANGULATIONS = Path(__file__).resolve().parents[1] / "data" / "rig_triangles.npz"
"""Delaunay triangulations of the default rigs' canonical points, by the points' exact bytes: importing
scipy.spatial for them cost 0.35-0.45 s of every render (tests/test_render_warp.py checks the table against
scipy; :func:`write_triangulations` rewrites it)."""


def _points_key(points: np.ndarray) -> str:
    return "k" + hashlib.sha256(np.ascontiguousarray(points, np.float64).tobytes()).hexdigest()[:24]


@lru_cache(maxsize=1)
def _stored_triangulations() -> dict[str, np.ndarray]:
    try:
        with np.load(TRIANGULATIONS) as z:
            return {k: z[k].astype(np.int64) for k in z.files}
    except OSError:
        return {}


def delaunay(points: np.ndarray, stored: bool = True) -> np.ndarray:
    """Delaunay triangles (M, 3) int64 of ``points`` (N, 2): scipy's (Qhull), looked up first in the shipped
    table when ``stored`` (points that are not there, e.g. from another platform's last bit, go to scipy)."""
    if stored:
        found = _stored_triangulations().get(_points_key(points))
        if found is not None:
            return found.copy()
    from scipy.spatial import Delaunay

    return Delaunay(points).simplices.astype(np.int64)


def write_triangulations(rigs=((20, 1.45, 1.2),)) -> Path:
    """Rewrite :data:`TRIANGULATIONS` for the rigs ``(ring_points, ring_width, ring_height)`` (the default
    RenderConfig's) with scipy's triangulation of their canonical points."""
    table = {}
    for args in rigs:
        canonical = _canonical_points(*args)
        table[_points_key(canonical)] = delaunay(canonical, stored=False).astype(np.int16)
    np.savez_compressed(TRIANGULATIONS, **table)
    _stored_triangulations.cache_clear()
    return TRIANGULATIONS


def _canonical_points(ring_points: int, ring_width: float, ring_height: float) -> np.ndarray:
    lm = TEMPLATE.astype(np.float64)
    skin = _skin_points(lm)[0]
    ring = _ring(lm, ring_points, ring_width, ring_height)
    return np.concatenate([lm, skin, ring])


@lru_cache(maxsize=8)
def make_rig(ring_points: int = 20, ring_width: float = 1.45, ring_height: float = 1.2) -> Rig:
    lm = TEMPLATE.astype(np.float64)
    skin, w, used = _skin_points(lm)
    ring = _ring(lm, ring_points, ring_width, ring_height)
    canonical = np.concatenate([lm, skin, ring])
    tri = delaunay(canonical)
    return Rig(canonical=canonical, n_skin=len(skin), n_ring=len(ring), skin_weights=w, skin_rules=tuple(used.tolist()),
               ring_width=ring_width, ring_height=ring_height, triangles=tri,
               orientation=np.sign(signed_areas(canonical, tri)), inner_only=np.isin(tri, INNER_LIP).all(1))


def frame_points(rig: Rig, tracked: np.ndarray, adapted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Control points of one frame. ``tracked``, ``adapted`` (68, 2) pixels.

    Returns ``src`` (P, 2), ``dst`` (P, 2) pixels and ``to_frame`` (2, 3), the similarity from the canonical frame
    to this frame (fitted on the tracked stable points)."""
    tracked = np.asarray(tracked, np.float64)
    adapted = np.asarray(adapted, np.float64)
    to_frame = similarity_fit(TEMPLATE[STABLE].astype(np.float64), tracked[STABLE])
    # skin points from the frame's own (canonicalised) landmarks, so they sit where that face's cheeks and chin
    # are (a dropped jaw takes the chin's points with it); the ring is the template's, turned with the head
    canon = apply_transform(tracked, invert_transform(to_frame))
    skin_src = apply_transform(_skin_points(canon, rig.skin_rules)[0], to_frame)
    # the ring: around this face (its jaw width and length, and the adapted chin if lower), turned with the head
    envelope = canon.copy()
    envelope[8, 1] = max(canon[8, 1], apply_transform(adapted[8:9], invert_transform(to_frame))[0, 1])
    ring = apply_transform(_ring(envelope, rig.n_ring, rig.ring_width, rig.ring_height), to_frame)
    skin_dst = skin_src + rig.skin_weights @ (adapted - tracked)
    src = np.concatenate([tracked, skin_src, ring])
    dst = np.concatenate([adapted, skin_dst, ring])
    return src, dst, to_frame


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    p = points[triangles]
    a, b = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]


def triangles_for(rig: Rig, src: np.ndarray) -> np.ndarray:
    """The rig's triangles, or a fresh Delaunay triangulation of ``src`` when the rig's fold over in it."""
    area = signed_areas(src, rig.triangles) * rig.orientation
    # a closed mouth collapses the inner-lip triangles to slivers: that is not a fold
    bad = (area < 0) & ~rig.inner_only
    if not bad.any():
        return rig.triangles
    return delaunay(src, stored=False)


def unfold(src: np.ndarray, dst: np.ndarray, triangles: np.ndarray, movable: np.ndarray, min_ratio: float = 0.3,
           iterations: int = 12) -> np.ndarray:
    """``dst`` with the ``movable`` points (the skin points) pulled along with their triangles' other corners
    wherever a triangle would fold over or nearly so (its signed area under ``min_ratio`` of the source's).

    A strong command moves a landmark past the skin point beside it (happy lifts carphone's mouth corners 16 % of
    the inter-ocular distance, past the cheek points between the corners and the jaw): the triangle between them
    turns over, two triangles cover the same pixels, and the piecewise-affine warp shows a crease from the mouth
    corner to the jaw. Each step moves a skin point of such a triangle towards the mean displacement of the
    triangle's corners, by a share that grows as the triangle nears folding (0 at ``min_ratio``, so the repair sets
    in gradually from frame to frame, no jumps). Landmarks and the fixed ring never move; a triangle without a
    skin point is left as it is (a closed mouth's inner-lip slivers)."""
    src_area = signed_areas(src, triangles)
    real = np.abs(src_area) > 1e-6
    has_movable = np.isin(triangles, movable).any(1) & real
    if not has_movable.any():
        return dst
    is_movable = np.zeros(len(src), bool)
    is_movable[movable] = True
    dst = dst.copy()
    for _ in range(iterations):
        ratio = signed_areas(dst, triangles) / np.where(real, src_area, 1.0)
        bad = has_movable & (ratio < min_ratio)
        if not bad.any():
            break
        share = 0.5 * np.clip((min_ratio - ratio[bad]) / min_ratio, 0.0, 1.0)  # (B,)
        disp = dst - src
        target = disp[triangles[bad]].mean(1)  # (B, 2)
        pull = np.zeros_like(dst)
        weight = np.zeros(len(dst))
        for corner in range(3):
            v = triangles[bad, corner]
            ok = is_movable[v]
            np.add.at(pull, v[ok], share[ok, None] * (target[ok] - disp[v[ok]]))
            np.add.at(weight, v[ok], 1.0)
        moved = weight > 0
        dst[moved] += pull[moved] / weight[moved, None]
    return dst


@dataclass(frozen=True)
class Box:
    """An integer pixel box ``[x0, x1) x [y0, y1)`` of a frame, and the coarse grid its maps are computed on."""

    x0: int
    y0: int
    x1: int
    y1: int
    gw: int  # grid columns
    gh: int  # grid rows

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def grid_xy(self, points: np.ndarray) -> np.ndarray:
        """Frame pixels -> grid coordinates (grid node i sits at the centre-aligned resize position)."""
        p = np.asarray(points, np.float64)
        gx = (p[..., 0] - self.x0 + 0.5) * self.gw / self.width - 0.5
        gy = (p[..., 1] - self.y0 + 0.5) * self.gh / self.height - 0.5
        return np.stack([gx, gy], -1)

    def grid_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """(gh, gw) float64 frame x and y of every grid node."""
        xs = self.x0 + (np.arange(self.gw) + 0.5) * self.width / self.gw - 0.5
        ys = self.y0 + (np.arange(self.gh) + 0.5) * self.height / self.gh - 0.5
        return np.meshgrid(xs, ys)


def crop_box(points: np.ndarray, size: tuple[int, int], map_side: int) -> Box | None:
    """The bounding box of ``points`` (the ring) clipped to the frame ``size`` (W, H); None when empty."""
    w, h = size
    lo = np.floor(points.min(0)).astype(int) - 1
    hi = np.ceil(points.max(0)).astype(int) + 2
    x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    x1, y1 = min(int(hi[0]), w), min(int(hi[1]), h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    step = max(1.0, max(x1 - x0, y1 - y0) / map_side)
    return Box(x0, y0, x1, y1, max(2, int(np.ceil((x1 - x0) / step))), max(2, int(np.ceil((y1 - y0) / step))))


def _upsample(box: Box, gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid maps (frame pixels) -> crop-local maps (crop pixels), (height, width) float32 each."""
    gx = (gx - box.x0).astype(np.float32)
    gy = (gy - box.y0).astype(np.float32)
    if (box.gw, box.gh) == (box.width, box.height):
        return gx, gy
    size = (box.width, box.height)
    return cv2.resize(gx, size, interpolation=cv2.INTER_LINEAR), cv2.resize(gy, size, interpolation=cv2.INTER_LINEAR)


_IDENTITY = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])


def pwa_maps(box: Box, src: np.ndarray, dst: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-affine inverse maps over ``box``: for each output pixel, the frame pixel it samples, given
    relative to the box (``cv2.remap`` of the box crop). Pixels outside every triangle keep their place."""
    tri_dst = dst[triangles]  # (M, 3, 2)
    tri_src = src[triangles].copy()
    m = np.concatenate([tri_dst, np.ones((len(triangles), 3, 1))], axis=2)
    flat = np.abs(np.linalg.det(m)) < 1e-6
    m[flat] = np.eye(3)
    tri_src[flat] = _IDENTITY
    inverse = np.linalg.inv(m)  # (M, 3, 3): [x y 1] @ inverse = the point's barycentric coordinates
    affine = inverse @ tri_src  # (M, 3, 2): [x y 1] @ affine = source point
    affine = np.concatenate([affine, _IDENTITY[None]])
    k = len(triangles)
    ids = np.full((box.gh, box.gw), k, np.int32)
    fixed = np.round(box.grid_xy(tri_dst) * 16).astype(np.int32)
    # larger triangles first, so that where a commanded shape folds over, the small (mouth) ones win; slivers
    # (under a grid cell) are not drawn: the rasteriser would give their edge pixels an affine map that
    # extrapolates wildly; the few nodes they leave are filled from their neighbours
    area = 0.5 * np.abs(signed_areas(box.grid_xy(dst), triangles))
    for i in np.argsort(-area):
        if area[i] < 1.0:
            break
        if not flat[i]:
            cv2.fillConvexPoly(ids, fixed[i], int(i), lineType=cv2.LINE_8, shift=4)
    xs, ys = box.grid_nodes()
    _drop_outside(inverse, ids, xs, ys)
    holes = ids == k
    coef = affine.reshape(k + 1, 6).T  # (6, M+1): xx, xy, yx, yy, 1x, 1y
    gx = coef[0].take(ids) * xs + coef[2].take(ids) * ys + coef[4].take(ids)
    gy = coef[1].take(ids) * xs + coef[3].take(ids) * ys + coef[5].take(ids)
    if holes.any():
        _fill_holes(box, dst, holes, gx, gy)
    return _upsample(box, gx, gy)


def smooth_corners(map_x: np.ndarray, map_y: np.ndarray, landmarks: np.ndarray, iod: float, sigma: float = 0.06,
                   radius: float = 0.5, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Inverse maps (h, w) with the skin beside the mouth's corners smoothed: within ``radius`` IOD of the commanded
    outer corners (48, 54 of ``landmarks``, (68, 2) in the maps' pixels) and off the lips, the maps are blended
    with their Gaussian blur (sigma ``sigma`` IOD), the weight feathered to 0 at the disc's edge and at the lips and
    scaled by ``strength`` (0: the maps come back as they are, at no cost).

    Why: a smile moves each mouth corner far into the cheek; the piecewise-affine warp carries the target's own
    texture there (the crease beyond the corner, the lip's light outline) along straight triangle edges, with a
    kink at each, and a thin light or dark line runs from the corner into the cheek. Smoothed maps bend it as skin
    bends (a thin-plate spline drew the same crease as a gentle curve); the lips and everything farther off keep
    the exact piecewise-affine maps."""
    if sigma <= 0 or radius <= 0 or iod <= 0 or strength <= 0:
        return map_x, map_y
    lm = np.asarray(landmarks, np.float64)
    r = radius * iod
    feather = max(1.0, 0.1 * iod)
    pad = int(np.ceil(r + 3 * feather + 3 * sigma * iod)) + 2
    window = box(map_x.shape, lm[OUTER_LIP_CORNERS], pad)
    if window is None:
        return map_x, map_y
    x0, y0, x1, y1 = window
    lo, sub = np.array([x0, y0]), (slice(y0, y1), slice(x0, x1))
    weight = np.zeros((y1 - y0, x1 - x0), np.float32)
    for k in OUTER_LIP_CORNERS:
        c = lm[k] - lo
        cv2.circle(weight, (int(round(c[0] * 16)), int(round(c[1] * 16))), int(round(r * 16)), 1.0, -1, cv2.LINE_AA,
                   shift=4)
    lips = np.zeros_like(weight)
    cv2.fillPoly(lips, [np.round((lm[OUTER_LIP] - lo) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    edge = max(0.7, 0.02 * iod)  # the lips grown by two of these and feathered by one: the weight is 0 on them
    grow = int(np.ceil(2 * edge))
    lips = cv2.dilate(lips, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    weight = cv2.GaussianBlur(weight, (0, 0), feather) * (1.0 - cv2.GaussianBlur(lips, (0, 0), edge))
    weight = np.clip(weight, 0.0, 1.0) * float(min(strength, 1.0))
    return _blend_blurred(map_x, map_y, sub, weight, sigma * iod)


def smooth_brows(map_x: np.ndarray, map_y: np.ndarray, landmarks: np.ndarray, iod: float, sigma: float = 0.06,
                 strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Inverse maps (h, w) with the lids' skin under each brow smoothed: over the area from under the brow's hair
    (:data:`BROW_BAND_DEPTH` of the way from each commanded brow point, 17-26 of ``landmarks`` ((68, 2) in the maps'
    pixels), to the upper lid under it) down to the upper lid, feathered by :data:`BROW_SMOOTH_FEATHER` IOD, the maps
    are blended with their Gaussian blur (sigma ``sigma`` IOD) by ``strength`` (0, or ``sigma`` 0: the maps come back
    as they are, at no cost).

    Why: a raised brow (sad's inner ends, surprise's whole brow) stretches the lid's skin across the triangles between
    the brow points, the band under them and the upper lid, each with its own affine map; the lid's crease and its
    lashes' shadow, straight lines across several of them, came out as zigzags (the bearded man's sad eyes: "dark
    jagged fragments"). Smoothed maps bend them as skin bends. Where the warp is affine (nothing moves, or all of it
    moves together) the blur changes nothing. The brows' hair keeps its exact maps (with it smoothed too, a raised
    brow's own shape was softened: face-api's surprise on the smiler +0.84 -> +0.79, +0.84 with it kept), and so do
    the eyes' openings, grown by two of 0.02 IOD and feathered by one (with the blur reaching into the lid margin,
    sad's lowered upper lid was drawn less lowered: face-api's sad on carphone +0.76 -> +0.54, +0.64 with it kept)."""
    if sigma <= 0 or iod <= 0 or strength <= 0:
        return map_x, map_y
    lm = np.asarray(landmarks, np.float64)
    feather = max(1.0, BROW_SMOOTH_FEATHER * iod)
    pad = int(np.ceil(3 * feather + 3 * sigma * iod)) + 2
    window = box(map_x.shape, lm[np.concatenate([BROWS, RIGHT_EYE, LEFT_EYE])], pad)
    if window is None:
        return map_x, map_y
    x0, y0, x1, y1 = window
    lo, sub = np.array([x0, y0]), (slice(y0, y1), slice(x0, x1))
    area = np.zeros((y1 - y0, x1 - x0), np.float32)
    eyes = np.zeros(area.shape, np.float32)
    for brow, eye in ((BROWS[:5], RIGHT_EYE), (BROWS[5:], LEFT_EYE)):
        top = np.array([lm[k] + BROW_BAND_DEPTH * (lm[list(_LID_UNDER[k])].mean(0) - lm[k]) for k in brow])
        lids = np.concatenate([top, lm[eye[3::-1]]]) - lo  # under the hair left to right, the upper lid back
        cv2.fillPoly(area, [np.round(lids * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
        cv2.fillPoly(eyes, [np.round((lm[eye] - lo) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    weight = cv2.GaussianBlur(area, (0, 0), feather)
    edge = max(0.7, 0.02 * iod)
    eyes = cv2.dilate(eyes, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(np.ceil(2 * edge)) + 1,) * 2))
    weight *= 1.0 - cv2.GaussianBlur(eyes, (0, 0), edge)
    return _blend_blurred(map_x, map_y, sub, np.clip(weight, 0.0, 1.0) * float(min(strength, 1.0)), sigma * iod)


BROW_SMOOTH_FEATHER = 0.03  # smooth_brows' area's soft edge (IOD)
_LID_UNDER = {**dict(BROW_BAND), 17: (36,), 21: (39,), 22: (42,), 26: (45,)}  # each brow point's upper lid point(s)


def _blend_blurred(map_x: np.ndarray, map_y: np.ndarray, sub: tuple[slice, slice], weight: np.ndarray,
                   sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the maps with their window ``sub`` blended with its Gaussian blur (``sigma_px``) by ``weight``."""
    out = []
    for m in (map_x, map_y):
        m = m.copy()
        part = m[sub]
        part += weight * (cv2.GaussianBlur(part, (0, 0), sigma_px, borderType=cv2.BORDER_REPLICATE) - part)
        out.append(m)
    return out[0], out[1]


OUTSIDE_TOLERANCE = 0.25  # a grid node this far outside its triangle (barycentric units) is a hole, not its map


def _drop_outside(inverse: np.ndarray, ids: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> None:
    """Grid nodes the rasteriser gave to a triangle they lie well outside of (a thin triangle's edge pixels: a
    barycentric coordinate under -:data:`OUTSIDE_TOLERANCE`) become holes, filled from their neighbours like a
    sliver's, instead of that triangle's affine map extrapolated, which can reach anything beyond it (carphone's sad
    frames 86-90: the mouth's corner and the jaw, closing a wide-open mouth, made a thin triangle whose edge node
    sampled the dark suit 17 px below, a black speck on the jaw). Nodes inside or just outside (the rasteriser's
    ordinary edge, under the tolerance) keep their exact map. ``inverse`` (M, 3, 3): the inverse of each triangle's
    rows [x y 1] (flat ones are never drawn); ``ids`` in place (``M`` = no triangle)."""
    rows, cols = np.nonzero(ids < len(inverse))
    if not len(rows):
        return
    p = np.stack([xs[rows, cols], ys[rows, cols], np.ones(len(rows))], -1)  # (N, 3)
    lam = np.einsum("ni,nij->nj", p, inverse[ids[rows, cols]])  # barycentric coordinates
    out = lam.min(1) < -OUTSIDE_TOLERANCE
    ids[rows[out], cols[out]] = len(inverse)


def _fill_holes(box: Box, dst: np.ndarray, holes: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> None:
    """Grid nodes inside the mesh that no triangle covers (a commanded shape folded over, or rounding on the
    coarse grid) take the average map of the covered nodes around them (normalised convolution), in place;
    neither the identity (the unwarped frame) nor an affine extrapolated from a sliver triangle."""
    inside = np.zeros(holes.shape, np.uint8)
    hull = cv2.convexHull(np.round(box.grid_xy(dst) * 16).astype(np.int32))
    cv2.fillConvexPoly(inside, hull, 1, lineType=cv2.LINE_8, shift=4)
    todo = holes & (inside > 0)
    known = (~holes).astype(np.float32)
    for _ in range(8):
        if not todo.any():
            return
        w = cv2.blur(known, (5, 5))
        ok = todo & (w > 1e-3)
        for g in (gx, gy):
            v = cv2.blur((g * known).astype(np.float32), (5, 5))
            g[ok] = v[ok] / w[ok]
        known[ok] = 1.0
        todo &= ~ok


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    return 0.5 * r2 * np.log(np.maximum(r2, 1e-12))  # r^2 log r


def tps_maps(box: Box, src: np.ndarray, dst: np.ndarray, regularisation: float = 1e-3,
             max_side: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Thin-plate-spline inverse maps over ``box`` (same convention as :func:`pwa_maps`): the spline through
    dst -> src, evaluated on a grid of at most ``max_side`` nodes a side (it is smooth) and upsampled."""
    scale = max(box.width, box.height)
    c = (dst - [box.x0, box.y0]) / scale  # unit-size coordinates keep the system well conditioned
    n = len(c)
    kmat = _tps_kernel(((c[:, None] - c[None]) ** 2).sum(-1)) + regularisation * np.eye(n)
    p = np.concatenate([np.ones((n, 1)), c], 1)
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = kmat, p, p.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = src - dst
    try:
        coef = np.linalg.solve(a, rhs)
    except np.linalg.LinAlgError:
        coef = np.linalg.lstsq(a, rhs, rcond=None)[0]
    step = max(1.0, scale / max_side)
    coarse = Box(box.x0, box.y0, box.x1, box.y1, max(2, int(np.ceil(box.width / step))),
                 max(2, int(np.ceil(box.height / step))))
    xs, ys = coarse.grid_nodes()
    q = np.stack([(xs - box.x0) / scale, (ys - box.y0) / scale], -1).reshape(-1, 2)
    r2 = (q * q).sum(1)[:, None] + (c * c).sum(1)[None] - 2.0 * (q @ c.T)
    u = _tps_kernel(np.maximum(r2, 0.0))
    disp = u @ coef[:n] + np.concatenate([np.ones((len(q), 1)), q], 1) @ coef[n:]
    gx = xs + disp[:, 0].reshape(xs.shape)
    gy = ys + disp[:, 1].reshape(ys.shape)
    return _upsample(coarse, gx, gy)


def ring_alpha(box: Box, ring: np.ndarray, feather_px: float) -> np.ndarray:
    """(height, width) float32 blend weight over ``box``: 0 on and outside the ring polygon, rising smoothly to 1
    at ``feather_px`` inside it."""
    mask = np.zeros((box.height, box.width), np.uint8)
    cv2.fillPoly(mask, [np.round((ring - [box.x0, box.y0]) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    t = np.clip(dist / max(feather_px, 1.0), 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)

