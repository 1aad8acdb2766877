"""Does real recorded speech drive the mouth? The measure of issue 12, on real clips the project never trains on.

    python benchmarks/bench_real_speech.py --workspace WS [--model PT] [--split tuning|heldout|all] [--actor M001]
        [--gate default|energy] [--json]

Per clip: landmarks from ``predict_landmarks`` (through ``infer.speech_landmarks``) with the neutral mean code of the
model, the actor's reference face (the workspace's first actor unless ``--actor``), and the silence gate **off**
(what the network itself does);
opening = ``face.parts.mouth_opening`` (inner-lip gap, px of the 256 frame); envelope = ``log(frame_rms + 1e-4)``;
**r** = Pearson correlation of opening and envelope over frames; **contrast** = mean opening over the loudest 40 %
of frames minus over the quietest 15 % (px). The same again with the silence gate **on** (the default gate, or
``--gate energy``: the RMS-only gate of before), and,
for clips with known pauses (noisy variants and dialogues: frames where the noise-free source is silent),
**pause px** = the mean inner-lip gap in those pauses, gate on (0 = lips together; for comparison, the
workspace actor's reference face, the mean of its neutral clips, is printed too).

The clips (``real_speech_clips.py``) come from installed Debian packages; missing ones are listed and skipped:
``sudo apt-get install pocketsphinx-testdata asterisk-core-sounds-en-wav alsa-utils``. Tuning and held-out clips
are reported apart; only the tuning clips may guide a choice.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_speech_clips import RealClip, real_clips  # noqa: E402

from evpcli import audio  # noqa: E402
from evpcli.config import SilenceGate  # noqa: E402
from evpcli.face.parts import mouth_opening  # noqa: E402

KINDS = ("clean16k", "8k", "noisy", "long")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / d) if d > 0 else 0.0


def contrast(opening: np.ndarray, envelope: np.ndarray) -> float:
    """Mean opening over the loudest 40 % of frames minus over the quietest 15 % (px)."""
    order = np.argsort(envelope, kind="stable")
    n = len(order)
    quiet = order[: max(1, int(round(0.15 * n)))]
    loud = order[n - max(1, int(round(0.40 * n))):]
    return float(opening[loud].mean() - opening[quiet].mean())


def pause_frames(clean: np.ndarray, n_frames: int) -> np.ndarray:
    """Frames where the noise-free source is silent (RMS under 3 % of its 95th percentile) -> (T,) bool."""
    rms = audio.frame_rms(clean, n_frames).astype(np.float64)
    return rms < 0.03 * max(np.percentile(rms, 95), 1e-9)


GATES = {
    "default": SilenceGate(),
    "energy": SilenceGate(floor_percentile=0.0, vad=False, close=False),  # the gate before issue 12
}


def load(workspace: str | None, actor: str | None, model: str | None = None):
    """(model bundle, reference (68, 2), neutral code, a description of both)."""
    from evpcli.models import load_audio2lm
    from evpcli.actors import load_actor
    from evpcli.workspace import KIND_ACTOR, Workspace

    ws = Workspace(workspace) if workspace else None
    bundle = load_audio2lm(ws, path=model)
    actors = sorted(a["key"] for a in ws.artifacts(KIND_ACTOR)) if ws is not None else []
    actor = actor or (actors[0] if actors else None)
    if actor is None:
        from evpcli.face.normalize import TEMPLATE

        reference = TEMPLATE
    else:
        reference = load_actor(ws, actor)["reference"].astype(np.float32)
    return bundle, reference, np.asarray(bundle.emotion_means["neutral"], np.float32), \
        f"{bundle.source.describe()}, reference {actor or 'template'}"


def measure_clip(bundle, reference, code, clip: RealClip, gate: SilenceGate = SilenceGate()) -> dict:
    from evpcli.infer import speech_landmarks

    wav = clip.wav
    off = speech_landmarks(bundle, wav, code, reference, gate=None)
    on = speech_landmarks(bundle, wav, code, reference, gate=gate)
    rms = audio.frame_rms(wav, len(off))
    env = np.log(rms.astype(np.float64) + 1e-4)
    o_off, o_on = mouth_opening(off), mouth_opening(on)
    row = {"clip": clip.name, "split": clip.split, "kind": clip.kind, "seconds": round(len(wav) / 16000, 2),
           "r_off": pearson(o_off, env), "contrast_off": contrast(o_off, env),
           "r_on": pearson(o_on, env), "contrast_on": contrast(o_on, env), "pause_px_on": None,
           "pause_px_off": None}
    if clip.clean is not None:
        pauses = pause_frames(clip.clean, len(off))
        if pauses.sum() >= 5:  # inner-lip gap in the pauses: 0 = lips together
            row["pause_px_on"] = float(o_on[pauses].mean())
            row["pause_px_off"] = float(o_off[pauses].mean())
    return row


def summarise(rows: list[dict]) -> list[dict]:
    """Mean of each measure per split, per split x kind."""
    out = []
    for split in ("tuning", "heldout"):
        sel = [r for r in rows if r["split"] == split]
        for kind in (None, *KINDS):
            part = [r for r in sel if kind is None or r["kind"] == kind]
            if not part:
                continue
            pauses = [r["pause_px_on"] for r in part if r["pause_px_on"] is not None]
            out.append({"split": split, "kind": kind or "all", "clips": len(part),
                        **{k: float(np.mean([r[k] for r in part])) for k in ("r_off", "contrast_off", "r_on", "contrast_on")},
                        "pause_px_on": float(np.mean(pauses)) if pauses else None})
    return out


def _fmt(v) -> str:
    return "" if v is None else f"{v:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", default=None, help="workspace holding the trained audio2lm model")
    ap.add_argument("--model", default=None, help="an audio2lm checkpoint (else the workspace's newest)")
    ap.add_argument("--split", default="all", choices=("tuning", "heldout", "all"))
    ap.add_argument("--actor", default=None, help="reference face (default: the workspace's first actor)")
    ap.add_argument("--gate", default="default", choices=tuple(GATES),
                    help="gate for the gate-on columns: default, or energy (the RMS-only gate before issue 12)")
    ap.add_argument("--json", action="store_true", help="print rows and summary as JSON")
    args = ap.parse_args(argv)
    if not args.workspace and not args.model:
        ap.error("give --workspace or --model")

    import torch

    torch.set_num_threads(1)
    bundle, reference, code, source = load(args.workspace, args.actor, args.model)
    clips, missing = real_clips(args.split)
    t0 = time.perf_counter()
    rows = [measure_clip(bundle, reference, code, c, GATES[args.gate]) for c in clips]
    summary = summarise(rows)
    if args.json:
        print(json.dumps({"model": source, "gate": args.gate, "rows": rows, "summary": summary, "missing": missing},
                         indent=1))
        return 0
    print(f"model: {source}; gate {args.gate}; {len(rows)} clips in {time.perf_counter() - t0:.1f} s")
    for m in missing:
        print(f"skipped {m}")
    head = (f"{'clip':32s} {'split':8s} {'kind':9s} {'sec':>5s} | {'r off':>6s} {'c off':>6s} | "
            f"{'r on':>6s} {'c on':>6s} {'pause':>6s}")
    print(head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r['clip']:32s} {r['split']:8s} {r['kind']:9s} {r['seconds']:5.1f} | {r['r_off']:6.2f} "
              f"{r['contrast_off']:6.2f} | {r['r_on']:6.2f} {r['contrast_on']:6.2f} {_fmt(r['pause_px_on']):>6s}")
    print(f"\nmeans (r, contrast px; pause = inner-lip gap in the pauses of noisy clips, gate on; "
          f"the reference face's gap is {float(mouth_opening(reference)):.2f} px)")
    print(f"{'split':8s} {'kind':9s} {'n':>3s} | {'r off':>6s} {'c off':>6s} | {'r on':>6s} {'c on':>6s} {'pause':>6s}")
    for s in summary:
        print(f"{s['split']:8s} {s['kind']:9s} {s['clips']:3d} | {s['r_off']:6.2f} {s['contrast_off']:6.2f} | "
              f"{s['r_on']:6.2f} {s['contrast_on']:6.2f} {_fmt(s['pause_px_on']):>6s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
