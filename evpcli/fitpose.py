"""The fit-pose stage: track a target video's landmarks, fit the 3D landmark model per frame, cache the result.

``fit_pose(ws, target)`` is what ``evp fit-pose`` and render call. The fit is keyed by the video's content hash,
the frame rate, the :class:`~evpcli.config.FitConfig` and the 3D model used, and stored as
``<workspace>/fits/fit-<key>.npz`` plus a ``fits`` artifact row (so ``evp status`` lists fitted targets).
``learn_shape_model(ws)`` learns identity/expression bases from the workspace's prepared landmarks.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evpcli.config import FPS, FitConfig, LandmarkConfig, to_dict
from evpcli.errors import EvpError
from evpcli.face.landmarks import NoFaceError
from evpcli.face.pose import PoseFit, fit_landmarks, frontalise
from evpcli.face.shape3d import ShapeModel, default_shape_model, learn_bases
from evpcli.progress import Progress
from evpcli.workspace import (KIND_FIT, KIND_LANDMARKS, KIND_SHAPE3D, Workspace, cache_key, hash_file, load_npz,
                              save_npz)

FIT_FORMAT = 1


@dataclass
class FitResult(PoseFit):
    """A target video's 3D fit (see :class:`~evpcli.face.pose.PoseFit` for the pose fields) and where it lives.

    key: cache key; path: the npz; target: the video's path; fps: frame rate the frames were read at;
    size: (width, height) pixels; landmarks (T, 68, 2) float32: tracked landmarks (pixels); detected (T,) bool:
    a face was detected in the frame; cached: True when loaded from the workspace instead of computed.
    """

    key: str = ""
    path: Path = Path()
    target: str = ""
    fps: float = FPS
    size: tuple[int, int] = (0, 0)
    landmarks: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 68, 2), np.float32))
    detected: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, bool))
    cached: bool = False
    face: str = "largest"  # the --face rule the person was chosen by
    faces_seen: int = 1  # faces in the first frame with a face

    def summary(self) -> str:
        """One human line: frames, face found, reprojection error, pose ranges."""
        d = self.to_dict()
        return (f"{self.target}: {d['frames']} frames, face found in {d['face_found_pct']:.1f} %, mean reprojection "
                f"error {d['mean_error_px']:.2f} px; yaw {d['yaw_deg'][0]:.1f}...{d['yaw_deg'][1]:.1f}°, pitch "
                f"{d['pitch_deg'][0]:.1f}...{d['pitch_deg'][1]:.1f}°, roll {d['roll_deg'][0]:.1f}..."
                f"{d['roll_deg'][1]:.1f}°" + (" (cached)" if self.cached else ""))

    def to_dict(self) -> dict:
        """Plain JSON-able numbers: frames, face found %, mean reprojection error px, yaw/pitch/roll ranges."""
        e = self.euler_deg[self.valid] if self.valid.any() else self.euler_deg
        return {"target": self.target, "key": self.key, "path": str(self.path), "frames": self.n_frames,
                "fps": round(self.fps, 3), "size": list(self.size),
                "face_found_pct": round(100.0 * float(self.detected.mean()) if self.n_frames else 0.0, 2),
                "mean_error_px": round(self.mean_error_px(), 3),
                "yaw_deg": [round(float(e[:, 0].min()), 2), round(float(e[:, 0].max()), 2)],
                "pitch_deg": [round(float(e[:, 1].min()), 2), round(float(e[:, 1].max()), 2)],
                "roll_deg": [round(float(e[:, 2].min()), 2), round(float(e[:, 2].max()), 2)],
                "model": self.model.source, "cached": self.cached}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"format": np.array(FIT_FORMAT), "rotation": self.rotation, "euler_deg": self.euler_deg,
                "scale": self.scale, "translation": self.translation, "identity": self.identity,
                "expression": self.expression, "fitted": self.fitted, "error_px": self.error_px,
                "valid": self.valid, "euler_deg_raw": self.euler_deg_raw, "scale_raw": self.scale_raw,
                "translation_raw": self.translation_raw, "landmarks": self.landmarks, "detected": self.detected,
                "fps": np.array(self.fps), "size": np.array(self.size), "target": np.array(self.target),
                "face": np.array(self.face), "faces_seen": np.array(self.faces_seen),
                **self.model.to_arrays()}

    @classmethod
    def load(cls, path: str | Path, key: str = "") -> FitResult:
        z = load_npz(path)
        if int(z.get("format", -1)) != FIT_FORMAT:
            raise EvpError(f"{path}: fit from another evp version; delete it and re-run `evp fit-pose`")
        return cls(model=ShapeModel.from_arrays(z), rotation=z["rotation"], euler_deg=z["euler_deg"],
                   scale=z["scale"], translation=z["translation"], identity=z["identity"],
                   expression=z["expression"], fitted=z["fitted"], error_px=z["error_px"], valid=z["valid"],
                   euler_deg_raw=z["euler_deg_raw"], scale_raw=z["scale_raw"],
                   translation_raw=z["translation_raw"], key=key, path=Path(path), target=str(z["target"]),
                   fps=float(z["fps"]), size=tuple(int(v) for v in z["size"]), landmarks=z["landmarks"],
                   detected=z["detected"], cached=True, face=str(z["face"]) if "face" in z else "largest",
                   faces_seen=int(z["faces_seen"]) if "faces_seen" in z else 1)


def model_hash(model: ShapeModel) -> str:
    h = hashlib.sha256()
    for a in (model.mean, model.identity_basis, model.expression_basis):
        h.update(np.ascontiguousarray(a, np.float64).tobytes())
    return h.hexdigest()[:16]


def workspace_shape_model(ws: Workspace) -> ShapeModel:
    """The newest ``shape3d`` artifact of the workspace (see :func:`learn_shape_model`), else the default model."""
    rows = ws.artifacts(KIND_SHAPE3D)
    return ShapeModel.load(rows[-1]["path"]) if rows else default_shape_model()


def track_target(frames: np.ndarray, config: LandmarkConfig | None = None, progress: Progress | None = None,
                 face: str = "largest", info: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Landmarks of a target video with prepare-dataset's tracker (:func:`evpcli.face.landmarks.track_video`).

    frames (T, H, W, 3) uint8 RGB -> landmarks (T, 68, 2) float32 pixels (smoothed, short gaps filled),
    detected (T,) bool, valid (T,) bool (False inside long gaps: the fit ignores those frames).
    """
    from evpcli.face.landmarks import track_video

    total = len(frames) if hasattr(frames, "__len__") else None
    with (progress or Progress()).task("landmarks", total=total, unit="frames") as task:
        def counted():
            for f in frames:
                yield f
                task.advance(1)

        track = track_video(counted(), config or LandmarkConfig(), face, info)
    return track.landmarks, track.detected, track.valid


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def is_image(path: str | Path) -> bool:
    """Whether a target is a still image (a one-shot portrait) rather than a video, by its suffix."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_target(target: str | Path, fps: float | None = FPS):
    """All frames of a target: a video (resampled to ``fps``) or a still image as one frame -> media.Video."""
    import cv2

    from evpcli.media import Video, read_video

    if not is_image(target):
        return read_video(target, fps=fps)
    image = cv2.imread(str(target), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise EvpError(f"{target}: cannot read the image (empty, corrupt or not an image); give a png or jpg portrait")
    if min(image.shape[:2]) < 32:
        raise EvpError(f"{target}: the image is {image.shape[1]}x{image.shape[0]} pixels, too small for a face; "
                       "give a portrait at least 64 pixels high")
    return Video(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[None], float(fps or FPS))


def fit_pose(ws: Workspace, target: str | Path, config: FitConfig | None = None, fps: float | None = FPS,
             model: ShapeModel | None = None, progress: Progress | None = None, force: bool = False,
             video=None, face: str = "largest") -> FitResult:
    """Fit the 3D landmark model to every frame of ``target`` (cached per video content, fps, config and model).

    fps: the rate frames are read at (25, as render reads targets; None keeps the source rate). model: the 3D
    model (default: the workspace's learned ``shape3d`` model if any, else the shipped one).
    Raises EvpError when no face is found in the video. A still image (png, jpg) is a one-frame target.
    ``video``: the target's frames already decoded at ``fps`` (a media.Video), to avoid decoding twice.
    """
    cfg = config or FitConfig()
    target = Path(target)
    if not target.exists():
        raise EvpError(f"{target}: file not found")
    model = model or workspace_shape_model(ws)
    tracking = LandmarkConfig()
    from evpcli.face.landmarks import parse_face

    face = parse_face(face)
    params = {"fit": to_dict(cfg), "fps": fps, "model": model_hash(model), "landmarks": to_dict(tracking),
              "format": FIT_FORMAT}
    if face != "largest":  # (the default keeps the keys of fits made before there was a choice)
        params["face"] = face
    key = cache_key(hash_file(target), params=params)
    row = ws.get_artifact(KIND_FIT, key)
    if row is not None and not force:
        return FitResult.load(row["path"], key=key)
    video = video if video is not None else read_target(target, fps)
    try:
        info: dict = {}
        landmarks, detected, valid = track_target(video.frames, tracking, progress, face, info)
    except NoFaceError as exc:
        raise EvpError(f"{target}: {exc}") from None
    with (progress or Progress()).task("3D fit", total=1, unit="videos") as task:
        pose = fit_landmarks(landmarks, valid, model=model, config=cfg, fps=video.fps)
        task.advance(1)
    path = ws.path(KIND_FIT, f"fit-{key}.npz")
    result = FitResult(**{f.name: getattr(pose, f.name) for f in dataclasses.fields(PoseFit)}, key=key, path=path,
                       target=str(target), fps=video.fps, size=(video.frames.shape[2], video.frames.shape[1]),
                       landmarks=np.asarray(landmarks, np.float32), detected=np.asarray(detected, bool), face=face,
                       faces_seen=int(info.get("faces_seen", 1)))
    save_npz(path, **result.to_arrays())
    summary = result.to_dict()
    ws.put_artifact(KIND_FIT, key, path, params={"fit": to_dict(cfg), "fps": fps, "model": model_hash(model)},
                    meta={k: summary[k] for k in ("target", "frames", "face_found_pct", "mean_error_px",
                                                  "yaw_deg", "pitch_deg", "roll_deg")})
    return result


def draw_preview(frames: np.ndarray, fit: PoseFit) -> np.ndarray:
    """Frames with the fitted landmarks (green) and a pose axis at the nose (x red, y green, z blue) drawn on them."""
    import cv2

    out = np.ascontiguousarray(frames.copy())
    nose = fit.fitted[:, 30]
    length = 40.0 * fit.scale  # 40 mm
    axes = np.einsum("tij,jk->tki", fit.rotation[:, :2], np.eye(3)) * length[:, None, None]  # (T, 3 axes, 2)
    h = out.shape[1]
    thick = max(1, h // 200)
    for i in range(min(len(out), fit.n_frames)):
        img = out[i]
        for (x, y) in fit.fitted[i]:
            cv2.circle(img, (int(round(x)), int(round(y))), thick, (0, 255, 0), -1, cv2.LINE_AA)
        o = (int(round(nose[i, 0])), int(round(nose[i, 1])))
        for k, colour in enumerate(((255, 0, 0), (0, 255, 0), (0, 0, 255))):
            end = (int(round(nose[i, 0] + axes[i, k, 0])), int(round(nose[i, 1] + axes[i, k, 1])))
            cv2.line(img, o, end, colour, thick, cv2.LINE_AA)
    return out


def write_preview(fit: FitResult, out: str | Path) -> Path:
    """Write ``out`` (mp4): the target's frames with the fit drawn (see :func:`draw_preview`)."""
    from evpcli.media import read_video, write_video
    from evpcli.paths import check_output

    check_output(out, [fit.target], "--preview", ["--target"])
    video = read_video(fit.target, fps=fit.fps)
    return write_video(out, draw_preview(video.frames, fit), fps=fit.fps)


def learn_shape_model(ws: Workspace, n_identity: int = 10, n_expression: int = 10, max_frames: int = 20000,
                      outlier_mm: float = 25.0, progress: Progress | None = None) -> tuple[ShapeModel, Path]:
    """Learn identity/expression bases from the workspace's prepared landmarks; store a ``shape3d`` artifact.

    Every prepared clip's landmarks are fitted rigidly with the default model (pose only), the pose is removed,
    and the frontalised residual shapes go through PCA: identity from per-actor means, expression from what is
    left (see :func:`evpcli.face.shape3d.learn_bases`). Frames where a landmark lies more than ``outlier_mm``
    from the rigid fit are left out. Returns the model and its path.
    """
    clips = ws.clips()
    if not clips:
        raise EvpError(f"no prepared clips in {ws.root}; run `evp prepare-dataset` first")
    base = default_shape_model()
    rigid = ShapeModel(base.mean, base.identity_basis[:0], base.expression_basis[:0], source="rigid")
    frontal, actors = [], []
    with (progress or Progress()).task("pose-normalise", total=len(clips), unit="clips") as task:
        for clip in clips:
            arrays = ws.load_clip_feature(KIND_LANDMARKS, clip.clip_id)
            lm = arrays.get("landmarks", arrays.get("raw"))
            if lm is None:
                raise EvpError(f"landmarks of {clip.clip_id} have no 'landmarks' array; re-run prepare-dataset")
            ok = np.asarray(arrays.get("valid", arrays.get("detected", np.ones(len(lm), bool))), bool)
            if ok.sum() >= 2:
                fit = fit_landmarks(lm, ok, model=rigid, config=FitConfig(one_euro=False))
                # frames with a landmark far off (a tracking failure) would dominate the PCA: leave them out
                dist = np.linalg.norm(fit.fitted - lm, axis=-1) / fit.scale[:, None]
                ok &= dist.max(axis=1) < outlier_mm
                frontal.append(frontalise(lm, fit)[ok])  # depth along each ray from the mean shape
                actors += [clip.actor] * int(ok.sum())
            task.advance(1)
    if not frontal:
        raise EvpError("no usable landmarks in the workspace (no frame with a face)")
    shapes = np.concatenate(frontal)
    actors_arr = np.array(actors)
    if len(shapes) > max_frames:
        pick = np.random.default_rng(0).choice(len(shapes), max_frames, replace=False)
        shapes, actors_arr = shapes[pick], actors_arr[pick]
    model = learn_bases(shapes, actors_arr, base.mean, n_identity, n_expression,
                        source=f"learned from {len(clips)} clips of {ws.root}")
    key = cache_key(*[c.clip_id for c in clips], params={"n_identity": n_identity, "n_expression": n_expression,
                                                         "max_frames": max_frames, "outlier_mm": outlier_mm,
                                                         "model": model_hash(base)})
    path = ws.path(KIND_SHAPE3D, f"shape3d-{key}.npz")
    model.save(path)
    ws.put_artifact(KIND_SHAPE3D, key, path, params={"n_identity": n_identity, "n_expression": n_expression},
                    meta={"frames": int(len(shapes)), "actors": int(len(set(actors_arr.tolist())))})
    return model, path
