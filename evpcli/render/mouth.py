"""The mouth interior of the warp renderer: a bank of the target's own mouths, and filling an opened mouth.

When the commanded mouth opens wider than the target frame's, warping stretches the few pixels between the
target's lips over the whole opening. Classical video rewriting (Bregler 1997, "Synthesizing Obama" 2017) takes
the mouth texture from the target's own frames whose mouth shape matches; so does this module:

- :class:`MouthBank`: normalised mouth crops of a few target frames chosen to span the inner-lip shapes
  (farthest-point sampling of the shape descriptor), each with its landmarks and lip colour. A crop is the
  frame's mouth region resampled by the frame's similarity transform onto a canvas of the canonical 256 frame
  (:data:`~evpcli.face.normalize.TEMPLATE`) scaled to the target's own face size, so the bank is small (~30 crops
  of a few kB) and can be cached as ``.npz``.
- :class:`MouthFiller`: per rendered frame, the bank entry whose normalised inner-lip shape is closest to the
  commanded one (hysteresis: the current entry stays until another is clearly better; changes are cross-faded),
  placed by the affine transform that fits its lip landmarks onto the commanded ones, colour-matched to the
  frame's lips, given grain up to the frame's noise level, and composited inside the commanded inner lip.
- When the target never opens its mouth the bank has nothing to show: a shaded cavity with a band of upper
  teeth, in colours taken from the target's lips and skin, is drawn instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from evpcli.config import RenderConfig
from evpcli.face.normalize import STABLE_POINTS, TEMPLATE, apply_transform, similarity_fit

_STABLE = list(STABLE_POINTS)
TEMPLATE_IOD = float(np.linalg.norm(TEMPLATE[45] - TEMPLATE[36]))
CANVAS = (70.0, 126.0, 190.0, 206.0)  # x0, y0, x1, y1 of the mouth canvas in the canonical 256 frame
INNER = np.arange(60, 68)
OUTER = np.arange(48, 60)
_PLACE_POINTS = np.concatenate([OUTER, INNER])
_PLACE_WEIGHTS = np.concatenate([np.full(12, 1.0), np.full(8, 2.0)])


def to_canonical(landmarks: np.ndarray) -> np.ndarray:
    """(..., 2, 3) similarity from frame pixels to the canonical frame, fitted on the stable points."""
    lm = np.asarray(landmarks, np.float64)
    return similarity_fit(lm[..., _STABLE, :], TEMPLATE[_STABLE].astype(np.float64))


def lip_shape(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip shape descriptor (..., 16): canonical inner-lip points relative to the outer mouth corners' midpoint,
    canonical pixels. ``landmarks`` (..., 68, 2) frame pixels."""
    lm = np.asarray(landmarks, np.float64)
    canon = apply_transform(lm, to_canonical(lm))
    rel = canon[..., INNER, :] - canon[..., [48, 54], :].mean(-2, keepdims=True)
    return rel.reshape(*rel.shape[:-2], 16)


def opening_ratio(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip opening over mouth width (..., 68, 2) -> (...); negative gaps count as 0."""
    lm = np.asarray(landmarks, np.float64)
    gap = (lm[..., [67, 66, 65], 1] - lm[..., [61, 62, 63], 1]).mean(-1)
    width = np.linalg.norm(lm[..., 54, :] - lm[..., 48, :], axis=-1)
    return np.maximum(gap, 0.0) / np.maximum(width, 1e-6)


def farthest_points(desc: np.ndarray, k: int, first: int) -> np.ndarray:
    """Indices of ``k`` rows of ``desc`` (N, D) chosen by farthest-point sampling from row ``first``."""
    n = len(desc)
    if n <= k:
        return np.arange(n)
    chosen = [first]
    d = ((desc - desc[first]) ** 2).sum(1)
    for _ in range(k - 1):
        i = int(d.argmax())
        chosen.append(i)
        d = np.minimum(d, ((desc - desc[i]) ** 2).sum(1))
    return np.array(sorted(chosen))


def noise_sigma(gray: np.ndarray) -> float:
    """Robust estimate of the pixel noise of a grey image (Immerkaer's Laplacian-difference estimator, MAD)."""
    g = gray.astype(np.float32)
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    r = cv2.filter2D(g, -1, k, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.median(np.abs(r)) / 0.6745 / 6.0) if r.size else 0.0


def _polygon_mask(shape: tuple[int, int], polygon: np.ndarray, value: int = 255) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], value, cv2.LINE_AA, shift=4)
    return mask


def closed_spline(points: np.ndarray, per_segment: int = 4) -> np.ndarray:
    """Samples of the closed Catmull-Rom curve through ``points`` (N, 2): a rounded lip outline."""
    p0, p1, p2, p3 = (np.roll(points, s, axis=0) for s in (1, 0, -1, -2))
    t = (np.arange(per_segment) / per_segment)[:, None, None]
    curve = 0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                   + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)
    return curve.transpose(1, 0, 2).reshape(-1, 2)


def lip_band_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """(3,) mean RGB of the lips (between the outer and inner lip outlines) of ``image``, or None if empty."""
    h, w = image.shape[:2]
    band = (_polygon_mask((h, w), landmarks[OUTER]) > 127) & ~(_polygon_mask((h, w), landmarks[INNER]) > 0)
    if band.sum() < 4:
        return None
    return image[band].reshape(-1, 3).astype(np.float64).mean(0)


@dataclass
class MouthBank:
    """Mouth crops of chosen target frames (see the module docstring). Arrays, K entries:

    ``crops`` (K, h, w, 3) uint8 canvases; ``landmarks`` (K, 68, 2) float32 canvas pixels; ``shapes`` (K, 16)
    :func:`lip_shape`; ``openings`` (K,) :func:`opening_ratio`; ``lip_colour`` (K, 3); ``frames`` (K,) the target
    frame of each. ``scale``: canvas pixels per canonical pixel; ``noise``: the target frames' noise sigma (grey
    levels); ``skin_colour``/``lip_mean`` (3,) RGB for the drawn fallback cavity."""

    crops: np.ndarray
    landmarks: np.ndarray
    shapes: np.ndarray
    openings: np.ndarray
    lip_colour: np.ndarray
    frames: np.ndarray
    scale: float
    noise: float
    skin_colour: np.ndarray = field(default_factory=lambda: np.array([190.0, 150.0, 130.0]))
    lip_mean: np.ndarray = field(default_factory=lambda: np.array([170.0, 100.0, 100.0]))

    def __len__(self) -> int:
        return len(self.frames)

    def has_open(self, cfg: RenderConfig) -> bool:
        """Whether any entry shows an open mouth (else the drawn cavity is used)."""
        return bool(len(self) and self.openings.max() >= cfg.open_min)

    def save(self, path: str | Path) -> Path:
        from evpcli.workspace import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, crops=self.crops, landmarks=self.landmarks, shapes=self.shapes, openings=self.openings,
                     lip_colour=self.lip_colour, frames=self.frames, scale=np.float64(self.scale),
                     noise=np.float64(self.noise), skin_colour=self.skin_colour, lip_mean=self.lip_mean)
        return path

    @classmethod
    def load(cls, path: str | Path) -> MouthBank:
        with np.load(path, allow_pickle=False) as z:
            return cls(crops=z["crops"], landmarks=z["landmarks"], shapes=z["shapes"], openings=z["openings"],
                       lip_colour=z["lip_colour"], frames=z["frames"], scale=float(z["scale"]),
                       noise=float(z["noise"]), skin_colour=z["skin_colour"], lip_mean=z["lip_mean"])


def bank_scale(landmarks: np.ndarray, valid: np.ndarray) -> float:
    """Canvas pixels per canonical pixel: the target's median face size (IOD), at most 2x the canonical."""
    lm = np.asarray(landmarks, np.float64)[np.asarray(valid, bool)]
    if not len(lm):
        return 1.0
    iod = np.median(np.linalg.norm(lm[:, 45] - lm[:, 36], axis=-1))
    return float(np.clip(iod / TEMPLATE_IOD, 0.25, 2.0))


def canvas_transform(landmarks: np.ndarray, scale: float) -> np.ndarray:
    """(2, 3) affine from frame pixels to the bank canvas of a frame with these (68, 2) landmarks."""
    a = to_canonical(landmarks)
    a = a * scale
    a[:, 2] -= np.array(CANVAS[:2]) * scale
    return a


def canvas_size(scale: float) -> tuple[int, int]:
    """(width, height) of a canvas."""
    return int(round((CANVAS[2] - CANVAS[0]) * scale)), int(round((CANVAS[3] - CANVAS[1]) * scale))


def extract_mouth(frame: np.ndarray, landmarks: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """A frame's mouth canvas (h, w, 3) uint8 and its landmarks (68, 2) in canvas pixels."""
    a = canvas_transform(landmarks, scale)
    crop = cv2.warpAffine(frame, a, canvas_size(scale), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop, apply_transform(np.asarray(landmarks, np.float64), a).astype(np.float32)


def candidate_frames(landmarks: np.ndarray, valid: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` frame indices whose inner-lip shapes span the target's, chosen from the landmarks alone."""
    idx = np.flatnonzero(np.asarray(valid, bool))
    if not len(idx):
        return idx
    desc = lip_shape(np.asarray(landmarks)[idx])
    first = int(opening_ratio(np.asarray(landmarks)[idx]).argmax())
    return idx[farthest_points(desc, n, first)]


def choose_bank(candidates: dict[int, tuple[np.ndarray, np.ndarray]], landmarks: np.ndarray,
                reliability: np.ndarray, cfg: RenderConfig, scale: float, noise: float,
                skin_colour: np.ndarray) -> MouthBank:
    """The bank from the candidates' crops (frame -> (crop, canvas landmarks)): only reliable frames, farthest-point
    sampled by lip shape to ``cfg.bank_size``."""
    frames = np.array(sorted(candidates), np.int64)
    rel = np.asarray(reliability, np.float64)
    if len(frames):
        good = rel[frames] >= 0.9
        if good.sum() < max(1, len(frames) // 4):  # mostly occluded target: keep the best quarter
            good = rel[frames] >= np.quantile(rel[frames], 0.75)
        frames = frames[good]
    lm = np.asarray(landmarks, np.float64)
    w, h = canvas_size(scale)
    if not len(frames):
        return MouthBank(crops=np.zeros((0, h, w, 3), np.uint8), landmarks=np.zeros((0, 68, 2), np.float32),
                         shapes=np.zeros((0, 16)), openings=np.zeros(0), lip_colour=np.zeros((0, 3)),
                         frames=np.zeros(0, np.int64), scale=scale, noise=noise, skin_colour=skin_colour)
    desc = lip_shape(lm[frames])
    keep = frames[farthest_points(desc, cfg.bank_size, int(opening_ratio(lm[frames]).argmax()))]
    crops = np.stack([candidates[int(i)][0] for i in keep])
    canvas_lm = np.stack([candidates[int(i)][1] for i in keep])
    colours = []
    for crop, points in zip(crops, canvas_lm, strict=True):
        colour = lip_band_colour(crop, points)
        colours.append(colour if colour is not None else crop.reshape(-1, 3).mean(0))
    colours = np.stack(colours)
    return MouthBank(crops=crops, landmarks=canvas_lm.astype(np.float32), shapes=lip_shape(lm[keep]),
                     openings=opening_ratio(lm[keep]), lip_colour=colours, frames=keep, scale=scale, noise=noise,
                     skin_colour=np.asarray(skin_colour, np.float64), lip_mean=colours.mean(0))


def _lip_box(landmarks: np.ndarray, origin: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The outer lips' box (with a margin) in a crop of ``size`` (w, h) whose top-left is ``origin`` (frame pixels):
    (lo, hi) integer corners, clipped to the crop (empty when ``hi <= lo`` somewhere)."""
    lo = np.maximum(np.floor(landmarks[OUTER].min(0) - origin).astype(int) - 2, 0)
    hi = np.minimum(np.ceil(landmarks[OUTER].max(0) - origin).astype(int) + 3, list(size))
    return lo, hi


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def _fit_affine(src: np.ndarray, dst: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(2, 3) weighted least-squares affine taking ``src`` (N, 2) onto ``dst``."""
    a = np.concatenate([src, np.ones((len(src), 1))], 1) * weights[:, None]
    sol = np.linalg.lstsq(a, dst * weights[:, None], rcond=None)[0]  # (3, 2)
    return sol.T


class MouthFiller:
    """Fills the commanded mouth opening of consecutive frames (stateful: hysteresis and cross-fades)."""

    def __init__(self, bank: MouthBank, cfg: RenderConfig, seed: int = 0):
        self.bank, self.cfg = bank, cfg
        self.use_bank = bank.has_open(cfg)
        self.current: int | None = None
        self.previous: int | None = None
        self.fade = 1.0
        self.rng = np.random.default_rng(seed)
        self.last_choice: int | None = None

    def reset(self) -> None:
        self.current = self.previous = self.last_choice = None
        self.fade = 1.0

    def fill_weight(self, tracked: np.ndarray, adapted: np.ndarray) -> float:
        """How much of the commanded opening to fill (0: warp only): grows with commanded / target opening."""
        cmd, tgt = float(opening_ratio(adapted)), float(opening_ratio(tracked))
        if cmd < 0.25 * self.cfg.open_min:
            return 0.0
        ratio = cmd / max(tgt, 1e-3)
        return _smoothstep((ratio - self.cfg.fill_start) / (self.cfg.fill_full - self.cfg.fill_start))

    def _choose(self, adapted: np.ndarray) -> int:
        cost = ((self.bank.shapes - lip_shape(adapted)) ** 2).sum(1)
        best = int(cost.argmin())
        if self.current is None:
            self.current, self.fade = best, 1.0
        elif best != self.current and cost[best] < self.cfg.switch_ratio * cost[self.current]:
            self.previous, self.current = self.current, best
            self.fade = 1.0 / (self.cfg.crossfade + 1) if self.cfg.crossfade > 0 else 1.0
        else:
            self.fade = min(1.0, self.fade + 1.0 / (self.cfg.crossfade + 1))
        self.last_choice = self.current
        return self.current

    def _place(self, k: int, adapted: np.ndarray, origin: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        src = self.bank.landmarks[k][_PLACE_POINTS].astype(np.float64)
        dst = adapted[_PLACE_POINTS] - origin
        a = _fit_affine(src, dst, _PLACE_WEIGHTS)
        out = cv2.warpAffine(self.bank.crops[k], a, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out.astype(np.float32), float(np.sqrt(abs(np.linalg.det(a[:, :2]))))

    def _cavity(self, adapted: np.ndarray, origin: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """A drawn mouth interior: dark cavity shaded towards its centre, upper teeth in the target's colours."""
        w, h = size
        inner = adapted[INNER] - origin
        lip = np.asarray(self.bank.lip_mean, np.float32)
        skin = np.asarray(self.bank.skin_colour, np.float32)
        dark = lip * 0.22
        out = np.empty((h, w, 3), np.float32)
        out[:] = dark
        gap = float(np.mean(inner[[7, 6, 5], 1] - inner[[1, 2, 3], 1]))
        width = float(np.linalg.norm(inner[4] - inner[0]))
        # shading: darker deep inside (an ellipse around the opening's centre)
        c = inner.mean(0)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        r = np.sqrt(((xs - c[0]) / max(width * 0.5, 1.0)) ** 2 + ((ys - c[1]) / max(gap * 0.6, 1.0)) ** 2)
        out *= (0.55 + 0.45 * np.clip(r, 0, 1))[..., None]
        if gap > 1.5:
            light = float(np.clip(skin.mean() / 170.0, 0.6, 1.1))  # the teeth are as lit as the face
            teeth_colour = (0.15 * skin + 0.85 * np.array([246.0, 240.0, 228.0], np.float32)) * light
            teeth_h = min(0.32 * gap, 0.14 * width)
            outline = closed_spline(inner)
            n = len(outline) // 8
            top = outline[n // 3: 4 * n + 1 - n // 3]  # the upper inner lip, from just inside one corner to the other
            bottom = top[::-1].copy()
            bottom[:, 1] = np.maximum(bottom[:, 1], np.median(top[:, 1]) + teeth_h)
            teeth = _polygon_mask((h, w), np.concatenate([top, bottom])).astype(np.float32) / 255
            teeth = cv2.GaussianBlur(teeth, (3, 3), 0)[..., None] * _smoothstep((gap - 1.5) / 3.0)
            # lit at the front, in shadow towards the corners and at the biting edge
            across = np.clip(np.abs(xs - c[0]) / max(width * 0.5, 1.0), 0, 1)
            down = np.clip((ys - top[:, 1].min()) / max(teeth_h, 1.0), 0, 1)
            shade = ((1.0 - 0.35 * across ** 2) * (1.0 - 0.15 * down))[..., None]
            out = out * (1 - teeth) + np.clip(teeth_colour * shade, 0, 255) * teeth
        return out

    def seal_weight(self, tracked: np.ndarray, adapted: np.ndarray) -> float:
        """How much to seal the lips (0: none): an open target mouth that the command closes to less than half, and
        to (nearly) shut: a mouth still commanded open keeps what the warp shows of its interior."""
        cmd, tgt = float(opening_ratio(adapted)), float(opening_ratio(tracked))
        m = self.cfg.open_min
        if tgt < m:
            return 0.0
        return (_smoothstep((1.0 - cmd / tgt - 0.5) / 0.3) * _smoothstep((tgt / m - 1.0) / 0.5)
                * _smoothstep((0.75 * m - cmd) / (0.5 * m)))

    def _seal(self, crop: np.ndarray, tracked: np.ndarray, adapted: np.ndarray, origin: np.ndarray) -> None:
        """Closing a wide-open mouth by the warp alone squeezes its dark interior into a thin jagged line between the
        lips; paint the commanded inner-lip outline (1-2 px around it) with the lips' own colour, darker along the
        seam itself, in place."""
        weight = self.seal_weight(tracked, adapted)
        if weight <= 0.0:
            return
        h, w = crop.shape[:2]
        lo, hi = _lip_box(adapted, origin, (w, h))
        if (hi <= lo).any():
            return
        region = crop[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float32)
        local = adapted - origin - lo
        lip = lip_band_colour(region, local)
        if lip is None:
            return
        outline = closed_spline(local[INNER])
        seam = _polygon_mask(region.shape[:2], outline).astype(np.float32) / 255
        cv2.polylines(seam_line := np.zeros(region.shape[:2], np.uint8), [np.round(outline * 16).astype(np.int32)],
                      True, 255, 1, cv2.LINE_AA, shift=4)
        seam = np.maximum(seam, seam_line.astype(np.float32) / 255)
        band = cv2.GaussianBlur(cv2.dilate(seam, np.ones((3, 3), np.uint8)), (3, 3), 0)
        colour = np.asarray(lip, np.float32)[None, None] * (1.0 - 0.25 * seam[..., None])
        a = (band * weight)[..., None]
        region = region * (1 - a) + a * colour
        crop[lo[1]:hi[1], lo[0]:hi[0]] = np.clip(region + 0.5, 0, 255).astype(np.uint8)

    def fill(self, crop: np.ndarray, tracked: np.ndarray, adapted: np.ndarray, origin: np.ndarray) -> np.ndarray | None:
        """Composite the mouth interior into ``crop`` (h, w, 3) uint8, in place; landmarks are frame pixels,
        ``origin`` the crop's top-left in the frame. Returns the interior alpha (h, w) or None when nothing was
        filled."""
        weight = self.fill_weight(tracked, adapted)
        if weight <= 0.0:
            if self.use_bank and len(self.bank):
                self._choose(adapted)  # keep the choice moving so the next opening starts from a good entry
            self._seal(crop, tracked, adapted, origin)
            return None
        h, w = crop.shape[:2]
        inner = adapted[INNER] - origin
        lo, hi = _lip_box(adapted, origin, (w, h))
        if (hi <= lo).any():
            return None
        sub_origin = origin + lo
        size = (int(hi[0] - lo[0]), int(hi[1] - lo[1]))
        region = crop[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float32)
        alpha = _polygon_mask((size[1], size[0]), closed_spline(inner - lo)).astype(np.float32) / 255
        if alpha.max() <= 0:
            return None
        if self.use_bank:
            k = self._choose(adapted)
            texture, s = self._place(k, adapted, sub_origin, size)
            if self.fade < 1.0 and self.previous is not None:
                old, _ = self._place(self.previous, adapted, sub_origin, size)
                texture = self.fade * texture + (1 - self.fade) * old
            target = lip_band_colour(region, adapted - sub_origin)
            gains = np.clip(target / np.maximum(self.bank.lip_colour[k], 1.0), 0.7, 1.4) if target is not None else 1.0
            texture *= np.asarray(gains, np.float32)
            smooth = self.bank.noise * min(1.0, 1.0 / max(s, 1e-3))  # bilinear magnification smooths the grain
            grain = np.sqrt(max(self.bank.noise ** 2 - smooth ** 2, 0.0))
        else:
            texture = self._cavity(adapted, sub_origin, size)
            grain = self.bank.noise
        if self.cfg.match_noise and grain > 0.3:
            texture += self.rng.normal(0.0, grain, texture.shape[:2])[..., None].astype(np.float32)
        a = (alpha * weight)[..., None]
        region *= 1 - a
        region += a * np.clip(texture, 0, 255)
        crop[lo[1]:hi[1], lo[0]:hi[0]] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
        full = np.zeros((h, w), np.float32)
        full[lo[1]:hi[1], lo[0]:hi[0]] = alpha * weight
        return full
