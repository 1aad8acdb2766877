"""Landmark tracking throughput: frames per second of :func:`evpcli.face.landmarks.track_video` in one process.

    python benchmarks/bench_landmarks.py [--frames 250] [--runs 5] [--size 256] [--video clip.mp4]

By default the clip is the astronaut portrait of scikit-image (face about 110 px wide) moving, turning and
zooming over 256x256 frames; ``--video`` times a real clip instead (decoded first: decoding is not timed).
Prints the median over several runs (the machines are shared and noisy), and for scale the cost of one
full-frame face detection and of one shape prediction.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from evpcli.face import landmarks as L


def moving_portrait(n: int, size: int) -> np.ndarray:
    import cv2
    from skimage import data

    img = cv2.resize(data.astronaut()[20:220, 120:320], (size, size), interpolation=cv2.INTER_AREA)
    t = np.arange(n)
    frames = []
    for i in range(n):
        a = cv2.getRotationMatrix2D((size / 2, size / 2), 6 * np.sin(2 * np.pi * t[i] / 40),
                                    1 + 0.06 * np.sin(2 * np.pi * t[i] / 55))
        a[:, 2] += (10 * np.sin(2 * np.pi * t[i] / 33), 6 * np.sin(2 * np.pi * t[i] / 47))
        frames.append(cv2.warpAffine(img, a, (size, size), borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--video", default=None, help="time this video instead of the generated clip")
    args = ap.parse_args()
    if args.video:
        from evpcli.media import read_video

        frames = read_video(args.video, fps=25).frames
        what = f"{args.video} ({frames.shape[2]}x{frames.shape[1]}, {len(frames)} frames)"
    else:
        frames = moving_portrait(args.frames, args.size)
        what = f"generated moving portrait ({args.size}x{args.size}, {len(frames)} frames)"
    L.dlib_models()  # load the model outside the timing (once per process in real runs too)
    times, result = [], None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        result = L.track_video(frames)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"track_video on {what}: median {len(frames) / med:.0f} frames/s over {args.runs} runs "
          f"({1000 * med / len(frames):.2f} ms/frame; face in {100 * result.detected.mean():.0f} % of frames, "
          f"{result.n_detections} full-frame detection(s) per run)")
    gray = L._to_gray(frames[0])
    t0 = time.perf_counter()
    for _ in range(10):
        boxes = L._detect_boxes(gray, L.DEFAULT_LANDMARKS)
    det = (time.perf_counter() - t0) / 10
    t0 = time.perf_counter()
    for _ in range(100):
        L._predict(gray, boxes[0])
    pred = (time.perf_counter() - t0) / 100
    print(f"for scale: one full-frame detection {det * 1000:.1f} ms, one shape prediction {pred * 1000:.2f} ms")


if __name__ == "__main__":
    main()
