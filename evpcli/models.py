"""The one door to trained models: find, load and describe them.

Every command that uses a model loads it here, with one rule for every stage:

1. an explicit path (``--model PATH``), else
2. the newest *finished* model of that stage (and ablation) in the workspace, else
3. the default model shipped inside the package (once one ships).

Each loader returns a typed bundle: the network in eval mode, its configs, the per-emotion mean codes where the
stage has them, and a :class:`ModelSource` saying where the model came from, so a command can print which model
it used. Nothing here imports training code: checkpoints are plain dicts loadable with ``weights_only=True``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evpcli.config import EMOTIONS, Audio2LandmarkConfig, DisentangleConfig, LandmarkEmotionConfig
from evpcli.errors import EvpError
from evpcli.workspace import KIND_EMOTION_CODES, KIND_MODEL, Workspace, load_checkpoint, load_npz

STAGE_DISENTANGLE = "disentangle"
STAGE_AUDIO2LM = "audio2lm"
STAGE_LM_EMOTION = "lm_emotion"

TRAIN_HINT = {
    STAGE_DISENTANGLE: "evp train --stage disentangle",
    STAGE_AUDIO2LM: "evp train --stage audio2lm",
    STAGE_LM_EMOTION: "evp evaluate",
}
STAGE_NAME = {STAGE_DISENTANGLE: "disentanglement", STAGE_AUDIO2LM: "audio-to-landmark",
              STAGE_LM_EMOTION: "landmark emotion classifier"}


@dataclass(frozen=True)
class ModelSource:
    """Where a loaded model came from: ``origin`` is "explicit" (a path given), "workspace" or "shipped"."""

    origin: str
    stage: str
    key: str
    path: str
    ablate: str = ""

    def describe(self) -> str:
        what = f"{self.stage}{' without L_' + self.ablate if self.ablate else ''}"
        return f"{what} model {self.key} ({self.origin}: {self.path})"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DisentangleBundle:
    """Ec, Ee, D and Ce (:class:`evpcli.nets.disentangle.Disentangle`, eval mode) with its configs."""

    net: Any
    config: DisentangleConfig
    emotion_means: dict[str, np.ndarray]
    heldout_sentences: set[str]
    source: ModelSource

    @property
    def device(self):
        return next(self.net.parameters()).device

    @property
    def disentangle(self):
        return self.net


@dataclass
class Audio2LandmarkBundle:
    """The audio-to-landmark path (:class:`evpcli.nets.audio2lm.Audio2LandmarkModel`, eval mode: encoders + LSTM +
    displacement PCA), the mean emotion code of each emotion of its training data under its own emotion encoder
    (what ``--emotion NAME`` uses), and the statistics of its training clips' codes (out-of-distribution test)."""

    net: Any
    config: Audio2LandmarkConfig
    disentangle_config: DisentangleConfig
    emotion_means: dict[str, np.ndarray]
    heldout_sentences: set[str]
    source: ModelSource
    code_stats: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def device(self):
        return next(self.net.parameters()).device

    @property
    def disentangle(self):
        return self.net.disentangle


@dataclass
class LandmarkEmotionBundle:
    """The evaluation's landmark-sequence emotion classifier (eval mode)."""

    net: Any
    config: LandmarkEmotionConfig
    source: ModelSource

    @property
    def device(self):
        return next(self.net.parameters()).device


# --------------------------------------------------------------------------- finding
def model_rows(ws: Workspace, stage: str, ablate: str | None = "") -> list[dict]:
    """Finished models of ``stage`` in the workspace index, oldest first. ``ablate`` None: any ablation."""
    rows = [a for a in ws.artifacts(KIND_MODEL) if isinstance(a["meta"], dict) and a["meta"].get("stage") == stage]
    if ablate is not None:
        rows = [a for a in rows if (a["meta"].get("ablate") or "") == ablate]
    return rows


def newest_row(ws: Workspace, stage: str, ablate: str = "") -> dict | None:
    """The newest finished workspace model of ``stage`` trained with ``ablate`` ('' = the full model), or None."""
    rows = model_rows(ws, stage, ablate)
    return rows[-1] if rows else None


def _missing(ws: Workspace, stage: str, ablate: str) -> EvpError:
    hint = TRAIN_HINT[stage] + (f" --ablate {ablate}" if ablate else "")
    what = STAGE_NAME[stage] + (f" model without L_{ablate}" if ablate else " model")
    return EvpError(f"no trained {what} in {ws.root}; run `{hint}` first (or give --model PATH)")


def _locate(ws: Workspace | None, stage: str, path: str | Path | None, ablate: str) -> tuple[Path, ModelSource, dict]:
    """(checkpoint path, source, artifact row or {}) by the rule explicit path > workspace > shipped."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise EvpError(f"{p}: model file not found (given as --model)")
        return p, ModelSource("explicit", stage, p.stem, str(p), ablate), {}
    row = newest_row(ws, stage, ablate) if ws is not None else None
    if row is not None:
        return Path(row["path"]), ModelSource("workspace", stage, row["key"], str(row["path"]), ablate), row
    raise _missing(ws, stage, ablate) if ws is not None else EvpError(f"no {STAGE_NAME[stage]} model given")


def _load_state(path: Path, device) -> dict:
    try:
        return load_checkpoint(path, map_location=device)
    except EvpError:
        raise
    except Exception as exc:  # a truncated or foreign file
        raise EvpError(f"{path}: not a readable evp model ({type(exc).__name__}); re-train or give another "
                       f"--model") from None


def _check_stage(state: dict, path: Path, stage: str) -> None:
    got = state.get("stage") or (state.get("config") or {}).get("stage")
    if got is not None and got != stage:
        raise EvpError(f"{path} is a {got} model, not a {stage} model")


def _means_from_state(state: dict) -> dict[str, np.ndarray]:
    means = state["emotion_means"].cpu().numpy().astype(np.float32)
    present = state["emotion_present"].cpu().numpy().astype(bool)
    return {e: means[k] for k, e in enumerate(EMOTIONS) if present[k]}


def _heldout(state: dict, row: dict, ws: Workspace | None, dis_key: str | None) -> set[str]:
    """Held-out sentences: from the checkpoint, else the artifact's meta, else the disentanglement run's metrics."""
    if state.get("heldout_sentences") is not None:
        return {str(s) for s in state["heldout_sentences"]}
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    if meta.get("heldout_sentences") is not None:
        return {str(s) for s in meta["heldout_sentences"]}
    if ws is not None and dis_key:
        p = ws.root / "runs" / f"disentangle-{dis_key}-metrics.json"
        if p.exists():
            return set(json.loads(p.read_text()).get("heldout_sentences", []))
    return set()


# --------------------------------------------------------------------------- loaders
def load_disentangle(ws: Workspace | None, path: str | Path | None = None, ablate: str = "",
                     device: Any = "cpu") -> DisentangleBundle:
    """The disentanglement model (explicit ``path`` > newest finished workspace model with ``ablate``)."""
    from evpcli.device import resolve_device
    from evpcli.nets.disentangle import Disentangle

    dev = resolve_device(device)
    ckpt, source, row = _locate(ws, STAGE_DISENTANGLE, path, ablate)
    state = _load_state(ckpt, dev)
    _check_stage(state, ckpt, STAGE_DISENTANGLE)
    cfg = DisentangleConfig.from_dict(state["config"]["net"])
    net = Disentangle(cfg)
    net.load_state_dict(state["model"])
    if "emotion_means" in state:
        means = _means_from_state(state)
    else:  # workspaces trained before the means moved into the checkpoint
        codes = [a for a in ws.artifacts(KIND_EMOTION_CODES) if a["key"] == source.key] if ws is not None else []
        if not codes:
            raise EvpError(f"{ckpt}: training did not finish (no emotion codes); re-run "
                           f"`{TRAIN_HINT[STAGE_DISENTANGLE]} --resume`")
        d = load_npz(codes[-1]["path"])
        means = {str(e): d["emotion_means"][k] for k, e in enumerate(d["emotions"]) if d["present"][k]}
    return DisentangleBundle(net.to(dev).eval(), cfg, means, _heldout(state, row, ws, source.key), source)


def load_audio2lm(ws: Workspace | None, path: str | Path | None = None, ablate: str = "",
                  device: Any = "cpu") -> Audio2LandmarkBundle:
    """The audio-to-landmark model (explicit ``path`` > newest finished workspace model built on encoders trained
    with ``ablate``)."""
    from evpcli.device import resolve_device
    from evpcli.nets.audio2lm import Audio2LandmarkModel
    from evpcli.nets.disentangle import Disentangle

    dev = resolve_device(device)
    ckpt, source, row = _locate(ws, STAGE_AUDIO2LM, path, ablate)
    state = _load_state(ckpt, dev)
    _check_stage(state, ckpt, STAGE_AUDIO2LM)
    if "emotion_means" not in state:
        raise EvpError(f"{ckpt}: training did not finish; re-run `{TRAIN_HINT[STAGE_AUDIO2LM]} --resume`")
    cfg = state["config"]
    dis_cfg = DisentangleConfig.from_dict(cfg["disentangle_net"])
    net_cfg = Audio2LandmarkConfig(**cfg["net"])
    net = Audio2LandmarkModel(Disentangle(dis_cfg), net_cfg)
    net.load_state_dict(state["model"])
    stats = {k[len("code_"):]: v.cpu().numpy() for k, v in state.items() if k.startswith("code_")}
    return Audio2LandmarkBundle(net.to(dev).eval(), net_cfg, dis_cfg, _means_from_state(state),
                                _heldout(state, row, ws, cfg.get("disentangle_key")), source, stats)


def load_landmark_emotion(ws: Workspace | None, path: str | Path | None = None, device: Any = "cpu",
                          key: str | None = None) -> LandmarkEmotionBundle:
    """The landmark emotion classifier (explicit ``path`` > the workspace's model with ``key`` if given > newest)."""
    from evpcli.device import resolve_device
    from evpcli.nets.lm_emotion import LandmarkEmotionClassifier

    dev = resolve_device(device)
    if key is not None and path is None and ws is not None:
        row = ws.get_artifact(KIND_MODEL, key)
        if row is None:
            raise _missing(ws, STAGE_LM_EMOTION, "")
        ckpt, source = Path(row["path"]), ModelSource("workspace", STAGE_LM_EMOTION, key, str(row["path"]))
    else:
        ckpt, source, _ = _locate(ws, STAGE_LM_EMOTION, path, "")
    state = _load_state(ckpt, dev)
    cfg = LandmarkEmotionConfig(**state["config"])
    net = LandmarkEmotionClassifier(cfg)
    net.load_state_dict(state["state_dict"])
    return LandmarkEmotionBundle(net.to(dev).eval(), cfg, source)
