"""The one door to trained models: find, load and describe them.

Every command that uses a model loads it here, with one rule for every stage:

1. an explicit path (``--model PATH``), else
2. the newest *finished* model of that stage (and ablation) in the workspace, else
3. the default model shipped inside the package (``evpcli/data/models/``: weights only, checksummed by its
   ``manifest.json``; see :func:`shipped_manifest`). Training builds on the workspace's own models only
   (``shipped=False``).

Each loader returns a typed bundle: the network in eval mode, its configs, the per-emotion mean codes where the
stage has them, and a :class:`ModelSource` saying where the model came from, so a command can print which model
it used. Nothing here imports training code: checkpoints are plain dicts loadable with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evpcli.config import EMOTIONS, Audio2LandmarkConfig, DisentangleConfig, LandmarkEmotionConfig, NeuralRendererConfig
from evpcli.errors import EvpError
from evpcli.workspace import KIND_EMOTION_CODES, KIND_MODEL, Workspace, load_checkpoint, load_npz

STAGE_DISENTANGLE = "disentangle"
STAGE_AUDIO2LM = "audio2lm"
STAGE_LM_EMOTION = "lm_emotion"
STAGE_RENDERER = "renderer"

TRAIN_HINT = {
    STAGE_DISENTANGLE: "evp train --stage disentangle",
    STAGE_AUDIO2LM: "evp train --stage audio2lm",
    STAGE_LM_EMOTION: "evp evaluate",
    STAGE_RENDERER: "evp train --stage renderer --target T",
}
STAGE_NAME = {STAGE_DISENTANGLE: "disentanglement", STAGE_AUDIO2LM: "audio-to-landmark",
              STAGE_LM_EMOTION: "landmark emotion classifier", STAGE_RENDERER: "neural renderer"}

# The default models shipped in the package. The audio-to-landmark file holds the disentanglement encoders too
# (Ec, Ee, Ce; the decoder, which inference never uses, is left out), so it also serves `load_disentangle`.
SHIPPED_DIR = Path(__file__).parent / "data" / "models"
MANIFEST = "manifest.json"
SHIPPED_FILES = {STAGE_AUDIO2LM: "audio2lm.pt", STAGE_DISENTANGLE: "audio2lm.pt", STAGE_LM_EMOTION: "lm_emotion.pt"}
REINSTALL = "reinstall evp (pip install --force-reinstall evpcli, or pip install -e . in a checkout)"


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
    engine: Any = None  # what evpcli.infer runs: a TorchAudio2Landmark over ``net`` (evpcli.torchinfer)

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
    engine: Any = None  # what evpcli.infer runs: ``net`` itself (numpy) or a TorchAudio2Landmark over it

    @property
    def device(self):
        return next(self.net.parameters()).device if hasattr(self.net, "parameters") else "cpu"

    @property
    def disentangle(self):
        return self.net.disentangle


@dataclass
class LandmarkEmotionBundle:
    """The evaluation's landmark-sequence emotion classifier (eval mode)."""

    net: Any
    config: LandmarkEmotionConfig
    source: ModelSource
    engine: Any = None  # what evpcli.infer runs: a TorchLandmarkEmotion over ``net``

    @property
    def device(self):
        return next(self.net.parameters()).device


# --------------------------------------------------------------------------- shipped defaults
_VERIFIED: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def shipped_manifest(root: str | Path | None = None) -> dict | None:
    """The shipped models' manifest (files with sha256, configs, corpus recipe, seed, evp version, evaluation
    numbers), or None when this installation ships no models."""
    p = Path(root or SHIPPED_DIR) / MANIFEST
    if not p.exists():
        return None
    try:
        manifest = json.loads(p.read_text())
        manifest["files"]  # noqa: B018 - the one key every reader needs
    except (ValueError, KeyError, TypeError):
        raise EvpError(f"{p}: the shipped models' manifest is unreadable; {REINSTALL}") from None
    return manifest


def verify_shipped(path: Path, expected: str) -> None:
    """Raise a one-line EvpError when a shipped file is missing or its sha256 differs from the manifest's (checked
    once per process and file version)."""
    try:
        st = path.stat()
    except OSError:
        raise EvpError(f"{path}: a shipped model file is missing; {REINSTALL}") from None
    ident = (str(path), st.st_size, st.st_mtime_ns)
    if _VERIFIED.get(ident) == expected:
        return
    if sha256_file(path) != expected:
        raise EvpError(f"{path}: the shipped model file is damaged or was modified (its sha256 differs from "
                       f"{MANIFEST}); {REINSTALL}")
    _VERIFIED[ident] = expected


def shipped_model(stage: str, root: str | Path | None = None) -> tuple[Path, ModelSource] | None:
    """The shipped default model of ``stage`` (checksum verified) and its source, or None when none ships."""
    base = Path(root or SHIPPED_DIR)
    manifest = shipped_manifest(base)
    if manifest is None or SHIPPED_FILES.get(stage) not in manifest["files"]:
        return None
    name = SHIPPED_FILES[stage]
    entry = manifest["files"][name]
    path = base / name
    verify_shipped(path, entry["sha256"])
    return path, ModelSource("shipped", stage, str(entry.get("key", Path(name).stem)), str(path))


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


def _locate(ws: Workspace | None, stage: str, path: str | Path | None, ablate: str,
            shipped: bool = True) -> tuple[Path, ModelSource, dict]:
    """(checkpoint path, source, artifact row or {}) by the rule explicit path > workspace > shipped (the shipped
    default is the full model: no ablation)."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise EvpError(f"{p}: model file not found (given as --model)")
        return p, ModelSource("explicit", stage, p.stem, str(p), ablate), {}
    row = newest_row(ws, stage, ablate) if ws is not None else None
    if row is not None:
        return Path(row["path"]), ModelSource("workspace", stage, row["key"], str(row["path"]), ablate), row
    found = shipped_model(stage) if shipped and not ablate else None
    if found is not None:
        return found[0], found[1], {}
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


def _without_unused(net, model_state: dict, prefix: str = "") -> None:
    """Drop the disentanglement decoder from ``net`` when the weights leave it out (shipped models: inference never
    decodes MFCCs), so the remaining weights load strictly."""
    dis = net if not prefix else net.disentangle
    if not any(k.startswith(prefix + "decoder.") for k in model_state):
        dis.decoder = None


def _numpy(x) -> np.ndarray:
    """A tensor or a numpy array (the numpy checkpoint reader's) as a numpy array."""
    return x.cpu().numpy() if hasattr(x, "cpu") else np.asarray(x)


def _means_from_state(state: dict) -> dict[str, np.ndarray]:
    means = _numpy(state["emotion_means"]).astype(np.float32)
    present = _numpy(state["emotion_present"]).astype(bool)
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
                     device: Any = "cpu", shipped: bool = True) -> DisentangleBundle:
    """The disentanglement model (explicit ``path`` > newest finished workspace model with ``ablate`` > the shipped
    default's encoders, without the decoder; ``shipped=False`` for callers that need this workspace's own model)."""
    from evpcli.device import resolve_device
    from evpcli.nets.disentangle import Disentangle

    dev = resolve_device(device)
    ckpt, source, row = _locate(ws, STAGE_DISENTANGLE, path, ablate, shipped)
    state = _load_state(ckpt, dev)
    if source.origin == "shipped":  # the encoders inside the shipped audio-to-landmark model
        state = {**state, "config": {"net": state["config"]["disentangle_net"]},
                 "model": {k[len("disentangle."):]: v for k, v in state["model"].items()
                           if k.startswith("disentangle.")}}
    else:
        _check_stage(state, ckpt, STAGE_DISENTANGLE)
    cfg = DisentangleConfig.from_dict(state["config"]["net"])
    net = Disentangle(cfg)
    _without_unused(net, state["model"])
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
    from evpcli.torchinfer import TorchAudio2Landmark

    net = net.to(dev).eval()
    return DisentangleBundle(net, cfg, means, _heldout(state, row, ws, source.key), source, TorchAudio2Landmark(net))


def load_audio2lm(ws: Workspace | None, path: str | Path | None = None, ablate: str = "",
                  device: Any = "cpu", shipped: bool = True, backend: str = "torch") -> Audio2LandmarkBundle:
    """The audio-to-landmark model (explicit ``path`` > newest finished workspace model built on encoders trained
    with ``ablate`` > the shipped default). Half-precision weights (shipped) load into float32 modules.

    ``backend``: "torch" (the network as torch modules), "numpy" (:class:`evpcli.npinfer.NumpyAudio2Landmark`, the
    same forward pass without importing torch; CPU inference only), or "auto": numpy when ``device`` is the CPU
    (for "auto", when the machine has no GPU at all) and the checkpoint reads without torch, else torch. Inference
    (:mod:`evpcli.infer`) takes either; training and evaluation use torch."""
    if backend not in ("torch", "numpy", "auto"):
        raise ValueError(f"backend must be torch, numpy or auto, got {backend!r}")
    ckpt, source, row = _locate(ws, STAGE_AUDIO2LM, path, ablate, shipped)
    try:  # the same file (path, size, time) loaded again in this process (evp ui, scripts): the loaded model
        st = Path(ckpt).stat()
        cache_key = (str(Path(ckpt).resolve()), st.st_size, st.st_mtime_ns, backend, str(device), source.key)
    except OSError:
        cache_key = None
    if cache_key is not None and cache_key in _LOADED:
        return _LOADED[cache_key]
    bundle = _load_audio2lm(ws, ckpt, source, row, device, backend)
    if cache_key is not None:
        _LOADED.clear()  # one model kept: the newest asked for
        _LOADED[cache_key] = bundle
    return bundle


_LOADED: dict[tuple, Audio2LandmarkBundle] = {}


def _load_audio2lm(ws: Workspace | None, ckpt: Path, source: ModelSource, row: dict, device: Any, backend: str
                   ) -> Audio2LandmarkBundle:
    if backend != "torch":
        from evpcli.device import cpu_without_torch

        if backend == "numpy" or cpu_without_torch(device):
            bundle = _load_audio2lm_numpy(ws, ckpt, source, row)
            if bundle is not None or backend == "numpy":
                if bundle is None:
                    raise EvpError(f"{ckpt}: this checkpoint cannot be read without torch; use the torch backend")
                return bundle
    from evpcli.device import resolve_device
    from evpcli.nets.audio2lm import Audio2LandmarkModel
    from evpcli.nets.disentangle import Disentangle

    dev = resolve_device(device)
    state = _load_state(ckpt, dev)
    cfg, dis_cfg, net_cfg = _audio2lm_configs(state, ckpt)
    net = Audio2LandmarkModel(Disentangle(dis_cfg), net_cfg)
    _without_unused(net, state["model"], "disentangle.")
    net.load_state_dict(state["model"])
    from evpcli.torchinfer import TorchAudio2Landmark

    stats = {k[len("code_"):]: v.cpu().numpy() for k, v in state.items() if k.startswith("code_")}
    net = net.to(dev).eval()
    return Audio2LandmarkBundle(net, net_cfg, dis_cfg, _means_from_state(state),
                                _heldout(state, row, ws, cfg.get("disentangle_key")), source, stats,
                                TorchAudio2Landmark(net))


def _audio2lm_configs(state: dict, ckpt: Path) -> tuple[dict, DisentangleConfig, Audio2LandmarkConfig]:
    """A finished audio-to-landmark checkpoint's stored configs (either backend): all of them, the encoders' and the
    LSTM's; one line for a checkpoint of another stage or an unfinished run."""
    _check_stage(state, ckpt, STAGE_AUDIO2LM)
    if "emotion_means" not in state:
        raise EvpError(f"{ckpt}: training did not finish; re-run `{TRAIN_HINT[STAGE_AUDIO2LM]} --resume`")
    cfg = state["config"]
    return cfg, DisentangleConfig.from_dict(cfg["disentangle_net"]), Audio2LandmarkConfig(**cfg["net"])


def _load_audio2lm_numpy(ws: Workspace | None, ckpt: Path, source: ModelSource, row: dict) -> Audio2LandmarkBundle | None:
    """The numpy backend's bundle, or None when the checkpoint holds something the numpy reader does not know."""
    from evpcli.npinfer import NumpyAudio2Landmark, UnsupportedCheckpoint, read_checkpoint

    if not ckpt.exists():
        raise EvpError(f"{ckpt}: checkpoint missing; train it first")
    try:
        state = read_checkpoint(ckpt)
    except UnsupportedCheckpoint:
        return None
    except Exception as exc:  # a truncated or foreign file
        raise EvpError(f"{ckpt}: not a readable evp model ({type(exc).__name__}); re-train or give another "
                       f"--model") from None
    cfg, dis_cfg, net_cfg = _audio2lm_configs(state, ckpt)
    try:
        net = NumpyAudio2Landmark(state["model"], net_cfg, dis_cfg)
    except KeyError as exc:
        raise EvpError(f"{ckpt}: not a complete audio-to-landmark model (no {exc.args[0]}); re-train or give "
                       "another --model") from None
    stats = {k[len("code_"):]: np.asarray(v) for k, v in state.items() if k.startswith("code_")}
    return Audio2LandmarkBundle(net, net_cfg, dis_cfg, _means_from_state(state),
                                _heldout(state, row, ws, cfg.get("disentangle_key")), source, stats, net)


def load_landmark_emotion(ws: Workspace | None, path: str | Path | None = None, device: Any = "cpu",
                          key: str | None = None, shipped: bool = True) -> LandmarkEmotionBundle:
    """The landmark emotion classifier (explicit ``path`` > the workspace's model with ``key`` if given > newest >
    the shipped default)."""
    from evpcli.device import resolve_device
    from evpcli.nets.lm_emotion import LandmarkEmotionClassifier

    dev = resolve_device(device)
    if key is not None and path is None and ws is not None:
        row = ws.get_artifact(KIND_MODEL, key)
        if row is None:
            raise _missing(ws, STAGE_LM_EMOTION, "")
        ckpt, source = Path(row["path"]), ModelSource("workspace", STAGE_LM_EMOTION, key, str(row["path"]))
    else:
        ckpt, source, _ = _locate(ws, STAGE_LM_EMOTION, path, "", shipped)
    state = _load_state(ckpt, dev)
    cfg = LandmarkEmotionConfig(**state["config"])
    net = LandmarkEmotionClassifier(cfg)
    net.load_state_dict(state["state_dict"])
    from evpcli.torchinfer import TorchLandmarkEmotion

    net = net.to(dev).eval()
    return LandmarkEmotionBundle(net, cfg, source, TorchLandmarkEmotion(net))


# --------------------------------------------------------------------------- the neural renderer (per target)
def renderer_rows(ws: Workspace, target_key: str) -> list[dict]:
    """Finished neural renderers trained on the video with content hash ``target_key``, oldest first."""
    return [r for r in model_rows(ws, STAGE_RENDERER, None) if r["meta"].get("target") == target_key]


@dataclass
class RendererBundle:
    """A trained neural renderer (what :func:`evpcli.models.load_renderer` returns): ``net`` the generator (eval
    mode), ``config`` its :class:`~evpcli.config.NeuralRendererConfig`, ``source`` where it came from, ``target``
    the content hash of the video it was trained on, ``metrics`` its held-out metrics."""

    net: Any
    config: NeuralRendererConfig
    source: Any
    target: str = ""
    metrics: dict | None = None

    @property
    def device(self):
        return next(self.net.parameters()).device


def generator_from_state(state: dict, device: Any = "cpu"):
    """The generator (eval mode) and its config from a renderer checkpoint dict."""
    from evpcli.nets.renderer import RendererGenerator

    cfg = NeuralRendererConfig.from_dict(state["config"]["net"])
    net = RendererGenerator(cfg)
    net.load_state_dict(state["generator"])
    return net.to(device).eval(), cfg


def load_renderer(ws: Workspace | None, target_key: str | Path, path: str | Path | None = None,
                  device: Any = "cpu"):
    """The neural renderer trained for one target (explicit ``path`` > the newest finished workspace renderer
    whose target video has content hash ``target_key``; a path to the video itself is hashed). Returns a
    :class:`RendererBundle` (``.net`` the generator in eval mode, ``.config``, ``.source``)."""
    from evpcli.device import resolve_device
    from evpcli.workspace import hash_file

    dev = resolve_device(device)
    key = str(target_key)
    label = key
    if Path(key).is_file():
        label, key = Path(key).name, hash_file(key)
    if path is not None:
        ckpt = Path(path)
        if not ckpt.is_file():
            raise EvpError(f"{ckpt}: model file not found (given as --model)")
        source = ModelSource("explicit", STAGE_RENDERER, ckpt.stem, str(ckpt))
    else:
        rows = renderer_rows(ws, key) if ws is not None else []
        if not rows:
            raise EvpError(f"no neural renderer trained for {label}; run `evp train --stage renderer --target "
                           f"{label if label != key else 'T'}` (or use --renderer warp)")
        ckpt = Path(rows[-1]["path"])
        source = ModelSource("workspace", STAGE_RENDERER, rows[-1]["key"], str(ckpt))
    state = _load_state(ckpt, dev)
    _check_stage(state, ckpt, STAGE_RENDERER)
    if "metrics" not in state:
        raise EvpError(f"{ckpt}: training did not finish; re-run `evp train --stage renderer --target T --resume`")
    net, cfg = generator_from_state(state, dev)
    return RendererBundle(net, cfg, source, str(state.get("target", "")), state.get("metrics"))
