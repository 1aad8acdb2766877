"""``--emotion-face`` read by an independent judge (issue 29): the reference's own emotion against the render's.

    python benchmarks/bench_emotion_face.py [--pairs astronaut:carphone,carphone-photo:astronaut] [--seconds 3]

For each reference:target pair (``benchmarks/real_faces.py`` names), renders ARCTIC a0007 onto the target with
``--emotion-face REFERENCE`` and with ``--emotion neutral``, and reads with the FER judge (``benchmarks/judge.py``)
the reference itself, the render and the neutral render: the reference's top class, the render's mean
probability of it, the neutral render's, the rise and the render's top-1 rate for it (goal: the same top class and
a rise >= 0.3), and what evp read from the reference. Also the identity and pose leak: dlib's rigid points (eye
corners, nose) of the render against the neutral render's, in % of the inter-ocular distance (median).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_emotion_real import make_judges, read_render  # noqa: E402
from bench_render_real import dlib_landmarks  # noqa: E402
from judge import CLASSES  # noqa: E402
from real_faces import real_targets  # noqa: E402

from evpcli import media  # noqa: E402
from evpcli.errors import EvpError  # noqa: E402
from evpcli.face.parts import STABLE  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", default="astronaut:carphone,carphone-photo:astronaut,astronaut:carphone-photo")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--step", type=int, default=3)
    ap.add_argument("--judge", default="fer", help="fer, faceapi, or fer,faceapi (a line per judge)")
    args = ap.parse_args(argv)
    import soundfile as sf

    from evpcli.render.pipeline import render
    from evpcli.workspace import Workspace

    judges = make_judges(args.judge)
    tmp = Path(tempfile.mkdtemp(prefix="bench-emotion-face-"))
    pairs = [p.split(":") for p in args.pairs.split(",")]
    paths = real_targets(sorted({n for p in pairs for n in p}), tmp)
    wav = media.load_audio(REPO / "tests" / "data" / "arctic_a0007.wav")[: int(args.seconds * 16000)]
    speech = tmp / "speech.wav"
    sf.write(speech, wav, 16000)
    for ref, target in pairs:
        ws = Workspace(tmp / f"ws-{ref}-{target}")
        ref_frames = list(media.iter_frames(paths[ref], 25.0))[:: args.step]
        first = dlib_landmarks(ref_frames[0])
        ref_near = first[27:36].mean(0) if first is not None else None
        owns = {n: np.nanmean(j.frames(ref_frames, ref_near), axis=0) for n, j in judges.items()}
        t_first = dlib_landmarks(next(iter(media.iter_frames(paths[target], 25.0))))
        near = t_first[27:36].mean(0) if t_first is not None else None
        out_n, out_f = tmp / f"{ref}-{target}-neutral.mp4", tmp / f"{ref}-{target}-face.mp4"
        try:  # first: a reference evp refuses (no face, too small) needs no neutral render
            res = render(ws, speech, paths[target], out_f, emotion_face=paths[ref])
        except EvpError as exc:
            for name, own in owns.items():
                k = int(np.nanargmax(own))
                print(f"{ref:15s} -> {target:15s} [{name}] reference reads {CLASSES[k]} {own[k]:.2f}; evp refused "
                      f"it: {exc}", flush=True)
            continue
        render(ws, speech, paths[target], out_n, emotion="neutral")
        pns, ln, _ = read_render(judges, out_n, args.step, near)
        pfs, lf, _ = read_render(judges, out_f, args.step, near)
        n = min(len(ln), len(lf))
        iod = np.linalg.norm(ln[:n, 45] - ln[:n, 36], axis=1)
        rigid = np.linalg.norm(lf[:n][:, list(STABLE)] - ln[:n][:, list(STABLE)], axis=2).mean(1) / iod
        read = res.emotion.get("description", "")
        for name, own in owns.items():
            k = int(np.nanargmax(own))
            pf, pn = pfs[name], pns[name]
            ok = np.isfinite(pf).all(1)
            top = np.nanargmax(np.nan_to_num(pf, nan=-1), axis=1) == k
            print(f"{ref:15s} -> {target:15s} [{name}] reference reads {CLASSES[k]} {own[k]:.2f}; evp read '{read}'; "
                  f"render p({CLASSES[k]}) {np.nanmean(pf[:, k]):.2f} vs neutral render {np.nanmean(pn[:, k]):.2f} "
                  f"(rise {np.nanmean(pf[:, k]) - np.nanmean(pn[:, k]):+.2f}), top-1 {top[ok].mean():.2f}, render's "
                  f"top {CLASSES[int(np.nanargmax(np.nanmean(pf, axis=0)))]}; rigid points "
                  f"{100 * np.nanmedian(rigid):.2f} % IOD", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
