"""A photo with --head-motion: does the whole head move as one, and the body stay?

    python benchmarks/bench_still.py [--out DIR] [--seconds 4]

Renders the astronaut photo (skimage, a real portrait) with ``--head-motion`` and the shipped models, then measures
on the rendered frames with tools that are not the renderer: dlib's nose tip (landmark 30) per frame, its range
(max - min over the clip) in % of the face width (jaw points 0-16); the motion of a patch of hair above the
forehead, of the head's outline beside the temple, and of the shoulders/collar, by phase correlation against the
photo, frame by frame; and how well the hair follows the nose (Pearson r of their x and y motions). ``--out DIR``
keeps the video and writes the frames at the extremes of the motion as PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_render_real import dlib_landmarks  # noqa: E402

from evpcli import media  # noqa: E402


def shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(dx, dy) of patch b against patch a (phase correlation, sub-pixel)."""
    (dx, dy), _ = cv2.phaseCorrelate(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32),
                                     cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32))
    return np.array([dx, dy])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from skimage import data

    from evpcli.render.pipeline import render
    from evpcli.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="bench-still-"))
    out_dir = Path(args.out) if args.out else tmp
    out_dir.mkdir(parents=True, exist_ok=True)
    photo = data.astronaut()
    png = tmp / "astronaut.png"
    cv2.imwrite(str(png), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    wav = media.load_audio(REPO / "tests" / "data" / "arctic_a0007.wav")[: int(args.seconds * 16000)]
    speech = tmp / "speech.wav"
    import soundfile as sf

    sf.write(speech, wav, 16000)
    video = out_dir / "astronaut-head-motion.mp4"
    render(Workspace(tmp / "ws"), speech, png, video, emotion="neutral", head_motion=True)
    frames = list(media.iter_frames(video, 25.0))
    lm0 = dlib_landmarks(photo)
    face_w = float(np.linalg.norm(lm0[16] - lm0[0]))
    iod = float(np.linalg.norm(lm0[45] - lm0[36]))
    c = lm0[27]
    s = int(round(0.45 * iod))

    def patch(img, cx, cy):
        cx = int(np.clip(cx, s, img.shape[1] - s))
        cy = int(np.clip(cy, s, img.shape[0] - s))
        return img[cy - s:cy + s, cx - s:cx + s]

    spots = {"hair above the forehead": (c[0], lm0[19:25, 1].min() - 0.75 * iod),
             "head outline by the temple": (lm0[0, 0] - 0.25 * iod, lm0[0, 1] - 0.6 * iod),
             "shoulder / collar": (lm0[8, 0] + 1.6 * iod, lm0[8, 1] + 1.6 * iod)}
    nose, moves = [], {k: [] for k in spots}
    for f in frames:
        lm = dlib_landmarks(f, near=lm0[27:36].mean(0))
        nose.append(lm[30] if lm is not None else np.full(2, np.nan))
        for k, (x, y) in spots.items():
            moves[k].append(shift(patch(photo, x, y), patch(f, x, y)))
    nose = np.array(nose) - lm0[30]
    rows = {"frames": len(frames), "face_width_px": round(face_w, 1),
            "nose_range_pct_face_width": [round(float(100 * np.nanmax(nose[:, j]) - 100 * np.nanmin(nose[:, j])) / face_w, 1)
                                          for j in (0, 1)]}
    ok = np.isfinite(nose).all(1)
    for k, m in moves.items():
        m = np.array(m)
        rows[k] = {"range_px": [round(float(np.ptp(m[:, j])), 2) for j in (0, 1)],
                   "r_with_nose": [round(float(np.corrcoef(m[ok, j], nose[ok, j])[0, 1]), 3) if np.ptp(m[:, j]) > 0 else 0.0
                                   for j in (0, 1)]}
    if args.out:
        i_min, i_max = int(np.nanargmin(nose[:, 0])), int(np.nanargmax(nose[:, 0]))
        strip = np.concatenate([frames[i_min], photo, frames[i_max]], 1)
        cv2.imwrite(str(out_dir / "extremes.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    print(json.dumps(rows, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in rows.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
