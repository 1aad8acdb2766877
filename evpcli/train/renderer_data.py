"""The neural renderer's training data (``evp train --stage renderer``): a target video held in memory, what each
of its frames alone determines cached once per run, and the batches of frame sequences drawn from that cache.

:func:`prepare_training_target` reads the target once at a working scale where the generator's crop is at most
1.25x downsampled (a 640x360 video with a 150 px face: about 0.4x), so memory does not grow with the video's
resolution; the last ``holdout`` fraction of its frames is never trained on. :func:`cache_frames` computes, per
usable training frame, its crop (grown by the jitter on each side), the generator's condition (guidance map and
part maps), the paste mask's ramp and (hybrid) the warp renderer's output from each warp source, so that a batch
only gathers and shifts uint8 arrays. A batch is ``batch_size`` sequences of ``seq_len`` consecutive frames
(:func:`make_sample`), each drawn from its own generator (:func:`sample_rng`), so it does not depend on which
process made it: batches come from a ``DataLoader`` (:func:`batch_loader`, ``cfg.workers`` processes) and become
float tensors on the training device (:func:`batch_tensors`). The training loop is :mod:`evpcli.train.renderer`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from evpcli.config import HYBRID_WARP, NeuralRendererConfig, RenderConfig, RendererTrainConfig
from evpcli.engines.neural import compose_affine, condition_u8, crop_affine, crop_image, paste_ramp
from evpcli.errors import EvpError
from evpcli.face.normalize import apply_transform, invert_transform
from evpcli.progress import Progress

MIN_USABLE = 0.5  # reliability below which a frame is not trained on


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


def prepare_training_target(frames, landmarks: np.ndarray, valid: np.ndarray, net_cfg: NeuralRendererConfig,
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
            renderer = WarpRenderer(data.bank, HYBRID_WARP, seed=cfg.seed * 1_000 + k)
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
