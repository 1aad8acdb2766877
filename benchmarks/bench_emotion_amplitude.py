"""What the judge needs: hand-made expressions of increasing amplitude through evp's own warp (issue 23, step 1).

    python benchmarks/bench_emotion_amplitude.py [--targets carphone,astronaut] [--emotions happy,sad,...]
                                                 [--gains 0,0.5,1,1.5,2,3] [--base frame|neutral] [--step 6]
                                                 [--close-mouth] [--smooth-folds] [--out DIR] [--json]

No network, no speech: each target frame's tracked landmarks (``fit-pose``, as ``evp render`` tracks them) are moved
by an emotion's whole-face FACS-style displacement (the synthetic corpus's prototype, :mod:`evpcli.corpus.synth.
expressions`: happy AU6+12, sad AU1+4+15+17, angry AU4+5+7+23, surprised AU1+2+5+26, fear AU1+2+4+5+20, disgusted
AU9+10+4) times a gain, posed onto the frame by the similarity of its stable points, and drawn by the render path's
:class:`~evpcli.engines.warp.WarpRenderer` with the target's mouth bank. Gain 1 is the prototype at full intensity
(level 3): happy lifts the lip corners ~11 % of the inter-ocular distance (IOD), sad the inner brows ~10 %, angry
lowers them ~9 %, surprised raises them ~11 %, disgusted raises the upper lip ~6 %.

Per target, emotion and gain: the key action-unit measure commanded and the one dlib reads back from the warped
frames (% IOD against the gain-0 frames; what the warp delivers), the FER judge's mean probability of the intended
class (``benchmarks/judge.py``), its rise over gain 0, the rate of frames where it is the judge's top class, and the
judge's top class. ``--base neutral`` first takes the target's own lasting expression away (``face.expression``, as
``evp render`` does: the astronaut's smile), so gain 0 is the target's estimated neutral face. ``--close-mouth``
brings the lips together in every frame (carphone talks with its mouth wide open; speech never allows this, it
says how much the open mouth costs); ``--smooth-folds`` flattens the shading of the cheeks and the folds beside
the nose and mouth after the warp (a smile's texture, which a warp moves but cannot take away). ``--out DIR``
writes a PNG per target and emotion: the face at each gain, side by side, to judge believability by eye.
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
from judge import CLASSES, EVP_NAMES  # noqa: E402
from real_faces import real_targets  # noqa: E402

EMOTIONS = ("happy", "sad", "angry", "surprised", "disgusted", "fear")
KEY = {"happy": "corner_raise", "sad": "inner_brow_raise", "angry": "brow_lowering", "surprised": "inner_brow_raise",
       "disgusted": "upper_lip_raise", "fear": "inner_brow_raise"}


def prototype(emotion: str) -> np.ndarray:
    """(68, 2) the emotion's prototype at full intensity, canonical 256-frame pixels."""
    from evpcli.face.expression import _bases

    _, protos, names = _bases()
    return protos[names.index(emotion)].astype(np.float64)


def to_frame(displacement: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    """Canonical displacements (68, 2) -> pixels of a frame whose tracked landmarks are ``tracked`` (68, 2): the
    linear part of the similarity taking the canonical face's stable points onto the frame's."""
    from evpcli.face.normalize import STABLE_POINTS, TEMPLATE, similarity_fit

    st = list(STABLE_POINTS)
    a = similarity_fit(np.asarray(TEMPLATE, np.float64)[st], np.asarray(tracked, np.float64)[st])
    return displacement @ a[:, :2].T


def key_measure(emotion: str, lm: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The emotion's key measure (% IOD) of landmarks (N, 68, 2) against ``base`` (N, 68, 2), the render's landmarks
    brought onto the base's frame by the stable points first (an expression, not a head motion)."""
    from evpcli.face.au import au_measures
    from evpcli.face.normalize import STABLE_POINTS, apply_transform, similarity_fit

    st = list(STABLE_POINTS)
    aligned = apply_transform(lm, similarity_fit(lm[:, st], base[:, st]))
    return au_measures(aligned, base)[KEY[emotion]]


def closed_lips(lm: np.ndarray) -> np.ndarray:
    """(68, 2) with the inner lips together: the lower inner lip, the outer lower lip and the chin move up by the
    inner-lip gap (the chin by less)."""
    out = lm.copy()
    gap = np.maximum(out[[67, 66, 65], 1] - out[[61, 62, 63], 1], 0.0)
    out[[67, 66, 65], 1] -= gap
    out[[59, 58, 57, 56, 55], 1] -= gap.mean()
    out[[6, 7, 8, 9, 10], 1] -= gap.mean() * np.array([0.5, 0.8, 1.0, 0.8, 0.5])
    return out


def smooth_folds(frame: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """``frame`` with the shading of the cheeks and of the folds from the nose wings past the mouth corners (a
    smile's nasolabial folds and raised cheeks) flattened: inside a feathered mask over each side's cheek, the
    detail finer than ~0.15 IOD is taken away (the skin's colour and the light's slow gradient stay)."""
    iod = float(np.linalg.norm(lm[45] - lm[36]))
    mask = np.zeros(frame.shape[:2], np.float32)
    for side in ([1, 2, 3, 4, 5, 48, 31, 40], [15, 14, 13, 12, 11, 54, 35, 47]):
        cv2.fillConvexPoly(mask, cv2.convexHull(lm[side].astype(np.float32)).astype(np.int32)[:, 0], 1.0)
    mouth = np.zeros_like(mask)
    cv2.fillConvexPoly(mouth, cv2.convexHull(lm[48:60].astype(np.float32)).astype(np.int32)[:, 0], 1.0)
    mask = np.clip(mask - cv2.dilate(mouth, np.ones((3, 3), np.uint8), iterations=max(1, int(0.04 * iod))), 0, 1)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.08 * iod)[..., None]
    flat = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), 0.15 * iod)
    return np.clip(mask * flat + (1 - mask) * frame, 0, 255).astype(np.uint8)


def face_crop(frame: np.ndarray, lm: np.ndarray, side: int = 160) -> np.ndarray:
    c, half = lm[[30, 8]].mean(0), 1.4 * np.linalg.norm(lm[45] - lm[36])
    k = side / 2 / half
    a = np.array([[k, 0, side / 2 - c[0] * k], [0, k, side / 2 - c[1] * k]])
    return cv2.warpAffine(frame, a, (side, side), flags=cv2.INTER_AREA)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default="carphone,astronaut")
    ap.add_argument("--emotions", default=",".join(EMOTIONS))
    ap.add_argument("--gains", default="0,0.5,1,1.5,2,3")
    ap.add_argument("--base", choices=("frame", "neutral"), default="frame")
    ap.add_argument("--step", type=int, default=6, help="every N-th target frame (videos)")
    ap.add_argument("--close-mouth", action="store_true",
                    help="also close the lips (the lower inner lip onto the upper): what speech does not allow")
    ap.add_argument("--smooth-folds", action="store_true",
                    help="also flatten the shading of the cheeks and the folds beside the nose and mouth (a texture "
                         "change the warp renderer does not make): what a smile's texture costs")
    ap.add_argument("--out", default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--judge", default="fer", help="fer or faceapi (benchmarks/judge_faceapi.py)")
    args = ap.parse_args(argv)

    from evpcli.face.expression import estimate_expression
    from evpcli.face.normalize import normalise
    from evpcli.engines.mouth import MouthBank
    from evpcli.render.targets import prepare_target, target_reference
    from evpcli.engines.warp import WarpRenderer
    from evpcli.workspace import Workspace

    from bench_emotion_real import make_judges

    judge = next(iter(make_judges(args.judge).values()))
    tmp = Path(tempfile.mkdtemp(prefix="bench-emotion-amplitude-"))
    out_dir = Path(args.out) if args.out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    ws = Workspace(tmp / "ws")
    gains = [float(g) for g in args.gains.split(",")]
    if 0.0 not in gains:
        gains = [0.0, *gains]
    rows = []
    for name, path in real_targets(args.targets.split(","), tmp).items():
        td = prepare_target(ws, path)
        from evpcli import media

        frames_all = td.frames if td.frames is not None else list(media.iter_frames(path, 25.0))
        ok = np.asarray(td.fit.valid, bool) & (np.asarray(td.reliability) > 0.5)
        idx = [i for i in range(0, len(frames_all), max(1, args.step)) if ok[i]]
        tracked_all = np.asarray(td.fit.landmarks, np.float64)
        renderer = WarpRenderer(MouthBank.load(td.bank_path) if td.bank_path else None)
        base = tracked_all[idx].copy()
        if args.base == "neutral":  # the target's own lasting expression taken away, as evp render does
            normalised, _ = normalise(tracked_all.astype(np.float32))
            ref = target_reference(normalised, ok)
            own = estimate_expression(ref).displacement.astype(np.float64)
            base = np.stack([b - to_frame(own, b) for b in base])
        near = tracked_all[idx[0], 27:36].mean(0)
        for emo in args.emotions.split(","):
            proto = prototype(emo)
            k = CLASSES.index(EVP_NAMES[emo])
            per_gain, strip = {}, []
            for g in gains:
                outs, cmd = [], []
                for j, i in enumerate(idx):
                    adapted = base[j] + g * to_frame(proto, tracked_all[i])
                    if args.close_mouth:
                        adapted = closed_lips(adapted)
                    renderer.reset()
                    out = renderer.render(frames_all[i], tracked_all[i], adapted)
                    outs.append(smooth_folds(out, adapted) if args.smooth_folds else out)
                    cmd.append(adapted)
                probs = judge.frames(outs, near)
                lms = [dlib_landmarks(o, near=near) for o in outs]
                lms = np.stack([x if x is not None else np.full((68, 2), np.nan) for x in lms])
                per_gain[g] = (probs, lms, np.stack(cmd))
                mid = len(outs) // 2
                strip.append(face_crop(outs[mid], tracked_all[idx[mid]]))
            p0 = float(np.nanmean(per_gain[0.0][0][:, k]))
            lm0 = per_gain[0.0][1]
            for g in gains:
                probs, lms, cmd = per_gain[g]
                fin = np.isfinite(probs).all(1)
                both = np.isfinite(lms).all((1, 2)) & np.isfinite(lm0).all((1, 2))
                delivered = (float(np.median(key_measure(emo, lms[both], lm0[both]))) if both.any() else float("nan"))
                commanded = float(np.median(key_measure(emo, cmd, base)))
                top = np.nanargmax(np.nan_to_num(probs, nan=-1), axis=1) == k
                if not fin.any():  # the judge's detector finds no face any more: the warp broke it
                    rows.append({"target": name, "base": args.base, "emotion": emo, "gain": g, "frames": 0})
                    if not args.json:
                        print(f"{name:10s} {emo:10s} gain {g:3.1f}  no face found by the judge", flush=True)
                    continue
                p = float(np.nanmean(probs[:, k]))
                row = {"target": name, "base": args.base, "closed_mouth": args.close_mouth,
                       "smooth_folds": args.smooth_folds, "emotion": emo, "gain": g,
                       "key": KEY[emo],
                       "commanded_pct_iod": round(commanded, 1), "delivered_pct_iod": round(delivered, 1),
                       "p_intended": round(p, 3), "rise": round(p - p0, 3),
                       "top1_rate": round(float(top[fin].mean()) if fin.any() else float("nan"), 3),
                       "top_class": CLASSES[int(np.nanargmax(np.nanmean(probs, axis=0)))], "frames": int(fin.sum())}
                rows.append(row)
                if not args.json:
                    print(f"{name:10s} {emo:10s} gain {g:3.1f}  {KEY[emo]:16s} commanded {commanded:+5.1f} "
                          f"delivered {delivered:+5.1f} % IOD | p {p:.2f} rise {p - p0:+.2f} top-1 "
                          f"{row['top1_rate']:.2f} judge's top {row['top_class']}", flush=True)
            if out_dir:
                cv2.imwrite(str(out_dir / f"{name}-{args.base}{'-closed' if args.close_mouth else ''}"
                                      f"{'-smooth' if args.smooth_folds else ''}-{emo}.png"),
                            cv2.cvtColor(np.concatenate(strip, 1), cv2.COLOR_RGB2BGR))
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
