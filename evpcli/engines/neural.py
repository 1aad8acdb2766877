"""The neural renderer (``--renderer neural``): a per-target network draws the face crop, pasted back feathered.

Per frame (:meth:`NeuralRenderer.render`):

1. The face crop: a square of ``cfg.size`` pixels aligned by the similarity of the *tracked* stable points (eye
   corners, nose) onto the canonical 256 frame (:func:`crop_affine`); everything happens on the crop, at a cost
   that does not grow with the frame size.
2. The generator's input (:func:`generator_input`): EVP's guidance map of the crop (sketch of the *adapted*
   landmarks + Canny edges of the target frame outside the face), one distance map per facial part, the
   previous output frames cropped the same way and, for the hybrid, the warp renderer's output.
3. The generated crop is pasted back by the inverse similarity with a feathered mask covering the face of both
   the tracked and the adapted landmarks (:func:`paste_mask`); towards an occlusion the command first moves back
   to the face's own shape by the frame's reliability and the mask fades below half of it (as the warp's); outside the
   mask the output is the input frame, byte for byte. The hybrid pastes its correction onto the warp output at
   full resolution (the warp output's detail finer than the crop is kept), so a 128 px crop does not blur a
   larger face.

The previous outputs are kept as whole frames and re-cropped with the current frame's crop, so they line up
with it even when the head moves. At the start of a sequence (after :meth:`NeuralRenderer.reset`) the target
frame itself stands in for them. Training (:mod:`evpcli.train.renderer_data`) builds its inputs with these same
functions.
"""

from __future__ import annotations


import cv2
import numpy as np

from evpcli.config import NeuralRendererConfig
from evpcli.face.guidance import face_region, guidance_map
from evpcli.face.normalize import STABLE_POINTS, TEMPLATE, apply_transform, invert_transform, similarity_fit
from evpcli.face.parts import CURVES
from evpcli.engines.geometry import Box
from evpcli.engines.warp import RenderInfo, check_frame_inputs, fade_alpha, faded_command

_STABLE = list(STABLE_POINTS)
TEMPLATE_JAW_WIDTH = float(np.linalg.norm(TEMPLATE[16] - TEMPLATE[0]))
# the curves of :data:`CURVES` (jaw, r/l brow, nose bridge, nose base, r/l eye, outer lip, inner lip) per part map
PART_GROUPS: tuple[tuple[int, ...], ...] = ((0,), (1, 2), (3, 4), (5, 6), (7,), (8,))
MASK_MARGIN = 0.12  # the paste mask: face region grown by this many inter-ocular distances ...
MASK_FEATHER = 0.3  # ... then feathered inwards over this many


def crop_affine(tracked: np.ndarray, cfg: NeuralRendererConfig, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(2, 3) float64 affine from frame pixels to crop pixels for a face with ``tracked`` (68, 2) landmarks; the
    crop content moves by ``shift`` crop pixels (training jitter)."""
    to_frame = similarity_fit(TEMPLATE[_STABLE].astype(np.float64), np.asarray(tracked, np.float64)[_STABLE])
    side = cfg.crop_scale * TEMPLATE_JAW_WIDTH
    k = cfg.size / side
    canon_to_crop = np.array([[k, 0.0, cfg.size / 2 - k * 128.0 + shift[0]],
                              [0.0, k, cfg.size / 2 - k * cfg.crop_centre_y + shift[1]]])
    return compose_affine(canon_to_crop, invert_transform(to_frame))


def compose_affine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affine a(b(x)), both (2, 3)."""
    return np.concatenate([a[:, :2] @ b[:, :2], (a[:, :2] @ b[:, 2] + a[:, 2])[:, None]], 1)


def crop_image(frame: np.ndarray, affine: np.ndarray, size: int, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """The crop (size, size, C) of ``frame`` by ``affine`` (frame -> crop). A crop that shrinks the frame by more
    than 1.25x first area-averages the region it covers (no aliasing), so large frames give the same crops as
    small ones."""
    scale = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
    if scale < 0.8:
        h, w = frame.shape[:2]
        corners = apply_transform(np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64),
                                  invert_transform(affine))
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 3, [w, h])
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            f = scale / 0.8
            region = frame[y0:y1, x0:x1]
            small = cv2.resize(region, (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f))),
                               interpolation=cv2.INTER_AREA)
            fx, fy = small.shape[1] / (x1 - x0), small.shape[0] / (y1 - y0)
            # small pixel p -> frame pixel (p + 0.5) / f - 0.5 + origin
            to_frame = np.array([[1 / fx, 0.0, 0.5 / fx - 0.5 + x0], [0.0, 1 / fy, 0.5 / fy - 0.5 + y0]])
            return cv2.warpAffine(small, compose_affine(affine, to_frame), (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=border)
    return cv2.warpAffine(frame, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)


def sketch_thickness(size: int) -> int:
    return max(1, int(round(size / 160)))


def part_maps(landmarks: np.ndarray, size: int, canvas: int | None = None) -> np.ndarray:
    """(6, P, P) float32 in (0, 1], in steps of 1/255 (:func:`part_maps_u8` / 255): per facial part
    (:data:`PART_GROUPS`), exp(-distance to its curves / (size / 24)), the release's distance maps. ``landmarks``
    (68, 2) crop pixels; ``canvas`` the side P of the maps (default ``size``; training draws them on a crop grown
    by its jitter)."""
    return part_maps_u8(landmarks, size, canvas).astype(np.float32) / 255.0


def part_maps_u8(landmarks: np.ndarray, size: int, canvas: int | None = None) -> np.ndarray:
    """:func:`part_maps` as (6, P, P) uint8, 255 x the map rounded: what training caches per frame (a quarter of
    the float32 maps' memory, and the very numbers the renderer computes)."""
    pts = np.round(np.asarray(landmarks, np.float64) * 16).astype(np.int32)
    sigma = size / 24.0
    side = canvas or size
    out = np.empty((len(PART_GROUPS), side, side), np.uint8)
    for g, curves in enumerate(PART_GROUPS):
        img = np.full((side, side), 255, np.uint8)
        for c in curves:
            idx, closed = CURVES[c]
            cv2.polylines(img, [pts[idx].reshape(-1, 1, 2)], closed, 0, 1, cv2.LINE_8, 4)
        d = cv2.distanceTransform(img, cv2.DIST_L2, 3)
        out[g] = np.rint(np.exp(d * np.float32(-1.0 / sigma)) * np.float32(255.0))
    return out


def condition(crop_rgb: np.ndarray, landmarks: np.ndarray, cfg: NeuralRendererConfig) -> np.ndarray:
    """(1 [+ 6], S, S) float32 in [0, 1]: :func:`condition_u8` / 255."""
    return condition_u8(crop_rgb, landmarks, cfg).astype(np.float32) / 255.0


def condition_u8(crop_rgb: np.ndarray, landmarks: np.ndarray, cfg: NeuralRendererConfig) -> np.ndarray:
    """(1 [+ 6], P, P) uint8: the guidance map of the crop (sketch of ``landmarks`` (68, 2), crop pixels, over
    Canny edges of ``crop_rgb`` (P, P, 3) outside the face) and, with ``cfg.part_maps``, the part maps
    (:func:`part_maps_u8`), P the crop's side (``cfg.size`` when rendering; training caches a crop grown by its
    jitter)."""
    g = guidance_map(crop_rgb, landmarks, thickness=sketch_thickness(cfg.size))
    if not cfg.part_maps:
        return g[None]
    return np.concatenate([g[None], part_maps_u8(landmarks, cfg.size, crop_rgb.shape[0])])


def paste_mask(tracked: np.ndarray, adapted: np.ndarray, size: int) -> np.ndarray:
    """(S, S) float32 blend weight on the crop: 1 over the face regions of ``tracked`` and ``adapted`` (68, 2) crop
    pixels (grown by :data:`MASK_MARGIN`), falling smoothly to 0 over :data:`MASK_FEATHER` outside them (in
    inter-ocular distances) and 0 on the crop's border: the smoothstep of :func:`paste_ramp`."""
    t, _ = paste_ramp(tracked, adapted, size)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def paste_ramp(tracked: np.ndarray, adapted: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """:func:`paste_mask` before its smoothstep: (S, S) float32 in [0, 1], the distance to the nearest pixel outside
    the grown face regions or on the crop's border over the feather width, and that width (pixels, >= 1). Training
    caches it on a crop larger than the one it uses and takes the minimum with the used crop's border's ramp."""
    iod = float(np.linalg.norm(np.asarray(tracked)[45] - np.asarray(tracked)[36]))
    region = face_region(tracked, (size, size), MASK_MARGIN + MASK_FEATHER)
    if not np.array_equal(np.asarray(adapted), np.asarray(tracked)):  # training pastes a frame's own landmarks
        region |= face_region(adapted, (size, size), MASK_MARGIN + MASK_FEATHER)
    region = region.astype(np.uint8)
    region[[0, -1], :] = 0
    region[:, [0, -1]] = 0
    dist = cv2.distanceTransform(region, cv2.DIST_L2, 3)
    width = max(MASK_FEATHER * iod, 1.0)
    return np.clip(dist / width, 0.0, 1.0), width


def to_unit(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [-1, 1]."""
    return (np.asarray(img, np.float32).transpose(2, 0, 1) / 127.5) - 1.0


def from_unit(x: np.ndarray) -> np.ndarray:
    """(3, H, W) float in [-1, 1] -> (H, W, 3) uint8."""
    return np.clip((np.asarray(x).transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def generator_input(cond: np.ndarray, prev: list[np.ndarray], warp: np.ndarray | None,
                    cfg: NeuralRendererConfig) -> np.ndarray:
    """(C, S, S) float32 generator input: ``cond`` (:func:`condition`), ``prev`` the previous output crops
    (S, S, 3) uint8, newest first (``cfg.n_prev`` of them), ``warp`` the warp renderer's crop (hybrid only)."""
    parts = [cond] + [to_unit(p) for p in prev[:cfg.n_prev]]
    if cfg.hybrid:
        if warp is None:
            raise ValueError("the hybrid renderer needs the warp renderer's output")
        parts.append(to_unit(warp))
    return np.concatenate(parts).astype(np.float32)


def paste_back(frame: np.ndarray, crop: np.ndarray, mask: np.ndarray, affine: np.ndarray,
               detail: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, Box | None, np.ndarray | None]:
    """Blend ``crop`` (S, S, 3) uint8 into a copy of ``frame`` by the inverse of ``affine`` (frame -> crop), with
    weight ``mask`` (S, S) float32. Returns (frame, the box it touched, the weight there) ; where the weight is 0
    the frame's bytes come back exactly.

    ``detail`` (image (H, W, 3) uint8, its crop (S, S, 3)): the image's detail finer than the crop (the image
    minus its crop brought back to the frame) is added to the pasted crop, so a crop smaller than the face in
    the frame keeps the image's full-resolution detail (the hybrid adds its crop-level correction to the warp
    renderer's full-resolution output)."""
    out = frame.copy()
    h, w = frame.shape[:2]
    size = crop.shape[0]
    inv = invert_transform(affine)
    corners = apply_transform(np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64), inv)
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return out, None, None
    # crop -> box pixels: frame point minus the box origin
    m = inv.copy()
    m[:, 2] -= [x0, y0]
    bw, bh = int(x1 - x0), int(y1 - y0)
    big = cv2.warpAffine(crop, m, (bw, bh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if detail is not None:
        image, image_crop = detail
        coarse = cv2.warpAffine(image_crop, m, (bw, bh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fine = image[y0:y1, x0:x1].astype(np.int16) - coarse
        big = np.clip(big.astype(np.int16) + fine, 0, 255).astype(np.uint8)
    alpha = cv2.warpAffine(mask, m, (bw, bh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    region = out[y0:y1, x0:x1]
    region[...] = cv2.blendLinear(big, np.ascontiguousarray(region), alpha, 1.0 - alpha)
    return out, Box(int(x0), int(y0), int(x1), int(y1), bw, bh), alpha


class NeuralRenderer:
    """Renders target frames with new landmarks through a trained generator (same call as
    :class:`~evpcli.engines.warp.WarpRenderer`). ``net``: a :class:`~evpcli.nets.renderer.RendererGenerator` or a
    :class:`~evpcli.models.RendererBundle`; ``warp``: the target's :class:`~evpcli.engines.warp.WarpRenderer` (required by a
    hybrid generator, ignored otherwise); ``keep_detail`` (hybrid): paste the network's crop-level correction onto
    the warp output at full resolution (see :func:`paste_back`) rather than the crop itself. Frames must come in
    output order; :meth:`reset` starts a sequence."""

    def __init__(self, net, cfg: NeuralRendererConfig | None = None, warp=None, min_reliability: float = 0.02,
                 keep_detail: bool = True):
        import torch

        if hasattr(net, "net") and hasattr(net, "config"):  # a trained bundle (evpcli.models.RendererBundle)
            cfg = cfg or net.config
            net = net.net
        self.net = net.eval()
        self.cfg = cfg or net.cfg
        if self.cfg.hybrid and warp is None:
            raise ValueError("a hybrid neural renderer needs the target's warp renderer (warp=WarpRenderer(...))")
        self.warp = warp if self.cfg.hybrid else None
        self.min_reliability = min_reliability
        self.keep_detail = keep_detail
        self.device = next(net.parameters()).device
        self._torch = torch
        self.prev: list[np.ndarray] = []
        self.last = RenderInfo()

    def reset(self) -> None:
        """Forget the previous outputs (start of a new sequence)."""
        self.prev = []
        self.last = RenderInfo()
        if self.warp is not None:
            self.warp.reset()

    def generate(self, frame: np.ndarray, tracked: np.ndarray, adapted: np.ndarray, reliability: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The generated crop (S, S, 3) uint8, the paste mask (S, S), the frame -> crop affine (2, 3) and, for the
        hybrid, the warp renderer's output frame and its crop. Below full ``reliability`` the face is drawn at the
        command moved back towards its own shape by it (the warp's fade; the hybrid's warp fades the same way)."""
        cfg = self.cfg
        affine = crop_affine(tracked, cfg)
        crop = crop_image(frame, affine, cfg.size)
        rel = float(np.clip(reliability, 0.0, 1.0))
        lm_t, lm_a = apply_transform(tracked, affine), apply_transform(faded_command(tracked, adapted, rel), affine)
        cond = condition(crop, lm_a, cfg)
        prev = [crop_image(p, affine, cfg.size) for p in self.prev[:cfg.n_prev]] or [crop]
        prev = prev + [prev[-1]] * (cfg.n_prev - len(prev))
        warp = warped = None
        if self.warp is not None:
            warped = self.warp.render(frame, tracked, adapted, rel)
            warp = crop_image(warped, affine, cfg.size)
        x = generator_input(cond, prev, warp, cfg)
        with self._torch.no_grad():
            y = self.net(self._torch.from_numpy(x)[None].to(self.device))[0].float().cpu().numpy()
        return from_unit(y), paste_mask(lm_t, lm_a, cfg.size), affine, (warped, warp) if warp is not None else None

    def render(self, frame: np.ndarray, tracked: np.ndarray, adapted: np.ndarray, reliability: float = 1.0
               ) -> np.ndarray:
        """One output frame: ``frame`` (H, W, 3) uint8 RGB with its face redrawn for ``adapted`` (68, 2) pixels
        (the frame's own face at ``tracked`` (68, 2)), blended in by ``reliability`` in [0, 1]. Returns a new
        (H, W, 3) uint8 array; :attr:`last` describes what was done."""
        frame, tracked, adapted = check_frame_inputs(frame, tracked, adapted)
        rel = float(np.clip(reliability, 0.0, 1.0))
        self.last = RenderInfo()
        if rel < self.min_reliability or not (np.isfinite(tracked).all() and np.isfinite(adapted).all()):
            out = frame.copy()
            if self.warp is not None:
                self.warp.reset()
        else:
            # fading towards an occlusion: the face moves back to its own shape, then fades (as the warp's)
            crop, mask, affine, warp = self.generate(frame, tracked, adapted, rel)
            out, box, alpha = paste_back(frame, crop, mask * fade_alpha(rel), affine,
                                         warp if self.keep_detail else None)
            self.last = RenderInfo(box=box, alpha=alpha)
        self.prev = [out] + self.prev[:max(self.cfg.n_prev - 1, 0)]
        return out
