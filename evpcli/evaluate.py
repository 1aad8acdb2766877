"""EVP's evaluation (paper section 4) over a workspace, and the energy baseline.

The metrics themselves (M-LD, M-LVD, F-LD, F-LVD, mouth-opening r) are in :mod:`evpcli.metrics`.
"""

from __future__ import annotations

import numpy as np

from evpcli.config import DISENTANGLE_LOSSES
from evpcli.face.parts import CHIN, DROPPING_LIP, mouth_opening
from evpcli.metrics import landmark_metrics, mean_metrics, mouth_open_correlation


# ----------------------------------------------------------------------------- energy baseline
CHIN_WEIGHT = np.array([0.3, 0.5, 0.8, 1.0, 0.8, 0.5, 0.3])  # the share of the lower lip's drop each CHIN point follows


def fit_energy_gain(rms: np.ndarray, opening: np.ndarray, reference_opening: float) -> tuple[float, float]:
    """Least-squares ``opening - reference_opening ≈ a * log1p(rms / s)`` over training frames.

    Returns (a, s) with s = the median non-zero rms (a scale that makes the log curve sensible for any level).
    """
    rms = np.asarray(rms, np.float64)
    s = float(np.median(rms[rms > 0])) if np.any(rms > 0) else 1.0
    x = np.log1p(rms / s)
    y = np.asarray(opening, np.float64) - reference_opening
    a = float((x @ y) / max(x @ x, 1e-12))
    return a, s


def energy_baseline(reference: np.ndarray, rms: np.ndarray, gain: tuple[float, float]) -> np.ndarray:
    """The actor's reference face (68, 2) with the mouth opened by audio energy: (T, 68, 2).

    The lower lip moves down by ``a * log1p(rms / s)`` pixels and the chin follows by a weighted share: the
    simplest audio-driven face, which shows what the learned model adds.
    """
    a, s = gain
    drop = np.maximum(a * np.log1p(np.asarray(rms, np.float64) / s), 0.0)  # (T,)
    out = np.repeat(np.asarray(reference, np.float64)[None], len(drop), axis=0)
    weights = np.zeros(68)
    weights[DROPPING_LIP] = 1.0
    weights[CHIN] = CHIN_WEIGHT
    out[:, :, 1] += drop[:, None] * weights[None, :]
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- evaluate a workspace
METRIC_NAMES = ("M-LD", "M-LVD", "F-LD", "F-LVD")


class EvaluateResult(dict):
    """The evaluation as a plain JSON-able dict (``rows``, ``emotion_accuracy``, ``mouth_open_r``, ...), with a
    human table."""

    def to_dict(self) -> dict:
        return dict(self)

    def summary(self) -> str:
        head = (f"held-out clips: {self['test_clips']} (sentences {', '.join(self['heldout_sentences'])}); pixels of "
                f"the 256 px canonical frame")
        names = [*self["rows"], "real landmarks"]
        width = max(len(n) for n in names)
        lines = [head, f"{'model':<{width}}  " + "  ".join(f"{k:>6}" for k in METRIC_NAMES) + "  emotion acc.  mouth r"]
        for name in names:
            m = self["rows"].get(name, {})
            acc, mr = self["emotion_accuracy"].get(name), self["mouth_open_r"].get(name)
            lines.append(f"{name:<{width}}  " + "  ".join(f"{m[k]:6.2f}" if k in m else " " * 6 for k in METRIC_NAMES)
                         + f"  {'' if acc is None else f'{100 * acc:.1f} %':>12}  {'' if mr is None else f'{mr:.2f}':>7}")
        if self.get("missing_ablations"):
            lines.append(f"not evaluated (no model): {', '.join('w/o L_' + a for a in self['missing_ablations'])}")
        if self.get("models"):
            lines.append("workspace models: " + ", ".join(f"{k} {v}" for k, v in self["models"].items()))
        lines.append(f"written to {self['path']}")
        return "\n".join(lines)


def _emotion_classifier(ws, train_clips, device, progress):
    """The landmark emotion classifier trained on the real landmarks of ``train_clips`` (cached as a model)."""
    from evpcli.config import EMOTIONS, LandmarkEmotionConfig
    from evpcli.models import STAGE_LM_EMOTION, load_landmark_emotion
    from evpcli.train.lm_emotion import LandmarkEmotionTrainConfig, classifier_state, displacement, train_landmark_emotion
    from evpcli.workspace import KIND_MODEL, cache_key, save_checkpoint

    train_cfg, net_cfg = LandmarkEmotionTrainConfig(), LandmarkEmotionConfig()
    key = cache_key(*sorted(c.clip_id for c in train_clips), params={"train": train_cfg, "net": net_cfg, "v": 1})
    row = ws.get_artifact(KIND_MODEL, key)
    if row is not None:
        return load_landmark_emotion(ws, key=key, device=device).net, key
    seqs = [displacement(c.normalised[c.valid], c.reference) for c in train_clips if c.valid.sum() >= 2]
    labels = [EMOTIONS.index(c.emotion) for c in train_clips if c.valid.sum() >= 2]
    net = train_landmark_emotion(seqs, labels, train_cfg, net_cfg, device, progress)
    path = save_checkpoint(ws.path(KIND_MODEL, f"lm_emotion-{key}.pt"), classifier_state(net))
    ws.put_artifact(KIND_MODEL, key, path, params={"train": train_cfg, "net": net_cfg},
                    meta={"stage": STAGE_LM_EMOTION, "clips": len(seqs)})
    return net, key


def _other_clip(c, clips):
    """Another clip of the same actor and emotion, of a different sentence if there is one (for emotion (b))."""
    same = [o for o in clips if o.actor == c.actor and o.emotion == c.emotion and o.clip_id != c.clip_id]
    other_sentence = [o for o in same if o.sentence != c.sentence]
    pool = other_sentence or same
    return pool[0] if pool else None


def evaluate_workspace(ws, ablations: bool = False, device: str = "auto", progress=None) -> EvaluateResult:
    """EVP's evaluation on the held-out clips of the workspace (sentences the models never trained on).

    For every held-out clip the landmarks are predicted from its own audio (content) with the emotion from
    (a) the clip itself and (b) another clip of the same actor and emotion, and compared with the clip's detected
    normalised landmarks (valid frames) by M-LD, M-LVD, F-LD, F-LVD (pixels of the 256 canonical frame). The
    energy baseline (reference face, mouth opened by audio energy, gain fitted on training clips) is measured on
    the same clips. A landmark emotion classifier trained on the training clips' real landmarks gives emotion
    accuracy on real and on predicted sequences. With ``ablations``, models built on encoders trained with each
    loss off are evaluated too (case (a)). Writes ``runs/evaluate-<key>.json`` and returns the same dict.
    """
    import torch

    from evpcli.clipdata import load_clip_data
    from evpcli.config import EMOTIONS
    from evpcli.device import resolve_device
    from evpcli.errors import EvpError
    from evpcli.progress import Progress
    from evpcli.infer import clip_emotion_code, predict_landmarks
    from evpcli.models import load_audio2lm, load_disentangle
    from evpcli.train.lm_emotion import displacement, predict_emotion
    from evpcli.workspace import cache_key, save_json

    progress = progress or Progress()
    dev = resolve_device(device)
    dis = load_disentangle(ws, shipped=False)  # evaluate measures the workspace's own models
    held = dis.heldout_sentences
    if not held:
        raise EvpError("the disentanglement model holds out no sentences, so nothing is unseen to evaluate on; "
                       "train it with --holdout-sentences 1 or more")
    clips = load_clip_data(ws)
    train_clips = [c for c in clips if c.sentence not in held]
    test_clips = [c for c in clips if c.sentence in held and c.valid.sum() >= 3]
    if not test_clips:
        raise EvpError(f"no prepared clips of the held-out sentences {sorted(held)} in {ws.root}")

    # energy baseline, gain fitted on the training clips
    rms = np.concatenate([c.rms[c.valid] for c in train_clips])
    opening = np.concatenate([mouth_opening(c.normalised[c.valid]) - mouth_opening(c.reference) for c in train_clips])
    gain = fit_energy_gain(rms, opening, 0.0)

    clf, clf_key = _emotion_classifier(ws, train_clips, dev, progress)
    labels = np.array([EMOTIONS.index(c.emotion) for c in test_clips])

    def accuracy(seqs):
        return float(np.mean(predict_emotion(clf, [displacement(s, c.reference) for s, c in zip(seqs, test_clips, strict=True)],
                                             dev) == labels))

    real = [c.normalised[c.valid] for c in test_clips]
    result = EvaluateResult({"heldout_sentences": sorted(held), "test_clips": len(test_clips), "train_clips": len(train_clips),
                    "units": "pixels of the 256x256 canonical frame", "rows": {}, "emotion_accuracy": {},
                    "mouth_open_r": {}, "models": {"disentangle": dis.source.key, "emotion_classifier": clf_key}})
    baseline = [energy_baseline(c.reference, c.rms, gain)[c.valid] for c in test_clips]
    result["rows"]["energy baseline"] = mean_metrics([landmark_metrics(p, g) for p, g in zip(baseline, real, strict=True)])
    result["emotion_accuracy"]["real landmarks"] = accuracy(real)
    result["emotion_accuracy"]["energy baseline"] = accuracy(baseline)
    result["mouth_open_r"]["energy baseline"] = float(np.nanmean([mouth_open_correlation(p, g)
                                                                  for p, g in zip(baseline, real, strict=True)]))

    variants = [("", "EVP")] + ([(a, f"w/o L_{a}") for a in DISENTANGLE_LOSSES] if ablations else [])
    missing = []
    with progress.task("evaluate", total=len(variants) * len(test_clips), unit="clips") as bar:
        for ablate, name in variants:
            try:
                model = load_audio2lm(ws, ablate=ablate, device=dev, shipped=False)
            except EvpError:
                if not ablate:
                    raise
                missing.append(ablate)
                bar.advance(len(test_clips))
                continue
            own, other = [], []
            with torch.no_grad():
                for c in test_clips:
                    own.append(predict_landmarks(model, c.windows, None, c.reference, c.rms)[c.valid])
                    o = _other_clip(c, clips) if not ablate else None
                    if o is not None:
                        code = clip_emotion_code(model, o.windows)
                        other.append(predict_landmarks(model, c.windows, code, c.reference, c.rms)[c.valid])
                    bar.advance(1)
            if not ablate:
                result["models"]["audio2lm"] = model.source.key
            label = f"{name} (own emotion)" if not ablate else name
            result["rows"][label] = mean_metrics([landmark_metrics(p, g) for p, g in zip(own, real, strict=True)])
            result["emotion_accuracy"][label] = accuracy(own)
            result["mouth_open_r"][label] = float(np.nanmean([mouth_open_correlation(p, g)
                                                              for p, g in zip(own, real, strict=True)]))
            if not ablate and len(other) == len(test_clips):
                result["rows"]["EVP (emotion of another clip)"] = mean_metrics(
                    [landmark_metrics(p, g) for p, g in zip(other, real, strict=True)])
                result["emotion_accuracy"]["EVP (emotion of another clip)"] = accuracy(other)
    if missing:
        result["missing_ablations"] = missing
    key = cache_key(dis.source.key, clf_key, *[c.clip_id for c in test_clips], params={"ablations": ablations})
    result["path"] = str(save_json(ws.path("runs", f"evaluate-{key}.json"), result))
    return result
