"""The training-free warp renderer (``--renderer warp``): only the face changes.

Per frame (:meth:`WarpRenderer.render`):

1. Control points (:mod:`evpcli.engines.geometry`): the tracked landmarks move to the adapted ones, skin points
   follow smoothly, a ring of fixed points around the head stays put. The face box is the ring's bounding box;
   all work happens on that crop, at a cost that does not grow with the frame size.
2. The crop is warped (piecewise-affine over a fixed triangulation, or a thin-plate spline) by inverse maps
   computed on a coarse grid and upsampled, sampled with a Lanczos kernel (a bilinear one blurs the face). Where a
   strong command would turn a triangle over (a smiling mouth corner lifted past the cheek's skin point), the skin
   points are pulled along (:func:`~evpcli.engines.geometry.unfold`): no crease. Beside the mouth's corners (a
   smile) and on the lids' skin under a raised brow the piecewise-affine maps are smoothed (``smooth_corners``,
   ``smooth_brows``), so creases bend instead of kinking at the mesh's edges. Where the warp stretches the skin, the
   fine detail the stretch spread out is put back (:func:`restore_detail`).
3. The mouth (:class:`~evpcli.engines.mouth.MouthFiller`): an open target mouth is painted over with its lips before
   the warp, so closing it brings lip to lip; where the command opens the mouth, the inside of the commanded inner
   lip is one source placed on the commanded lips: the target frame's own interior, or its closest mouth from the
   :class:`~evpcli.engines.mouth.MouthBank` (or a drawn cavity when the target never opens its mouth).
4. Where the command takes the target's own smile away (``smile_removed``, per frame from :meth:`WarpRenderer.plan`
   or one value for the renderer), the grin's teeth in the opened mouth and the smile's folds on the cheeks are
   undone in proportion (:mod:`evpcli.engines.smile`); where it commands an emotion with a shading of its own
   (``shading``, likewise, per emotion: a frown's shadows over the lids and furrows between the brows), that
   shading is drawn in (:mod:`evpcli.engines.shading`).
5. The result is blended into the frame with a mask that is 0 on and outside the ring and feathered inside it,
   scaled by the frame's reliability (occluded or lost faces pass through, faded in and out). Outside the mask
   the output is the input frame, byte for byte. A fade moves the face back to the target's own landmarks first
   (command, smile undoing and shading scaled by the reliability) and lowers the blend only below half of it
   (:data:`FADE_ALPHA`): a plain cross-fade of a far-moved face (sad's raised brows) drew them twice.

The renderer keeps a little state between consecutive frames (the mouth bank entry in use, cross-fades), so
frames must be rendered in output order; :meth:`WarpRenderer.reset` starts a new sequence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from evpcli.config import RenderConfig
from evpcli.engines.geometry import (Box, crop_box, frame_points, make_rig, pwa_maps, ring_alpha, smooth_brows,
                                    smooth_corners, tps_maps, triangles_for, unfold)
from evpcli.engines.mouth import MouthBank, MouthFiller
from evpcli.face.brows import brow_gaps
from evpcli.face.parts import OUTER_LIP, OUTER_LIP_CORNERS
from evpcli.engines.target import analyse_target, build_mouth_bank, face_reliability

__all__ = ["WarpRenderer", "RenderInfo", "MouthBank", "build_mouth_bank", "face_reliability", "analyse_target"]

FADE_ALPHA = 2.0  # the blend's weight is min(1, FADE_ALPHA x reliability): the shape fades first, the pixels last


def faded_command(tracked: np.ndarray, adapted: np.ndarray, reliability: float) -> np.ndarray:
    """The command a frame of ``reliability`` < 1 draws: moved back towards the face's own landmarks by it (a
    cross-fade of a far-moved face drew it twice). Shared by the warp and the neural renderer."""
    return adapted if reliability >= 1.0 else tracked + reliability * (adapted - tracked)


def fade_alpha(reliability: float) -> float:
    """The blend weight of a frame of ``reliability``: full down to half of it, then falling to 0."""
    return min(1.0, FADE_ALPHA * reliability)


@dataclass
class RenderInfo:
    """What :meth:`WarpRenderer.render` did to the last frame (for tests, metrics and previews).

    ``box`` the face box (None: the frame passed through); ``alpha`` (box height, box width) float32 the blend
    weight used there (mask x reliability); ``mouth_alpha`` the mouth-fill weight inside the box or None;
    ``bank_entry`` the bank entry shown (None: none or the drawn cavity)."""

    box: Box | None = None
    alpha: np.ndarray | None = None
    mouth_alpha: np.ndarray | None = None
    bank_entry: int | None = None

    def face_mask(self, size: tuple[int, int]) -> np.ndarray:
        """(H, W) float32 blend weight over the whole frame (``size`` (W, H)); 0 where the frame is untouched."""
        w, h = size
        out = np.zeros((h, w), np.float32)
        if self.box is not None and self.alpha is not None:
            b = self.box
            out[b.y0:b.y1, b.x0:b.x1] = self.alpha
        return out


def check_frame_inputs(frame, tracked, adapted) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arguments of a renderer's ``render``: (H, W, 3) uint8 RGB frame, (68, 2) tracked and adapted landmarks
    (as float64); ValueError otherwise."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    tracked = np.asarray(tracked, np.float64)
    adapted = np.asarray(adapted, np.float64)
    if tracked.shape != (68, 2) or adapted.shape != (68, 2):
        raise ValueError(f"landmarks must be (68, 2), got {tracked.shape} and {adapted.shape}")
    return frame, tracked, adapted


def magnification(map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """(h, w) float32 local linear magnification of the warp whose inverse maps (output pixel -> source pixel) are
    ``map_x``, ``map_y``: 1 / sqrt(|det J|) of the maps' Jacobian; > 1 where the source is stretched out."""
    mxy, mxx = np.gradient(map_x.astype(np.float32))
    myy, myx = np.gradient(map_y.astype(np.float32))
    det = np.abs(mxx * myy - mxy * myx)
    return (1.0 / np.sqrt(np.maximum(det, 1e-3))).astype(np.float32)


def subpixel_shift(map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """(h, w) float32 how far off the source's pixel grid each output pixel is sampled: the distance of ``map_x``
    and of ``map_y`` to the nearest whole pixel, summed (0 on the grid, at most 1 half-way between four pixels)."""
    fx = map_x.astype(np.float32) - np.floor(map_x)
    fy = map_y.astype(np.float32) - np.floor(map_y)
    return (np.minimum(fx, 1 - fx) + np.minimum(fy, 1 - fy)).astype(np.float32)


def restore_detail(warped: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, gain: float = 3.0,
                   max_gain: float = 1.0, shift_gain: float = 0.0, spare: np.ndarray | None = None) -> np.ndarray:
    """``warped`` (h, w, 3) uint8 with the fine detail its stretched regions lost put back: an unsharp mask
    (Gaussian sigma 1 px) of weight ``gain`` x (magnification - 1), at most ``max_gain``, plus ``shift_gain`` x
    :func:`subpixel_shift` where the warp does not shrink the skin, times 1 - ``spare`` ((h, w) in [0, 1], e.g. the
    mouth); 0 where the warp keeps the skin in place or shrinks it (there the output keeps its bytes).

    Why the shift: a face moved by a fraction of a pixel is resampled between its pixels, and even a Lanczos kernel
    attenuates the finest detail there: the variance of the Laplacian falls to 0.87-0.88 of the original for a half
    pixel along one axis and 0.76-0.81 for half a pixel along both (the astronaut's and carphone's faces); an unsharp
    mask of 0.17 x the summed offsets brings it back to 0.98-1.03 (weights found by bisection: 0.04-0.09 per quarter
    pixel per axis). A happy command moves the astronaut's whole face by fractions of a pixel (cheeks, lids): its
    face measured 0.86 of the target's sharpness before, the eyes and brows 0.87.

    Why: resampling a region magnified by m spreads its texture over m times the pixels, and the variance of its
    Laplacian (what reads as sharpness) falls fast: to 0.76 at m = 1.05 and 0.48 at m = 1.2 (Lanczos, on the
    astronaut's and carphone's faces). An unsharp mask of weight 3 (m - 1) brings it back to 0.95-1.1 of the
    unwarped face for m up to 1.3 (weights found by bisection on both faces; a one-directional stretch needs less
    and gets a little more). The weight map is smoothed over 2 px so that the triangles of a piecewise-affine warp
    leave no seams of sharpening."""
    if gain <= 0 and shift_gain <= 0:
        return warped
    mag = magnification(map_x, map_y)
    weight = np.clip(gain * (mag - 1.0), 0.0, max_gain)
    if shift_gain > 0:
        # not where the warp shrinks the skin (its detail is packed tighter, not lost): full from 0.95, none at 0.85
        shift = shift_gain * subpixel_shift(map_x, map_y) * np.clip((mag - 0.85) / 0.1, 0.0, 1.0)
        weight = weight + (shift if spare is None else shift * (1.0 - spare))
    weight = cv2.GaussianBlur(weight, (0, 0), 2.0)
    if float(weight.max()) < 0.01:
        return warped
    img = warped.astype(np.float32)
    detail = img - cv2.GaussianBlur(img, (0, 0), 1.0)
    return np.clip(img + weight[..., None] * detail + 0.5, 0, 255).astype(np.uint8)


def _lips_area(shape: tuple[int, int], tracked: np.ndarray, adapted: np.ndarray, box: Box) -> np.ndarray:
    """(h, w) float32 in [0, 1] over the box: the frame's and the command's lips grown by 0.12 IOD, feathered. The
    subpixel sharpening leaves them as sampled: sharper lip edges moved dlib's inner lip (carphone's sad render's
    lip sync 0.76 -> 0.68), and the mouth has its own sources anyway."""
    iod = float(np.linalg.norm(tracked[45] - tracked[36]))
    lips = np.zeros(shape, np.uint8)
    for pts in (tracked[OUTER_LIP], adapted[OUTER_LIP]):
        cv2.fillPoly(lips, [np.round(pts - [box.x0, box.y0]).astype(np.int32)], 1)
    grow = max(1, int(round(0.12 * iod)))
    lips = cv2.dilate(lips, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return cv2.GaussianBlur(lips.astype(np.float32), (0, 0), max(1.0, 0.04 * iod))


class WarpRenderer:
    """Re-renders target frames with new landmarks. ``bank``: the target's mouth bank (None or empty: the drawn
    cavity fills opened mouths); ``cfg``: :class:`~evpcli.config.RenderConfig`; ``smile_removed``: how much of the
    target's own smile the command takes away (0-1, :func:`evpcli.render.drive.smile_removed`) in every frame not
    given its own value by :meth:`plan`; ``shading``: how much of each emotion's shading every such frame draws
    (emotion -> amount, :mod:`evpcli.engines.shading`, :func:`evpcli.render.drive.shading_amounts`)."""

    def __init__(self, bank: MouthBank | None = None, cfg: RenderConfig | None = None, seed: int = 0,
                 smile_removed: float = 0.0, shading: Mapping[str, float] | None = None):
        self.cfg = cfg or RenderConfig()
        self.smile_removed = float(smile_removed)
        self.shading = {k: float(v) for k, v in (shading or {}).items()}
        self._smile_plan: np.ndarray | None = None
        self._shading_plan: dict[str, np.ndarray] | None = None
        self._index = 0
        if self.cfg.warp not in ("pwa", "tps"):
            raise ValueError(f"warp must be 'pwa' or 'tps', got {self.cfg.warp!r}")
        if bank is None:
            bank = MouthBank(crops=np.zeros((0, 1, 1, 3), np.uint8), landmarks=np.zeros((0, 68, 2), np.float32),
                             shapes=np.zeros((0, 16)), openings=np.zeros(0), lip_colour=np.zeros((0, 3)),
                             frames=np.zeros(0, np.int64), scale=1.0, noise=0.0)
        self.bank = bank
        self.rig = make_rig(self.cfg.ring_points, self.cfg.ring_width, self.cfg.ring_height)
        self.mouth = MouthFiller(bank, self.cfg, seed)
        self.last = RenderInfo()

    def reset(self) -> None:
        """Forget the state carried between frames (start of a new sequence)."""
        self.mouth.reset()
        self.last = RenderInfo()
        self._smile_plan, self._shading_plan, self._index = None, None, 0

    def plan(self, tracked: np.ndarray, adapted: np.ndarray, smile_removed: np.ndarray | None = None,
             shading: Mapping[str, np.ndarray] | None = None) -> None:
        """Plan the mouth's sources for the sequence about to be rendered (:meth:`MouthFiller.plan`), and with
        ``smile_removed`` (n,) how much of the target's smile each frame's command takes away, with ``shading``
        (emotion -> (n,)) how much of each emotion's shading each frame draws (:mod:`evpcli.engines.shading`): the
        frames must then come in that order, every one through :meth:`render`."""
        self.reset()
        self.mouth.plan(np.asarray(tracked, np.float64), np.asarray(adapted, np.float64))
        if smile_removed is not None:
            self._smile_plan = np.clip(np.asarray(smile_removed, np.float64).reshape(-1), 0.0, 1.0)
        if shading is not None:
            self._shading_plan = {k: np.maximum(np.asarray(v, np.float64).reshape(-1), 0.0) for k, v in shading.items()}

    def _unsmile(self) -> tuple[float, dict[str, float]]:
        """This frame's share of the target's smile to undo and its emotions' shading amounts (each the plan's,
        else the renderer's one value)."""
        i, self._index = self._index, self._index + 1
        amounts = dict(self.shading)
        if self._shading_plan is not None:
            amounts = {k: float(v[i]) for k, v in self._shading_plan.items() if i < len(v)}
        if self._smile_plan is not None and i < len(self._smile_plan):
            return float(self._smile_plan[i]), amounts
        return float(np.clip(self.smile_removed, 0.0, 1.0)), amounts

    def warp_crop(self, frame: np.ndarray, tracked: np.ndarray, adapted: np.ndarray
                  ) -> tuple[Box, np.ndarray, np.ndarray] | None:
        """Warp the face box of ``frame`` from ``tracked`` to ``adapted`` landmarks: (box, warped crop (h, w, 3)
        uint8, ring (R, 2) frame pixels), or None when the box misses the frame."""
        h, w = frame.shape[:2]
        src, dst, _ = frame_points(self.rig, tracked, adapted)
        ring = src[-self.rig.n_ring:]
        box = crop_box(np.concatenate([ring, src[:68], dst[:68]]), (w, h), self.cfg.map_side)
        if box is None:
            return None
        if self.cfg.warp == "pwa":
            triangles = triangles_for(self.rig, src)
            dst = unfold(src, dst, triangles, np.arange(68, 68 + self.rig.n_skin))
            map_x, map_y = pwa_maps(box, src, dst, triangles)
            # where the command moves a mouth corner well away from the frame's (a smile: 0.1-0.16 IOD), in
            # proportion from 0.03 to 0.08 IOD (speech moves them less; no change from one frame to the next)
            iod = float(np.linalg.norm(tracked[45] - tracked[36]))
            moved = float(np.linalg.norm(adapted[OUTER_LIP_CORNERS] - tracked[OUTER_LIP_CORNERS], axis=1).max())
            map_x, map_y = smooth_corners(map_x, map_y, adapted - [box.x0, box.y0], iod, self.cfg.corner_smooth,
                                          self.cfg.corner_radius, (moved / max(iod, 1e-6) - 0.03) / 0.05)
            # where the command raises a brow well above the frame's (sad's inner ends, surprise), in proportion from
            # 0.03 to 0.08 IOD of added height over the lid; a lowered brow (a frown) is left to the exact maps
            raised = float((brow_gaps(adapted) - brow_gaps(tracked)).max())
            map_x, map_y = smooth_brows(map_x, map_y, adapted - [box.x0, box.y0], iod, self.cfg.brow_smooth,
                                        (raised / max(iod, 1e-6) - 0.03) / 0.05)
        else:
            map_x, map_y = tps_maps(box, src, dst)
        crop = self.mouth.prepare_source(frame[box.y0:box.y1, box.x0:box.x1], tracked, adapted,
                                         np.array([box.x0, box.y0], float))
        # Lanczos: a bilinear resampling at a fraction of a pixel halves the face's fine detail (the variance of its
        # Laplacian: 0.58-0.60 of the target's on carphone, 1.0 with Lanczos and 0.89-0.94 with bicubic, measured
        # before encoding); where the maps are the identity every interpolation returns the pixel itself
        warped = cv2.remap(crop, map_x, map_y, interpolation=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
        spare = _lips_area(warped.shape[:2], tracked, adapted, box) if self.cfg.detail_shift > 0 else None
        warped = restore_detail(warped, map_x, map_y, self.cfg.detail_gain, self.cfg.detail_max, self.cfg.detail_shift,
                                spare)
        return box, warped, ring

    def render(self, frame: np.ndarray, tracked: np.ndarray, adapted: np.ndarray, reliability: float = 1.0
               ) -> np.ndarray:
        """One output frame: ``frame`` (H, W, 3) uint8 RGB with its face moved from ``tracked`` (68, 2) pixels to
        ``adapted`` (68, 2) pixels, blended in by ``reliability`` in [0, 1]. Returns a new (H, W, 3) uint8 array;
        :attr:`last` describes what was done."""
        frame, tracked, adapted = check_frame_inputs(frame, tracked, adapted)
        out = frame.copy()
        self.last = RenderInfo()
        unsmile, shading = self._unsmile()
        self.mouth.unsmile = unsmile
        rel = float(np.clip(reliability, 0.0, 1.0))
        if rel < self.cfg.min_reliability or not (np.isfinite(tracked).all() and np.isfinite(adapted).all()):
            self.mouth.skip()
            return out
        if rel < 1.0:  # fading towards an occlusion: the face moves back to its own shape, then fades (no ghosts)
            adapted = faded_command(tracked, adapted, rel)
            unsmile *= rel
            shading = {k: a * rel for k, a in shading.items()}
        result = self.warp_crop(frame, tracked, adapted)
        if result is None:
            self.mouth.skip()
            return out
        box, warped, ring = result
        origin = np.array([box.x0, box.y0], np.float64)
        mouth_alpha = self.mouth.fill(warped, tracked, adapted, origin)
        if unsmile > 0.0:
            from evpcli.engines.smile import soften_folds

            soften_folds(warped, adapted - origin, unsmile)
        if any(a > 0.0 for a in shading.values()):
            from evpcli.engines.shading import shade

            shade(warped, adapted - origin, shading)
        iod = float(np.linalg.norm(tracked[45] - tracked[36]))
        alpha = ring_alpha(box, ring, self.cfg.feather * iod) * fade_alpha(rel)
        crop = out[box.y0:box.y1, box.x0:box.x1]
        # alpha * warped + (1 - alpha) * frame; where alpha is 0 the frame's bytes come back exactly
        crop[...] = cv2.blendLinear(warped, np.ascontiguousarray(crop), alpha, 1.0 - alpha)
        self.last = RenderInfo(box=box, alpha=alpha, mouth_alpha=mouth_alpha,
                               bank_entry=self.mouth.last_choice if self.mouth.use_bank and mouth_alpha is not None else None)
        return out
