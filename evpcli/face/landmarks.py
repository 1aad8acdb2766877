"""68-point facial landmarks: dlib detection, tracking from frame to frame, gap filling and temporal smoothing.

Public API (other stages rely on these exactly):

- :func:`track_video` ``(frames (T, H, W, 3) uint8 RGB, config=LandmarkConfig()) -> TrackResult`` with
  ``landmarks`` (T, 68, 2) float32 pixels (smoothed, gaps filled), ``raw`` (T, 68, 2) float32 pixels (not
  smoothed; gaps filled the same way), ``detected`` (T,) bool (a face was measured in that frame, not
  interpolated), ``valid`` (T,) bool (False inside gaps longer than ``config.max_gap`` frames: those frames are
  only a hold/straight line), ``residual`` (T,) float32 (shape plausibility of each measured frame, NaN where
  none) and ``n_detections`` (how often the full-frame detector ran). Raises :class:`NoFaceError` when a face
  is found in fewer than ``config.min_detected`` of the frames.
- :func:`detect_landmarks` ``(image (H, W, 3) uint8 RGB) -> (68, 2) float32 | None`` for a single image.

Tracking. dlib's frontal face detector (HOG + linear SVM) costs 15-50 ms a frame; its 68-point shape predictor
(a cascade of regression trees) costs under 1 ms. So the detector runs on the first frame and whenever tracking
is lost; otherwise the box for frame t comes from the landmarks of frame t-1: at each detection the detector's
box is stored in template coordinates (through the similarity transform of the stable points onto
:data:`~evpcli.face.normalize.TEMPLATE`), and mapped back through the previous frame's transform. Each shape is
checked (its Procrustes residual against the template, and its size against the previous frame); a failed
check triggers a full detection in that frame. The predictor always returns *some* face-like shape, even on
a blank wall, so each tracked frame's look (a small grey patch of the face in template coordinates) is
correlated with the look the detector last confirmed: when it drops below ``min_similarity`` (and anyway every
``verify_every`` frames) the detector checks a small crop around the tracked box; no face there and a changed
look means the track is lost. A head turned too far for the frontal detector but still looking like the
confirmed face keeps its track.

Gaps (frames with no plausible face) are filled by linear interpolation between the measured frames (held at
the clip's ends); frames in a gap longer than ``max_gap`` are flagged ``valid = False``.

Smoothing (:func:`smooth_landmarks`, with :func:`evpcli.face.filters.savgol`). Offline, a zero-phase filter adds no
lag at all, so a causal filter (One-Euro, Kalman), which must trade jitter against lag, is the wrong tool here. A
Savitzky-Golay filter fits a polynomial over a centred window: its kernel is symmetric (zero phase, no lag) and it
keeps polynomial trends, so it flattens peaks far less than a moving average of the same length. The points get
different windows by how fast they really move (-3 dB points computed from the filters' frequency responses at
25 fps): jaw, brows and nose (still points, where the predictor's jitter is most of the frame-to-frame motion)
9 frames, order 2 (-3 dB at 3.0 Hz: head motion passes, jitter is cut); eyes 5 frames, order 2 (-3 dB at 5.9 Hz:
blinks survive); lips 7 frames, order 4 (-3 dB at 7.0 Hz, gain 0.98 at 4 Hz and 0.86 at 6 Hz: the 3-7 Hz syllable
rhythm of speech passes with its peaks, only the faster jitter is lowered). The tests measure the lag on the mouth
by cross-correlation against the unsmoothed track (0 frames) and the jitter on the nose bridge.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evpcli.config import LandmarkConfig
from evpcli.errors import EvpError
from evpcli.face.filters import savgol
from evpcli.face.normalize import TEMPLATE, apply_transform, procrustes_residual, similarity_fit
from evpcli.face.parts import STABLE

DEFAULT_LANDMARKS = LandmarkConfig()

JAW, BROWS, NOSE = range(0, 17), range(17, 27), range(27, 36)
EYES, MOUTH = range(36, 48), range(48, 68)


# The landmark tracker (dlib) reads a face's lasting expression (a brow raise, a smile held over a clip) short: on the
# synthetic corpus's training clips, its per-clip mean displacement from the actor's neutral face is 0.72-0.83 of the
# ground truth's (brows 0.72-0.74, eyes 0.74-0.76, lips 0.80-0.82, jaw 0.82-0.83; the lips' speech motion 0.93-0.96;
# `benchmarks/bench_render_pipeline.py --tracker-gain`). Every landmark the models learnt from is such a reading, so a
# face drawn with the predicted displacement is read short a second time after rendering: the renderer asks for the
# slow part of the displacement divided by this gain (render.drive.tracker_compensation), so that the tracker reads
# back the prediction, and an expression read from a real face is divided by it (emotion_face).
TRACKER_GAIN = 0.8

class NoFaceError(EvpError):
    """No (or too rarely a) face in a video."""


def predictor_path() -> Path:
    """The dlib 68-point model file shipped by the ``face_recognition_models`` package (not imported: it
    needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise EvpError("face_recognition_models is not installed; pip install face-recognition-models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.exists():
        raise EvpError(f"{path}: dlib landmark model missing; reinstall face-recognition-models")
    return path


_models: dict = {}
_model_locks = {"detector": threading.Lock(), "predictor": threading.Lock()}


def _model(name: str):
    with _model_locks[name]:
        if name not in _models:
            import dlib

            _models[name] = (dlib.get_frontal_face_detector() if name == "detector"
                             else dlib.shape_predictor(str(predictor_path())))
        return _models[name]


def dlib_models() -> tuple:
    """(dlib frontal face detector, 68-point shape predictor), loaded once per process."""
    return _model("detector"), _model("predictor")


def preload_models() -> None:
    """Start loading dlib's detector and shape predictor in two background threads (0.5 and 0.7 s of CPU, with
    the GIL released), so that a caller that will track a video can decode it meanwhile; :func:`dlib_models` then
    waits for them."""
    for name in ("detector", "predictor"):
        if name not in _models:
            threading.Thread(target=_model, args=(name,), name=f"evp-load-{name}", daemon=True).start()


@dataclass
class TrackResult:
    """Landmarks of a video, one row per frame. See the module docstring for each field."""

    landmarks: np.ndarray  # (T, 68, 2) float32 pixels, smoothed, gaps filled
    raw: np.ndarray  # (T, 68, 2) float32 pixels, not smoothed, gaps filled
    detected: np.ndarray  # (T,) bool, measured in this frame
    valid: np.ndarray  # (T,) bool, measured or in a short (interpolated) gap
    residual: np.ndarray  # (T,) float32 Procrustes residual of the measured shape, NaN where none
    n_detections: int = 0

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)


# ------------------------------------------------------------------ single frames
def _box_area(r) -> int:
    return max(r.right() - r.left(), 0) * max(r.bottom() - r.top(), 0)


OTHER_FACE_MIN_SCORE = 0.1
"""A detection besides the largest counts as another person (the "target shows N faces" warning) only when the
detector's score reaches this. dlib's own threshold is 0; a pattern on the astronaut's suit patch scores 0.00 and
was reported as a second face, while real second faces in opencv-doc's group pictures score 0.12-2.5."""


def _detect_boxes(gray: np.ndarray, cfg: LandmarkConfig, upsample: int | None = None,
                  scores: list | None = None) -> list[tuple[float, float, float, float]]:
    """Face boxes (left, top, right, bottom) in pixels of ``gray``, largest first. Detection runs on the frame
    shrunk to ``cfg.detect_max_side`` (fast), and when that finds nothing, to ``cfg.detect_retry_side``.
    ``scores``, if given, receives the detector's score of each box, in the same order."""
    import cv2

    detector, _ = dlib_models()
    h, w = gray.shape[:2]
    rects, conf, scale = [], [], 1.0
    for side in (cfg.detect_max_side, cfg.detect_retry_side):  # a small face in a big frame: look again, larger
        scale = min(1.0, side / max(h, w))
        small = gray if scale == 1.0 else cv2.resize(gray, (round(w * scale), round(h * scale)),
                                                     interpolation=cv2.INTER_AREA)
        rects, conf, _ = detector.run(np.ascontiguousarray(small), cfg.detect_upsample if upsample is None
                                      else upsample, 0.0)
        if len(rects) or scale == 1.0:
            break
    order = sorted(range(len(rects)), key=lambda i: _box_area(rects[i]), reverse=True)
    if scores is not None:
        scores[:] = [float(conf[i]) for i in order]
    return [(rects[i].left() / scale, rects[i].top() / scale, rects[i].right() / scale, rects[i].bottom() / scale)
            for i in order]


def count_people(scores: list) -> int:
    """How many people a detection's boxes (largest first, with ``scores``) show: the largest, and each other
    box the detector is sure of (:data:`OTHER_FACE_MIN_SCORE`)."""
    return 0 if not scores else 1 + sum(s >= OTHER_FACE_MIN_SCORE for s in scores[1:])


PREDICT_SIZE = 200.0
"""Faces smaller than this (box side, pixels) are upscaled before the shape predictor, whose python binding
returns whole pixels: a 100 px face then gets its landmarks to 0.5 px instead of 1 px."""


def _predict(gray: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    import cv2
    import dlib

    _, predictor = dlib_models()
    side = max(box[2] - box[0], box[3] - box[1], 1.0)
    scale = PREDICT_SIZE / side
    if scale > 1.05:  # predict on an upscaled crop around the box (1.5 box sides of margin each way)
        h, w = gray.shape
        x0, y0 = int(max(0, np.floor(box[0] - 0.5 * side))), int(max(0, np.floor(box[1] - 0.5 * side)))
        x1, y1 = int(min(w, np.ceil(box[2] + 0.5 * side))), int(min(h, np.ceil(box[3] + 0.5 * side)))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            crop = cv2.resize(gray[y0:y1, x0:x1], (round((x1 - x0) * scale), round((y1 - y0) * scale)),
                              interpolation=cv2.INTER_LINEAR)
            # pixel centres: crop pixel u covers source x0 + (u + 0.5) / scale - 0.5
            bx = [(box[0] - x0 + 0.5) * scale - 0.5, (box[1] - y0 + 0.5) * scale - 0.5,
                  (box[2] - x0 + 0.5) * scale - 0.5, (box[3] - y0 + 0.5) * scale - 0.5]
            rect = dlib.rectangle(*(int(round(v)) for v in bx))
            pts = np.array([(p.x, p.y) for p in predictor(crop, rect).parts()], np.float64)
            return ((pts + 0.5) / scale - 0.5 + np.array([x0, y0])).astype(np.float32)
    rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])), int(round(box[3])))
    shape = predictor(gray, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def _to_gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    frame = np.asarray(frame)
    if frame.ndim == 2:
        return np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def detect_landmarks(image: np.ndarray, config: LandmarkConfig = DEFAULT_LANDMARKS) -> np.ndarray | None:
    """68 landmarks (68, 2) float32 pixels of the largest plausible face in one RGB uint8 image, or None."""
    gray = _to_gray(image)
    for box in _detect_boxes(gray, config):
        shape = _predict(gray, box)
        if procrustes_residual(shape) <= config.max_residual:
            return shape
    return None


# ------------------------------------------------------------------ tracking


class _BoxModel:
    """The detector's box expressed in template coordinates, so it can be predicted from landmarks."""

    def __init__(self) -> None:
        self.centre: np.ndarray | None = None  # (2,) template pixels
        self.size: float = 0.0  # template pixels

    @staticmethod
    def _transform(shape: np.ndarray) -> tuple[np.ndarray, float]:
        a = similarity_fit(TEMPLATE[STABLE], shape[STABLE])  # template -> image
        return a, float(np.hypot(a[0, 0], a[1, 0]))

    def learn(self, box, shape: np.ndarray) -> None:
        a, s = self._transform(shape)
        centre_img = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        inv_rot = np.linalg.inv(a[:, :2])
        centre_t = inv_rot @ (centre_img - a[:, 2])
        size_t = ((box[2] - box[0]) + (box[3] - box[1])) / 2 / s
        if self.centre is None:
            self.centre, self.size = centre_t, size_t
        else:  # running mean: one detector box is noisy
            self.centre = 0.7 * self.centre + 0.3 * centre_t
            self.size = 0.7 * self.size + 0.3 * size_t

    def box(self, shape: np.ndarray) -> tuple[tuple[float, float, float, float], float]:
        a, s = self._transform(shape)
        c = apply_transform(self.centre[None], a)[0]
        half = self.size * s / 2
        return (c[0] - half, c[1] - half, c[0] + half, c[1] + half), 2 * half


def _iod(shape: np.ndarray) -> float:
    return float(np.linalg.norm(shape[45] - shape[36]))


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


_PATCH = 24  # side of the appearance patch (pixels)
_PATCH_FROM_TEMPLATE = np.array([[_PATCH / 160, 0, -48 * _PATCH / 160], [0, _PATCH / 160, -56 * _PATCH / 160]])
"""Template pixels -> patch pixels: the 160x160 template square at (48, 56), brows to chin."""


def _appearance(gray: np.ndarray, shape: np.ndarray) -> np.ndarray | None:
    """The face's look, for noticing sudden changes: a 24x24 grey patch warped from the face into template
    coordinates, zero-mean and unit-norm (flattened); None when the patch is flat (no face can be there)."""
    import cv2

    a = similarity_fit(shape[STABLE], TEMPLATE[STABLE])  # image -> template
    m = _PATCH_FROM_TEMPLATE[:, :2] @ a
    m = np.concatenate([m[:, :2], (m[:, 2] + _PATCH_FROM_TEMPLATE[:, 2])[:, None]], axis=1)
    patch = cv2.warpAffine(gray, m, (_PATCH, _PATCH), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    v = patch.astype(np.float32).ravel()
    v -= v.mean()
    norm = float(np.linalg.norm(v))
    if norm < 2.0 * _PATCH:  # grey-level std under 2: a flat area
        return None
    return v / norm


def _verify(gray: np.ndarray, box, cfg: LandmarkConfig) -> tuple | None:
    """Run the detector on a crop (3x the box) around ``box``; the detected box in frame pixels, or None."""
    import cv2

    h, w = gray.shape
    side = box[2] - box[0]
    x0, y0 = int(max(0, box[0] - side)), int(max(0, box[1] - side))
    x1, y1 = int(min(w, box[2] + side)), int(min(h, box[3] + side))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    crop = gray[y0:y1, x0:x1]
    scale = 100.0 / max(side, 1.0)  # the face at ~100 px: the detector's sweet spot without upsampling
    crop = cv2.resize(crop, (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    detector, _ = dlib_models()
    rects = detector(np.ascontiguousarray(crop), 0)
    if not rects:
        return None
    r = max(rects, key=_box_area)
    return (x0 + r.left() / scale, y0 + r.top() / scale, x0 + r.right() / scale, y0 + r.bottom() / scale)


def parse_face(face: str | int | None) -> str:
    """A ``--face`` choice: largest, left, right, an index N (N-th face from the left, from 0) or x,y (the face at
    that point of the first frame); UsageError otherwise. Returns it normalised."""
    import re

    from evpcli.errors import UsageError

    f = "largest" if face is None else str(face).strip().lower()
    if f in ("largest", "left", "right") or re.fullmatch(r"\d+", f) or re.fullmatch(r"-?\d+(\.\d+)?,-?\d+(\.\d+)?", f):
        return f
    raise UsageError(f"--face {face!r}: use largest, left, right, an index (0 = the leftmost face) or x,y (a point of "
                     "the first frame inside the face)")


def _choose(boxes: list, face: str) -> list:
    """The detected boxes ordered by the ``face`` rule (the chosen one first)."""
    if not boxes or face == "largest":
        return boxes
    by_x = sorted(boxes, key=lambda b: (b[0] + b[2]) / 2)
    if face == "left":
        return by_x
    if face == "right":
        return by_x[::-1]
    if face.isdigit():
        k = int(face)
        return [by_x[k]] + [b for i, b in enumerate(by_x) if i != k] if k < len(by_x) else []
    x, y = (float(v) for v in face.split(","))
    inside = [b for b in boxes if b[0] <= x <= b[2] and b[1] <= y <= b[3]]
    return sorted(inside, key=lambda b: np.hypot((b[0] + b[2]) / 2 - x, (b[1] + b[3]) / 2 - y))


def _measure(frames: np.ndarray, cfg: LandmarkConfig, face: str = "largest", info: dict | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per-frame shapes (T, 68, 2) (NaN where none), detected (T,), residual (T,), number of detector runs.

    ``frames``: any iterable of (H, W, 3) uint8 RGB frames (read one at a time: a long 1080p clip never has to
    be in memory whole). ``face``: which face to follow when several are seen (:func:`parse_face`); once chosen,
    the same person is followed (a face lost and found again is the one nearest where it was last). ``info``, if
    given, receives ``faces_seen`` (faces in the first frame with one) and ``face_box``."""
    info = info if info is not None else {}
    last_box: list = [None]
    shapes: list[np.ndarray] = []
    residual: list[float] = []
    boxes = _BoxModel()
    prev: np.ndarray | None = None
    prev_size = 0.0
    last_verify = 0
    n_det = 0
    ref_look: np.ndarray | None = None  # appearance of the face when the detector last confirmed it

    def from_detection(gray, near) -> tuple[np.ndarray, float, tuple] | None:
        nonlocal n_det
        n_det += 1
        scores: list = []
        found = _detect_boxes(gray, cfg, scores=scores)
        if "faces_seen" not in info and found:
            info["faces_seen"] = count_people(scores)
        near = near if near is not None else last_box[0]
        if near is not None:  # prefer the face closest to the one we were tracking (the same person)
            c = ((near[0] + near[2]) / 2, (near[1] + near[3]) / 2)
            found.sort(key=lambda b: (-_iou(b, near), np.hypot((b[0] + b[2]) / 2 - c[0], (b[1] + b[3]) / 2 - c[1])))
        else:  # the first face: by the --face rule
            found = _choose(found, face)
        for box in found:
            shape = _predict(gray, box)
            res = float(procrustes_residual(shape))
            if res <= cfg.max_residual:
                return shape, res, box
        return None

    nan_shape = np.full((68, 2), np.nan, np.float32)
    for t, frame in enumerate(frames):
        gray = _to_gray(frame)
        h, w = gray.shape
        got = None
        near = None
        if prev is not None:
            box, size = boxes.box(prev)
            near = box
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            if 0 <= cx < w and 0 <= cy < h:
                shape = _predict(gray, box)
                res = float(procrustes_residual(shape))
                _, new_box_size = boxes.box(shape)
                if res <= cfg.max_residual and abs(new_box_size / max(prev_size, 1e-6) - 1) <= cfg.max_scale_change:
                    got = (shape, res, None)
                    look = _appearance(gray, shape)
                    sim = -1.0 if look is None or ref_look is None else float(look @ ref_look)
                    if sim < cfg.min_similarity or t - last_verify >= cfg.verify_every:
                        last_verify = t
                        check = _verify(gray, box, cfg)
                        if check is None:
                            # no frontal face seen: keep the track only if it still looks like the confirmed
                            # face (a turned head the detector misses); else the predictor is following nothing
                            got = got if sim >= cfg.min_similarity else None
                        else:
                            # the shape the detector's own box gives: where it differs from the tracked one, the
                            # track has drifted (a fast turn; learning the box against a drifted shape would
                            # teach the box model the drift): restart from it
                            fresh = _predict(gray, check)
                            drift = float(np.linalg.norm(fresh - shape, axis=1).mean())
                            if _iou(check, box) < 0.5 or drift > cfg.max_drift * _iod(fresh):
                                res = float(procrustes_residual(fresh))
                                got = (fresh, res, check) if res <= cfg.max_residual else None
                            else:
                                boxes.learn(check, shape)
                                ref_look = look if look is not None else ref_look
        if got is None:
            got = from_detection(gray, near)
            last_verify = t
        if got is None:
            prev = None
            shapes.append(nan_shape)
            residual.append(np.nan)
            continue
        shape, res, det_box = got
        if det_box is not None:
            boxes.learn(det_box, shape)
            ref_look = _appearance(gray, shape)
            if last_box[0] is None:
                info["face_box"] = [round(float(v), 1) for v in det_box]
        last_box[0] = boxes.box(shape)[0]
        shapes.append(shape)
        residual.append(res)
        prev = shape
        prev_size = boxes.box(shape)[1]
    arr = np.stack(shapes) if shapes else np.zeros((0, 68, 2), np.float32)
    res_arr = np.asarray(residual, np.float32)
    return arr, ~np.isnan(res_arr), res_arr, n_det


def fill_gaps(shapes: np.ndarray, detected: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill undetected frames of (T, 68, 2) ``shapes``: linear interpolation between measured frames, the
    nearest measured frame at the clip's ends. Returns (filled (T, 68, 2) float32, valid (T,) bool), valid
    False for frames in a gap longer than ``max_gap``. Needs at least one detected frame."""
    n = len(shapes)
    idx = np.flatnonzero(detected)
    if len(idx) == 0:
        raise ValueError("no detected frame to fill from")
    flat = shapes.reshape(n, -1).astype(np.float64)
    t = np.arange(n)
    filled = np.empty_like(flat)
    for j in range(flat.shape[1]):
        filled[:, j] = np.interp(t, idx, flat[idx, j])
    valid = detected.copy()
    gap_start = None
    for i in range(n + 1):
        missing = i < n and not detected[i]
        if missing and gap_start is None:
            gap_start = i
        elif not missing and gap_start is not None:
            if i - gap_start <= max_gap:
                valid[gap_start:i] = True
            gap_start = None
    return filled.reshape(shapes.shape).astype(np.float32), valid


def smooth_landmarks(raw: np.ndarray, config: LandmarkConfig = DEFAULT_LANDMARKS) -> np.ndarray:
    """Zero-phase Savitzky-Golay smoothing over time of (T, 68, 2) landmarks, per point group (see the module
    docstring for the windows and why). Returns (T, 68, 2) float32; clips shorter than a window get a
    shorter one (or none)."""
    raw = np.asarray(raw, np.float64)
    out = raw.copy()
    n = len(raw)
    groups = [(list(JAW) + list(BROWS) + list(NOSE), config.smooth_window_stable, config.smooth_order_stable),
              (list(EYES), config.smooth_window_eyes, config.smooth_order_eyes),
              (list(MOUTH), config.smooth_window_mouth, config.smooth_order_mouth)]
    for points, window, order in groups:
        window = min(window, n if n % 2 else n - 1)
        if window <= order or window < 3:
            continue
        out[:, points] = savgol(raw[:, points], window, order)
    return out.astype(np.float32)


def track_video(frames: np.ndarray, config: LandmarkConfig = DEFAULT_LANDMARKS, face: str = "largest",
                info: dict | None = None) -> TrackResult:
    """Track 68 landmarks through a video.

    ``frames``: (T, H, W, 3) uint8 RGB, or any iterable of (H, W, 3) uint8 RGB frames (e.g.
    :func:`evpcli.media.iter_frames`, so long high-resolution clips stream through). Returns a :class:`TrackResult`
    (``landmarks`` smoothed (T, 68, 2) float32 pixels, ``raw``, ``detected``, ``valid``, ``residual``,
    ``n_detections``). Raises :class:`NoFaceError` when a face is found in fewer than ``config.min_detected``
    of the frames.
    """
    shapes, detected, residual, n_det = _measure(frames, config, face, info)
    n = len(shapes)
    if n == 0:
        raise NoFaceError("no frames to track")
    n_found = int(detected.sum())
    if n_found == 0 and face != "largest":
        raise NoFaceError(f"no face matching --face {face} in any frame (faces are numbered from the left from 0; a "
                          "point x,y must lie inside the face in the first frame)")
    if n_found == 0 or n_found < config.min_detected * n:
        first = int(np.flatnonzero(~detected)[0])
        raise NoFaceError(f"no face found in {n - n_found} of {n} frames (first: frame {first}); "
                          "use a video where one face is visible and frontal")
    raw, valid = fill_gaps(shapes, detected, config.max_gap)
    return TrackResult(landmarks=smooth_landmarks(raw, config), raw=raw, detected=detected, valid=valid,
                       residual=residual, n_detections=n_det)
