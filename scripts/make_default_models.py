#!/usr/bin/env python3
"""Export the default models that ship inside the package from a trained workspace, and write their manifest.

    python scripts/make_default_models.py WORKSPACE [--out evpcli/data/models] [--recipe NAME]

Takes the workspace's newest full audio-to-landmark model (it holds the disentanglement encoders Ec, Ee and the
emotion classifier Ce; the decoder D, which inference never uses, is left out) with its per-emotion mean codes,
held-out sentences and code statistics (taken from the workspace or recomputed when the checkpoint predates them),
and the landmark emotion classifier `evp evaluate` trains (evaluating the workspace first, which also gives the
manifest's numbers). Weights only, no optimiser state. The network's weights are stored in half
precision when that changes the landmarks predicted on the held-out clips by less than 0.05 px on average
(checked here, recorded in the manifest); otherwise in single precision. Buffers (MFCC normalisation, the
displacement PCA) stay float32.

The manifest holds the sha256 and size of each file, the configs, the corpus recipe (its corpus.json), the seed,
the evp version, the first-epoch losses (tests/test_default_models.py reproduces the first one) and the
evaluation numbers, and the calibration of what `--emotion-audio` says (`scripts/calibrate_emotion_audio.py`: the
emotion classifier's temperature, the out-of-distribution limit, the confidence threshold, stored in the model;
it needs the real speech of docs/real-speech.md). `scripts/train_default_models.sh` builds the workspace from nothing and calls this script.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FP16_LIMIT_PX = 0.05
TRAINED_ON = ("the synthetic corpus of `evp synth-corpus` (see `corpus`): espeak-ng speech with emotional prosody, "
              "and faces warped from one portrait (scikit-image's astronaut) with scripted visemes and FACS-style "
              "expressions; no recorded human speech or video")


def _log_row(ws, stage: str, key: str, epoch: int = 1) -> dict | None:
    """Epoch ``epoch`` of the run's log; ``key`` is a model key (``<run>-e<epochs>``) or a run key."""
    run = re.sub(r"-e\d+$", "", key)
    p = ws.root / "runs" / f"{stage}-{run}-log.csv"
    if not p.exists():
        return None
    with open(p, newline="") as f:
        for row in csv.DictReader(f):
            if int(row["epoch"]) == epoch:
                return {k: float(v) for k, v in row.items() if k not in ("seconds", "steps_per_second")}
    return None


def _corpus_recipe(ws) -> dict | None:
    """The corpus.json of the synthetic corpus the workspace was prepared from (found above a clip's video)."""
    clips = ws.clips(status="ok")
    if not clips:
        return None
    for parent in Path(clips[0].video).resolve().parents:
        if (parent / "corpus.json").exists():
            return json.loads((parent / "corpus.json").read_text())
    return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def shipped_audio2lm_state(state: dict, half: bool) -> dict:
    """The inference part of a workspace audio-to-landmark checkpoint: no optimiser, no decoder; parameters in
    half precision if ``half`` (buffers stay float32)."""
    import torch

    from evpcli.nets.audio2lm import Audio2LandmarkModel
    from evpcli.nets.disentangle import Disentangle
    from evpcli.config import Audio2LandmarkConfig, DisentangleConfig

    cfg = state["config"]
    net = Audio2LandmarkModel(Disentangle(DisentangleConfig.from_dict(cfg["disentangle_net"])),
                              Audio2LandmarkConfig(**cfg["net"]))
    params = {n for n, _ in net.named_parameters()}
    model = {}
    for k, v in state["model"].items():
        if k.startswith("disentangle.decoder."):
            continue
        model[k] = v.detach().to(torch.float16 if half and k in params else v.dtype).clone()
    out = {k: v for k, v in state.items() if k not in ("model", "optimizer")}  # configs, means, code statistics
    out["model"] = model
    return out


def complete_state(state: dict, ws, bundle) -> dict:
    """A workspace checkpoint with what inference needs and older training code did not store: the stage, the
    held-out sentences (from the workspace) and the statistics of the training clips' emotion codes (recomputed
    exactly as training computes them; the emotion means are recomputed too and must match the stored ones)."""
    import torch

    out = dict(state)
    out.setdefault("stage", "audio2lm")
    if out.get("heldout_sentences") is None:
        out["heldout_sentences"] = sorted(bundle.heldout_sentences)
    if not any(k.startswith("code_") for k in out):
        from evpcli.train.audio2lm import _emotion_means, load_clip_data

        held = set(out["heldout_sentences"])
        seq_len = int(state["config"]["train"].get("seq_len", 1))
        clips = [c for c in load_clip_data(ws) if c.sentence not in held and len(c.windows) >= seq_len]
        means, present, stats = _emotion_means(bundle.net, clips)
        stored = state["emotion_means"].cpu().numpy()
        if not np.allclose(means[present], stored[present], atol=1e-4):
            raise SystemExit("recomputed emotion means differ from the checkpoint's; is this the workspace the "
                             "model was trained on?")
        out.update({f"code_{k}": torch.from_numpy(np.asarray(v)) for k, v in stats.items()})
    return out


def fp16_check(ws, full_path: Path, half_path: Path) -> dict:
    """Mean and max over held-out clips of the mean per-frame landmark distance (px of the 256 frame) between the
    float32 and the half-precision weights (own emotion code of each clip, silence gate on, as evaluate does)."""
    from evpcli.infer import predict_landmarks
    from evpcli.models import load_audio2lm
    from evpcli.train.audio2lm import load_clip_data

    a = load_audio2lm(None, path=full_path, device="cpu")
    b = load_audio2lm(None, path=half_path, device="cpu")
    clips = [c for c in load_clip_data(ws) if c.sentence in a.heldout_sentences]
    if not clips:
        raise SystemExit("no held-out clips in the workspace for the half-precision check")
    diffs = []
    for c in clips:
        pa = predict_landmarks(a, c.windows, None, c.reference, c.rms)
        pb = predict_landmarks(b, c.windows, None, c.reference, c.rms)
        diffs.append(float(np.linalg.norm(pa - pb, axis=-1).mean()))
    return {"clips": len(diffs), "mean_px": float(np.mean(diffs)), "max_px": float(np.max(diffs)),
            "limit_px": FP16_LIMIT_PX}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "evpcli" / "data" / "models")
    ap.add_argument("--recipe", default="scripts/train_default_models.sh",
                    help="How the workspace was made (recorded in the manifest).")
    args = ap.parse_args(argv)

    import torch

    import evpcli
    from evpcli.evaluate import evaluate_workspace
    from evpcli.models import (MANIFEST, SHIPPED_FILES, STAGE_AUDIO2LM, STAGE_DISENTANGLE, STAGE_LM_EMOTION,
                               load_audio2lm, load_landmark_emotion, sha256_file)
    from evpcli.workspace import Workspace, load_checkpoint

    ws = Workspace(args.workspace)
    if not ws.index_path.exists():
        print(f"{args.workspace}: not an evp workspace", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    print("evaluating the workspace (held-out clips) ...", file=sys.stderr)
    evaluation = dict(evaluate_workspace(ws, device="cpu"))
    a2l = load_audio2lm(ws, device="cpu", shipped=False)
    if evaluation["models"].get("audio2lm") != a2l.source.key:
        raise SystemExit("evaluate used another audio-to-landmark model than the newest one; re-run")
    state = complete_state(load_checkpoint(a2l.source.path), ws, a2l)
    clf = load_landmark_emotion(ws, key=evaluation["models"]["emotion_classifier"], device="cpu", shipped=False)
    clf_state = load_checkpoint(clf.source.path)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        if old.is_file():
            old.unlink()
    a2l_name, clf_name = SHIPPED_FILES[STAGE_AUDIO2LM], SHIPPED_FILES[STAGE_LM_EMOTION]
    full_tmp = out / ".audio2lm-float32.pt"
    torch.save(shipped_audio2lm_state(state, half=False), full_tmp)
    torch.save(shipped_audio2lm_state(state, half=True), out / a2l_name)
    check = fp16_check(ws, full_tmp, out / a2l_name)
    half = check["mean_px"] < FP16_LIMIT_PX
    if half:
        full_tmp.unlink()
    else:
        full_tmp.replace(out / a2l_name)
    check["kept"] = "float16" if half else "float32"
    # what --emotion-audio says, calibrated on the exported weights (scripts/calibrate_emotion_audio.py)
    sys.path.insert(0, str(ROOT / "scripts"))
    from calibrate_emotion_audio import calibrate, workspace_heldout

    shipped = load_audio2lm(None, path=out / a2l_name, device="cpu")
    code_stats, calibration = calibrate(shipped, workspace_heldout(ws, {str(s) for s in a2l.heldout_sentences}))
    torch.save({**load_checkpoint(out / a2l_name), **code_stats}, out / a2l_name)
    torch.save({"stage": STAGE_LM_EMOTION, "key": clf.source.key, "config": clf_state["config"],
                "state_dict": clf_state["state_dict"]}, out / clf_name)

    dis_key = state["config"]["disentangle_key"]
    dis_row = ws.get_artifact("models", dis_key)
    clf_row = ws.get_artifact("models", clf.source.key)
    files = {
        a2l_name: {"stages": [STAGE_AUDIO2LM, STAGE_DISENTANGLE], "key": a2l.source.key,
                   "weights": "float16" if half else "float32", "buffers": "float32",
                   "holds": "content encoder Ec, emotion encoder Ee, emotion classifier Ce (no decoder D), identity "
                            "MLP + LSTM + head, displacement PCA, per-emotion mean codes, code statistics"},
        clf_name: {"stages": [STAGE_LM_EMOTION], "key": clf.source.key, "weights": "float32",
                   "holds": "the landmark-sequence emotion classifier of `evp evaluate` (under 1 MB in "
                            "float32: not worth half precision)"},
    }
    for name, entry in files.items():
        entry["sha256"] = sha256_file(out / name)
        entry["bytes"] = (out / name).stat().st_size
    evaluation.pop("path", None)
    manifest = {
        "format": 1,
        "evp_version": evpcli.__version__,
        "git_commit": _git_commit(),
        "torch_version": torch.__version__,
        "trained_on": TRAINED_ON,
        "recipe": args.recipe,
        "corpus": _corpus_recipe(ws),
        "seed": state["config"]["train"].get("seed"),
        "files": files,
        "total_bytes": sum(e["bytes"] for e in files.values()),
        "configs": {
            "audio2lm": state["config"],
            "disentangle": dis_row["params"] if dis_row else None,
            "lm_emotion": clf_row["params"] if clf_row else {"net": clf_state["config"]},
        },
        "heldout_sentences": sorted(a2l.heldout_sentences),
        "emotions": sorted(a2l.emotion_means),
        "first_epoch": {"disentangle": _log_row(ws, "disentangle", dis_key),
                        "audio2lm": _log_row(ws, "audio2lm", a2l.source.key)},
        "fp16_check": check,
        "evaluation": evaluation,
        "emotion_audio_calibration": calibration,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    sizes = ", ".join(f"{n} ({e['bytes'] / 1e6:.1f} MB, {e['weights']})" for n, e in files.items())
    print(f"wrote {out}: {sizes}, {MANIFEST}; fp16 check: mean {check['mean_px']:.4f} px, max {check['max_px']:.4f} px over "
          f"{check['clips']} held-out clips; {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
