#!/usr/bin/env python3
"""Calibrate what `--emotion-audio` says (issue 23) for an audio-to-landmark model, and store it in the model.

    python scripts/calibrate_emotion_audio.py --corpus CORPUS                 # the shipped model (and its manifest)
    python scripts/calibrate_emotion_audio.py --workspace WS [--corpus CORPUS] # a workspace's newest model
    ... [--model PATH] [--dry-run] [--json]

Fits, with :func:`evpcli.calibration.fit_calibration`, the emotion classifier's temperature (on the corpus's
held-out clips: the sentences the model never trained on, read from the model), the distance limit of the
out-of-distribution test and the confidence threshold (from those clips and the *tuning* real clips of
``benchmarks/real_speech_clips.py``, neutral real speech from Debian packages), then writes them into the
checkpoint as ``code_temperature``, ``code_limit`` (the training-time limit is kept as ``code_train_limit``) and
``code_confident``, and, for the shipped model, the file's sha256 and size and a ``emotion_audio_calibration``
block (the numbers, and the confident misreadings of real speech before and after, tuning and held-out clips apart)
into the manifest. Re-running it recomputes everything from the uncalibrated numbers, so it is idempotent.

The corpus's held-out clips come from ``--corpus`` (the folder `evp synth-corpus` wrote: ``ACTOR/audio/EMOTION/
level_N/SSS.wav``) or else from the workspace's prepared clips (their audio files). Needs the real speech packages
of docs/real-speech.md (sudo apt-get install pocketsphinx-testdata asterisk-core-sounds-en-wav alsa-utils).
`scripts/make_default_models.py` calls :func:`calibrate` at export.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CALIBRATION_KEYS = ("code_temperature", "code_confident", "code_train_limit")


def corpus_heldout(corpus: Path, heldout: set[str]) -> list[tuple[str, str, Path]]:
    """(clip name, emotion, wav) of the corpus's clips whose sentence is held out (``SSS.wav``: sentence int(SSS))."""
    out = []
    for wav in sorted(corpus.glob("*/audio/*/*/*.wav")):
        if str(int(wav.stem)) in heldout if wav.stem.isdigit() else wav.stem in heldout:
            out.append((f"{wav.parts[-5]}/{wav.parts[-3]}/{wav.parts[-2]}/{wav.stem}", wav.parts[-3], wav))
    return out


def workspace_heldout(ws, heldout: set[str]) -> list[tuple[str, str, Path]]:
    return [(c.clip_id, c.emotion, Path(c.audio)) for c in ws.clips(status="ok") if str(c.sentence) in heldout]


def _uncalibrated(bundle) -> None:
    """Drop a stored calibration from a loaded bundle (a re-run starts from the model's own numbers)."""
    stats = bundle.code_stats
    if "train_limit" in stats:
        stats["limit"] = stats.pop("train_limit")
    for k in ("temperature", "confident"):
        stats.pop(k, None)


def _codes(bundle, wavs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from evpcli import audio
    from evpcli.infer import clip_emotion_code, code_distance, code_logits

    codes = np.stack([clip_emotion_code(bundle, audio.speech_windows(w)) for w in wavs])
    return (codes, np.stack([code_logits(bundle, c) for c in codes]),
            np.array([code_distance(bundle, c) for c in codes], np.float64))


def misreadings(bundle, names: list[str], codes: np.ndarray) -> dict:
    """The readings of real (neutral) clips under the bundle's current statistics: per clip and the share stated
    as a confident emotion other than neutral ("confident misreadings"). Uncalibrated, every in-distribution
    reading counts as confident (what evp stated before the calibration, with no warning)."""
    from evpcli.infer import read_emotion_clip

    rows = []
    for n, c in zip(names, codes):
        e = read_emotion_clip(bundle, c, n)
        confident = e.confident if e.confident is not None else not e.out_of_distribution
        rows.append({"clip": n, "predicted": e.predicted, "probability": round(e.probability, 4),
                     "distance": None if e.distance is None else round(e.distance, 3),
                     "out_of_distribution": e.out_of_distribution, "reading": e.reading if e.calibrated else
                     (e.predicted if confident else "uncertain"), "confident": bool(confident)})
    wrong = [r for r in rows if r["confident"] and r["predicted"] != "neutral"]
    return {"clips": len(rows), "confident_misreadings": len(wrong),
            "rate": len(wrong) / len(rows) if rows else None,
            "confident_wrong_any_probability": sum(r["predicted"] != "neutral" and r["probability"] >= 0.5
                                                   for r in rows),
            "rows": rows}


def calibrate(bundle, heldout: list[tuple[str, str, Path]]) -> tuple[dict, dict]:
    """The calibration of a loaded audio-to-landmark bundle (changed in place to carry it): the ``code_`` entries
    to store in its checkpoint and a report (numbers, confident misreadings of real speech before and after)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from real_speech_clips import real_clips

    from evpcli import media
    from evpcli.calibration import fit_calibration
    from evpcli.config import EMOTIONS

    if not heldout:
        raise SystemExit("no held-out corpus clips found (is --corpus the corpus the model was trained on?)")
    _uncalibrated(bundle)
    train_limit = float(bundle.code_stats["limit"])
    labels = np.array([EMOTIONS.index(e) for _, e, _ in heldout])
    _, h_logits, h_dist = _codes(bundle, [media.load_audio(p) for _, _, p in heldout])
    real = {}
    for split in ("tuning", "heldout"):
        clips, missing = real_clips(split)
        if missing:
            raise SystemExit(f"real speech missing ({', '.join(missing)}): sudo apt-get install "
                             "pocketsphinx-testdata asterisk-core-sounds-en-wav alsa-utils")
        codes, logits, dist = _codes(bundle, [c.wav for c in clips])
        real[split] = ([c.name for c in clips], codes, logits, dist)
    before = {s: misreadings(bundle, r[0], r[1]) for s, r in real.items()}
    cal = fit_calibration(h_logits, labels, h_dist, real["tuning"][2], real["tuning"][3], EMOTIONS.index("neutral"))
    bundle.code_stats.update({"train_limit": np.float32(train_limit), **cal.stats()})
    after = {s: misreadings(bundle, r[0], r[1]) for s, r in real.items()}
    report = {**cal.report, "train_limit": train_limit, "heldout_sentences": sorted(bundle.heldout_sentences),
              "real_tuning_clips": real["tuning"][0], "real_heldout_clips": real["heldout"][0],
              "before": before, "after": after}
    import torch

    stats = {f"code_{k}": torch.tensor(np.float32(v)) for k, v in
             {"temperature": cal.temperature, "confident": cal.confident, "limit": cal.limit,
              "train_limit": train_limit}.items()}
    return stats, report


def summary_lines(report: dict) -> list[str]:
    lines = [f"temperature {report['temperature']:.3f} (held-out corpus NLL {report['heldout_nll']['before']:.3f} -> "
             f"{report['heldout_nll']['after']:.3f}, {report['heldout_clips']} clips), distance limit "
             f"{report['limit']:.3f} (was {report['train_limit']:.3f}), confident at p >= {report['confident']:.3f}"]
    for s in ("tuning", "heldout"):
        b, a = report["before"][s], report["after"][s]
        lines.append(f"real speech, {s} clips ({b['clips']}): confident misreadings {b['confident_misreadings']} "
                     f"({b['rate']:.0%}) -> {a['confident_misreadings']} ({a['rate']:.0%})")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, help="calibrate this workspace's newest audio-to-landmark model")
    ap.add_argument("--model", type=Path, help="this checkpoint instead (default: the shipped one, or the "
                                               "workspace's newest)")
    ap.add_argument("--corpus", type=Path, help="the synthetic corpus folder the model was trained on")
    ap.add_argument("--dry-run", action="store_true", help="compute and report, write nothing")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from evpcli.models import MANIFEST, SHIPPED_FILES, STAGE_AUDIO2LM, load_audio2lm, sha256_file
    from evpcli.workspace import Workspace, load_checkpoint, save_checkpoint

    ws = Workspace(args.workspace) if args.workspace else None
    if ws is not None and not ws.index_path.exists():
        print(f"{args.workspace}: not an evp workspace", file=sys.stderr)
        return 1
    bundle = load_audio2lm(ws, path=args.model, device="cpu", shipped=ws is None)
    held = {str(s) for s in bundle.heldout_sentences}
    if args.corpus is not None:
        clips = corpus_heldout(args.corpus, held)
    elif ws is not None:
        clips = workspace_heldout(ws, held)
    else:
        print("give --corpus (the corpus the shipped model was trained on) or --workspace", file=sys.stderr)
        return 2
    stats, report = calibrate(bundle, clips)
    report["model"] = {"path": str(bundle.source.path), "key": bundle.source.key, "origin": bundle.source.origin}
    if not args.dry_run:
        path = Path(bundle.source.path)
        state = load_checkpoint(path)
        save_checkpoint(path, {**state, **stats})
        if bundle.source.origin == "shipped":
            man_path = path.parent / MANIFEST
            manifest = json.loads(man_path.read_text())
            entry = manifest["files"][SHIPPED_FILES[STAGE_AUDIO2LM]]
            entry["sha256"], entry["bytes"] = sha256_file(path), path.stat().st_size
            manifest["total_bytes"] = sum(e["bytes"] for e in manifest["files"].values())
            manifest["emotion_audio_calibration"] = {k: v for k, v in report.items() if k != "model"}
            man_path.write_text(json.dumps(manifest, indent=2) + "\n")
        report["written"] = str(path)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(summary_lines(report)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
