"""Training of the audio-to-landmark stage (EVP section 3.2) and landmark prediction from speech.

Data per prepared clip: MFCC windows (T, 28, 12) (one per 25 fps frame), normalised landmarks (T, 68, 2) in the
canonical 256 frame, the actor's reference landmarks (68, 2) and the frame RMS. The model predicts, per frame,
PCA coefficients of the displacement ``normalised - reference``; the PCA (16 components) is fitted on the training
clips' displacements of all actors, so one basis serves every actor (the release fitted one per person). The
emotion code of a training sequence is the clip-level code of its own clip (mean of Ee over windows drawn from
the whole clip); at inference it comes from an emotion clip or from an emotion's mean code.

Sentences held out by the disentanglement model are held out here too, so that ``evp evaluate`` measures clips
whose sentences neither stage has seen.
"""

from __future__ import annotations

import contextlib
import math
import numpy as np

from evpcli import audio
from evpcli.clipdata import ClipData, load_clip_data
from evpcli.config import EMOTIONS, Audio2LandmarkConfig, Audio2LandmarkTrainConfig, to_dict
from evpcli.errors import EvpError
from evpcli.infer import clip_emotion_code, identity_features, predict_landmarks
from evpcli.metrics import landmark_metrics, mean_metrics
from evpcli.models import STAGE_AUDIO2LM, load_disentangle
from evpcli.progress import Progress
from evpcli.train.common import StageRun, TrainResult, augmented_mfcc, descend, deterministic, save_training_state
from evpcli.workspace import KIND_LANDMARKS, Workspace, cache_key, save_json

STAGE = STAGE_AUDIO2LM
LOG_FIELDS = ["epoch", "loss", "coeff_mse", "landmark_mse", "seconds", "steps_per_second"]


def fit_displacement_pca(clips: list[ClipData], n_components: int, disp_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean (136,), components (n, 136)) of scaled displacements over the valid frames of ``clips``."""
    flat = np.concatenate([((c.normalised - c.reference[None]) / disp_scale)[c.valid].reshape(-1, 136) for c in clips])
    mean = flat.mean(0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    comps = np.zeros((n_components, 136), np.float32)
    comps[:min(n_components, len(vt))] = vt[:n_components]
    return mean.astype(np.float32), comps


class Audio2LandmarkResult(TrainResult):
    def summary(self) -> str:
        h = self.metrics.get("heldout") or {}
        held = (f"held-out clips ({self.metrics['heldout_clips']}): " + ", ".join(f"{k} {v:.2f}" for k, v in h.items())
                + " px") if h else "no held-out clips (train the disentanglement model with --holdout-sentences >= 1)"
        return f"{super().summary()}\n{held}\nlog {self.files['log_csv']}, plot {self.files['loss_png']}"


def _batch(clips: list[ClipData], rng: np.random.Generator, cfg: Audio2LandmarkTrainConfig):
    """Random sequences: clip index (B,), start frame (B,), emotion-window rows (B, E), targets (B, L, 68, 2),
    valid (B, L), identity (B, 136)."""
    lengths = np.array([len(c.windows) for c in clips], np.float64)
    pick = rng.choice(len(clips), size=cfg.batch_size, p=lengths / lengths.sum())
    starts = np.array([int(rng.integers(0, len(clips[k].windows) - cfg.seq_len + 1)) for k in pick])
    emo_rows = np.stack([rng.integers(0, len(clips[k].windows), cfg.emotion_windows) for k in pick])
    d = np.stack([clips[k].normalised[s:s + cfg.seq_len] - clips[k].reference[None] for k, s in zip(pick, starts, strict=True)])
    v = np.stack([clips[k].valid[s:s + cfg.seq_len] for k, s in zip(pick, starts, strict=True)])
    ident = np.stack([identity_features(clips[k].reference, cfg.disp_scale) for k in pick])
    return pick, starts, emo_rows, d, v, ident


def epoch_lr_factor(cfg: Audio2LandmarkTrainConfig, epoch: int) -> float:
    """The learning rate of 0-based ``epoch`` relative to ``cfg.lr`` (a function of the epoch alone, so a resumed run
    trains exactly as an uninterrupted one)."""
    if cfg.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))
    return 1.0


def _clip_codes(model, windows: list[list], dev, progress: Progress) -> tuple[list, list]:
    """Content codes (T, content_dim) of every clip and every version of its audio (``windows[k][v]``: clip k,
    version v; indexed [k][v]) and the clip-level emotion code of its clean audio ([k][0]), encoders fixed."""
    import torch

    from evpcli.torchinfer import TorchAudio2Landmark

    content, emotion, engine = [], [], TorchAudio2Landmark(model)
    with torch.no_grad(), progress.task("content and emotion codes", total=len(windows), unit="clips") as bar:
        for versions in windows:
            content.append([model.disentangle.clip_content(w) for w in versions])
            # the emotion of the clean audio
            emotion.append([torch.from_numpy(clip_emotion_code(engine, versions[0].cpu().numpy())).to(dev)])
            bar.advance(1)
    return content, emotion


def train_audio2lm(ws: Workspace, train_cfg: Audio2LandmarkTrainConfig = Audio2LandmarkTrainConfig(),
                   net_cfg: Audio2LandmarkConfig | None = None, ablate: str = "", device: str = "auto",
                   resume: bool = False, progress: Progress | None = None) -> Audio2LandmarkResult:
    """Train the identity MLP + LSTM (and fine-tune the encoders) on the workspace's prepared clips.

    Builds on the newest disentanglement model trained with ``ablate`` (so the ablation table can train one
    landmark model per ablated encoder). The encoders stay fixed (codes computed once per clip) unless
    ``train_cfg.finetune_encoders``. Writes a resumable checkpoint per epoch, a CSV log, a loss plot and
    held-out metrics, and records the model as a ``models`` artifact with ``meta.stage == "audio2lm"``.

    Under ``torchrun`` (:mod:`evpcli.train.distributed`) every process trains its part of each batch with the
    gradients averaged over them, rank 0 writes the files, and every rank returns rank 0's result.
    """
    from evpcli.train.distributed import data_parallel

    with deterministic(train_cfg.seed), data_parallel(device) as (ranks, dev), contextlib.ExitStack() as stack:
        return _train(ws, train_cfg, net_cfg, ablate, dev, resume, (progress or Progress()) if ranks.main else Progress(),
                      stack, ranks)


def _train(ws: Workspace, train_cfg: Audio2LandmarkTrainConfig, net_cfg: Audio2LandmarkConfig | None, ablate: str,
           dev, resume: bool, progress: Progress, stack: contextlib.ExitStack, ranks) -> Audio2LandmarkResult:
    import torch

    from evpcli.nets.audio2lm import Audio2LandmarkModel

    ranks.check_batch(train_cfg.batch_size)
    dis_bundle = load_disentangle(ws, ablate=ablate, device="cpu", shipped=False)
    dis, dis_key = dis_bundle.net, dis_bundle.source.key
    net_cfg = net_cfg or Audio2LandmarkConfig(content_dim=dis.cfg.content_dim, emotion_dim=dis.cfg.emotion_dim)
    held = dis_bundle.heldout_sentences
    clips = load_clip_data(ws)
    train_clips = [c for c in clips if c.sentence not in held and len(c.windows) >= train_cfg.seq_len]
    if not train_clips:
        raise EvpError(f"no training clips of at least {train_cfg.seq_len} frames in {ws.root}")
    lm_keys = sorted(a["key"] for a in ws.artifacts(KIND_LANDMARKS))
    key = cache_key(dis_key, *lm_keys, params={"net": to_dict(net_cfg), "train": {**to_dict(train_cfg),
                                                                                      "epochs": None}, "version": 1})
    run = StageRun(ws, STAGE, key, train_cfg.epochs, resume=resume, ranks=ranks, stack=stack, progress=progress,
                   log_fields=LOG_FIELDS, batch_size=train_cfg.batch_size)
    configs = {"net": to_dict(net_cfg), "train": to_dict(train_cfg), "disentangle_net": to_dict(dis.cfg),
               "disentangle_key": dis_key, "ablate": ablate}

    model = Audio2LandmarkModel(dis, net_cfg)
    mean, comps = fit_displacement_pca(train_clips, net_cfg.pca_dim, train_cfg.disp_scale)
    model.set_pca(torch.from_numpy(mean), torch.from_numpy(comps), train_cfg.disp_scale)
    model.to(dev)
    finetune = train_cfg.finetune_encoders
    for p in model.disentangle.parameters():
        p.requires_grad_(finetune)
    groups = [{"params": model.lstm.parameters(), "lr": train_cfg.lr}]
    if finetune:
        groups.append({"params": model.disentangle.parameters(), "lr": train_cfg.encoder_lr})
    opt = torch.optim.Adam(groups)
    base_lrs = [g["lr"] for g in groups]
    copies = train_cfg.augment_copies
    aug = augmented_mfcc(ws, [c.clip_id for c in train_clips], copies, train_cfg.seed, progress=progress)
    # windows[k][v]: clip k's windows from its clean audio (v = 0) or augmented copy v (same frames)
    windows = [[torch.from_numpy(w).to(dev) for w in
                [c.windows] + [audio.frame_windows(m, len(c.windows)) for m in aug.get(c.clip_id, [])]]
               for c in train_clips]
    for versions in windows:  # a clip without copies (no audio file) repeats its clean windows
        versions += [versions[0]] * (copies + 1 - len(versions))
    codes = None
    if not finetune:
        model.eval()
        codes = _clip_codes(model, windows, dev, progress)
    run.restore(model, opt, dev)

    def begin_epoch(epoch: int) -> None:
        for group, base in zip(opt.param_groups, base_lrs, strict=True):
            group["lr"] = base * epoch_lr_factor(train_cfg, epoch)
        model.lstm.train()
        if finetune:
            model.disentangle.train()

    def step(rng: np.random.Generator) -> dict[str, float]:
        pick, starts, emo_rows, d, v, ident = _batch(train_clips, rng, train_cfg)
        d, v, ident = (torch.from_numpy(x).to(dev) for x in (d, v, ident))
        var = rng.integers(0, copies + 1, size=len(pick)) if copies else np.zeros(len(pick), np.int64)
        if ranks.distributed:  # the whole batch was drawn (the single-process stream); this rank's part
            part = run.part
            pick, starts, emo_rows, var = pick[part], starts[part], emo_rows[part], var[part]
            d, v, ident = d[part], v[part], ident[part]
        coeffs = _predict_batch(model, windows, codes, pick, var, starts, emo_rows, ident, train_cfg.seq_len, dev)
        coeff_mse, lm_mse = audio2lm_losses(model, coeffs, d, v, train_cfg.disp_scale)
        descend(coeff_mse + train_cfg.landmark_weight * lm_mse, opt, model, ranks)
        return {"coeff_mse": coeff_mse.item(), "landmark_mse": lm_mse.item()}

    def log_row(epoch: int, means: dict[str, float]) -> dict[str, float]:
        cm, lmm = means["coeff_mse"], means["landmark_mse"]
        return {"loss": cm + train_cfg.landmark_weight * lmm, "coeff_mse": cm, "landmark_mse": lmm}

    if not run.train(seed=train_cfg.seed, steps_per_epoch=train_cfg.steps_per_epoch, step=step, model=model,
                     optimizer=opt, config=configs, begin_epoch=begin_epoch, log_row=log_row,
                     shown=lambda t: {"loss": t["coeff_mse"] + train_cfg.landmark_weight * t["landmark_mse"]}):
        return ranks.broadcast(None)  # rank 0 evaluates and publishes the model; the others return its result
    loss_png = run.plot(["loss", "coeff_mse", "landmark_mse"],
                        f"audio-to-landmark losses{' (encoders without L_' + ablate + ')' if ablate else ''}")
    model.eval()
    means, present, stats = _emotion_means(model, train_clips)
    save_training_state(run.run.model, model=model, optimizer=opt, epoch=train_cfg.epochs, config=configs, key=key,
                        stage=STAGE, heldout_sentences=sorted(held), emotion_means=torch.from_numpy(means),
                        emotion_present=torch.from_numpy(present),
                        **{f"code_{k}": torch.from_numpy(np.asarray(v)) for k, v in stats.items()})

    held_clips = [c for c in clips if c.sentence in held]
    metrics = {"heldout_clips": len(held_clips), "train_clips": len(train_clips), "ablate": ablate or None,
               "heldout": heldout_metrics(model, held_clips), **run.training_metrics(), "disentangle_key": dis_key,
               **run.data_parallel_metrics()}
    metrics_path = save_json(run.run.file("metrics.json"), metrics)
    run.finish(configs, {"stage": STAGE, "ablate": ablate, "disentangle": dis_key, "heldout_sentences": sorted(held)})
    return run.result(Audio2LandmarkResult, metrics,
                      {"log_csv": run.log.path, "loss_png": loss_png, "metrics_json": metrics_path})


def _predict_batch(model, windows: list[list], codes, pick, var, starts, emo_rows, ident, seq_len: int, dev):
    """PCA coefficients (B, seq_len, pca_dim) of a batch: with the encoders fine-tuned, from the windows through the
    whole model (the emotion of windows drawn from each clip's clean audio); else the LSTM over the fixed codes
    (``codes``: :func:`_clip_codes`)."""
    import torch

    if codes is None:
        w = torch.stack([windows[k][u][s:s + seq_len] for k, u, s in zip(pick, var, starts, strict=True)])
        e = torch.stack([windows[k][0][torch.from_numpy(r).to(dev)] for k, r in zip(pick, emo_rows, strict=True)])
        emo = model.disentangle.emotion(e.reshape(-1, *e.shape[2:])).reshape(len(pick), e.shape[1], -1).mean(1)
        return model(w, emo, ident)
    content_codes, emotion_codes = codes
    content = torch.stack([content_codes[k][u][s:s + seq_len] for k, u, s in zip(pick, var, starts, strict=True)])
    emo = torch.stack([emotion_codes[k][0] for k in pick])  # the emotion of the clean audio
    return model.lstm(content, emo, ident)


def audio2lm_losses(model, coeffs, displacement, valid, disp_scale: float):
    """The stage's loss (EVP: MSE on the PCA coefficients + landmark_weight x MSE on the landmarks), its two terms
    over the valid frames: (coefficient MSE, landmark MSE of the displacements divided by ``disp_scale``), scalars.
    ``coeffs`` (B, L, pca_dim), ``displacement`` (B, L, 68, 2) pixels, ``valid`` (B, L) bool."""
    mask = valid.float()
    denom = mask.sum().clamp_min(1.0)
    coeff_mse = (((coeffs - model.project(displacement)) ** 2).mean(-1) * mask).sum() / denom
    lm_mse = ((((model.decode(coeffs) - displacement) / disp_scale) ** 2).mean((-1, -2)) * mask).sum() / denom
    return coeff_mse, lm_mse


def heldout_metrics(model, held_clips: list[ClipData]) -> dict:
    """M-LD, M-LVD, F-LD, F-LVD of the held-out clips (own emotion, silence gate on), averaged over the clips with
    more than two valid frames; empty without any."""
    from evpcli.torchinfer import TorchAudio2Landmark

    engine = TorchAudio2Landmark(model)
    per_clip = [landmark_metrics(predict_landmarks(engine, c.windows, None, c.reference, c.rms)[c.valid],
                                 c.normalised[c.valid]) for c in held_clips if c.valid.sum() > 2]
    return mean_metrics(per_clip) if per_clip else {}


def _emotion_means(model, clips: list[ClipData]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Mean clip-level emotion code of each of the eight emotions under the (fine-tuned) emotion encoder:
    (8, emotion_dim) float32, a (8,) bool mask of the emotions present in ``clips``, and the statistics of the
    clips' codes that :func:`evpcli.infer.out_of_distribution` uses (``scale`` (D,), ``limit`` ())."""
    from evpcli.torchinfer import TorchAudio2Landmark

    engine = TorchAudio2Landmark(model)
    codes = np.stack([clip_emotion_code(engine, c.windows) for c in clips])
    labels = np.array([c.emotion for c in clips])
    dim = codes.shape[1]
    means = np.zeros((len(EMOTIONS), dim), np.float32)
    present = np.zeros(len(EMOTIONS), bool)
    for k, e in enumerate(EMOTIONS):
        if (labels == e).any():
            means[k], present[k] = codes[labels == e].mean(0), True
    scale = codes.std(0) + 1e-3 * max(float(codes.std()), 1e-6)
    m = means[present]
    dist = np.linalg.norm((codes[:, None] - m[None]) / scale, axis=-1).min(1) / np.sqrt(dim)
    return means, present, {"scale": scale.astype(np.float32), "limit": np.float32(np.percentile(dist, 99) * 1.25)}
