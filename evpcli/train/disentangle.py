"""Training of the cross-reconstructed emotion disentanglement (``evp train --stage disentangle``).

A training tuple is four MFCC windows of one actor: x_im, x_in (sentence i in emotions m and n) and x_jn, x_jm
(another sentence j in the same two emotions). As in the paper, the partner clip is warped onto the input's time
line with the DTW path of build-pairs: x_in is cut from the emotion-n clip at the rows matched to x_im's rows, so
the two say the same thing row by row and differ only in how (emotion); x_jm is warped onto x_jn likewise.
With Ec the content encoder, Ee the emotion encoder, D the decoder and Ce the classifier (EVP eq. 2-6, L1 norms
as in the authors' release)::

    L_cross = |D(Ec(x_im), Ee(x_jn)) - x_in| + |D(Ec(x_jn), Ee(x_im)) - x_jm|
    L_self  = |D(Ec(x_im), Ee(x_im)) - x_im| + |D(Ec(x_jn), Ee(x_jn)) - x_jn|
    L_cla   = cross-entropy of Ce(Ee(x)) for all four windows
    L_con   = |Ec(x_im) - Ec(x_in)| + |Ec(x_jn) - Ec(x_jm)|
    L_dis   = w_cross L_cross + w_self L_self + w_cla L_cla + w_con L_con

The emotion encoder is first pre-trained as an 8-way classifier on single windows. Sentences held out by the
config are never trained on; after training every clip gets a clip-level emotion code (mean of Ee over its
windows), each emotion a mean code, and the held-out metrics are measured (see :func:`evaluate_disentangle`).
The data (the clips' windows in memory, the sentence split, the tuple sampler) is
:mod:`evpcli.train.disentangle_data`; the epochs run on the one driver (:class:`~evpcli.train.common.StageRun`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from evpcli.config import DISENTANGLE_LOSSES, EMOTIONS, DisentangleConfig, DisentangleTrainConfig, to_dict
from evpcli.errors import EvpError  # noqa: F401  (the stage's errors; tests name it through this module)
from evpcli.progress import Progress
from evpcli.infer import clip_emotion_code
from evpcli.models import STAGE_DISENTANGLE
from evpcli.train.common import (
    StageRun,
    TrainResult,
    augmented_mfcc,
    descend,
    deterministic,
    epoch_rng,
    save_training_state,
)
from evpcli.train.disentangle_data import TupleSampler, WindowBank, load_bank, split_sentences, variant_rows
from evpcli.workspace import KIND_EMOTION_CODES, KIND_MODEL, KIND_PAIRS, Workspace, cache_key, save_json, save_npz

STAGE = STAGE_DISENTANGLE
DEFAULT_NET_CONFIG = DisentangleConfig()  # the sizes of the authors' release
LOG_FIELDS = ["epoch", "loss", *DISENTANGLE_LOSSES, "seconds", "steps_per_second"]


# --------------------------------------------------------------------------- losses
def disentangle_losses(model, x_im, x_jn, x_in, x_jm, m, n, need: set[str] | frozenset = frozenset(DISENTANGLE_LOSSES),
                       targets: tuple | None = None, content_x: tuple | None = None):
    """The four losses of a batch of raw windows (B, 28, 12) with labels m, n (B,). Returns a dict of scalars.

    Reconstructions are compared in the model's normalised MFCC space (mean absolute error per element). With
    ``targets`` (the four windows' clean versions, when the inputs are augmented copies) the content encoder reads
    the augmented inputs while the emotion encoder and the decoder's targets stay clean, and L_con compares the
    content codes of two differently augmented inputs. ``content_x``:
    what the content encoder reads instead of the (globally normalised) inputs (the CMVN windows, with ``cmvn``).
    """
    import torch
    import torch.nn.functional as F

    x = model.normalise(torch.cat([x_im, x_jn, x_in, x_jm]))  # (4B, 28, 12)
    B = len(x_im)
    t = x if targets is None else model.normalise(torch.cat(list(targets)))
    n_im, n_jn, n_in, n_jm = t.split(B)
    n_content = 4 if "con" in need else 2
    cx = x if content_x is None else torch.cat(list(content_x))
    c = model.content_encoder(cx[: n_content * B])
    c_im, c_jn = c[:B], c[B:2 * B]
    e = model.emotion_encoder(t)  # the emotion path reads the clean windows
    e_im, e_jn = e[:B], e[B:2 * B]
    out: dict[str, torch.Tensor] = {}
    if "cross" in need or "self" in need:
        dec = model.decoder(torch.cat([c_im, c_jn, c_im, c_jn]), torch.cat([e_jn, e_im, e_im, e_jn]))
        cross_in, cross_jm, self_im, self_jn = dec.split(B)
        out["cross"] = F.l1_loss(cross_in, n_in) + F.l1_loss(cross_jm, n_jm)
        out["self"] = F.l1_loss(self_im, n_im) + F.l1_loss(self_jn, n_jn)
    if "cla" in need:
        out["cla"] = F.cross_entropy(model.classifier(e), torch.cat([m, n, n, m]))
    if "con" in need:
        out["con"] = F.l1_loss(c_im, c[2 * B:3 * B]) + F.l1_loss(c_jn, c[3 * B:])
    return out


# --------------------------------------------------------------------------- the stage
class DisentangleResult(TrainResult):
    def summary(self) -> str:
        m = self.metrics
        on = m["on"]
        return (f"{super().summary()}\n"
                f"{'held-out' if on == 'heldout' else 'training-sentence'} emotion accuracy "
                f"{100 * m[f'{on}_accuracy']:.1f} % over {m[f'{on}_clips']} clips "
                f"(per window {100 * m[f'{on}_window_accuracy']:.1f} %, train {100 * m['train_accuracy']:.1f} %, "
                f"chance {100 * m['chance']:.1f} %)\n"
                f"cross-reconstruction D(Ec(x_im), Ee(x_jn)): distance to x_in {m['cross_to_target']:.3f}, "
                f"to x_im {m['cross_to_source']:.3f}\n"
                f"content invariance |Ec(x_im)-Ec(x_in)| / |Ec(x_im)-Ec(x_jm)| = {m['content_ratio']:.3f}\n"
                f"log {self.files['log_csv']}, plots {self.files['loss_png']} {self.files['embedding_png']}")


def run_key(ws: Workspace, net_cfg: DisentangleConfig, train_cfg: DisentangleTrainConfig) -> str:
    """Key of a run: the pairs it trains on and every setting except the number of epochs (so --resume can
    extend a run)."""
    pair_keys = sorted(a["key"] for a in ws.artifacts(KIND_PAIRS))
    params = {"net": to_dict(net_cfg), "train": {**to_dict(train_cfg), "epochs": None}, "version": 1}
    return cache_key(*pair_keys, params=params)


def train_disentangle(ws: Workspace, train_cfg: DisentangleTrainConfig = DisentangleTrainConfig(),
                      net_cfg: DisentangleConfig | None = None, device: str = "auto", resume: bool = False,
                      progress: Progress | None = None) -> DisentangleResult:
    """Train Ec, Ee, D and Ce on the workspace's pairs; write the model, codes, metrics, log and plots.

    ``net_cfg`` None: :data:`DEFAULT_NET_CONFIG`. With ``resume``, a run with the same pairs and settings (other
    than ``epochs``) continues from its last checkpoint; otherwise it starts afresh.

    Under ``torchrun`` (:mod:`evpcli.train.distributed`) every process trains its part of each batch with the
    gradients averaged over them, rank 0 writes the files, and every rank returns rank 0's result.
    """
    from evpcli.train.distributed import data_parallel

    with deterministic(train_cfg.seed), data_parallel(device) as (ranks, dev), contextlib.ExitStack() as stack:
        return _train(ws, train_cfg, net_cfg or DEFAULT_NET_CONFIG, dev, resume,
                      (progress or Progress()) if ranks.main else Progress(), stack, ranks)


def _train(ws: Workspace, train_cfg: DisentangleTrainConfig, net_cfg: DisentangleConfig, dev, resume: bool,
           progress: Progress, stack: contextlib.ExitStack, ranks) -> DisentangleResult:
    import torch

    from evpcli.nets.disentangle import Disentangle

    ranks.check_batch(train_cfg.batch_size)
    bank = load_bank(ws)
    train_sents, held_sents = split_sentences(bank.sentences, train_cfg.holdout_sentences)
    sampler = TupleSampler(bank, train_sents)
    key = run_key(ws, net_cfg, train_cfg)
    run = StageRun(ws, STAGE, key, train_cfg.epochs, resume=resume, ranks=ranks, stack=stack, progress=progress,
                   log_fields=LOG_FIELDS, batch_size=train_cfg.batch_size)

    model = Disentangle(net_cfg)
    copies = train_cfg.augment_copies
    aug = augmented_mfcc(ws, bank.clip_ids, copies, train_cfg.seed, progress=progress)
    train_rows = np.concatenate([np.arange(bank.offsets[k], bank.offsets[k + 1]) for k in range(len(bank.clip_ids))
                                 if bank.sentences[k] in train_sents])  # training windows
    flat = bank.windows[train_rows].reshape(-1, net_cfg.n_coeffs)
    model.set_normalisation(torch.from_numpy(flat.mean(0)), torch.from_numpy(flat.std(0)))
    model.to(dev)
    windows = torch.from_numpy(bank.windows).to(dev)
    variants = [bank.rows] + [variant_rows(bank, aug, k) for k in range(copies)]
    n_rows = len(bank.rows)
    mfcc_rows = torch.from_numpy(np.concatenate(variants)).to(dev)  # clean rows, then each augmented copy
    content_rows = None
    if net_cfg.cmvn:  # the content encoder reads each clip (and copy) normalised by its own statistics
        bank.content_rows = bank.with_cmvn()
        content_rows = torch.from_numpy(np.concatenate([bank.content_rows] + [bank.with_cmvn(v) for v in variants[1:]])).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=train_cfg.lr, betas=(train_cfg.beta1, train_cfg.beta2))
    configs = {"net": to_dict(net_cfg), "train": to_dict(train_cfg)}

    if not run.restore(model, opt, dev):
        _pretrain_emotion_encoder(model, bank, train_rows, windows, train_cfg, dev, progress, ranks)
        run.save_staging(model, opt, 0, configs)

    need = frozenset(k for k in DISENTANGLE_LOSSES if k != train_cfg.ablate)
    weights = {k: getattr(train_cfg, f"w_{k}") for k in need}

    def step(rng: np.random.Generator) -> dict[str, float]:
        rows, labels = sampler.sample(rng, train_cfg.batch_size)
        # each input's copy (0 = clean), drawn for the whole batch before this rank takes its part
        which = rng.integers(0, copies + 1, size=(len(rows), 4, 1)) if copies else None
        if ranks.distributed:
            rows, labels = rows[run.part], labels[run.part]
            which = which[run.part] if copies else None
        x = mfcc_rows[torch.from_numpy(rows).to(dev)]  # (B, 4, 28, 12)
        lab = torch.from_numpy(labels).to(dev)
        targets, cx = None, None
        if copies:  # each input from a random copy; the decoder's targets stay clean
            targets = [x[:, k] for k in range(4)]
            rows = rows + which * n_rows
            x = mfcc_rows[torch.from_numpy(rows).to(dev)]
        if content_rows is not None:
            c = content_rows[torch.from_numpy(rows).to(dev)]
            cx = [c[:, k] for k in range(4)]
        x = [x[:, k] for k in range(4)]
        losses = disentangle_losses(model, *x, lab[:, 0], lab[:, 1], need, targets, cx)
        descend(sum(weights[k] * losses[k] for k in need), opt, model, ranks)
        return {k: losses[k].item() for k in need}

    if not run.train(seed=train_cfg.seed, steps_per_epoch=train_cfg.steps_per_epoch, step=step, model=model,
                     optimizer=opt, config=configs, begin_epoch=lambda epoch: model.train(),
                     shown=lambda t: {f"L_{k}": t[k] for k in DISENTANGLE_LOSSES if k in t},
                     log_row=lambda epoch, means: {"loss": sum(weights[k] * means[k] for k in need), **means}):
        return ranks.broadcast(None)  # rank 0 evaluates and publishes the model; the others return its result
    loss_png = run.plot(["loss", *[k for k in DISENTANGLE_LOSSES if k in need]],
                        f"disentangle losses{' (no L_' + train_cfg.ablate + ')' if train_cfg.ablate else ''}")

    model.eval()
    with progress.task("emotion codes", total=len(bank.clip_ids), unit="clips") as bar:
        codes = clip_emotion_codes(model, bank, dev, bar)
    metrics = evaluate_disentangle(model, bank, codes, train_sents, held_sents, dev, n_tuples=train_cfg.eval_tuples)
    metrics.update({"ablate": train_cfg.ablate or None, **run.training_metrics(),
                    "train_sentences": sorted(train_sents), "heldout_sentences": sorted(held_sents),
                    "clips": len(bank.clip_ids), "pairs": len(bank.pairs), "device": str(dev),
                    **run.data_parallel_metrics()})

    clip_emotions = np.array(bank.emotions)
    present = np.array([(clip_emotions == e).any() for e in EMOTIONS])
    means = np.stack([codes[clip_emotions == e].mean(0) if p else np.zeros(net_cfg.emotion_dim, np.float32)
                      for e, p in zip(EMOTIONS, present, strict=True)]).astype(np.float32)
    codes_path = save_npz(run.run.file("codes.npz", KIND_MODEL), clip_ids=np.array(bank.clip_ids),
                          clip_emotions=clip_emotions, clip_codes=codes)
    emb_png = plot_embedding(codes, bank.emotions, [s in held_sents for s in bank.sentences],
                             run.run.file("embedding.png"))
    metrics_path = save_json(run.run.file("metrics.json"), metrics)
    meta = {"stage": STAGE, "ablate": train_cfg.ablate, "epochs": train_cfg.epochs,
            "heldout_accuracy": metrics.get("heldout_accuracy"), "heldout_sentences": sorted(held_sents)}
    save_training_state(run.run.model, model=model, optimizer=opt, epoch=train_cfg.epochs, config=configs, key=key,
                        stage=STAGE, heldout_sentences=sorted(held_sents), emotion_means=torch.from_numpy(means),
                        emotion_present=torch.from_numpy(present))
    run.finish(configs, meta, extra_rows=((KIND_EMOTION_CODES, codes_path),))
    return run.result(DisentangleResult, metrics, {"codes": codes_path, "metrics_json": metrics_path,
                                                   "log_csv": run.log.path, "loss_png": loss_png,
                                                   "embedding_png": emb_png})


def _pretrain_emotion_encoder(model, bank: WindowBank, train_rows: np.ndarray, windows, cfg: DisentangleTrainConfig,
                              dev, progress: Progress, ranks=None) -> None:
    """Pre-train Ee + Ce as an 8-way emotion classifier on single windows of the training sentences (under
    torchrun each rank takes its part of every batch; gradients are averaged)."""
    import torch
    import torch.nn.functional as F

    from evpcli.train.distributed import Ranks

    ranks = ranks or Ranks()

    if cfg.pretrain_steps <= 0:
        return
    row_clip = np.searchsorted(bank.offsets, train_rows, side="right") - 1
    labels = torch.tensor([EMOTIONS.index(bank.emotions[k]) for k in row_clip], device=dev)
    rows_t = torch.from_numpy(train_rows).to(dev)
    params = list(model.emotion_encoder.parameters()) + list(model.classifier.parameters())
    opt = torch.optim.Adam(params, lr=cfg.pretrain_lr, betas=(cfg.beta1, cfg.beta2))
    rng = epoch_rng(cfg.seed, 0, phase=1)
    model.train()
    with progress.task("pre-train emotion encoder", total=cfg.pretrain_steps, unit="steps") as bar:
        for _ in range(cfg.pretrain_steps):
            pick = rng.integers(len(train_rows), size=4 * cfg.batch_size)
            if ranks.distributed:
                pick = pick[ranks.shard(len(pick))]
            pick = torch.from_numpy(pick).to(dev)
            logits = model.classifier(model.emotion(windows[rows_t[pick]]))
            loss = F.cross_entropy(logits, labels[pick])
            descend(loss, opt, model, ranks, params)
            bar.advance(1, L_cla=loss.item())


def clip_emotion_codes(model, bank: WindowBank, dev, bar=None) -> np.ndarray:
    """Clip-level emotion codes (n_clips, emotion_dim) float32: the mean of Ee over each clip's windows."""
    from evpcli.torchinfer import TorchAudio2Landmark

    out, engine = [], TorchAudio2Landmark(model)
    for k in range(len(bank.clip_ids)):
        out.append(clip_emotion_code(engine, bank.clip_windows(k)))
        if bar is not None:
            bar.advance(1)
    return np.stack(out).astype(np.float32)


def evaluate_disentangle(model, bank: WindowBank, codes: np.ndarray, train_sents: set[str], held_sents: set[str],
                         dev, n_tuples: int = 512, seed: int = 12345) -> dict:
    """Held-out metrics of a trained model (all on clips/pairs of sentences never trained on).

    - ``heldout_accuracy``: Ce(clip-level emotion code) == the clip's emotion, over held-out clips (chance 1/8).
    - ``cross_to_target`` / ``cross_to_source``: mean L1 (normalised MFCC units) of D(Ec(x_im), Ee(x_jn)) to
      x_in (the same content in emotion n: should be small) and to x_im (the input it was made from), with i a
      held-out sentence and j another sentence of the same actor and emotions.
    - ``content_ratio``: mean |Ec(x_im) - Ec(x_in)| / mean |Ec(x_im) - Ec(x_jm)| (Euclidean): same content in
      two emotions against two contents in one emotion; small means emotion-invariant content codes.
    Without held-out sentences the same numbers are measured on the training sentences (``on`` says which).
    """
    import torch

    on = "heldout" if held_sents else "train"
    eval_sents = held_sents or train_sents
    labels = np.array([EMOTIONS.index(e) for e in bank.emotions])
    mask = np.array([s in eval_sents for s in bank.sentences])
    train_mask = np.array([s in train_sents for s in bank.sentences])
    with torch.no_grad():
        logits = model.classifier(torch.from_numpy(codes).to(dev)).cpu().numpy()
        pred = logits.argmax(1)
        win_hits = []
        for k in np.flatnonzero(mask):
            w = torch.from_numpy(bank.clip_windows(k)).to(dev)
            win_hits.append((model.classifier(model.emotion(w)).argmax(1).cpu().numpy() == labels[k]).mean())
        res = {
            "on": on,
            f"{on}_accuracy": float((pred[mask] == labels[mask]).mean()),
            f"{on}_window_accuracy": float(np.mean(win_hits)),
            f"{on}_clips": int(mask.sum()),
            "train_accuracy": float((pred[train_mask] == labels[train_mask]).mean()),
            "chance": 1.0 / len(EMOTIONS),
        }
        sampler = TupleSampler(bank, eval_sents, set(bank.sentences))
        rows, _ = sampler.sample(np.random.default_rng(seed), n_tuples)
        x = [model.normalise(torch.from_numpy(bank.rows[rows[:, k]]).to(dev)) for k in range(4)]
        n_im, n_jn, n_in, n_jm = x
        if bank.content_rows is not None:
            c_im, c_in, c_jm = (model.content_encoder(torch.from_numpy(bank.content_rows[rows[:, k]]).to(dev))
                                for k in (0, 2, 3))
        else:
            c_im, c_in, c_jm = (model.content_encoder(v) for v in (n_im, n_in, n_jm))
        cross = model.decoder(c_im, model.emotion_encoder(n_jn))
        res["cross_to_target"] = float((cross - n_in).abs().mean())
        res["cross_to_source"] = float((cross - n_im).abs().mean())
        res["source_to_target"] = float((n_im - n_in).abs().mean())  # how far apart the two emotions are
        res["content_same_sentence"] = float((c_im - c_in).norm(dim=1).mean())
        res["content_same_emotion"] = float((c_im - c_jm).norm(dim=1).mean())
        res["content_ratio"] = res["content_same_sentence"] / max(res["content_same_emotion"], 1e-12)
        res["eval_tuples"] = n_tuples
    return res


def plot_embedding(codes: np.ndarray, emotions: list[str], heldout: list[bool], png: Path) -> Path:
    """2D PCA of clip-level emotion codes coloured by emotion (like EVP Fig. 5); held-out clips as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evpcli.atomic import atomic_path

    x = codes - codes.mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T if len(vt) >= 2 else np.pad(x @ vt[:1].T, ((0, 0), (0, 1)))
    var = (s[:2] ** 2 / max((s ** 2).sum(), 1e-12)) if len(s) else np.zeros(2)
    fig, ax = plt.subplots(figsize=(6.4, 5.2), dpi=100)
    cmap = plt.get_cmap("tab10")
    emo, held = np.array(emotions), np.array(heldout, bool)
    for k, e in enumerate(EMOTIONS):
        for h, marker in ((False, "o"), (True, "x")):
            sel = (emo == e) & (held == h)
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=22, marker=marker, color=cmap(k), label=None if h else e)
    ax.set_title("emotion codes (PCA; x = held-out sentences)")
    ax.set_xlabel(f"PC1 ({100 * var[0]:.0f} %)")
    ax.set_ylabel(f"PC2 ({100 * var[1] if len(var) > 1 else 0:.0f} %)")
    ax.legend(fontsize=8, markerscale=1.2)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return png
