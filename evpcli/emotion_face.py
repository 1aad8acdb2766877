"""``--emotion-face REF``: the emotion read from a reference face (a photo or a video of anyone).

EVP takes the emotion from speech; users often have the face they want instead ("look like this"). The reference
is tracked (the render's landmark tracker), its head pose and size taken away by the similarity normalisation
every landmark of evp goes through, and its identity by :func:`evpcli.face.expression.estimate_expression`: the
expression is read as non-negative coefficients of the corpus's FACS-style emotion prototypes, with the 3D model's
identity bases (face width, eye spacing, mouth width, brow height, ...) as nuisances. The coefficients then drive
the audio-to-landmark network in its own emotion space: the code is the neutral mean code plus, for every emotion,
its coefficient times the step from the neutral mean code to that emotion's mean code (coefficient 1 = the
prototype at full strength = the emotion's mean code). Nothing of the reference's geometry reaches the target: only
the code, so the target keeps its face shape and head pose.

A video reference gives its clip-level expression (the mean of its normalised landmarks) by default, or, with
``follow``, an expression per frame (smoothed over half a second) stretched over the speech.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evpcli.config import FPS
from evpcli.errors import EvpError

MIN_IOD_PX = 16.0  # a reference face smaller than this between the outer eye corners reads nothing reliable
MAX_FRAMES = 150  # frames of a video reference read (evenly spaced): the expression, not every frame, is wanted
AUDIO_SUFFIXES = (".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma", ".aiff", ".aif")
MIN_FOUND = 0.5  # a reference whose face is lost (hidden, turned away) in more frames than this is refused


@dataclass
class FaceReading:
    """What was read from a reference: per-frame coefficients (F, E) and their clip mean (E,), the emotion names
    (E,), the faces seen in its first frame, the frames read and how many had the face."""

    names: tuple[str, ...]
    per_frame: np.ndarray
    coefficients: np.ndarray
    faces_seen: int
    frames: int
    found: int

    def describe(self) -> str:
        shown = sorted(((c, n) for n, c in zip(self.names, self.coefficients, strict=True) if c > 0), reverse=True)
        return ", ".join(f"{n} {c:.2f}" for c, n in shown) if shown else "neutral"

    @property
    def strongest(self) -> tuple[str, float]:
        if not len(self.coefficients) or self.coefficients.max() <= 0:
            return "neutral", 0.0
        k = int(self.coefficients.argmax())
        return self.names[k], float(self.coefficients[k])

    def to_dict(self) -> dict:
        return {"coefficients": {n: round(float(c), 3) for n, c in zip(self.names, self.coefficients, strict=True)},
                "strongest": self.strongest[0], "strength": round(self.strongest[1], 3),
                "faces_seen": self.faces_seen, "frames": self.frames, "face_found": self.found}


def _frames(path: Path) -> list[np.ndarray]:
    from evpcli import media
    from evpcli.fitpose import is_image, read_target

    if is_image(path):
        return [read_target(path).frames[0]]
    frames = list(media.iter_frames(path, FPS))
    if not frames:
        raise EvpError(f"{path}: the emotion reference has no frames; give a photo or a video of a face")
    if len(frames) > MAX_FRAMES:
        frames = [frames[int(i)] for i in np.linspace(0, len(frames) - 1, MAX_FRAMES).round()]
    return frames


def read_face(path: str | Path) -> FaceReading:
    """Track the reference and read its expression (see the module docstring); EvpError (one line, exit 1) for a
    reference with no usable face: none found, lost in most frames, or too small."""
    from evpcli.face.expression import _bases, estimate_expression
    from evpcli.face.landmarks import (DEFAULT_LANDMARKS, TRACKER_GAIN, _detect_boxes, _to_gray, count_people,
                                       detect_landmarks)
    from evpcli.face.normalize import normalise

    path = Path(path)
    if not path.is_file():
        raise EvpError(f"{path}: no such emotion reference; give a photo or a video of a face")
    if path.suffix.lower() in AUDIO_SUFFIXES:
        raise EvpError(f"{path}: an audio file; --emotion-face takes a photo or a video of a face (an emotion clip "
                       "goes to --emotion-audio)")
    frames = _frames(path)
    scores: list = []
    _detect_boxes(_to_gray(frames[0]), DEFAULT_LANDMARKS, scores=scores)
    faces_seen = count_people(scores)
    shapes = []
    for frame in frames:
        lm = detect_landmarks(frame)  # the largest plausible face, frame by frame
        if lm is not None:
            shapes.append(lm)
    if not shapes:
        if faces_seen:  # the detector saw a face whose 68 points do not fit a face seen from the front
            raise EvpError(f"{path}: the face in the emotion reference is turned too far from the camera (or partly "
                           "hidden) to read its expression; give a photo or a video where it faces the camera")
        raise EvpError(f"{path}: no face found in the emotion reference; give a photo or a video where a face is "
                       "visible and frontal")
    if len(shapes) < MIN_FOUND * len(frames):
        raise EvpError(f"{path}: the face is hidden or lost in {len(frames) - len(shapes)} of {len(frames)} frames "
                       "of the emotion reference (hands over it, turned away); give one where the face is visible")
    lm = np.stack(shapes).astype(np.float32)
    iod = float(np.median(np.linalg.norm(lm[:, 45] - lm[:, 36], axis=-1)))
    if iod < MIN_IOD_PX:
        raise EvpError(f"{path}: the face in the emotion reference is {iod:.0f} px between the outer eye corners, too "
                       f"small to read an expression; give one where it is at least {MIN_IOD_PX:.0f} px")
    normalised, _ = normalise(lm)
    names = _bases()[2]
    # dlib reads a lasting expression at ~0.8 of its size (face.landmarks.TRACKER_GAIN): the reading is scaled back
    per_frame = np.stack([[r.coefficients[n] for n in names] for r in map(estimate_expression, normalised)])
    clip = estimate_expression(normalised.mean(axis=0))
    coefficients = np.array([clip.coefficients[n] for n in names]) / TRACKER_GAIN
    per_frame = per_frame / TRACKER_GAIN
    return FaceReading(names, per_frame, coefficients, faces_seen, len(frames), len(shapes))


def code_of(model: Any, coefficients: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Prototype coefficients (..., E) -> emotion codes (..., D): the neutral mean code plus each coefficient times
    the step to its emotion's mean code (emotions the model has no clips of are left out), clipped at 0 (codes are
    non-negative)."""
    means = getattr(model, "emotion_means", None) or {}
    if "neutral" not in means:
        raise EvpError("the model was trained without neutral clips, so an emotion cannot be read from a face; use "
                       "--emotion NAME")
    neutral = np.asarray(means["neutral"], np.float32)
    steps = np.stack([np.asarray(means[n], np.float32) - neutral if n in means else np.zeros_like(neutral)
                      for n in names])
    code = neutral + np.asarray(coefficients, np.float32) @ steps
    return np.maximum(code, 0.0).astype(np.float32)


def face_emotion_code(model: Any, path: str | Path, intensity: float = 1.0, follow: bool = False,
                      n_frames: int | None = None):
    """The :class:`~evpcli.infer.EmotionCode` of a reference face: its clip-level expression, or with ``follow``
    one code per output frame (``n_frames`` of them: the reference's expression over time, smoothed over half a
    second and stretched over the speech)."""
    from evpcli.infer import EmotionCode, scale_intensity

    reading = read_face(path)
    name = Path(path).name
    if follow and reading.frames > 1:
        if n_frames is None:
            raise EvpError("a time-varying face emotion needs the number of frames")
        from evpcli.face.filters import moving_average

        half_second = max(1, int(round(0.5 * FPS * len(reading.per_frame) / reading.frames)))
        per = moving_average(reading.per_frame, half_second)
        t = np.linspace(0.0, len(per) - 1, n_frames)
        coef = np.stack([np.interp(t, np.arange(len(per)), per[:, j]) for j in range(per.shape[1])], axis=1)
        code = np.stack([scale_intensity(model, c, intensity) for c in code_of(model, coef, reading.names)])
        desc = f"of face {name}, following it (clip: {reading.describe()})"
    else:
        code = scale_intensity(model, code_of(model, reading.coefficients, reading.names), intensity)
        desc = f"of face {name} ({reading.describe()})"
    if intensity != 1.0:
        desc += f" x{intensity:g}"
    strongest, strength = reading.strongest
    face = reading.to_dict()
    if strongest == "neutral":
        face["note"] = "no expression read from the reference: the render is neutral"
    return EmotionCode(code, desc, "face", intensity, face=face)
