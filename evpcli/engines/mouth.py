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
  carried onto the commanded lips piecewise-affinely (its inner-lip outline onto the commanded one), colour-matched
  to the frame's lips, given grain up to the frame's noise level, and composited inside the commanded inner lip.
- When the target never opens its mouth the bank has nothing to show: a shaded cavity with a band of upper
  teeth, in colours taken from the target's lips and skin, is drawn instead. Where it barely parts them (under
  ``open_min``, so no bank) and the command opens its mouth well past that, the slit's stretched rows give way to the
  same cavity without teeth (:meth:`MouthFiller.slit`); where its own open mouth is opened far past its own, it
  splits open (:func:`~evpcli.engines.interior.split_open`): its halves stay by their lips, the cavity between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from evpcli.config import RenderConfig
from evpcli.face.normalize import TEMPLATE, apply_transform, similarity_fit
from evpcli.engines.commissure import redraw_commissures
from evpcli.engines.interior import (closed_spline, drawn_interior, mouth_outline, rounded_lower_lip, slit_amount,
                                    slit_cavity, split_amount, split_open)
from evpcli.engines.mouth_fit import MIN_TEETH, TEETH_PREFERENCE, lip_maps, prefilter, smile_amount, upper_teeth
from evpcli.face.parts import INNER_LIP as INNER, OUTER_LIP as OUTER, STABLE

TEMPLATE_IOD = float(np.linalg.norm(TEMPLATE[45] - TEMPLATE[36]))
INTERIOR_REACH = 0.06  # how far past the tracked inner lip the interior may be found (IOD; interior_mask)
LIP_RIM = 0.03  # the outer lip's inside edge where the lips' colour is read (IOD; interior_mask)
CANVAS = (70.0, 126.0, 190.0, 206.0)  # x0, y0, x1, y1 of the mouth canvas in the canonical 256 frame


def to_canonical(landmarks: np.ndarray) -> np.ndarray:
    """(..., 2, 3) similarity from frame pixels to the canonical frame, fitted on the stable points."""
    lm = np.asarray(landmarks, np.float64)
    return similarity_fit(lm[..., STABLE, :], TEMPLATE[STABLE].astype(np.float64))


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


def interior_mask(region: np.ndarray, local: np.ndarray, iod: float) -> np.ndarray:
    """(h, w) uint8 0/1: the open mouth's interior in ``region`` (h, w, 3) uint8 RGB whose landmarks are ``local``
    (68, 2) region pixels: inside the tracked inner lip (grown by a pixel), and from there, up to
    :data:`INTERIOR_REACH` IOD further inside the outer lip, whatever is coloured like the inside and not like the
    lips (the tracker puts the inner lip a little inside the dark and the teeth).

    The lips' colour is read on their rim (the outer lip's inside edge, :data:`LIP_RIM` IOD wide), the teeth's on
    the bright pixels inside the inner lip: a pixel belongs to the inside where it is darker than 0.72 of the lips'
    lightness (the cavity, the corners' shadow) or brighter than the lips and less red than midway between the
    lips' and the teeth's CIELAB a* (the teeth). A fixed growth (5 % of the IOD before) took a grin's thin lower
    lip whole (the smiler: the lip painted over by skin, a smear where the command closes his mouth)."""
    shape = region.shape[:2]
    inner = (_polygon_mask(shape, closed_spline(local[INNER])) > 60).astype(np.uint8)
    inner = cv2.dilate(inner, np.ones((3, 3), np.uint8))
    outer = (_polygon_mask(shape, local[OUTER]) > 127).astype(np.uint8)
    edge = max(1, int(round(LIP_RIM * iod)))
    rim = (outer & ~cv2.erode(outer, np.ones((2 * edge + 1, 2 * edge + 1), np.uint8)) & (1 - inner)) > 0
    if rim.sum() < 8:
        return inner
    lab = cv2.cvtColor(region, cv2.COLOR_RGB2LAB).astype(np.float32)
    light, red = lab[..., 0], lab[..., 1]
    lip_l, lip_a = float(np.median(light[rim])), float(np.median(red[rim]))
    bright = (inner > 0) & (light > lip_l)
    teeth_a = float(np.median(red[bright])) if bright.sum() >= 4 else lip_a - 10.0
    like = ((red < 0.5 * (lip_a + teeth_a)) & (light > lip_l + 5.0)) | (light < 0.72 * lip_l)
    allowed = (like & (cv2.erode(outer, np.ones((3, 3), np.uint8)) > 0)).astype(np.uint8)
    mask = inner
    for _ in range(max(1, int(round(INTERIOR_REACH * iod)))):
        grown = np.maximum(mask, cv2.dilate(mask, np.ones((3, 3), np.uint8)) & allowed)
        if np.array_equal(grown, mask):
            break
        mask = grown
    return mask


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
        from evpcli.atomic import atomic_path

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


MIN_BANK_SHARPNESS = 0.5
"""A candidate whose mouth crop has less than this share of the candidates' median sharpness is left out of the
bank (motion blur, a frame out of focus): it would be pasted into sharp frames."""


def crop_sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of a mouth crop's grey levels (its fine detail)."""
    grey = np.asarray(crop, np.float32).mean(-1)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def choose_bank(candidates: dict[int, tuple[np.ndarray, np.ndarray]], landmarks: np.ndarray,
                reliability: np.ndarray, cfg: RenderConfig, scale: float, noise: float,
                skin_colour: np.ndarray) -> MouthBank:
    """The bank from the candidates' crops (frame -> (crop, canvas landmarks)): only reliable frames (no occluder)
    whose crop is not blurred (:data:`MIN_BANK_SHARPNESS`), farthest-point sampled by lip shape to
    ``cfg.bank_size``."""
    frames = np.array(sorted(candidates), np.int64)
    rel = np.asarray(reliability, np.float64)
    if len(frames):
        good = rel[frames] >= 0.9
        if good.sum() < max(1, len(frames) // 4):  # mostly occluded target: keep the best quarter
            good = rel[frames] >= np.quantile(rel[frames], 0.75)
        frames = frames[good]
    if len(frames) > 1:
        sharp = np.array([crop_sharpness(candidates[int(i)][0]) for i in frames])
        frames = frames[sharp >= MIN_BANK_SHARPNESS * np.median(sharp)]
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


_UNSET = object()


class MouthFiller:
    """The mouth of consecutive frames (stateful: the source in use is kept while the mouth is open).

    One coherent source per pixel, never two layers mixed:

    - before the warp (:meth:`prepare_source`), an open target mouth is painted over with its own lips (inpainting
      from the lip outline inwards), so a command that closes the mouth brings lip to lip and the warp never
      squeezes teeth or the dark interior between them (the jagged seam, tooth fragments at the corners);
    - after it (:meth:`fill`), where the command opens the mouth, the inside of the commanded inner lip is one
      source carried onto the commanded lips (its inner-lip outline onto theirs): the target frame's own interior when
      its mouth shape is close to the command's (preferred), else the bank entry whose inner-lip shape is
      closest, or the drawn cavity when the target never opens its mouth (or barely: :meth:`slit`). The source
      changes only while the commanded mouth is nearly closed (or when another is far better): no cross-fade, no
      ghosts;
    - a command (nearly) shut over a painted-over mouth gets the lips' junction: a line along the commanded inner
      lip a little darker than the lips.
    """

    OWN = -1  # the target frame's own mouth, as a source

    def __init__(self, bank: MouthBank, cfg: RenderConfig, seed: int = 0):
        self.bank, self.cfg = bank, cfg
        self.use_bank = bank.has_open(cfg)
        self.current: int | None = None
        self.rng = np.random.default_rng(seed)
        self.last_choice: int | None = None
        self._source: np.ndarray | None = None  # the frame's box crop before painting (for the own source)
        self._origin = np.zeros(2)
        self._painted = False
        self._plan: list[int | None] | None = None
        self._frame = 0
        self._choice: object = _UNSET  # this frame's source, chosen by prepare_source
        self._warp_shows_own = False
        self.unsmile = 0.0  # how much of the target's own smile this frame's command removes (engines.smile)
        # each entry's upper teeth (a smiling command prefers them: engines.mouth_fit), 0 under MIN_TEETH
        teeth = np.array([upper_teeth(c, lm) for c, lm in zip(bank.crops, bank.landmarks, strict=True)])
        self.teeth = np.where(teeth >= MIN_TEETH, teeth, 0.0)

    def reset(self) -> None:
        """Forget the state and the plan (a new sequence)."""
        self.skip()
        self._plan, self._frame = None, 0

    def skip(self) -> None:
        """A frame of the sequence that is not drawn (it passes through): the mouth starts afresh after it."""
        self.current = self.last_choice = None
        self._source, self._painted = None, False
        self._choice, self._warp_shows_own = _UNSET, False
        self._frame += 1

    # ----------------------------------------------------------------------------------------- before the warp
    def target_open(self, tracked: np.ndarray) -> bool:
        return float(opening_ratio(tracked)) >= 0.5 * self.cfg.open_min

    def prepare_source(self, crop: np.ndarray, tracked: np.ndarray, adapted: np.ndarray, origin: np.ndarray
                       ) -> np.ndarray:
        """The box crop (h, w, 3) uint8 of a target frame the warp will sample, once this frame's mouth source is
        chosen: with an open mouth painted over by its lips (a copy) where the command closes it and the warp
        would squeeze it, else ``crop`` itself (the frame's own open mouth, warped, is the most faithful source: the
        warp is exact at every lip landmark)."""
        self._source, self._origin, self._painted = crop, np.asarray(origin, np.float64), False
        self._choice = self._choose(tracked, adapted)
        self._warp_shows_own = False
        if not self.target_open(tracked):
            return crop
        # the warp maps the tracked inner lip onto the commanded one: an opening at least as wide as the target's
        # needs no painting (a source placed there covers the warped interior; the frame's own is the warp itself)
        # Unless the target's smile is taken away: its interior is then redrawn (engines.smile) inside the commanded
        # inner lip only, and the grin's teeth the tracker leaves outside its inner lip (interior_mask's growth)
        # would be warped onto the lower lip as white specks at the redrawn cavity's edge: they are painted over.
        if float(opening_ratio(adapted)) >= 0.9 * float(opening_ratio(tracked)) and self.unsmile <= 0.0:
            self._warp_shows_own = self._choice == self.OWN
            return crop
        h, w = crop.shape[:2]
        lo, hi = _lip_box(tracked, origin, (w, h))
        if (hi - lo < 4).any():
            return crop
        lo = np.maximum(lo - 4, 0)
        hi = np.minimum(hi + 4, [w, h])
        region = np.ascontiguousarray(crop[lo[1]:hi[1], lo[0]:hi[0]])
        local = tracked - origin - lo
        iod = float(np.linalg.norm(tracked[45] - tracked[36]))
        mask = interior_mask(region, local, iod) * 255
        if not mask.any():
            return crop
        painted = cv2.inpaint(region, mask, max(2.0, 0.04 * iod), cv2.INPAINT_TELEA)
        # inpainting carries the boundary's last dark pixels inwards as a faint ring, which a closing warp squeezes
        # into dark scratches: the painted area is smoothed (it is lip and will be squeezed thin anyway)
        sigma = max(1.0, 0.04 * iod)
        soft = cv2.GaussianBlur(painted, (0, 0), sigma)
        m = cv2.GaussianBlur(cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(np.float32) / 255, (0, 0), 1.0)
        painted = (painted * (1 - m[..., None]) + soft * m[..., None] + 0.5).astype(np.uint8)
        out = crop.copy()
        out[lo[1]:hi[1], lo[0]:hi[0]] = painted
        self._painted = True
        return out

    # ----------------------------------------------------------------------------------------- after the warp
    def fill_weight(self, tracked: np.ndarray, adapted: np.ndarray) -> float:
        """1 where the commanded mouth is open enough to show its inside (a source is placed), else 0."""
        return 1.0 if float(opening_ratio(adapted)) >= self.fill_min else 0.0

    @property
    def fill_min(self) -> float:
        """The commanded opening (over the mouth width) from which a source fills the mouth: half of open_min."""
        return 0.5 * self.cfg.open_min

    def _costs(self, tracked: np.ndarray, adapted: np.ndarray) -> dict[int, float]:
        """Each source's cost for this command: the squared distance of its inner-lip shape to the commanded one,
        more for a source less open than the command (stretching a small interior shows) and a little less for the
        frame's own mouth (the same light, no seam); for a smiling command, more for a source without upper teeth
        (up to 1 + TEETH_PREFERENCE times, the frame's own mouth counted as showing none)."""
        want = lip_shape(adapted)
        cmd = max(float(opening_ratio(adapted)), 1e-3)
        best_teeth = float(self.teeth.max()) if len(self.teeth) else 0.0
        smile = smile_amount(tracked, adapted) if best_teeth > 0.0 else 0.0
        costs: dict[int, float] = {}
        if self.use_bank and len(self.bank):
            stretch = 1.0 + np.maximum(cmd / np.maximum(self.bank.openings, 1e-3) - 1.0, 0.0)
            no_teeth = 1.0 + TEETH_PREFERENCE * smile * (1.0 - self.teeth / max(best_teeth, 1e-6))
            for k, c in enumerate(((self.bank.shapes - want) ** 2).sum(1) * stretch * no_teeth):
                costs[k] = float(c)
        if self._source is not None and self.target_open(tracked):
            own = float(opening_ratio(tracked))
            costs[self.OWN] = (0.8 * float(((lip_shape(tracked) - want) ** 2).sum()) * (1.0 + max(cmd / own - 1.0, 0.0))
                               * (1.0 + TEETH_PREFERENCE * smile))
        return costs

    def plan(self, tracked: np.ndarray, adapted: np.ndarray) -> None:
        """Choose the source of every frame of a sequence ahead (tracked, adapted (n, 68, 2), in render order): one
        source per opening (a run of frames whose commanded mouth is open enough to fill), the one with the least
        cost summed over the run (the frame's own mouth only where the target frame's is open throughout). Then
        :meth:`fill` follows the plan frame by frame; :meth:`reset` drops it."""
        n = len(adapted)
        plan: list[int | None] = [None] * n
        opened = opening_ratio(np.asarray(adapted, np.float64)) >= self.fill_min
        i = 0
        while i < n:
            if not opened[i]:
                i += 1
                continue
            j = i
            while j < n and opened[j]:
                j += 1
            candidates = list(range(len(self.bank))) if self.use_bank else []
            total = dict.fromkeys(candidates + [self.OWN], 0.0)
            for f in range(i, j):
                self._source = np.zeros((1, 1, 3), np.uint8)  # the own mouth counts where the target's is open
                costs = self._costs(tracked[f], adapted[f])
                for k in total:
                    total[k] += costs.get(k, np.inf)
            self._source = None
            if total:
                best = min(total, key=total.get)
                if np.isfinite(total[best]):
                    plan[i:j] = [best] * (j - i)
            i = j
        self._plan, self._frame = plan, 0

    def _choose(self, tracked: np.ndarray, adapted: np.ndarray) -> int | None:
        planned = None
        if self._plan is not None and self._frame < len(self._plan):
            planned = self._plan[self._frame]
        costs = self._costs(tracked, adapted)
        if planned is not None and planned in costs:
            self.current = planned
        elif not costs:
            self.current = None
        else:
            best = min(costs, key=costs.get)
            nearly_closed = float(opening_ratio(adapted)) < self.cfg.open_min
            if (self.current not in costs or nearly_closed
                    or costs[best] < 0.25 * costs[self.current]):  # or one four times closer: a cut, not a fade
                self.current = best
        self.last_choice = self.current if self.current != self.OWN else None
        return self.current

    def _place(self, k: int, tracked: np.ndarray, adapted: np.ndarray, origin: np.ndarray, size: tuple[int, int]
               ) -> tuple[np.ndarray, float]:
        """Source ``k`` (a bank entry, or :attr:`OWN`) placed onto the commanded lips: (h, w, 3) float32, scale.

        Piecewise-affine over a fan (:func:`~evpcli.engines.mouth_fit.lip_maps`): the source's inner-lip outline lands
        on the commanded one exactly, whatever their shapes (one affine fitted to all the lips left a smile's commanded
        opening, curved up at the corners, holding the source's lower lip: a second lip inside the mouth)."""
        if k == self.OWN:
            src, image = tracked - self._origin, self._source  # the box crop prepare_source saw
        else:
            src, image = self.bank.landmarks[k].astype(np.float64), self.bank.crops[k]
        map_x, map_y, scale = lip_maps(src, adapted - origin, size)
        out = cv2.remap(prefilter(image, src, adapted - origin), map_x, map_y, interpolation=cv2.INTER_CUBIC,
                        borderMode=cv2.BORDER_REPLICATE)
        return out.astype(np.float32), scale

    def _cavity(self, adapted: np.ndarray, origin: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """A drawn mouth interior in the target's colours (:func:`evpcli.engines.interior.drawn_interior`)."""
        return drawn_interior(adapted[INNER] - origin, size, self.bank.lip_mean, self.bank.skin_colour)

    def slit(self, tracked: np.ndarray, adapted: np.ndarray) -> float:
        """How much of the frame's own mouth, warped open by the command, gives way to the drawn cavity (0-1):
        :func:`~evpcli.engines.interior.slit_amount` of the tracked and commanded openings."""
        return slit_amount(float(opening_ratio(tracked)), float(opening_ratio(adapted)), self.cfg.open_min)

    def _lips(self, region: np.ndarray, local: np.ndarray) -> np.ndarray:
        """The lips' colour (3,) around the commanded mouth in ``region`` (:func:`lip_band_colour`; ``local`` the
        commanded landmarks in its pixels), else the bank's mean."""
        lips = lip_band_colour(region, local)
        return lips if lips is not None else self.bank.lip_mean

    def _without_grin(self, texture: np.ndarray, region: np.ndarray, local: np.ndarray) -> np.ndarray:
        """A source's interior ``texture`` (h, w, 3) float32 with the target's grin taken away by :attr:`unsmile`
        (:func:`evpcli.engines.smile.interior_without_grin`): ``region`` the warped lips' box it goes into, ``local``
        (68, 2) the commanded landmarks in its pixels."""
        from evpcli.engines.smile import interior_without_grin

        return interior_without_grin(texture, local[INNER], self.unsmile, self._lips(region, local))

    def _junction(self, crop: np.ndarray, adapted: np.ndarray, origin: np.ndarray) -> None:
        """Where lips that were apart are drawn together: a line along the commanded inner lip, 1 px, 15 % darker than
        the lips there (closed lips meet in a shadow, not in a flat lip colour), in place."""
        h, w = crop.shape[:2]
        lo, hi = _lip_box(adapted, origin, (w, h))
        if (hi <= lo).any():
            return
        region = crop[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float32)
        local = adapted - origin - lo
        line = np.zeros(region.shape[:2], np.uint8)
        cv2.polylines(line, [np.round(closed_spline(local[INNER]) * 16).astype(np.int32)], True, 255, 1, cv2.LINE_AA,
                      shift=4)
        a = (line.astype(np.float32) / 255 * 0.15)[..., None]
        region *= 1 - a
        crop[lo[1]:hi[1], lo[0]:hi[0]] = np.clip(region + 0.5, 0, 255).astype(np.uint8)

    def fill(self, crop: np.ndarray, tracked: np.ndarray, adapted: np.ndarray, origin: np.ndarray) -> np.ndarray | None:
        """Composite the mouth interior into ``crop`` (h, w, 3) uint8 (the warped box), in place; landmarks are frame
        pixels, ``origin`` the crop's top-left in the frame (the box :meth:`prepare_source` saw). Returns the
        interior alpha (h, w) or None when nothing was filled. Where the command moves an outer mouth corner away
        from its inner corner (:func:`commissure_change`), the corner between them is redrawn
        (:func:`redraw_commissures`)."""
        try:
            alpha = self._fill(crop, tracked, adapted, origin)
            redraw_commissures(crop, tracked - origin, adapted - origin)
            return alpha
        finally:
            self._frame += 1
            self._choice, self._warp_shows_own = _UNSET, False

    def _fill(self, crop: np.ndarray, tracked: np.ndarray, adapted: np.ndarray, origin: np.ndarray
              ) -> np.ndarray | None:
        if self._choice is _UNSET:  # no prepare_source for this frame (the warp was done elsewhere)
            self._source, self._origin = None, np.asarray(origin, np.float64)
            self._choice = self._choose(tracked, adapted)
        if self.fill_weight(tracked, adapted) <= 0.0:
            if self._painted:
                self._junction(crop, adapted, origin)
            return None
        slit = split = 0.0
        if self._warp_shows_own:  # the warp has drawn the frame's own mouth: kept, unless stretched far past it
            own, cmd = float(opening_ratio(tracked)), float(opening_ratio(adapted))
            slit, split = slit_amount(own, cmd, self.cfg.open_min), split_amount(own, cmd, self.cfg.open_min)
            if slit <= 0.0 and split <= 0.0:
                return None
        adapted = rounded_lower_lip(adapted)
        h, w = crop.shape[:2]
        inner = adapted[INNER] - origin
        lo, hi = _lip_box(adapted, origin, (w, h))
        if (hi <= lo).any():
            return None
        sub_origin = origin + lo
        size = (int(hi[0] - lo[0]), int(hi[1] - lo[1]))
        region = crop[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float32)
        alpha = _polygon_mask((size[1], size[0]), mouth_outline(inner - lo)).astype(np.float32) / 255
        if alpha.max() <= 0:
            return None
        k = self._choice
        if slit > 0.0 or split > 0.0:  # the warped slit giving way to the drawn cavity, or an open mouth split open
            cavity = slit_cavity(inner - lo, size, self._lips(region, adapted - sub_origin), self.bank.skin_colour)
            opened = split_open(region, inner - lo, own / max(cmd, 1e-3), cavity) if split > 0.0 else cavity
            texture = region + slit * (cavity - region) + split * (opened - region)  # slit + split <= 1
            grain = (slit + split) * self.bank.noise
        elif k is not None:
            texture, s = self._place(k, tracked, adapted, sub_origin, size)
            if k != self.OWN:
                target = lip_band_colour(region, adapted - sub_origin)
                gains = (np.clip(target / np.maximum(self.bank.lip_colour[k], 1.0), 0.7, 1.4)
                         if target is not None else 1.0)
                texture *= np.asarray(gains, np.float32)
            if self.unsmile > 0.0:
                texture = self._without_grin(texture, region, adapted - sub_origin)
            smooth = self.bank.noise * min(1.0, 1.0 / max(s, 1e-3))  # magnification smooths the grain
            grain = np.sqrt(max(self.bank.noise ** 2 - smooth ** 2, 0.0))
        else:
            texture = self._cavity(adapted, sub_origin, size)
            grain = self.bank.noise
        if self.cfg.match_noise and grain > 0.3:
            texture += self.rng.normal(0.0, grain, texture.shape[:2])[..., None].astype(np.float32)
        a = alpha[..., None]
        region *= 1 - a
        region += a * np.clip(texture, 0, 255)
        crop[lo[1]:hi[1], lo[0]:hi[0]] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
        full = np.zeros((h, w), np.float32)
        full[lo[1]:hi[1], lo[0]:hi[0]] = alpha
        return full
