"""Training of the per-target neural renderer (``evp train --stage renderer --target t.mp4``; EVP section 3.3).

Self-supervised on the target video alone: for each frame, the guidance map drawn from its own tracked
landmarks (plus Canny edges of the frame outside the face, and the part distance maps) -> that frame's face crop.
The last ``holdout`` fraction of the frames is never trained on; after training, held-out frames are re-rendered
(:func:`heldout_metrics`) and a PNG grid shows them (guidance | real | neural | warp).

A step trains on ``batch_size`` sequences of ``seq_len`` consecutive frames, each frame on its own crop (its
tracked landmarks' similarity), all shifted by one random whole number of pixels: the first frame sees real
previous frames (cropped with its crop), the next ones the generator's own previous outputs pasted into the real
crop with the paste mask and re-cropped with the next frame's crop (:func:`follow`; what rendering feeds back).
Everything a frame alone determines is computed once per run (:func:`cache_frames`), so a batch only gathers;
batches come from a ``DataLoader`` (``cfg.workers`` processes) and do not depend on which process made them
(:func:`sample_rng`). The generator
(:class:`~evpcli.nets.renderer.RendererGenerator`) is trained with LSGAN against a multi-scale patch
discriminator on (condition, frame) and a temporal discriminator over the sequence, discriminator feature
matching, L1 (mostly inside the paste mask) and an L1 on frame-to-frame differences. The discriminators see the
composites (generated face pasted into the real crop), so they judge the face and its seam, not the background
that paste-back throws away. No pretrained network is downloaded or used (no perceptual loss).

The hybrid (``NeuralRendererConfig.hybrid``) also reads the warp renderer's output: during training the warp
of a frame up to ``source_offset`` frames away to the trained frame's landmarks (as rendering warps a target
frame to speech-driven landmarks; ``warp_sources`` fixed offsets, each rendered once as a continuous sequence),
with the mouth bank built from the training frames only. On CUDA the networks run under bf16 autocast and
channels-last (``cfg.mixed_precision``, ``cfg.channels_last``); a CPU run stays float32.

Frames are held in memory at a working scale where the crop is at most 1.25x downsampled (a 640x360 video with a
150 px face: about 0.4x), so memory does not grow with the video's resolution.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evpcli.config import RENDERER_CPU, RENDERER_GPU, NeuralRendererConfig, RenderConfig, RendererTrainConfig, to_dict
from evpcli.errors import EvpError
from evpcli.face.normalize import apply_transform, invert_transform
from evpcli.progress import Progress
from evpcli.engines.neural import (NeuralRenderer, compose_affine, condition_u8, crop_affine, crop_image,
                                 paste_ramp)
from evpcli.train.common import (CsvLog, TrainingRun, TrainResult, deterministic, epoch_rng, load_training_state,
                                 plot_curves, save_training_state, seed_everything)
from evpcli.workspace import Workspace, cache_key, hash_file, save_checkpoint, save_json

STAGE = "renderer"
CHECKPOINT_FORMAT = 1
LOG_FIELDS = ["epoch", "g_loss", "d_loss", "gan", "fm", "l1", "temporal", "d_temporal", "heldout_mae", "seconds",
              "steps_per_second"]
MIN_USABLE = 0.5  # reliability below which a frame is not trained on


# --------------------------------------------------------------------------- data
@dataclass
class TrainingTarget:
    """A target video as the renderer trains on it: ``frames`` (N, h, w, 3) uint8 at ``scale`` x the video's size,
    ``landmarks`` (N, 68, 2) tracked, pixels of those frames, ``usable`` (N,) bool (tracked and unoccluded),
    ``reliability`` (N,) float32, ``n_train`` frames before the held-out tail, ``bank`` the mouth bank of the
    training frames (for the warp renderer and the hybrid)."""

    frames: np.ndarray
    landmarks: np.ndarray
    usable: np.ndarray
    reliability: np.ndarray
    n_train: int
    scale: float
    bank: object

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    def heldout(self) -> np.ndarray:
        return np.arange(self.n_train, self.n_frames)


def working_scale(landmarks: np.ndarray, valid: np.ndarray, net_cfg: NeuralRendererConfig) -> float:
    """The factor (<= 1) frames are kept at: the crop is then at most 1.25x downsampled from them."""
    lm = np.asarray(landmarks, np.float64)[np.asarray(valid, bool)]
    if not len(lm):
        return 1.0
    k = np.median([np.sqrt(abs(np.linalg.det(crop_affine(x, net_cfg)[:, :2]))) for x in lm[:: max(1, len(lm) // 50)]])
    return float(min(1.0, 1.25 * k))


def prepare_target(frames, landmarks: np.ndarray, valid: np.ndarray, net_cfg: NeuralRendererConfig,
                   train_cfg: RendererTrainConfig, render_cfg: RenderConfig | None = None) -> TrainingTarget:
    """Hold a target in memory for training: ``frames`` any iterable of (H, W, 3) uint8 (read once, shrunk to the
    working scale), ``landmarks`` (N, 68, 2) tracked pixels, ``valid`` (N,) bool. Reliability (occlusion) comes
    from the warp renderer's analysis; the mouth bank from the training frames only."""
    from evpcli.engines.warp import analyse_target

    lm = np.asarray(landmarks, np.float64)
    valid = np.asarray(valid, bool)
    if train_cfg.max_frames:
        lm, valid = lm[:train_cfg.max_frames], valid[:train_cfg.max_frames]
    k = working_scale(lm, valid, net_cfg)
    kept = []
    for i, f in enumerate(frames):
        if i >= len(lm):
            break
        f = np.asarray(f)
        if k < 1.0:
            f = cv2.resize(f, (max(1, round(f.shape[1] * k)), max(1, round(f.shape[0] * k))), interpolation=cv2.INTER_AREA)
        kept.append(f)
    if len(kept) < len(lm):
        lm, valid = lm[:len(kept)], valid[:len(kept)]
    n = len(kept)
    if n < 8:
        raise EvpError(f"the target has {n} frames; the renderer needs at least 8 (a second of video or more)")
    frames = np.stack(kept)
    lm = lm * k + (k - 1) * 0.5 * (k < 1.0)  # pixel centres follow the resize
    n_train = int(np.floor(n * (1.0 - train_cfg.holdout)))
    render_cfg = render_cfg or RenderConfig()
    _, reliability = analyse_target(iter(frames), lm, valid, render_cfg, with_bank=False)
    bank, _ = analyse_target(iter(frames[:n_train]), lm[:n_train], valid[:n_train], render_cfg)
    usable = valid & (reliability >= MIN_USABLE)
    if usable[:n_train].sum() < max(train_cfg.seq_len, 4):
        raise EvpError(f"only {int(usable[:n_train].sum())} of the target's {n_train} training frames show the face "
                       f"reliably; use a video where the face is visible")
    return TrainingTarget(frames, lm, usable, reliability, n_train, k, bank)


def sequence_starts(data: TrainingTarget, seq_len: int) -> np.ndarray:
    """Training sequence starts: every t0 whose ``seq_len`` frames are usable training frames."""
    ok = data.usable[:data.n_train]
    return np.array([t for t in range(data.n_train - seq_len + 1) if ok[t:t + seq_len].all()], np.int64)


def warp_offsets(cfg: RendererTrainConfig) -> np.ndarray:
    """(K,) int: the hybrid's warp sources, in frames from the trained frame: ``cfg.warp_sources`` offsets whose
    magnitudes are spread evenly up to ``cfg.source_offset``, in pairs of both signs (4 up to 25: +6, -6, +19, -19)."""
    k = max(1, cfg.warp_sources)
    half = -(-k // 2)
    mags = [max(1, int(round(cfg.source_offset * (j // 2 + 0.5) / half))) for j in range(k)]
    return np.array([m if j % 2 == 0 else -m for j, m in enumerate(mags)], np.int64)


@dataclass
class FrameCache:
    """What a training frame alone determines, computed once per run (:func:`cache_frames`) so that a batch only
    gathers and shifts it. Per usable training frame (row ``row[t]``), on the frame's own crop
    (:func:`~evpcli.engines.neural.crop_affine` of its tracked landmarks) grown by ``pad`` pixels on each side
    (P = size + 2 pad, room for the sequence's shift): ``real`` (n, 3, P, P) uint8 the crop, ``cond`` (n, C, P, P)
    uint8 the generator's condition (:func:`~evpcli.engines.neural.condition_u8`: guidance map and part maps),
    ``ramp`` (n, 1, P, P) uint8 the paste mask's ramp (:func:`~evpcli.engines.neural.paste_ramp`) x 255 rounded and
    ``feather`` (n,) float32 its width (pixels), ``warp`` (hybrid) (n, K, 3, P, P) uint8 the warp
    renderer's output from each source of ``sources`` (K, n_train) (frame indices; ``offsets`` (K,) away, clipped
    to the training frames and moved to the nearest usable one), cropped the same way. ``affine`` (N, 2, 3) every
    frame's crop affine (frame -> crop pixels, no shift)."""

    row: np.ndarray
    affine: np.ndarray
    pad: int
    real: np.ndarray
    cond: np.ndarray
    ramp: np.ndarray
    feather: np.ndarray
    warp: np.ndarray | None
    offsets: np.ndarray
    sources: np.ndarray

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.real, self.cond, self.ramp, self.warp) if a is not None)


def _shifted(affine: np.ndarray, dx: float, dy: float) -> np.ndarray:
    out = np.array(affine, np.float64)
    out[:, 2] += (dx, dy)
    return out


def cache_frames(data: TrainingTarget, net_cfg: NeuralRendererConfig, cfg: RendererTrainConfig,
                 progress: Progress | None = None) -> FrameCache:
    """Compute the :class:`FrameCache` of a target (once per training run; in memory: (11 + 3 K) bytes per canvas
    pixel and usable training frame, e.g. 100 frames at 512 px with K = 4: 0.6 GB). The warp sources are rendered
    as continuous sequences (one per offset, as render draws a target), the warp renderer's random draws seeded
    from ``cfg.seed``."""
    from evpcli.engines.warp import WarpRenderer

    progress = progress or Progress()
    n_tr, pad = data.n_train, int(cfg.jitter_px)
    side = net_cfg.size + 2 * pad
    usable = np.flatnonzero(data.usable[:n_tr])
    row = np.full(data.n_frames, -1, np.int64)
    row[usable] = np.arange(len(usable))
    affine = np.stack([crop_affine(lm, net_cfg) for lm in data.landmarks])
    n, c = len(usable), 1 + (6 if net_cfg.part_maps else 0)
    real = np.empty((n, 3, side, side), np.uint8)
    cond = np.empty((n, c, side, side), np.uint8)
    ramp = np.empty((n, 1, side, side), np.uint8)
    feather = np.empty(n, np.float32)
    offsets = warp_offsets(cfg) if net_cfg.hybrid else np.zeros(0, np.int64)
    warp = np.empty((n, len(offsets), 3, side, side), np.uint8) if net_cfg.hybrid else None
    with progress.task("cache training frames", total=n * (1 + len(offsets)), unit="frames") as bar:
        for r, t in enumerate(usable):
            a = _shifted(affine[t], pad, pad)
            crop = crop_image(data.frames[t], a, side)
            lm = apply_transform(data.landmarks[t], a)
            real[r] = crop.transpose(2, 0, 1)
            cond[r] = condition_u8(crop, lm, net_cfg)
            t_ramp, feather[r] = paste_ramp(lm, lm, side)
            ramp[r, 0] = np.rint(t_ramp * np.float32(255.0))
            bar.advance(1)
        sources = np.zeros((len(offsets), n_tr), np.int64)
        for k, off in enumerate(offsets):
            src = np.clip(np.arange(n_tr) + off, 0, n_tr - 1)
            sources[k] = [s if data.usable[s] else usable[np.abs(usable - s).argmin()] for s in src]
            renderer = WarpRenderer(data.bank, RenderConfig(), seed=cfg.seed * 1_000 + k)
            for t in range(n_tr):
                if row[t] < 0:
                    renderer.reset()  # a gap: the next usable frame starts a new sequence
                    continue
                s = sources[k, t]
                out = renderer.render(data.frames[s], data.landmarks[s], data.landmarks[t])
                warp[row[t], k] = crop_image(out, _shifted(affine[t], pad, pad), side).transpose(2, 0, 1)
                bar.advance(1)
    return FrameCache(row, affine, pad, real, cond, ramp, feather, warp, offsets, sources)


def empty_batch(cache: FrameCache, net_cfg: NeuralRendererConfig, cfg: RendererTrainConfig, n: int,
                shared: bool = False) -> dict:
    """Uninitialised tensors for ``n`` sequences (see :func:`make_sample`), in shared memory with ``shared`` (a
    loader worker's batch then reaches the training process without a copy)."""
    import torch

    L, S, C = cfg.seq_len, net_cfg.size, cache.cond.shape[1]
    shapes = {"cond": ((n, L, C, S, S), torch.uint8), "real": ((n, L, 3, S, S), torch.uint8),
              "ramp": ((n, L, 1, S, S), torch.uint8), "feather": ((n, L), torch.float32),
              "to_prev": ((n, L, 2, 3), torch.float32), "prev": ((n, net_cfg.n_prev, 3, S, S), torch.uint8)}
    if cache.warp is not None:
        shapes["warp"] = ((n, L, 3, S, S), torch.uint8)
    out = {k: torch.empty(shape, dtype=dtype) for k, (shape, dtype) in shapes.items()}
    return {k: v.share_memory_() for k, v in out.items()} if shared else out


def make_sample(data: TrainingTarget, cache: FrameCache, starts: np.ndarray, rng: np.random.Generator,
                net_cfg: NeuralRendererConfig, cfg: RendererTrainConfig, out: dict | None = None, b: int = 0) -> dict:
    """One training sequence from ``rng``: a start t0 of ``starts``, a shift (dx, dy) of whole crop pixels up to
    ``cfg.jitter_px``, and (hybrid) one of the warp sources or (otherwise) the first frame's previous frames from up
    to ``cfg.prev_jitter`` frames away. Gathers from ``cache``; only the first frame's previous frames are cropped
    (with the first frame's crop, as rendering re-crops its previous outputs). Each frame has its own crop: the
    generator's previous outputs are re-aligned to the next frame's crop on the device (:func:`unroll`).

    Written into row ``b`` of ``out`` (:func:`empty_batch`), or returned as numpy arrays: ``cond`` (L, C, S, S),
    ``real`` (L, 3, S, S), ``ramp`` (L, 1, S, S) uint8 and ``feather`` (L,) float32 (the paste mask's, see
    :class:`FrameCache`), ``prev`` (n_prev, 3, S, S) uint8 newest first, ``warp`` (L, 3, S, S) uint8 (hybrid),
    ``to_prev`` (L, 2, 3) float32: frame i's crop pixels -> frame i-1's (identity for i = 0). The device turns
    them into floats (:func:`batch_tensors`)."""
    single = out is None
    if single:
        out, b = empty_batch(cache, net_cfg, cfg, 1), 0
    o = {k: v.numpy()[b] for k, v in out.items()}
    L, S, n_tr, J = cfg.seq_len, net_cfg.size, data.n_train, cache.pad
    t0 = int(rng.choice(starts))
    ts = np.arange(t0, t0 + L)
    dx, dy = (int(v) for v in rng.integers(-J, J + 1, 2))
    rows = cache.row[ts]
    y, x = J - dy, J - dx  # the canvas window of a crop whose content moved by (dx, dy)
    win = (slice(None), slice(y, y + S), slice(x, x + S))
    for i, r in enumerate(rows):
        o["cond"][i] = cache.cond[r][win]
        o["real"][i] = cache.real[r][win]
        o["ramp"][i] = cache.ramp[r][win]
    o["feather"][:] = cache.feather[rows]
    affines = [_shifted(cache.affine[t], dx, dy) for t in ts]
    o["to_prev"][0] = np.eye(2, 3)
    for i in range(1, L):
        o["to_prev"][i] = compose_affine(affines[i - 1], invert_transform(affines[i]))
    if net_cfg.hybrid:
        k = int(rng.integers(len(cache.offsets)))
        for i, r in enumerate(rows):
            o["warp"][i] = cache.warp[r, k][win]
        first = int(cache.sources[k, t0])
    else:
        first = t0 + (int(rng.integers(-cfg.prev_jitter, cfg.prev_jitter + 1)) if rng.random() < 0.5 else 0)
    prev_idx = np.clip([first - k for k in range(1, net_cfg.n_prev + 1)], 0, n_tr - 1)
    for j, p in enumerate(prev_idx):
        o["prev"][j] = crop_image(data.frames[p], affines[0], S).transpose(2, 0, 1)
    return o if single else out


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random draws of sample ``index`` (within its epoch) of ``epoch``: whichever process assembles it."""
    return np.random.default_rng([seed, epoch, index])


class SequenceDataset:
    """The training batches of epochs ``first_epoch`` .. ``cfg.epochs - 1`` in order (``cfg.steps_per_epoch``
    each), as a map-style dataset for ``torch.utils.data.DataLoader`` (``batch_size=None``): item i is a batch of
    ``cfg.batch_size`` sequences, each :func:`make_sample` drawn from :func:`sample_rng`, so a batch does not depend
    on the process that makes it."""

    def __init__(self, data: TrainingTarget, cache: FrameCache, starts: np.ndarray, net_cfg: NeuralRendererConfig,
                 cfg: RendererTrainConfig, first_epoch: int = 0):
        self.data, self.cache, self.starts, self.net_cfg, self.cfg = data, cache, starts, net_cfg, cfg
        self.first_epoch = first_epoch

    def __len__(self) -> int:
        return max(0, self.cfg.epochs - self.first_epoch) * self.cfg.steps_per_epoch

    def __getitem__(self, i: int) -> dict:
        import torch

        cfg = self.cfg
        epoch, step = self.first_epoch + i // cfg.steps_per_epoch, i % cfg.steps_per_epoch
        out = empty_batch(self.cache, self.net_cfg, cfg, cfg.batch_size,
                          shared=torch.utils.data.get_worker_info() is not None)
        for b in range(cfg.batch_size):
            make_sample(self.data, self.cache, self.starts, sample_rng(cfg.seed, epoch, step * cfg.batch_size + b),
                        self.net_cfg, cfg, out, b)
        return out


def batch_loader(dataset: SequenceDataset, workers: int = 0, pin_memory: bool = False):
    """A ``DataLoader`` of ``dataset``'s batches in order (``workers`` processes; 0: in this one), each a dict of
    uint8 tensors (B, ...) and float32 ``feather`` and ``to_prev``."""
    import torch

    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                       pin_memory=pin_memory, generator=torch.Generator().manual_seed(dataset.cfg.seed))


def make_batch(data: TrainingTarget, cache: FrameCache, starts: np.ndarray, net_cfg: NeuralRendererConfig,
               cfg: RendererTrainConfig, epoch: int = 0, step: int = 0) -> dict:
    """Batch ``step`` of ``epoch`` assembled here (what the loader yields)."""
    return SequenceDataset(data, cache, starts, net_cfg, cfg, epoch)[step]


def batch_tensors(batch: dict, device) -> dict:
    """A loader's batch on ``device`` as float32: ``cond`` in [0, 1], images in [-1, 1] (the numbers of
    :func:`~evpcli.engines.neural.condition` and :func:`~evpcli.engines.neural.to_unit`), ``mask`` (B, L, 1, S, S)
    the paste mask of each crop (:func:`~evpcli.engines.neural.paste_mask`: the cached ramp, cut by the crop's own
    border's, smoothstepped), ``to_prev``."""
    import torch

    dev = torch.device(device)
    nb = dev.type == "cuda"
    b = {k: v.to(dev, non_blocking=nb) for k, v in batch.items()}
    out = {"cond": b["cond"].float() / 255.0, "to_prev": b["to_prev"]}
    for k in ("real", "prev", "warp"):
        if k in b:
            out[k] = b[k].float() / 127.5 - 1.0
    size = b["ramp"].shape[-1]
    i = torch.arange(size, device=dev, dtype=torch.float32)
    edge = torch.minimum(i, size - 1 - i)  # distance to the crop's border, pixels
    edge = torch.minimum(edge[:, None], edge[None, :])
    t = torch.minimum(b["ramp"].float() / 255.0, edge / b["feather"].float()[..., None, None, None]).clamp(0.0, 1.0)
    out["mask"] = t * t * (3 - 2 * t)
    return out


# --------------------------------------------------------------------------- losses
def _lsgan(preds, target: float):
    import torch

    return sum(torch.mean((p[-1].float() - target) ** 2) for p in preds) / len(preds)


def _feature_matching(fake, real):
    import torch

    total, n = 0.0, 0
    for pf, pr in zip(fake, real, strict=True):
        for f, r in zip(pf[:-1], pr[:-1], strict=True):
            total = total + torch.mean(torch.abs(f.float() - r.detach().float()))
            n += 1
    return total / max(n, 1)


def flat(x):
    """(B, L, ...) -> (B * L, ...)."""
    return x.reshape(-1, *x.shape[2:])


def _compose_t(a, b):
    """The affines a(b(x)), both (B, 2, 3) tensors."""
    import torch

    return torch.cat([a[:, :, :2] @ b[:, :, :2], a[:, :, :2] @ b[:, :, 2:] + a[:, :, 2:]], 2)


def follow(image, affine):
    """``image`` (B, C, S, S) resampled at ``affine`` (B, 2, 3), output crop pixels -> ``image`` pixels (bilinear,
    the border replicated, like :func:`~evpcli.engines.neural.crop_image`): how a previous output is re-cropped
    with the next frame's crop. Float32 whatever the autocast (sub-pixel coordinates need it)."""
    import torch
    import torch.nn.functional as F

    s = (image.shape[-1] - 1) / 2.0
    a, b = affine[:, :, :2].float(), affine[:, :, 2].float()
    theta = torch.cat([a, (a.sum(2) + b / s - 1.0)[..., None]], 2)  # the same map in [-1, 1] coordinates
    with torch.autocast(image.device.type, enabled=False):
        grid = F.affine_grid(theta, list(image.shape), align_corners=True)
        return F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)


def unroll(gen, batch_t: dict, net_cfg: NeuralRendererConfig):
    """Run the generator over the sequences: generated crops (B, L, 3, S, S) and their composites with the real
    crops. The previous frames fed back are the composites, detached, each resampled once into the current
    frame's crop by ``batch_t["to_prev"]`` (B, L, 2, 3) composed (as rendering re-crops its previous outputs)."""
    import torch

    cond, real, mask, prev0 = batch_t["cond"], batch_t["real"], batch_t["mask"], batch_t["prev"]
    to_prev = batch_t.get("to_prev")
    entries = [(p, None) for p in prev0.unbind(1)]  # (image, current crop pixels -> its pixels; None: aligned)
    fakes, comps = [], []
    for i in range(real.shape[1]):
        if i:
            entries = [(comps[-1].detach(), None)] + entries[:max(net_cfg.n_prev - 1, 0)]
            if to_prev is not None:
                m = to_prev[:, i]
                entries = [(img, m if t is None else _compose_t(t, m)) for img, t in entries]
        prev = [img if t is None else follow(img, t) for img, t in entries[:net_cfg.n_prev]]
        parts = [cond[:, i]] + prev
        if net_cfg.hybrid:
            parts.append(batch_t["warp"][:, i])
        g = gen(torch.cat(parts, 1))
        fakes.append(g)
        comps.append(mask[:, i] * g + (1 - mask[:, i]) * real[:, i])
    return torch.stack(fakes, 1), torch.stack(comps, 1)


# --------------------------------------------------------------------------- result
class RendererResult(TrainResult):
    """What :func:`train_renderer` returns: the training run and the held-out comparison with the warp renderer."""

    def summary(self) -> str:
        lines = [super().summary()]
        h = self.metrics.get("heldout", {})
        if h:
            lines.append(f"held-out frames ({self.metrics.get('heldout_frames')}): " + "; ".join(
                f"{name} SSIM {m['ssim']:.3f} PSNR {m['psnr']:.2f} dB MAE {m['mae']:.2f}" for name, m in h.items()))
        if "grid_png" in self.files:
            lines.append(f"grid {self.files['grid_png']}, losses {self.files.get('loss_png')}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- evaluation
def face_box(landmarks: np.ndarray, shape: tuple[int, int], margin: float = 0.15) -> tuple[slice, slice]:
    """The landmarks' bounding box grown by ``margin`` of its size, clipped to ``shape`` (H, W): the face crop the
    metrics are measured on."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    pad = margin * (hi - lo)
    lo = np.maximum(np.floor(lo - pad), 0).astype(int)
    hi = np.minimum(np.ceil(hi + pad), [shape[1], shape[0]]).astype(int)
    return slice(lo[1], hi[1]), slice(lo[0], hi[0])


def _detail(img: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image: its fine detail."""
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def heldout_metrics(renderers: dict, frames: np.ndarray, landmarks: np.ndarray, frame_idx: np.ndarray,
                    offset: int = 4, keep: int = 0) -> tuple[dict, dict]:
    """Cross-frame re-rendering of held-out frames: for consecutive frames t of ``frame_idx``, each renderer draws
    frame t onto frame s = t - ``offset`` (the source of the sequence) driven by t's tracked landmarks, as render
    draws speech-driven landmarks onto target frames; the face box of t is compared with the real frame t.

    Returns ({name: {ssim, psnr, mae, sharpness, change, change_ratio}}, {name: the first ``keep`` rendered frames}) where
    ``change`` is the mean absolute frame-to-frame change of the face box in the rendered sequence and
    ``change_ratio`` that over the real video's (1 = as steady as the real video); ``sharpness`` the fine detail
    (variance of the Laplacian) of the rendered face box over the real one's (1 = as sharp; blur scores well on
    SSIM and PSNR, so it is reported beside them). Also ``real`` in the first dict:
    the real video's change."""
    from skimage.metrics import structural_similarity

    idx = np.asarray(frame_idx)
    pairs = [(idx[i - offset], idx[i]) for i in range(offset, len(idx))]
    if len(pairs) < 2:
        raise EvpError(f"too few held-out frames ({len(idx)}) to measure; use a longer target video")
    boxes = [face_box(landmarks[t], frames.shape[1:3]) for _, t in pairs]
    real_change = np.mean([np.abs(frames[t][ys, xs].astype(np.float64) - frames[t0][ys, xs]).mean()
                           for (_, t0), (_, t), (ys, xs) in zip(pairs[:-1], pairs[1:], boxes[1:], strict=True)])
    out, kept = {"real": {"change": float(real_change)}}, {}
    for name, r in renderers.items():
        r.reset()
        ss, ps, ms, sharp, prev_img, changes, kept[name] = [], [], [], [], None, [], []
        for (s, t), (ys, xs) in zip(pairs, boxes, strict=True):
            img = r.render(frames[s], landmarks[s], landmarks[t], 1.0)
            real, ren = frames[t][ys, xs], img[ys, xs]
            ss.append(structural_similarity(real, ren, channel_axis=2))
            sharp.append(_detail(ren) / max(_detail(real), 1e-9))
            mse = np.mean((real.astype(np.float64) - ren) ** 2)
            ps.append(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))
            ms.append(np.abs(real.astype(np.float64) - ren).mean())
            if prev_img is not None:
                changes.append(np.abs(ren.astype(np.float64) - prev_img[ys, xs]).mean())
            prev_img = img
            if len(kept[name]) < keep:
                kept[name].append(img)
        out[name] = {"ssim": float(np.mean(ss)), "psnr": float(np.mean(ps)), "mae": float(np.mean(ms)),
                     "sharpness": float(np.mean(sharp)), "change": float(np.mean(changes)),
                     "change_ratio": float(np.mean(changes) / max(real_change, 1e-9)),
                     "frames": len(pairs)}
    return out, kept


def grid_png(path: Path, data: TrainingTarget, rendered: dict, pairs: list[tuple[int, int]], net_cfg: NeuralRendererConfig,
             rows: int = 4) -> Path:
    """A PNG of held-out frames, one row each: guidance | real | each renderer's output, as face crops."""
    from evpcli.engines.neural import condition as make_condition
    from evpcli.atomic import atomic_path

    n = len(pairs)
    picks = np.unique(np.linspace(0, n - 1, min(rows, n)).round().astype(int))
    lines = []
    for p in picks:
        s, t = pairs[p]
        affine = crop_affine(data.landmarks[t], net_cfg)
        src_crop = crop_image(data.frames[s], affine, net_cfg.size)
        g = (make_condition(src_crop, apply_transform(data.landmarks[t], affine), net_cfg)[0] * 255).astype(np.uint8)
        cells = [np.repeat(g[..., None], 3, 2), crop_image(data.frames[t], affine, net_cfg.size)]
        cells += [crop_image(imgs[p], affine, net_cfg.size) for imgs in rendered.values()]
        lines.append(np.concatenate(cells, 1))
    grid = np.concatenate(lines, 0)
    head = np.full((18, grid.shape[1], 3), 255, np.uint8)
    for i, name in enumerate(["guidance", "real"] + list(rendered)):
        cv2.putText(head, name, (i * net_cfg.size + 3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    grid = np.concatenate([head, grid], 0)
    with atomic_path(path) as tmp:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        tmp.write_bytes(buf.tobytes())
    return path


# --------------------------------------------------------------------------- training
@dataclass
class Trained:
    """The outcome of :func:`fit_renderer`: the generator (eval mode), its config, steps and seconds trained."""

    generator: object
    config: NeuralRendererConfig
    start_epoch: int
    steps: int
    seconds: float
    log: CsvLog


def fit_renderer(data: TrainingTarget, net_cfg: NeuralRendererConfig, cfg: RendererTrainConfig, ckpt: Path, log_csv: Path,
                 device="cpu", resume: bool = False, progress: Progress | None = None, extra_state: dict | None = None,
                 heldout_every: int = 1, source: Path | None = None, cache: FrameCache | None = None,
                 gpu_options: bool | None = None) -> Trained:
    """Train a generator on ``data`` (the core of :func:`train_renderer`, usable without a workspace): a resumable
    checkpoint ``ckpt`` after every epoch, a CSV log. ``resume`` continues from ``source`` (default ``ckpt``)
    when it exists. ``cache``: the target's :class:`FrameCache` (default: computed here). ``gpu_options``: use
    ``cfg.mixed_precision`` (bf16 autocast) and ``cfg.channels_last`` (None: on CUDA only). Batches come from
    ``cfg.workers`` processes; on a CPU the weights are the same bit for bit whatever that number. Returns the
    trained generator."""
    import contextlib

    import torch

    from evpcli.nets.renderer import MultiScaleDiscriminator, RendererGenerator, TemporalDiscriminator
    from evpcli.engines.warp import WarpRenderer

    progress = progress or Progress()
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    seed_everything(cfg.seed)
    gpu_options = dev.type == "cuda" if gpu_options is None else gpu_options
    amp = gpu_options and cfg.mixed_precision
    memory_format = torch.channels_last if gpu_options and cfg.channels_last else torch.contiguous_format
    gen = RendererGenerator(net_cfg).to(dev, memory_format=memory_format)
    disc = MultiScaleDiscriminator(net_cfg).to(dev, memory_format=memory_format)
    tdisc = (TemporalDiscriminator(net_cfg).to(dev, memory_format=memory_format)
             if cfg.seq_len >= net_cfg.temporal_frames else None)
    d_params = list(disc.parameters()) + (list(tdisc.parameters()) if tdisc is not None else [])
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_params, lr=cfg.lr, betas=(0.5, 0.999))
    log = CsvLog(log_csv, LOG_FIELDS)
    configs = {"net": to_dict(net_cfg), "train": to_dict(cfg), "stage": STAGE}
    start = 0
    source = source or ckpt
    if resume and source.exists():
        state = load_training_state(source, map_location=dev)
        gen.load_state_dict(state["generator"])
        disc.load_state_dict(state["discriminator"])
        if tdisc is not None and "temporal_discriminator" in state:
            tdisc.load_state_dict(state["temporal_discriminator"])
        opt_g.load_state_dict(state["optimizer"])
        opt_d.load_state_dict(state["optimizer_d"])
        start = int(state["epoch"])
        log.resume(start)
        progress.log(f"resuming renderer run after epoch {start}")
    starts = sequence_starts(data, cfg.seq_len)
    if not len(starts):
        raise EvpError(f"no run of {cfg.seq_len} usable consecutive training frames in the target")
    cache = cache or cache_frames(data, net_cfg, cfg, progress)
    batches = iter(batch_loader(SequenceDataset(data, cache, starts, net_cfg, cfg, start), cfg.workers,
                                pin_memory=dev.type == "cuda"))

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()

    held = data.heldout()
    eval_r = None
    t_train, steps = 0.0, 0
    with progress.task("train renderer", total=(cfg.epochs - start) * cfg.steps_per_epoch, unit="steps") as bar:
        for epoch in range(start, cfg.epochs):
            epoch_rng(cfg.seed, epoch)  # seeds torch for the epoch
            gen.train()
            sums = np.zeros(7)
            t0 = time.perf_counter()
            for _ in range(cfg.steps_per_epoch):
                bt = batch_tensors(next(batches), dev)
                L = bt["real"].shape[1]
                real, mask, cond = bt["real"], bt["mask"], flat(bt["cond"])
                k = net_cfg.temporal_frames
                # generator
                with autocast():
                    fake, comp = unroll(gen, bt, net_cfg)
                    fake = fake.float()
                    pred_fake = disc(cond, flat(comp))
                    with torch.no_grad():
                        pred_real = disc(cond, flat(real))
                    gan = _lsgan(pred_fake, 1.0)
                    fm = _feature_matching(pred_fake, pred_real)
                    weight = cfg.l1_outside + (1 - cfg.l1_outside) * mask
                    l1 = torch.mean(torch.abs(fake - real) * weight)
                    temporal = torch.mean(torch.abs((fake[:, 1:] - fake[:, :-1]) - (real[:, 1:] - real[:, :-1]))
                                          * mask[:, 1:]) if L > 1 else torch.zeros((), device=dev)
                    g_loss = cfg.w_gan * gan + cfg.w_fm * fm + cfg.w_l1 * l1 + cfg.w_temporal * temporal
                    if tdisc is not None:
                        tp_fake = tdisc(comp[:, -k:])
                        with torch.no_grad():
                            tp_real = tdisc(real[:, -k:])
                        g_loss = g_loss + cfg.w_gan * _lsgan(tp_fake, 1.0) + cfg.w_fm * _feature_matching(tp_fake, tp_real)
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                # discriminators
                comp_d = comp.detach()
                with autocast():
                    d_loss = 0.5 * (_lsgan(disc(cond, flat(real)), 1.0) + _lsgan(disc(cond, flat(comp_d)), 0.0))
                    d_t = torch.zeros((), device=dev)
                    if tdisc is not None:
                        d_t = 0.5 * (_lsgan(tdisc(real[:, -k:]), 1.0) + _lsgan(tdisc(comp_d[:, -k:]), 0.0))
                opt_d.zero_grad(set_to_none=True)
                (d_loss + d_t).backward()
                opt_d.step()
                sums += [g_loss.item(), d_loss.item(), gan.item(), fm.item(), l1.item(), temporal.item(), d_t.item()]
                steps += 1
                bar.advance(1, epoch=epoch + 1, l1=l1.item())
            dt = time.perf_counter() - t0
            t_train += dt
            m = sums / cfg.steps_per_epoch
            heldout_mae = np.nan
            if heldout_every and ((epoch + 1) % heldout_every == 0 or epoch + 1 == cfg.epochs) and len(held) > 5:
                gen.eval()
                eval_r = NeuralRenderer(gen, net_cfg, warp=WarpRenderer(data.bank, RenderConfig()) if net_cfg.hybrid else None)
                heldout_mae = heldout_metrics({"neural": eval_r}, data.frames, data.landmarks, held)[0]["neural"]["mae"]
            log.append({"epoch": epoch + 1, "g_loss": m[0], "d_loss": m[1], "gan": m[2], "fm": m[3], "l1": m[4],
                        "temporal": m[5], "d_temporal": m[6], "heldout_mae": heldout_mae, "seconds": dt,
                        "steps_per_second": cfg.steps_per_epoch / max(dt, 1e-9)})
            state = {"generator": gen.state_dict(), "discriminator": disc.state_dict(), "optimizer_d": opt_d.state_dict(),
                     "format": CHECKPOINT_FORMAT, **(extra_state or {})}
            if tdisc is not None:
                state["temporal_discriminator"] = tdisc.state_dict()
            save_training_state(ckpt, model=gen, optimizer=opt_g, epoch=epoch + 1, config=configs, **state)
    del batches  # ends the loader's worker processes
    gen.eval()
    return Trained(gen, net_cfg, start, steps, t_train, log)


def default_net_config(device) -> NeuralRendererConfig:
    """The generator a device trains by default: :data:`RENDERER_GPU` (512 px) on CUDA, else :data:`RENDERER_CPU`."""
    return RENDERER_GPU if getattr(device, "type", str(device).split(":")[0]) == "cuda" else RENDERER_CPU


def train_renderer(ws: Workspace, target: str | Path, cfg: RendererTrainConfig = RendererTrainConfig(),
                   net_cfg: NeuralRendererConfig | None = None, device: str = "auto", resume: bool = False,
                   progress: Progress | None = None, hybrid: bool | None = None) -> RendererResult:
    """Train the neural renderer of one target video (``evp train --stage renderer --target T``).

    The target's landmarks come from its fit-pose (cached in the workspace); ``net_cfg`` defaults to
    :data:`~evpcli.config.RENDERER_GPU` on a GPU and :data:`~evpcli.config.RENDERER_CPU` otherwise; ``hybrid``
    (None: the config's) chooses whether the generator also reads the warp renderer's output. A run in progress
    writes a resumable checkpoint per epoch (``runs/renderer-<run>-checkpoint.pt``, see
    :class:`~evpcli.train.common.TrainingRun`); a finished run writes ``models/renderer-<run>-e<epochs>.pt`` and
    ``runs/renderer-<run>-e<epochs>-losses.png``, ``-heldout.png`` (held-out frames: guidance | real | neural |
    warp) and ``-metrics.json``, and records the model as a ``models`` artifact with ``meta.stage == "renderer"``
    and ``meta.target`` the video's content hash (how render finds it).
    """
    from evpcli.device import resolve_device
    from evpcli.fitpose import fit_pose
    from evpcli.media import iter_frames
    from evpcli.engines.warp import WarpRenderer

    progress = progress or Progress()
    target = Path(target)
    if not target.is_file():
        raise EvpError(f"{target}: file not found (give the target video with --target)")
    dev = resolve_device(device)
    net_cfg = net_cfg or default_net_config(dev)
    if hybrid is not None:
        net_cfg = dataclasses.replace(net_cfg, hybrid=hybrid)
    video_hash = hash_file(target)
    fit = fit_pose(ws, target, progress=progress)
    data = prepare_target(iter_frames(target, fps=25), fit.landmarks, fit.valid, net_cfg, cfg)
    key = cache_key(video_hash, params={"net": to_dict(net_cfg), "train": {**to_dict(cfg), "epochs": None, "workers": None},
                                        "version": CHECKPOINT_FORMAT})
    with deterministic(cfg.seed), TrainingRun(ws, STAGE, key, cfg.epochs) as run:
        source, _ = run.resume_point() if resume else (None, 0)
        trained = fit_renderer(data, net_cfg, cfg, run.staging, run.log, dev, source is not None, progress,
                               extra_state={"target": video_hash}, source=source)
        files = {"log_csv": run.log}
        files["loss_png"] = plot_curves(trained.log, run.file("losses.png"),
                                        ["g_loss", "d_loss", "l1", "fm", "temporal", "heldout_mae"],
                                        f"renderer losses ({'hybrid' if net_cfg.hybrid else 'neural'}) on {target.name}")
        renderers = {"neural": NeuralRenderer(trained.generator, net_cfg,
                                              warp=WarpRenderer(data.bank) if net_cfg.hybrid else None),
                     "warp": WarpRenderer(data.bank)}
        held = data.heldout()
        metrics: dict = {"target": str(target), "target_hash": video_hash, "frames": data.n_frames,
                         "train_frames": data.n_train, "heldout_frames": len(held), "working_scale": data.scale,
                         "hybrid": net_cfg.hybrid, "size": net_cfg.size, "device": str(dev)}
        if len(held) > 5:
            offset = min(4, len(held) // 3)
            scores, kept = heldout_metrics(renderers, data.frames, data.landmarks, held, offset=offset, keep=len(held))
            metrics["heldout"] = {k: v for k, v in scores.items() if k != "real"}
            metrics["real_change"] = scores["real"]["change"]
            pairs = [(held[i - offset], held[i]) for i in range(offset, len(held))]
            files["grid_png"] = grid_png(run.file("heldout.png"), data, kept, pairs, net_cfg)
        metrics.update({"epochs": cfg.epochs, "steps": trained.steps, "train_seconds": trained.seconds})
        files["metrics_json"] = save_json(run.file("metrics.json"), metrics)
        # the finished model: the last state (resumable with more epochs) plus the metrics that mark it finished
        state = load_training_state(run.staging, map_location="cpu")
        state["metrics"] = json.loads(json.dumps(metrics))
        save_checkpoint(run.model, state)
        run.finish({"net": to_dict(net_cfg), "train": to_dict(cfg)},
                   {"stage": STAGE, "target": video_hash, "target_path": str(target), "hybrid": net_cfg.hybrid,
                    "size": net_cfg.size})
    return RendererResult(STAGE, run.model_key, run.model, cfg.epochs, trained.start_epoch, trained.steps,
                          trained.seconds, trained.steps / trained.seconds if trained.seconds else 0.0, metrics, files,
                          key)
