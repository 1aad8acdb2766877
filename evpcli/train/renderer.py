"""Training of the per-target neural renderer (``evp train --stage renderer --target t.mp4``; EVP section 3.3).

Self-supervised on the target video alone: for each frame, the guidance map drawn from its own tracked
landmarks (plus Canny edges of the frame outside the face, and the part distance maps) -> that frame's face crop.
The last ``holdout`` fraction of the frames is never trained on; after training, held-out frames are re-rendered
(:func:`heldout_metrics`) and a PNG grid shows them (guidance | real | neural | warp).

The data (:mod:`evpcli.train.renderer_data`): the target held in memory at a working scale, what each frame alone
determines cached once per run, batches of ``batch_size`` sequences of ``seq_len`` consecutive frames from a
``DataLoader`` (``cfg.workers`` processes). Each frame has its own crop (its tracked landmarks' similarity), all
shifted by one random whole number of pixels: the first frame sees real previous frames (cropped with its crop),
the next ones the generator's own previous outputs pasted into the real crop with the paste mask and re-cropped
with the next frame's crop (:func:`unroll`, :func:`follow`; what rendering feeds back). The generator
(:class:`~evpcli.nets.renderer.RendererGenerator`) is trained with LSGAN against a multi-scale patch
discriminator on (condition, frame) and a temporal discriminator over the sequence, discriminator feature
matching, L1 (mostly inside the paste mask) and an L1 on frame-to-frame differences (:func:`generator_loss`,
:func:`discriminator_loss`). The discriminators see the composites (generated face pasted into the real crop), so
they judge the face and its seam, not the background that paste-back throws away. No pretrained network is
downloaded or used (no perceptual loss). The epochs run on the one driver of every stage
(:func:`evpcli.train.common.run_epochs`); the workspace run (claim, resume point, log, plot, publishing) is a
:class:`~evpcli.train.common.StageRun`.

The hybrid (``NeuralRendererConfig.hybrid``) also reads the warp renderer's output: during training the warp
of a frame up to ``source_offset`` frames away to the trained frame's landmarks (as rendering warps a target
frame to speech-driven landmarks; ``warp_sources`` fixed offsets, each rendered once as a continuous sequence),
with the mouth bank built from the training frames only. On CUDA the networks run under bf16 autocast and
channels-last (``cfg.mixed_precision``, ``cfg.channels_last``); a CPU run stays float32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evpcli.config import HYBRID_WARP, RENDERER_CPU, RENDERER_GPU, NeuralRendererConfig, RendererTrainConfig, to_dict
from evpcli.engines.neural import NeuralRenderer, crop_affine, crop_image
from evpcli.errors import EvpError
from evpcli.face.normalize import apply_transform
from evpcli.progress import Progress
from evpcli.train.common import (CsvLog, EpochStats, StageRun, TrainResult, deterministic, descend,
                                 load_training_state, run_epochs, save_training_state, seed_everything)
from evpcli.train.renderer_data import (FrameCache, SequenceDataset, TrainingTarget, batch_loader, batch_tensors,
                                        cache_frames, prepare_training_target, sequence_starts)
from evpcli.workspace import Workspace, cache_key, hash_file, save_checkpoint, save_json

STAGE = "renderer"
CHECKPOINT_FORMAT = 1
LOG_FIELDS = ["epoch", "g_loss", "d_loss", "gan", "fm", "l1", "temporal", "d_temporal", "heldout_mae", "seconds",
              "steps_per_second"]


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


def generator_loss(disc, tdisc, batch_t: dict, fake, comp, net_cfg: NeuralRendererConfig, cfg: RendererTrainConfig):
    """The generator's loss on a batch (:func:`~evpcli.train.renderer_data.batch_tensors`) and its terms:
    ``w_gan`` LSGAN + ``w_fm`` discriminator feature matching of the composites ``comp`` (B, L, 3, S, S) against the
    real crops under the multi-scale discriminator ``disc`` on (condition, frame), the same two over the last
    ``temporal_frames`` of each sequence under ``tdisc`` (None: sequences too short), ``w_l1`` x L1 of the generated
    crops ``fake`` (float32) weighted by the paste mask (``l1_outside`` outside it) and ``w_temporal`` x L1 of
    their frame-to-frame differences against the real ones inside the mask. Returns (g_loss, {gan, fm, l1,
    temporal}) (scalar tensors; the terms of ``disc`` alone)."""
    import torch

    real, mask, cond = batch_t["real"], batch_t["mask"], flat(batch_t["cond"])
    k = net_cfg.temporal_frames
    pred_fake = disc(cond, flat(comp))
    with torch.no_grad():
        pred_real = disc(cond, flat(real))
    gan = _lsgan(pred_fake, 1.0)
    fm = _feature_matching(pred_fake, pred_real)
    weight = cfg.l1_outside + (1 - cfg.l1_outside) * mask
    l1 = torch.mean(torch.abs(fake - real) * weight)
    temporal = torch.mean(torch.abs((fake[:, 1:] - fake[:, :-1]) - (real[:, 1:] - real[:, :-1]))
                          * mask[:, 1:]) if real.shape[1] > 1 else torch.zeros((), device=fake.device)
    g_loss = cfg.w_gan * gan + cfg.w_fm * fm + cfg.w_l1 * l1 + cfg.w_temporal * temporal
    if tdisc is not None:
        tp_fake = tdisc(comp[:, -k:])
        with torch.no_grad():
            tp_real = tdisc(real[:, -k:])
        g_loss = g_loss + cfg.w_gan * _lsgan(tp_fake, 1.0) + cfg.w_fm * _feature_matching(tp_fake, tp_real)
    return g_loss, {"gan": gan, "fm": fm, "l1": l1, "temporal": temporal}


def discriminator_loss(disc, tdisc, batch_t: dict, comp, net_cfg: NeuralRendererConfig):
    """The discriminators' LSGAN losses on a batch: (multi-scale, temporal) (scalar tensors; the temporal one zero
    without ``tdisc``), real crops -> 1, the composites ``comp`` (detached) -> 0, each halved."""
    import torch

    real, cond, k = batch_t["real"], flat(batch_t["cond"]), net_cfg.temporal_frames
    d_loss = 0.5 * (_lsgan(disc(cond, flat(real)), 1.0) + _lsgan(disc(cond, flat(comp)), 0.0))
    d_t = torch.zeros((), device=comp.device)
    if tdisc is not None:
        d_t = 0.5 * (_lsgan(tdisc(real[:, -k:]), 1.0) + _lsgan(tdisc(comp[:, -k:]), 0.0))
    return d_loss, d_t


# --------------------------------------------------------------------------- the generator over a sequence
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


def fit_renderer(data: TrainingTarget, net_cfg: NeuralRendererConfig, cfg: RendererTrainConfig, ckpt: Path,
                 log_csv: str | os.PathLike | CsvLog, device="cpu", resume: bool = False,
                 progress: Progress | None = None, extra_state: dict | None = None, heldout_every: int = 1,
                 source: Path | None = None, cache: FrameCache | None = None,
                 gpu_options: bool | None = None) -> Trained:
    """Train a generator on ``data`` (the core of :func:`train_renderer`, usable without a workspace): a resumable
    checkpoint ``ckpt`` after every epoch, a CSV log (``log_csv``: a path, or a workspace run's open
    :class:`~evpcli.train.common.CsvLog`). ``resume`` continues from ``source`` (default ``ckpt``) when it exists.
    ``cache``: the target's :class:`~evpcli.train.renderer_data.FrameCache` (default: computed here).
    ``gpu_options``: use ``cfg.mixed_precision`` (bf16 autocast) and ``cfg.channels_last`` (None: on CUDA only).
    Batches come from ``cfg.workers`` processes; on a CPU the weights are the same bit for bit whatever that
    number. The epochs run on :func:`~evpcli.train.common.run_epochs` (a step: :func:`unroll`, then
    :func:`generator_loss` and :func:`discriminator_loss`, each descended); the held-out frames' MAE
    (:func:`heldout_metrics`) is logged every ``heldout_every`` epochs (0: never). Returns the trained generator."""
    import torch

    from evpcli.engines.warp import WarpRenderer
    from evpcli.nets.renderer import MultiScaleDiscriminator, RendererGenerator, TemporalDiscriminator

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
    log = log_csv if isinstance(log_csv, CsvLog) else CsvLog(log_csv, LOG_FIELDS)
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

    def step(_rng: np.random.Generator) -> dict[str, float]:
        # the batch comes from the loader, drawn by sample_rng (whichever process made it), not from the epoch's rng
        bt = batch_tensors(next(batches), dev)
        with autocast():
            fake, comp = unroll(gen, bt, net_cfg)
            g_loss, terms = generator_loss(disc, tdisc, bt, fake.float(), comp, net_cfg, cfg)
        descend(g_loss, opt_g, gen)
        with autocast():
            d_loss, d_t = discriminator_loss(disc, tdisc, bt, comp.detach(), net_cfg)
        descend(d_loss + d_t, opt_d, disc, params=d_params)
        return {"g_loss": g_loss.item(), "d_loss": d_loss.item(), **{k: v.item() for k, v in terms.items()},
                "d_temporal": d_t.item()}

    held = data.heldout()

    def log_row(epoch: int, means: dict[str, float]) -> dict[str, float]:
        heldout_mae = np.nan
        if heldout_every and ((epoch + 1) % heldout_every == 0 or epoch + 1 == cfg.epochs) and len(held) > 5:
            gen.eval()
            r = NeuralRenderer(gen, net_cfg, warp=WarpRenderer(data.bank, HYBRID_WARP) if net_cfg.hybrid else None)
            heldout_mae = heldout_metrics({"neural": r}, data.frames, data.landmarks, held)[0]["neural"]["mae"]
        return {**means, "heldout_mae": heldout_mae}

    def save(epochs_done: int) -> None:
        state = {"generator": gen.state_dict(), "discriminator": disc.state_dict(), "optimizer_d": opt_d.state_dict(),
                 "format": CHECKPOINT_FORMAT, **(extra_state or {})}
        if tdisc is not None:
            state["temporal_discriminator"] = tdisc.state_dict()
        save_training_state(ckpt, model=gen, optimizer=opt_g, epoch=epochs_done, config=configs, **state)

    stats = run_epochs(progress, "train renderer", seed=cfg.seed, start=start, epochs=cfg.epochs,
                       steps_per_epoch=cfg.steps_per_epoch, step=step, begin_epoch=lambda epoch: gen.train(),
                       shown=lambda terms: {"l1": terms["l1"]}, log=log, log_row=log_row, save=save)
    batches = None  # ends the loader's worker processes (the step's closure held the iterator)
    gen.eval()
    return Trained(gen, net_cfg, start, stats.steps, stats.seconds, log)


def default_net_config(device) -> NeuralRendererConfig:
    """The generator a device trains by default: :data:`RENDERER_GPU` (512 px) on CUDA, else :data:`RENDERER_CPU`."""
    return RENDERER_GPU if getattr(device, "type", str(device).split(":")[0]) == "cuda" else RENDERER_CPU


def train_renderer(ws: Workspace, target: str | Path, cfg: RendererTrainConfig = RendererTrainConfig(),
                   net_cfg: NeuralRendererConfig | None = None, device: str = "auto", resume: bool = False,
                   progress: Progress | None = None, hybrid: bool | None = None) -> RendererResult:
    """Train the neural renderer of one target video (``evp train --stage renderer --target T``).

    The target's landmarks come from its fit-pose (cached in the workspace); ``net_cfg`` defaults to
    :data:`~evpcli.config.RENDERER_GPU` on a GPU and :data:`~evpcli.config.RENDERER_CPU` otherwise; ``hybrid``
    (None: the config's) chooses whether the generator also reads the warp renderer's output. The run is a
    :class:`~evpcli.train.common.StageRun` (one process): a run in progress writes a resumable checkpoint per epoch
    (``runs/renderer-<run>-checkpoint.pt``, see :class:`~evpcli.train.common.TrainingRun`); a finished run writes
    ``models/renderer-<run>-e<epochs>.pt`` and ``runs/renderer-<run>-e<epochs>-losses.png``, ``-heldout.png``
    (held-out frames: guidance | real | neural | warp) and ``-metrics.json``, and records the model as a ``models``
    artifact with ``meta.stage == "renderer"`` and ``meta.target`` the video's content hash (how render finds it).
    """
    from evpcli.device import resolve_device
    from evpcli.engines.warp import WarpRenderer
    from evpcli.fitpose import fit_pose
    from evpcli.media import iter_frames
    from evpcli.train.distributed import Ranks

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
    data = prepare_training_target(iter_frames(target, fps=25), fit.landmarks, fit.valid, net_cfg, cfg)
    key = cache_key(video_hash, params={"net": to_dict(net_cfg), "train": {**to_dict(cfg), "epochs": None, "workers": None},
                                        "version": CHECKPOINT_FORMAT})
    with deterministic(cfg.seed), contextlib.ExitStack() as stack:
        run = StageRun(ws, STAGE, key, cfg.epochs, resume=resume, ranks=Ranks(), stack=stack, progress=progress,
                       log_fields=LOG_FIELDS, batch_size=cfg.batch_size)
        trained = fit_renderer(data, net_cfg, cfg, run.run.staging, run.log, dev, run.source is not None, progress,
                               extra_state={"target": video_hash}, source=run.source)
        run.stats = EpochStats(trained.steps, trained.seconds)
        files = {"log_csv": run.log.path}
        files["loss_png"] = run.plot(["g_loss", "d_loss", "l1", "fm", "temporal", "heldout_mae"],
                                     f"renderer losses ({'hybrid' if net_cfg.hybrid else 'neural'}) on {target.name}")
        renderers = {"neural": NeuralRenderer(trained.generator, net_cfg,
                                              warp=WarpRenderer(data.bank, HYBRID_WARP) if net_cfg.hybrid else None),
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
            files["grid_png"] = grid_png(run.run.file("heldout.png"), data, kept, pairs, net_cfg)
        metrics.update({"epochs": cfg.epochs, "steps": trained.steps, "train_seconds": trained.seconds})
        files["metrics_json"] = save_json(run.run.file("metrics.json"), metrics)
        # the finished model: the last state (resumable with more epochs) plus the metrics that mark it finished
        state = load_training_state(run.run.staging, map_location="cpu")
        state["metrics"] = json.loads(json.dumps(metrics))
        save_checkpoint(run.run.model, state)
        run.finish({"net": to_dict(net_cfg), "train": to_dict(cfg)},
                   {"stage": STAGE, "target": video_hash, "target_path": str(target), "hybrid": net_cfg.hybrid,
                    "size": net_cfg.size})
        return run.result(RendererResult, metrics, files)
