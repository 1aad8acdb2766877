"""A synthetic MEAD-shaped emotional talking-face corpus, with the ground truth that MEAD lacks.

Every clip is one actor saying one sentence in one emotion at one intensity level:

- **Speech**: espeak-ng (:mod:`evpcli.corpus.espeak`) with the actor's voice variant and base pitch; the
  emotion is prosody (rate, pitch level and range, volume, pauses between words) plus cheap voice quality
  (brighter and driven for angry, tremolo and breath for fear, darker for sad, ...), all growing with the level.
  espeak's phoneme events give the phoneme timeline. 0.3 s of silence lead and trail each utterance.
- **Face**: the astronaut portrait that scikit-image ships (Eileen Collins, NASA, public domain), its 68 landmarks
  found by dlib once per process. Each actor mirrors it or not, recolours it, and changes its face shape
  (jaw width, face length, eye spacing, nose length, mouth width, brow height) and depth. The driving landmarks
  of each frame are the actor's 3D shape plus expression offsets in 3D (speech visemes with coarticulation,
  FACS-like emotion prototypes scaled by the level, blinks), rotated by a smooth head pose and projected;
  the portrait is warped to them piecewise-affinely (:mod:`evpcli.face.warp`) and the open mouth is filled
  with a dark interior and upper teeth.

Projection convention (scaled orthographic), for every frame t::

    landmarks[t] = scale[t] * (rotation[t] @ shape3d_frames[t].T)[:2].T + translation[t]
    shape3d_frames[t] = shape3d + expression offsets of frame t (speech, emotion, blink)

``shape3d`` (68, 3) is the actor's neutral face, centred on its mean point, in about millimetres, OpenCV camera
axes (x right, y down, z away from the camera). ``rotation = Rz(roll) @ Ry(yaw) @ Rx(pitch)`` (see
:func:`euler_to_rotation`), ``euler_deg`` = (yaw, pitch, roll): yaw > 0 turns the nose to the image left,
pitch > 0 tips the nose down, roll > 0 turns the face clockwise in the image. ``scale`` is pixels per shape unit
and ``translation`` the pixel position of the shape's origin.

Ground-truth file (``groundtruth/<emotion>/level_<k>/<NNN>.npz``), T = video frames at 25 fps:

==================  ===================  =====================================================================
key                 shape, dtype         meaning
==================  ===================  =====================================================================
landmarks           (T, 68, 2) float32   driving landmarks, pixels of the video frame (iBUG 68 order)
rotation            (T, 3, 3) float32    head rotation (see above)
euler_deg           (T, 3) float32       yaw, pitch, roll in degrees
scale               (T,) float32         pixels per shape unit
translation         (T, 2) float32       pixels
shape3d             (68, 3) float32      the actor's neutral 3D shape (centred, ~mm)
shape3d_frames      (T, 68, 3) float32   shape3d plus each frame's expression offsets (before rotation)
mouth_open          (T,) float32         inner-lip gap of shape3d_frames (mean of 61-67, 62-66, 63-65), ~mm
blink               (T,) float32         eyelid closure 0 (open) .. 1 (closed)
expression_weight   (T,) float32         the emotion's intensity in this frame (0 for neutral)
phoneme_start_s     (P,) float32         phoneme start times, seconds from the start of the audio
phoneme_end_s       (P,) float32         phoneme end times
phoneme_labels      (P,) unicode         espeak-ng phoneme mnemonics (stress marks kept; ``_`` is a pause)
fps, size           () float32 / int32   25.0; frame width = height in pixels
actor, emotion, text  () unicode         who, how, what
level, sentence     () int32             intensity 1-3; sentence id (1-based, same id = same text)
==================  ===================  =====================================================================

Public API: :func:`make_clip` (one clip in memory, ~0.3 s at 256 px), :func:`write_clip`,
:func:`synth_corpus` (the whole corpus, parallel, deterministic), :func:`contact_sheet`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import scipy.ndimage
import scipy.signal

from evpcli import __version__
from evpcli.config import EMOTIONS
from evpcli.corpus.espeak import Prosody, synthesize
from evpcli.errors import EvpError
from evpcli.face.landmarks import dlib_models
from evpcli.face.pose import euler_from_rotation, rotation_from_euler
from evpcli.face.shape3d import generic_mean_shape
from evpcli.face.warp import PiecewiseAffineWarp, border_points
from evpcli.progress import Progress
from evpcli.workspace import atomic_path

FPS = 25.0
SAMPLE_RATE = 16000
LEAD_S = 0.3  # silence before and after the speech
DEFAULT_LEVELS = (1, 3)

# Harvard sentences (IEEE 1969, public domain): phonetically balanced, 2-3 s each.
SENTENCES: tuple[str, ...] = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The stale smell of old beer lingers.",
    "Open the crate but don't break the glass.",
)

# (gender letter, espeak voice variant, base pitch 0-100, rate words/min) per actor; cycled past the end.
VOICES: tuple[tuple[str, str, int, int], ...] = (
    ("M", "en+m3", 38, 160), ("W", "en+f2", 58, 170), ("M", "en+m1", 30, 150), ("W", "en+f4", 66, 165),
    ("M", "en+m5", 46, 175), ("W", "en+f3", 52, 155), ("M", "en+m7", 34, 165), ("W", "en+f1", 62, 160),
)


def actor_name(index: int) -> str:
    """MEAD-style actor id: M001, W002, M003, ..."""
    return f"{VOICES[index % len(VOICES)][0]}{index + 1:03d}"


def intensity(emotion: str, level: int) -> float:
    """How strongly an emotion shows: 0 for neutral, level / 3 otherwise (1/3, 2/3, 1)."""
    return 0.0 if emotion == "neutral" else float(level) / 3.0


# --------------------------------------------------------------------------------------------------- speech


@dataclass(frozen=True)
class EmotionStyle:
    """How an emotion changes speech, face and head at full intensity (level 3); scaled by :func:`intensity`.

    Prosody: ``rate`` multiplies words/min, ``pitch``/``range`` add to espeak's 0-100 scales, ``volume``
    multiplies, ``wordgap`` adds pauses (10 ms units). Voice quality: ``bright`` high-frequency boost,
    ``dark`` low-pass mix, ``drive`` soft-clipping gain, ``tremolo`` amplitude modulation depth (6 Hz),
    ``breath`` added noise. Face: ``open_mul`` scales speech mouth opening; ``open_bias``/``width_bias``/
    ``round_bias`` add to the mouth tracks. Head: ``pitch_deg``/``roll_deg`` mean pose, ``motion`` scales sway.
    """

    rate: float = 1.0
    pitch: float = 0.0
    range: float = 0.0
    volume: float = 1.0
    wordgap: float = 0.0
    bright: float = 0.0
    dark: float = 0.0
    drive: float = 0.0
    tremolo: float = 0.0
    breath: float = 0.0
    open_mul: float = 1.0
    open_bias: float = 0.0
    width_bias: float = 0.0
    round_bias: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0
    motion: float = 1.0


STYLES: dict[str, EmotionStyle] = {
    "neutral": EmotionStyle(),
    "angry": EmotionStyle(rate=1.17, pitch=14, range=30, volume=1.7, bright=1.2, drive=2.5, open_mul=1.15,
                          width_bias=0.2, pitch_deg=3, motion=1.4),
    "happy": EmotionStyle(rate=1.1, pitch=20, range=40, volume=1.25, bright=0.4, open_mul=1.1, open_bias=0.12,
                          width_bias=0.5, pitch_deg=-2, roll_deg=3, motion=1.3),
    "sad": EmotionStyle(rate=0.7, pitch=-22, range=-35, volume=0.6, wordgap=8, dark=0.75, breath=0.012,
                        tremolo=0.08, open_mul=0.65, pitch_deg=7, roll_deg=-2, motion=0.5),
    "fear": EmotionStyle(rate=1.28, pitch=26, range=10, volume=0.85, dark=0.15, tremolo=0.45, breath=0.015,
                         open_bias=0.15, width_bias=0.6, pitch_deg=2, motion=1.2),
    "surprised": EmotionStyle(rate=0.95, pitch=30, range=55, volume=1.35, bright=0.3, open_mul=1.1,
                              open_bias=0.45, round_bias=0.25, pitch_deg=-5, motion=1.1),
    "disgusted": EmotionStyle(rate=0.8, pitch=-10, range=15, volume=0.9, wordgap=4, dark=0.35, drive=0.6,
                              open_mul=0.85, open_bias=0.08, width_bias=0.2, pitch_deg=-1, roll_deg=4,
                              motion=0.8),
    "contempt": EmotionStyle(rate=0.86, pitch=-6, range=-15, volume=0.9, wordgap=3, dark=0.2, open_mul=0.85,
                             pitch_deg=-5, roll_deg=-4, motion=0.7),
}


def prosody_for(actor_index: int, emotion: str, level: int) -> Prosody:
    """espeak prosody of an actor's voice in an emotion at a level."""
    _, _, base_pitch, base_rate = VOICES[actor_index % len(VOICES)]
    style, a = STYLES[emotion], intensity(emotion, level)
    return Prosody(
        rate=int(round(base_rate * (1 + (style.rate - 1) * a))),
        pitch=int(np.clip(round(base_pitch + style.pitch * a), 0, 99)),
        range=int(np.clip(round(50 + style.range * a), 0, 100)),
        volume=int(np.clip(round(90 * (1 + (style.volume - 1) * a)), 10, 200)),
        wordgap=int(round(style.wordgap * a)),
    )


def _voice_quality(wav: np.ndarray, sr: int, style: EmotionStyle, a: float, rng: np.random.Generator) -> np.ndarray:
    """Cheap voice-quality changes whose size grows with the intensity ``a`` (0..1)."""
    if a <= 0:
        return wav
    y = wav.astype(np.float64)
    if style.bright or style.dark:
        b, c = scipy.signal.butter(2, 1800 / (sr / 2), btype="low")
        low = scipy.signal.lfilter(b, c, y)
        y = y + style.bright * a * (y - low)  # high shelf: brighter
        y = (1 - style.dark * a) * y + style.dark * a * low  # low-pass mix: darker
    if style.drive:
        g = 1 + style.drive * a
        y = np.tanh(g * y) / np.tanh(g) * (np.abs(y).max() if len(y) else 1)
    if style.tremolo:
        t = np.arange(len(y)) / sr
        y = y * (1 - style.tremolo * a * 0.5 * (1 + np.sin(2 * np.pi * 6.0 * t)))
    if style.breath:
        env = scipy.ndimage.uniform_filter1d(np.abs(y), size=int(0.03 * sr))
        y = y + style.breath * a * 20 * env * rng.standard_normal(len(y))
    return np.clip(y, -1, 1).astype(np.float32)


@dataclass
class Speech:
    """A clip's speech: 16 kHz mono float32 ``wav`` (a whole number of video frames long) and its phonemes."""

    wav: np.ndarray
    phonemes: list[tuple[float, float, str]]  # (start_s, end_s, espeak name)

    @property
    def n_frames(self) -> int:
        return int(round(len(self.wav) * FPS / SAMPLE_RATE))


def make_speech(actor_index: int, emotion: str, level: int, sentence_index: int, seed: int = 0) -> Speech:
    """Synthesise one sentence in an actor's voice with an emotion's prosody and voice quality."""
    style, a = STYLES[emotion], intensity(emotion, level)
    voice = VOICES[actor_index % len(VOICES)][1]
    rng = np.random.default_rng([seed, 11, actor_index, EMOTIONS.index(emotion), level, sentence_index])
    utt = synthesize(SENTENCES[sentence_index % len(SENTENCES)], voice, prosody_for(actor_index, emotion, level),
                     seed=int(rng.integers(0, 2**31 - 1)))
    wav = _voice_quality(utt.wav, utt.sample_rate, style, a, rng)
    wav = scipy.signal.resample_poly(wav, SAMPLE_RATE, utt.sample_rate).astype(np.float32)
    lead = int(LEAD_S * SAMPLE_RATE)
    per_frame = int(SAMPLE_RATE / FPS)
    total = lead + len(wav) + lead
    total = -(-total // per_frame) * per_frame  # whole video frames
    out = np.zeros(total, np.float32)
    out[lead:lead + len(wav)] = np.clip(wav, -1, 1)
    phonemes = [(t0 + LEAD_S, t1 + LEAD_S, name) for t0, t1, name in utt.phonemes]
    return Speech(wav=out, phonemes=phonemes)


# ------------------------------------------------------------------------------------------------- visemes

# (opening 0..1, width -1..1, rounding 0..1) per phoneme class; espeak English mnemonics.
_CONSONANTS: dict[str, tuple[float, float, float]] = {
    **dict.fromkeys(["p", "b", "m"], (0.0, 0.0, 0.0)),
    **dict.fromkeys(["f", "v"], (0.06, 0.0, 0.0)),
    **dict.fromkeys(["T", "D"], (0.2, 0.1, 0.0)),
    **dict.fromkeys(["t", "d", "n", "l", "s", "z", "t#", "d#", "l/", "n-", "l-", "?"], (0.16, 0.15, 0.0)),
    **dict.fromkeys(["S", "Z", "tS", "dZ"], (0.18, 0.0, 0.55)),
    **dict.fromkeys(["k", "g", "N", "h", "x"], (0.28, 0.0, 0.0)),
    **dict.fromkeys(["r", "r-", "*", "R"], (0.2, 0.0, 0.45)),
    **dict.fromkeys(["w", "W"], (0.1, 0.0, 0.9)),
    "j": (0.18, 0.4, 0.0),
}
_VOWELS: tuple[tuple[str, tuple[float, float, float]], ...] = (  # longest prefix first
    ("aI", (0.95, 0.3, 0.0)), ("aU", (0.95, 0.0, 0.3)), ("oU", (0.55, 0.0, 0.75)), ("oI", (0.65, 0.0, 0.6)),
    ("eI", (0.55, 0.5, 0.0)), ("e@", (0.6, 0.3, 0.0)), ("i@", (0.35, 0.6, 0.0)), ("U@", (0.4, 0.0, 0.6)),
    ("A", (1.0, 0.1, 0.0)), ("a", (0.95, 0.2, 0.0)), ("0", (0.8, 0.0, 0.5)), ("O", (0.75, 0.0, 0.7)),
    ("o", (0.6, 0.0, 0.75)), ("u", (0.3, 0.0, 1.0)), ("U", (0.35, 0.0, 0.6)), ("i", (0.3, 0.8, 0.0)),
    ("I", (0.35, 0.6, 0.0)), ("E", (0.65, 0.45, 0.0)), ("e", (0.6, 0.5, 0.0)), ("V", (0.7, 0.1, 0.0)),
    ("3", (0.5, 0.1, 0.2)), ("@", (0.45, 0.1, 0.0)),
)


def viseme(name: str) -> tuple[float, float, float, bool]:
    """(opening, width, rounding, lips closed) for an espeak phoneme name; stress opens vowels wider."""
    stressed = name.startswith("'")
    core = re.sub(r"^['',%=]+", "", name).replace(":", "").replace(";", "")
    if not core or core.startswith("_"):
        return 0.0, 0.0, 0.0, False
    if core in _CONSONANTS:
        o, w, r = _CONSONANTS[core]
        return o, w, r, core in ("p", "b", "m")
    for prefix, (o, w, r) in _VOWELS:
        if core.startswith(prefix):
            return min(1.2, o * (1.15 if stressed else 1.0)), w, r, False
    return 0.25, 0.0, 0.0, False


def mouth_tracks(phonemes: Sequence[tuple[float, float, str]], n_frames: int, fps: float = FPS) -> np.ndarray:
    """(n_frames, 3) float64 opening, width, rounding per video frame, with coarticulation.

    Targets are held over each phoneme at 200 Hz, smoothed with a 30 ms Gaussian (neighbouring phonemes
    blend), bilabials then close the lips (a sharper 12 ms closure), and each video frame averages its span.
    """
    hz = 200
    n = int(np.ceil(n_frames / fps * hz)) + 1
    target = np.zeros((n, 3))
    closed = np.zeros(n)
    for t0, t1, name in phonemes:
        i0, i1 = int(round(t0 * hz)), max(int(round(t1 * hz)), int(round(t0 * hz)) + 1)
        o, w, r, c = viseme(name)
        target[i0:i1] = (o, w, r)
        closed[i0:i1] = float(c)
    smooth = scipy.ndimage.gaussian_filter1d(target, sigma=0.030 * hz, axis=0, mode="nearest")
    closure = np.clip(scipy.ndimage.gaussian_filter1d(closed, sigma=0.012 * hz, mode="nearest") * 1.6, 0, 1)
    smooth[:, 0] *= 1 - 0.95 * closure
    edges = np.round(np.arange(n_frames + 1) * hz / fps).astype(int)
    csum = np.concatenate([np.zeros((1, 3)), np.cumsum(smooth, axis=0)])
    return (csum[edges[1:]] - csum[edges[:-1]]) / np.maximum(np.diff(edges), 1)[:, None]


# ---------------------------------------------------------------------------------------------- the face

R_BROW, L_BROW = np.arange(17, 22), np.arange(22, 27)
BROWS = np.arange(17, 27)
UPPER_LIDS, LOWER_LIDS = np.array([37, 38, 43, 44]), np.array([41, 40, 47, 46])  # lower lid below each upper
MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40] + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65])
"""iBUG index of each landmark's mirror partner (left-right flip of the face)."""


EXPRESSION_GAIN = 1.35  # all prototypes below, tuned by eye on the contact sheet


def _side(shape: np.ndarray) -> np.ndarray:
    """(68,) -1 for points on the image-left half of the face, +1 right, 0 on the midline."""
    mid = shape[[27, 28, 29, 30, 33, 51, 57, 62, 66, 8], 0].mean()
    side = np.sign(shape[:, 0] - mid)
    side[[8, 27, 28, 29, 30, 33, 51, 57, 62, 66]] = 0
    return side


def _brow_inner_weight() -> np.ndarray:
    w = np.zeros(68)
    w[R_BROW] = [0.0, 0.25, 0.5, 0.8, 1.0]
    w[L_BROW] = [1.0, 0.8, 0.5, 0.25, 0.0]
    return w


def expression_offsets(emotion: str, shape: np.ndarray) -> np.ndarray:
    """(68, 3) float64 offsets (shape units, ~mm; y down) of an emotion's prototype at full intensity.

    FACS-style: happy AU6+12 (cheeks raised, lip corners up and back), sad AU1+4+15+17 (inner brows up,
    corners down), angry AU4+5+7+23 (brows down and together, lids tight, lips pressed), surprised AU1+2+5
    (brows up, eyes wide; the jaw drop is in the mouth tracks), fear AU1+2+4+5+20 (brows up and together,
    lips stretched), disgusted AU9+10+4 (nose wrinkled, upper lip raised), contempt AU14 on one side.
    """
    d = np.zeros((68, 3))
    side = _side(shape)
    wi = _brow_inner_weight()[BROWS]  # (10,) 1 at the inner brow ends
    if emotion == "happy":
        d[[48, 54], 1] -= 4.5
        d[[48, 54], 0] += 4.0 * side[[48, 54]]
        d[[60, 64], 1] -= 4.0
        d[[60, 64], 0] += 3.5 * side[[60, 64]]
        d[[49, 53, 59, 55, 61, 63, 65, 67], 1] -= 2.0
        d[[49, 53, 59, 55, 61, 63, 65, 67], 0] += 1.8 * side[[49, 53, 59, 55, 61, 63, 65, 67]]
        d[[50, 52], 1] -= 0.8
        d[LOWER_LIDS, 1] -= 2.0  # cheeks push the lower lids up (AU6)
        d[[36, 45], 1] -= 0.6
        d[[2, 3, 4, 12, 13, 14], 0] += 1.2 * side[[2, 3, 4, 12, 13, 14]]
        d[[2, 3, 4, 12, 13, 14], 1] -= 1.2
        d[[31, 35], 0] += 0.8 * side[[31, 35]]
        d[BROWS, 1] -= 0.8
    elif emotion == "sad":
        d[BROWS, 1] += -6.0 * wi + 1.8 * (1 - wi)
        d[BROWS, 0] -= 1.5 * wi * side[BROWS]
        d[UPPER_LIDS, 1] += 1.8
        d[[48, 54], 1] += 5.5
        d[[48, 54], 0] -= 1.0 * side[[48, 54]]
        d[[60, 64], 1] += 4.5
        d[[60, 64], 0] -= 1.0 * side[[60, 64]]
        d[[59, 55, 49, 53], 1] += 1.5
        d[[57, 56, 58, 66], 1] -= 1.0  # chin raiser pushes the lower lip up
        d[[7, 8, 9], 1] -= 0.8
    elif emotion == "angry":
        d[BROWS, 1] += 5.0 * wi + 2.5 * (1 - wi)
        d[BROWS, 0] -= 3.5 * wi * side[BROWS]
        d[UPPER_LIDS, 1] -= 1.2
        d[LOWER_LIDS, 1] -= 1.4
        d[49:54, 1] += 1.5  # lips pressed and narrowed
        d[55:60, 1] -= 1.5
        d[[48, 54, 60, 64], 0] -= 2.0 * side[[48, 54, 60, 64]]
        d[[48, 54, 60, 64], 1] += 1.5  # pressed lips turn down a little at the corners
        d[[31, 35], 0] += 1.5 * side[[31, 35]]
        d[[31, 35], 1] -= 0.8
    elif emotion == "surprised":
        d[BROWS, 1] -= 7.0 * wi + 5.5 * (1 - wi)
        d[UPPER_LIDS, 1] -= 3.0
        d[LOWER_LIDS, 1] += 0.8
    elif emotion == "fear":
        d[BROWS, 1] += -6.0 * wi - 3.0 * (1 - wi)
        d[BROWS, 0] -= 2.0 * wi * side[BROWS]
        d[UPPER_LIDS, 1] -= 3.2
        d[LOWER_LIDS, 1] -= 0.6
        d[[48, 54, 60, 64], 0] += 3.5 * side[[48, 54, 60, 64]]
        d[[48, 54, 60, 64], 1] += 1.5
        d[[49, 53, 55, 59], 0] += 1.5 * side[[49, 53, 55, 59]]
    elif emotion == "disgusted":
        d[31:36, 1] -= 2.5
        d[[31, 35], 0] += 1.2 * side[[31, 35]]
        d[[29, 30], 1] -= 1.0
        d[49:54, 1] -= 3.5
        d[51, 1] -= 0.5
        d[61:64, 1] -= 3.0
        d[[48, 54], 1] += 1.5
        d[[48, 54], 0] -= 0.8 * side[[48, 54]]
        d[55:60, 1] += 0.5
        d[BROWS, 1] += 3.5 * wi + 1.2 * (1 - wi)
        d[BROWS, 0] -= 2.0 * wi * side[BROWS]
        d[LOWER_LIDS, 1] -= 2.0
        d[UPPER_LIDS, 1] += 1.0
    elif emotion == "contempt":  # unilateral: the image-right corner
        right = side > 0
        for idx, dy, dx in ((54, -3.5, 3.5), (64, -3.0, 3.0), (53, -1.6, 1.2), (55, -1.5, 1.2), (63, -1.5, 1.0),
                            (65, -1.2, 1.0), (52, -0.6, 0.4), (56, -0.6, 0.4), (12, -1.0, 0.8), (13, -0.8, 0.6)):
            j = idx if right[idx] else MIRROR[idx]
            d[j, 1] += dy
            d[j, 0] += dx * side[j]
        d[[46, 47], 1] -= 1.0
        d[R_BROW, 1] -= 1.5  # the other brow lifts a little
    elif emotion != "neutral":
        raise EvpError(f"unknown emotion {emotion!r}; use one of {', '.join(EMOTIONS)}")
    return EXPRESSION_GAIN * d


def speech_offsets(tracks: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """(T, 68, 3) float64 offsets (~mm) of the lips and jaw for mouth tracks (T, 3) (opening, width, rounding)."""
    o, w, r = tracks[:, 0:1], tracks[:, 1:2], tracks[:, 2:3]
    side = _side(shape)
    t = len(tracks)
    d = np.zeros((t, 68, 3))
    drop = 20.0 * o  # (T, 1) jaw drop, mm
    d[:, [65, 66, 67], 1] += drop * np.array([0.95, 1.0, 0.95])
    d[:, 55:60, 1] += drop * np.array([0.75, 0.95, 1.0, 0.95, 0.75])
    d[:, [48, 54, 60, 64], 1] += 0.3 * drop
    d[:, [49, 50, 51, 52, 53, 61, 62, 63], 1] -= 0.08 * drop
    d[:, 3:14, 1] += drop * np.array([0.1, 0.3, 0.55, 0.8, 0.95, 1.0, 0.95, 0.8, 0.55, 0.3, 0.1])
    corners = [48, 54, 60, 64]
    near = [49, 53, 55, 59, 61, 63, 65, 67]
    d[:, corners, 0] += side[corners] * (3.5 * w - 0.8 * o - 6.0 * r)
    d[:, near, 0] += side[near] * (1.5 * w - 3.0 * r)
    d[:, 48:68, 2] -= 5.0 * r  # rounded lips protrude toward the camera
    d[:, [50, 51, 52], 1] -= 1.2 * r
    d[:, [56, 57, 58], 1] += 1.2 * r
    return d


# One Euler convention for the project, defined with the pose fitter: R = Rz(roll) @ Ry(yaw) @ Rx(pitch).
euler_to_rotation = rotation_from_euler
rotation_to_euler = euler_from_rotation


# --------------------------------------------------------------------------------------------- portraits

_CROP = (111, 15, 230)  # x, y, side of the face crop in the 512x512 astronaut photo


_KNOWN_LANDMARKS: np.ndarray | None = None  # set in corpus worker processes by their parent


@lru_cache(maxsize=1)
def _astronaut_landmarks() -> np.ndarray:
    """(68, 2) float64 dlib landmarks of skimage's astronaut photo, pixels of the 512x512 image."""
    if _KNOWN_LANDMARKS is not None:
        return _KNOWN_LANDMARKS.copy()
    import dlib
    from skimage import data

    image = data.astronaut()
    detector, predictor = dlib_models()
    faces = detector(image, 1)
    if not faces:
        raise EvpError("dlib found no face in the astronaut portrait; reinstall dlib-bin and scikit-image")
    face = max(faces, key=lambda r: r.width() * r.height())
    shape = predictor(image, dlib.rectangle(face.left(), face.top(), face.right(), face.bottom()))
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64)


@lru_cache(maxsize=4)
def _portrait(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut face crop at ``size`` px (RGB uint8) and its 68 landmarks in that crop's pixels."""
    from skimage import data

    x, y, side = _CROP
    photo = data.astronaut()
    full = _astronaut_landmarks()
    # The photo smiles with its teeth showing: paint the inner mouth over with lips (inpainting), so a closed
    # mouth joins lip to lip; the open mouth is painted per frame by _draw_mouth.
    mask = np.zeros(photo.shape[:2], np.uint8)
    inner = full[60:68].copy()
    inner[[1, 2, 3], 1] -= 0.5
    inner[[5, 6, 7], 1] += 0.5
    for poly in (inner, full[[48, 60, 67, 59]], full[[54, 64, 65, 55]]):
        cv2.fillPoly(mask, [np.round(poly * 8).astype(np.int32)], 255, shift=3)
    photo = cv2.inpaint(photo, mask, 3, cv2.INPAINT_TELEA)
    crop = photo[y:y + side, x:x + side]
    interp = cv2.INTER_AREA if size < side else cv2.INTER_CUBIC
    image = cv2.resize(crop, (size, size), interpolation=interp)
    lm = (full - [x, y] + 0.5) * (size / side) - 0.5
    return image, lm


@dataclass
class Actor:
    """A synthetic actor: a voice and a face.

    ``image`` (S, S, 3) uint8 the recoloured (maybe mirrored) portrait the frames are warped from;
    ``image_landmarks`` (68, 2) its landmarks; ``shape3d`` (68, 3) the neutral 3D face (centred, ~mm);
    ``scale``/``translation`` the projection that puts ``shape3d`` at the actor's neutral landmarks (pixels);
    ``head3d`` (K, 3) points around the head (hair, neck) that move with it; ``image_head`` (K, 2) where they
    are in ``image``.
    """

    index: int
    name: str
    voice: str
    mirrored: bool
    image: np.ndarray
    image_landmarks: np.ndarray
    shape3d: np.ndarray
    scale: float
    translation: np.ndarray
    head3d: np.ndarray
    image_head: np.ndarray
    colour: tuple[float, float, float] = field(default=(1.0, 0.0, 0.0))


def _head_ring(lm: np.ndarray, n: int = 16) -> np.ndarray:
    """(n, 2) points on an ellipse around the face reaching the hair and neck (pixels)."""
    cx = 0.5 * (lm[0, 0] + lm[16, 0])
    half_w = 0.5 * (lm[16, 0] - lm[0, 0])
    top, chin = lm[27, 1], lm[8, 1]
    cy = 0.5 * (top + chin) - 0.1 * (chin - top)
    ax, ay = 1.5 * half_w, 1.15 * (chin - top)
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + ax * np.cos(ang), cy + ay * np.sin(ang)], 1)


@lru_cache(maxsize=16)
def make_actor(index: int, size: int = 256, seed: int = 0) -> Actor:
    """Actor ``index`` (0-based): voice from :data:`VOICES`, face from the astronaut portrait with its own
    mirroring, colour, face shape and depth, all drawn from ``seed``."""
    rng = np.random.default_rng([seed, 7, index])
    image, lm = _portrait(size)
    image, lm = image.copy(), lm.copy()
    mirrored = index % 2 == 1
    if mirrored:
        image = np.ascontiguousarray(image[:, ::-1])
        lm = lm[MIRROR].copy()
        lm[:, 0] = size - 1 - lm[:, 0]
    # Colour: lightness gain, warm/cool and green/magenta shifts in Lab (skin stays plausible).
    gain, da, db = (1.0, 0.0, 0.0) if index == 0 else (rng.uniform(0.85, 1.1), rng.uniform(-7, 7), rng.uniform(-10, 8))
    if index:
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
        lab[..., 0] *= gain
        lab[..., 1] += da
        lab[..., 2] += db
        image = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)

    # The actor's neutral 2D face: the portrait's landmarks with the mouth closed and the smile relaxed,
    # then this actor's identity: jaw width, face length, eye spacing, nose length, mouth width, brow height.
    rest = lm.copy()
    iod = np.linalg.norm(rest[45] - rest[36])
    gap = rest[[67, 66, 65], 1] - rest[[61, 62, 63], 1]  # the smile shows teeth
    rest[[65, 66, 67], 1] -= 0.85 * gap[::-1]  # mostly the jaw closes: the upper lip keeps its thickness
    rest[[61, 62, 63], 1] += 0.15 * gap
    rest[55:60, 1] -= 0.75 * gap.mean()
    rest[5:12, 1] -= 0.5 * gap.mean()
    rest[[48, 54, 60, 64], 1] += 0.05 * iod
    mouth_c = rest[48:68].mean(0)
    rest[[48, 54, 60, 64], 0] = mouth_c[0] + 0.93 * (rest[[48, 54, 60, 64], 0] - mouth_c[0])
    mid = rest[[27, 28, 29, 30, 33, 51, 57, 8], 0].mean()
    jaw = np.arange(0, 17)
    rest[jaw, 0] = mid + rng.uniform(0.92, 1.08) * (rest[jaw, 0] - mid)
    lower = np.arange(3, 14)
    rest[lower, 1] += rng.uniform(-0.04, 0.07) * iod * np.array([0.2, 0.4, 0.6, 0.8, 0.95, 1, 0.95, 0.8, 0.6, 0.4, 0.2])
    eyes = np.arange(36, 48)
    rest[eyes, 0] += rng.uniform(-0.03, 0.03) * iod * np.sign(rest[eyes, 0] - mid)
    rest[31:36, 1] += rng.uniform(-0.04, 0.04) * iod
    mouth = np.arange(48, 68)
    mouth_c = rest[mouth].mean(0)
    rest[mouth, 0] = mouth_c[0] + rng.uniform(0.92, 1.08) * (rest[mouth, 0] - mouth_c[0])
    rest[mouth, 1] += rng.uniform(-0.02, 0.03) * iod
    rest[BROWS, 1] += rng.uniform(-0.04, 0.03) * iod

    # 3D: x, y from the 2D face in generic-model units; depth from the generic face, scaled and perturbed.
    generic = generic_mean_shape()
    scale = iod / np.linalg.norm(generic[45] - generic[36])
    centre = rest.mean(0)
    shape = np.zeros((68, 3))
    shape[:, :2] = (rest - centre) / scale
    z = generic[:, 2] * rng.uniform(0.8, 1.2) + rng.normal(0.0, 2.0, 68)
    shape[:, 2] = z - z.mean()
    ring = _head_ring(rest)
    head3d = np.zeros((len(ring), 3))
    head3d[:, :2] = (ring - centre) / scale
    head3d[:, 2] = 25.0
    return Actor(index=index, name=actor_name(index), voice=VOICES[index % len(VOICES)][1], mirrored=mirrored,
                 image=image, image_landmarks=lm, shape3d=shape, scale=float(scale), translation=centre,
                 head3d=head3d, image_head=_head_ring(lm), colour=(float(gain), float(da), float(db)))


def _skin_points(lm: np.ndarray) -> np.ndarray:
    """(K, 2) extra control points on the cheeks, chin and forehead (pixels), so that the warp bends smoothly
    there instead of along the edges of long thin triangles."""
    iod = np.linalg.norm(lm[45] - lm[36])
    pts = [lm[k] + f * (lm[33] - lm[k]) for k in (1, 2, 3, 4, 12, 13, 14, 15) for f in (0.3, 0.6)]
    pts += [0.5 * (lm[a] + lm[b]) for a, b in ((57, 8), (58, 7), (56, 9), (59, 6), (55, 10))]
    pts += [lm[k] - [0, 0.35 * iod] for k in (17, 19, 24, 26)] + [0.5 * (lm[21] + lm[22]) - [0, 0.4 * iod]]
    pts += [0.5 * (lm[k] + lm[j]) for k, j in ((31, 3), (35, 13), (48, 4), (54, 12))]
    pts = np.array(pts)
    keep = [i for i, p in enumerate(pts) if np.linalg.norm(lm - p, axis=1).min() > 0.06 * iod]
    return pts[keep]


@dataclass
class _Rig:
    """How an actor's portrait is warped: control points in the portrait (68 landmarks, head ring, skin points,
    border) and the weights that move each skin point with a smooth blend of the landmark and ring motion."""

    warp: PiecewiseAffineWarp
    n_face: int  # 68 landmarks + head ring: the points the driving geometry gives
    skin_src: np.ndarray  # (K, 2)
    skin_weights: np.ndarray  # (K, n_face), rows sum to 1
    border: np.ndarray  # (B, 2) fixed

    def dst_points(self, face_dst: np.ndarray) -> np.ndarray:
        """All destination control points for the (n_face, 2) landmark + ring positions of one frame."""
        moved = self.skin_src + self.skin_weights @ (face_dst - self.warp.src[:self.n_face])
        return np.concatenate([face_dst, moved, self.border])


@lru_cache(maxsize=16)
def _rig(index: int, size: int, seed: int) -> _Rig:
    actor = make_actor(index, size, seed)
    face = np.concatenate([actor.image_landmarks, actor.image_head])
    skin = _skin_points(actor.image_landmarks)
    iod = np.linalg.norm(actor.image_landmarks[45] - actor.image_landmarks[36])
    d2 = ((skin[:, None, :] - face[None, :, :]) ** 2).sum(-1)
    w = np.exp(-0.5 * d2 / (0.22 * iod) ** 2)
    w[:, 60:68] = 0.0  # the inner lips open the mouth, not the cheeks
    w /= w.sum(1, keepdims=True)
    border = border_points(size, size, 5)
    warp = PiecewiseAffineWarp(np.concatenate([face, skin, border]), (size, size))
    return _Rig(warp=warp, n_face=len(face), skin_src=skin, skin_weights=w, border=border)


# ---------------------------------------------------------------------------------------------- motion


def _smooth_noise(rng: np.random.Generator, n: int, n_waves: int = 3, fmin: float = 0.1, fmax: float = 0.6) -> np.ndarray:
    """(n,) sum of a few slow sinusoids, peak amplitude about 1, at 25 fps."""
    t = np.arange(n) / FPS
    out = np.zeros(n)
    for _ in range(n_waves):
        f, ph, amp = rng.uniform(fmin, fmax), rng.uniform(0, 2 * np.pi), rng.uniform(0.4, 1.0)
        out += amp * np.sin(2 * np.pi * f * t + ph)
    return out / n_waves * 1.6


def head_pose(rng: np.random.Generator, n: int, style: EmotionStyle, a: float) -> np.ndarray:
    """(n, 3) yaw, pitch, roll in degrees: smooth sway plus the emotion's mean pose, within +-20 deg."""
    motion = 1 + (style.motion - 1) * a
    yaw = 9.0 * motion * _smooth_noise(rng, n) + rng.uniform(-4, 4)
    pitch = 5.0 * motion * _smooth_noise(rng, n) + style.pitch_deg * a + rng.uniform(-2, 2)
    roll = 4.0 * motion * _smooth_noise(rng, n) + style.roll_deg * a
    return np.clip(np.stack([yaw, pitch, roll], 1), -20, 20)


def blinks(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n,) eyelid closure 0..1: a blink every 2-4.5 s, each about 0.2 s long."""
    t = np.arange(n) / FPS
    out = np.zeros(n)
    tb = rng.uniform(0.4, 2.0)
    while tb < n / FPS + 0.2:
        out = np.maximum(out, np.exp(-0.5 * ((t - tb) / 0.055) ** 2))
        tb += rng.uniform(2.0, 4.5)
    return out


# --------------------------------------------------------------------------------------------- rendering


def _closed_spline(points: np.ndarray, per_segment: int = 4) -> np.ndarray:
    """(N * per_segment, 2) samples of the closed Catmull-Rom curve through ``points`` (N, 2), in order."""
    p0, p1, p2, p3 = (np.roll(points, s, axis=0) for s in (1, 0, -1, -2))
    t = (np.arange(per_segment) / per_segment)[:, None, None]
    curve = 0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                   + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)  # (per_segment, N, 2)
    return curve.transpose(1, 0, 2).reshape(-1, 2)


def _draw_mouth(frame: np.ndarray, lm: np.ndarray, iod_px: float) -> None:
    """Paint the mouth in place: the dark seam of closed lips, or an open inner mouth (landmarks 60-67) with a
    dark interior and the upper teeth."""
    inner = lm[60:68]
    gap = float(np.mean(lm[[67, 66, 65], 1] - lm[[61, 62, 63], 1]))
    x0, y0 = np.floor(inner.min(0)).astype(int) - 3
    x1, y1 = np.ceil(inner.max(0)).astype(int) + 4
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    off = np.array([x0, y0])
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    seam = np.zeros((y1 - y0, x1 - x0), np.uint8)
    upper = lm[[60, 61, 62, 63, 64]]
    cv2.polylines(seam, [np.round((upper - off) * 16).astype(np.int32)], False, 255, 1, cv2.LINE_AA, shift=4)
    alpha = seam.astype(np.float32)[..., None] / 255 * 0.45
    roi = roi * (1 - alpha) + np.array([90, 40, 45], np.float32) * alpha
    if gap > 0.5:
        mouth = np.zeros_like(seam)
        outline = _closed_spline(inner)  # a rounded opening through the eight inner-lip points
        cv2.fillPoly(mouth, [np.round((outline - off) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        teeth_h = min(0.3 * gap, 0.06 * iod_px)
        top = outline[3:14]  # the upper inner lip, from a little inside one corner to the other
        bottom = top[::-1].copy()  # the teeth's lower edge runs straight across where the lip allows
        bottom[:, 1] = np.maximum(bottom[:, 1], np.median(top[:, 1]) + teeth_h)
        teeth_poly = np.concatenate([top, bottom])
        teeth = np.zeros_like(mouth)
        cv2.fillPoly(teeth, [np.round((teeth_poly - off) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        a_m = mouth.astype(np.float32)[..., None] / 255 * min(1.0, gap / 1.5)
        a_t = teeth.astype(np.float32)[..., None] / 255 * a_m * float(np.clip((gap - 1.5) / 2.5, 0, 1))
        roi = roi * (1 - a_m) + np.array([52, 18, 22], np.float32) * (a_m - a_t) + np.array([200, 192, 180], np.float32) * a_t
    frame[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)


@dataclass
class SynthClip:
    """One generated clip in memory: ``frames`` (T, S, S, 3) uint8 RGB at 25 fps, ``wav`` (T * 640,) float32
    16 kHz, ``gt`` the ground-truth arrays (keys in the module docstring), ``clip_id`` ``actor/emotion/level_k/NNN``."""

    clip_id: str
    actor: str
    emotion: str
    level: int
    sentence: int  # 1-based sentence id
    text: str
    frames: np.ndarray
    wav: np.ndarray
    gt: dict[str, np.ndarray]
    fps: float = FPS


def clip_id(actor_index: int, emotion: str, level: int, sentence_index: int) -> str:
    """``M001/happy/level_3/002`` (NNN = 1-based sentence id)."""
    return f"{actor_name(actor_index)}/{emotion}/level_{level}/{sentence_index + 1:03d}"


def _check_clip_args(emotion: str, level: int, sentence_index: int, size: int) -> None:
    if emotion not in EMOTIONS:
        raise EvpError(f"unknown emotion {emotion!r}; use one of {', '.join(EMOTIONS)}")
    if level not in (1, 2, 3):
        raise EvpError(f"level must be 1, 2 or 3, got {level}")
    if not 0 <= sentence_index < len(SENTENCES):
        raise EvpError(f"sentence index must be 0..{len(SENTENCES) - 1}, got {sentence_index}")
    if size < 64:
        raise EvpError(f"--size must be at least 64 pixels, got {size}")


def make_clip(actor_index: int, emotion: str, level: int, sentence_index: int, size: int = 256,
              seed: int = 0) -> SynthClip:
    """Generate one clip in memory (about 0.3 s for a 3 s clip at 256 px, after a one-off ~1 s dlib load).

    ``actor_index`` 0-based (0 = M001, 1 = W002, ...), ``emotion`` one of :data:`EMOTIONS`, ``level`` 1-3,
    ``sentence_index`` 0-based into :data:`SENTENCES` (sentence id = index + 1). Deterministic in all arguments.
    """
    _check_clip_args(emotion, level, sentence_index, size)
    actor = make_actor(actor_index, size, seed)
    style, a = STYLES[emotion], intensity(emotion, level)
    speech = make_speech(actor_index, emotion, level, sentence_index, seed)
    n = speech.n_frames
    rng = np.random.default_rng([seed, 13, actor_index, EMOTIONS.index(emotion), level, sentence_index])

    # Mouth tracks with the emotion's mouth shape; expression intensity that breathes a little over time.
    tracks = mouth_tracks(speech.phonemes, n)
    tracks[:, 0] = tracks[:, 0] * (1 + (style.open_mul - 1) * a) + style.open_bias * a
    tracks[:, 1] = np.clip(tracks[:, 1] + style.width_bias * a, -1, 1)
    tracks[:, 2] = np.clip(tracks[:, 2] + style.round_bias * a, 0, 1)
    weight = a * (1 + 0.08 * _smooth_noise(rng, n, 2, 0.1, 0.4)) if a > 0 else np.zeros(n)
    shape = actor.shape3d
    frames3d = shape[None] + speech_offsets(tracks, shape) + weight[:, None, None] * expression_offsets(emotion, shape)[None]
    blink = blinks(rng, n)
    lids = frames3d[:, LOWER_LIDS] - frames3d[:, UPPER_LIDS]
    frames3d[:, UPPER_LIDS] += 0.95 * blink[:, None, None] * lids

    euler = head_pose(rng, n, style, a)
    rotation = euler_to_rotation(euler)
    scale = actor.scale * (1 + 0.025 * _smooth_noise(rng, n, 2))
    translation = actor.translation + (size / 256) * np.stack([3.0 * _smooth_noise(rng, n, 2),
                                                               2.0 * _smooth_noise(rng, n, 2)], 1)
    rotated = np.einsum("tij,tkj->tki", rotation, frames3d)
    landmarks = scale[:, None, None] * rotated[..., :2] + translation[:, None]
    head = scale[:, None, None] * np.einsum("tij,kj->tki", rotation, actor.head3d)[..., :2] + translation[:, None]

    rig = _rig(actor_index, size, seed)
    iod_px = actor.scale * np.linalg.norm(shape[45] - shape[36])
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        frames[t] = rig.warp.warp(actor.image, rig.dst_points(np.concatenate([landmarks[t], head[t]])))
        _draw_mouth(frames[t], landmarks[t], iod_px)

    gap = frames3d[:, [67, 66, 65], 1] - frames3d[:, [61, 62, 63], 1]
    starts = np.array([p[0] for p in speech.phonemes], np.float32)
    ends = np.array([p[1] for p in speech.phonemes], np.float32)
    labels = np.array([p[2] for p in speech.phonemes], dtype=np.str_)
    gt = {
        "landmarks": landmarks.astype(np.float32),
        "rotation": rotation.astype(np.float32),
        "euler_deg": euler.astype(np.float32),
        "scale": scale.astype(np.float32),
        "translation": translation.astype(np.float32),
        "shape3d": shape.astype(np.float32),
        "shape3d_frames": frames3d.astype(np.float32),
        "mouth_open": gap.mean(1).astype(np.float32),
        "blink": blink.astype(np.float32),
        "expression_weight": weight.astype(np.float32),
        "phoneme_start_s": starts,
        "phoneme_end_s": ends,
        "phoneme_labels": labels if len(labels) else np.zeros(0, "<U1"),
        "fps": np.float32(FPS),
        "size": np.int32(size),
        "actor": np.str_(actor.name),
        "emotion": np.str_(emotion),
        "level": np.int32(level),
        "sentence": np.int32(sentence_index + 1),
        "text": np.str_(SENTENCES[sentence_index]),
    }
    return SynthClip(clip_id=clip_id(actor_index, emotion, level, sentence_index), actor=actor.name,
                     emotion=emotion, level=level, sentence=sentence_index + 1, text=SENTENCES[sentence_index],
                     frames=frames, wav=speech.wav, gt=gt)


# -------------------------------------------------------------------------------------------------- files


def save_npz_deterministic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Atomically write an uncompressed .npz whose bytes depend only on the arrays (fixed zip timestamps)."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())
    return Path(path)


def _share(*paths: Path) -> None:
    """Give written files the usual permissions (temp files are created owner-only): 0666 minus the umask."""
    mask = os.umask(0)
    os.umask(mask)
    for p in paths:
        os.chmod(p, 0o666 & ~mask)


def clip_paths(out: Path, clip_id_: str) -> dict[str, Path]:
    """MEAD-layout paths of a clip: ``video`` (.mp4), ``audio`` (.wav), ``groundtruth`` (.npz)."""
    actor, emotion, level, num = clip_id_.split("/")
    return {
        "video": out / actor / "video" / "front" / emotion / level / f"{num}.mp4",
        "audio": out / actor / "audio" / emotion / level / f"{num}.wav",
        "groundtruth": out / actor / "groundtruth" / emotion / level / f"{num}.npz",
    }


def write_clip(out: str | os.PathLike, clip: SynthClip) -> dict[str, Path]:
    """Write a clip's mp4 (speech muxed as AAC), 16 kHz wav and ground-truth npz under ``out`` (MEAD layout)."""
    from evpcli.media import save_wav, write_video

    paths = clip_paths(Path(out), clip.clip_id)
    save_wav(paths["audio"], clip.wav, SAMPLE_RATE)
    save_npz_deterministic(paths["groundtruth"], clip.gt)
    write_video(paths["video"], clip.frames, fps=clip.fps, audio=clip.wav, sr=SAMPLE_RATE)
    _share(*paths.values())
    return paths


def _init_worker(astronaut_landmarks: np.ndarray) -> None:
    global _KNOWN_LANDMARKS
    _KNOWN_LANDMARKS = astronaut_landmarks


def _make_and_write(args: tuple) -> tuple[str, int, float]:
    out, actor_index, emotion, level, sentence_index, size, seed = args
    clip = make_clip(actor_index, emotion, level, sentence_index, size, seed)
    write_clip(out, clip)
    return clip.clip_id, len(clip.frames), len(clip.wav) / SAMPLE_RATE


def corpus_clips(actors: int, sentences: int, emotions: Sequence[str], levels: Sequence[int]) -> list[tuple]:
    """(actor_index, emotion, level, sentence_index) of every clip; neutral has level 1 only."""
    out = []
    for ai in range(actors):
        for emotion in emotions:
            for level in ((1,) if emotion == "neutral" else tuple(levels)):
                for si in range(sentences):
                    out.append((ai, emotion, level, si))
    return out


def _validate(actors: int, sentences: int, emotions: Sequence[str], levels: Sequence[int], size: int, jobs: int):
    if actors < 1:
        raise EvpError(f"--actors must be at least 1, got {actors}")
    if not 1 <= sentences <= len(SENTENCES):
        raise EvpError(f"--sentences must be 1..{len(SENTENCES)}, got {sentences}")
    bad = [e for e in emotions if e not in EMOTIONS]
    if bad or not emotions:
        raise EvpError(f"unknown emotion(s) {', '.join(bad) or '(none)'}; use names from {', '.join(EMOTIONS)}")
    if not levels or any(k not in (1, 2, 3) for k in levels):
        raise EvpError(f"--levels must be among 1,2,3, got {','.join(map(str, levels)) or '(none)'}")
    if size < 64 or size % 2:
        raise EvpError(f"--size must be an even number of pixels >= 64, got {size}")
    if jobs < 1:
        raise EvpError(f"--jobs must be at least 1, got {jobs}")


def synth_corpus(out: str | os.PathLike, actors: int = 2, sentences: int = 6, emotions: Sequence[str] = EMOTIONS,
                 levels: Sequence[int] = DEFAULT_LEVELS, size: int = 256, seed: int = 0, jobs: int = 1,
                 progress: Progress | None = None) -> dict:
    """Write a MEAD-layout corpus with ground truth under ``out``; returns a summary dict.

    Writes ``<actor>/video/front/<emotion>/level_<k>/<NNN>.mp4``, ``<actor>/audio/...wav``,
    ``<actor>/groundtruth/...npz`` per clip, ``sentences.csv`` (clip,sentence,text) and ``corpus.json``
    (parameters). Clips already complete from an interrupted run with the same parameters are kept; a folder
    holding a corpus made with other parameters is refused. Same arguments, same bytes, whatever ``jobs``.
    """
    out = Path(out)
    emotions, levels = tuple(emotions), tuple(sorted(set(int(k) for k in levels)))
    _validate(actors, sentences, emotions, levels, size, jobs)
    params = {"generator": "evp synth-corpus", "version": __version__, "actors": actors, "sentences": sentences,
              "emotions": list(emotions), "levels": list(levels), "size": size, "seed": seed, "fps": FPS,
              "sample_rate": SAMPLE_RATE}
    meta_path = out / "corpus.json"
    if out.exists() and not out.is_dir():
        raise EvpError(f"{out} is a file; give a folder to write the corpus into")
    if meta_path.exists():
        try:
            old = json.loads(meta_path.read_text())
        except ValueError:
            old = None
        if old != params:
            raise EvpError(f"{out} holds a corpus made with other parameters; choose an empty folder or delete it")
    elif out.exists() and any(out.iterdir()):
        raise EvpError(f"{out} is not empty and holds no synthetic corpus; choose an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(meta_path) as tmp:
        tmp.write_text(json.dumps(params, indent=2) + "\n")
    _share(meta_path)

    clips = corpus_clips(actors, sentences, emotions, levels)
    todo = [c for c in clips if not all(p.exists() for p in clip_paths(out, clip_id(*c)).values())]
    frames = 0
    seconds = 0.0
    with (progress or Progress()).task("synthesising clips", total=len(clips), unit="clips") as task:
        task.advance(len(clips) - len(todo))
        args = [(out, ai, e, k, si, size, seed) for ai, e, k, si in todo]
        if jobs == 1 or len(args) <= 1:
            for a in args:
                _, nf, dur = _make_and_write(a)
                frames, seconds = frames + nf, seconds + dur
                task.advance(1)
        else:
            # Fresh worker processes (spawn: forking this one could copy a lock a progress-bar thread holds);
            # they get the portrait's landmarks from here instead of loading dlib each.
            import multiprocessing as mp

            from evpcli.workers import worker_initializer

            init, initargs = worker_initializer(_init_worker, (_astronaut_landmarks(),))  # die with this process
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                       initializer=init, initargs=initargs)
            try:
                futures = [pool.submit(_make_and_write, a) for a in args]
                for fut in as_completed(futures):
                    _, nf, dur = fut.result()
                    frames, seconds = frames + nf, seconds + dur
                    task.advance(1)
            except BaseException:  # a failed clip or Ctrl-C: drop the queued clips instead of making them all
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown()

    with atomic_path(out / "sentences.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["clip", "sentence", "text"])
        for ai, e, k, si in clips:
            writer.writerow([clip_id(ai, e, k, si), si + 1, SENTENCES[si]])
    _share(out / "sentences.csv")
    return {"out": str(out), "clips": len(clips), "generated": len(todo), "kept": len(clips) - len(todo),
            "actors": [actor_name(i) for i in range(actors)], "emotions": list(emotions), "levels": list(levels),
            "sentences": sentences, "frames_generated": frames, "seconds_generated": round(seconds, 2),
            "size": size, "seed": seed}


def read_sentence_map(path: str | os.PathLike) -> dict[str, tuple[int, str]]:
    """``sentences.csv`` -> {clip id: (sentence id, text)}."""
    with open(path, newline="") as f:
        return {row["clip"]: (int(row["sentence"]), row["text"]) for row in csv.DictReader(f)}


# ------------------------------------------------------------------------------------------ contact sheet


def _most_frontal_frame(clip: SynthClip) -> int:
    n = len(clip.frames)
    lo, hi = n // 4, max(n // 4 + 1, 3 * n // 4)
    e = clip.gt["euler_deg"][lo:hi]
    mo = clip.gt["mouth_open"][lo:hi]
    cost = np.abs(e[:, 0]) + np.abs(e[:, 1]) + 0.3 * np.abs(mo - np.percentile(mo, 35)) + 5 * clip.gt["blink"][lo:hi]
    return lo + int(np.argmin(cost))


def _face_crop(frame: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """A square crop around the face (1.6 face widths), clamped to the frame."""
    h, w = frame.shape[:2]
    centre = 0.5 * (lm.min(0) + lm.max(0))
    side = int(min(h, w, round(1.6 * (lm[:, 0].max() - lm[:, 0].min()))))
    x0 = int(np.clip(round(centre[0] - side / 2), 0, w - side))
    y0 = int(np.clip(round(centre[1] - side / 2), 0, h - side))
    return frame[y0:y0 + side, x0:x0 + side]


def contact_sheet(path: str | os.PathLike, actor_index: int = 0, emotions: Sequence[str] = EMOTIONS,
                  levels: Sequence[int] = (1, 2, 3), tile: int = 128, sentence_index: int = 0, seed: int = 0,
                  size: int = 256, palette: bool = False) -> Path:
    """Write a PNG grid: one frame per emotion (columns) and level (rows) of one actor, labelled.

    Frames are generated at ``size``, cropped to the face and shrunk to ``tile`` pixels; neutral (one level) sits
    in the first row. ``palette`` writes a 256-colour PNG (smaller, for documentation).
    """
    levels = tuple(sorted(set(levels)))
    label_h, pad = max(14, tile // 7), 2
    width = len(emotions) * (tile + pad) + pad + 22
    height = len(levels) * (tile + pad) + pad + label_h
    sheet = np.full((height, width, 3), 255, np.uint8)
    font, fscale = cv2.FONT_HERSHEY_SIMPLEX, tile / 300
    for col, emotion in enumerate(emotions):
        x = 22 + pad + col * (tile + pad)
        cv2.putText(sheet, emotion, (x + 2, label_h - 4), font, fscale, (0, 0, 0), 1, cv2.LINE_AA)
        for row, level in enumerate(levels):
            if emotion == "neutral" and row > 0:
                continue
            clip = make_clip(actor_index, emotion, 1 if emotion == "neutral" else level, sentence_index, size, seed)
            i = _most_frontal_frame(clip)
            frame = cv2.resize(_face_crop(clip.frames[i], clip.gt["landmarks"][i]), (tile, tile),
                               interpolation=cv2.INTER_AREA)
            y = label_h + pad + row * (tile + pad)
            sheet[y:y + tile, x:x + tile] = frame
    for row, level in enumerate(levels):
        y = label_h + pad + row * (tile + pad) + tile // 2
        cv2.putText(sheet, f"L{level}", (2, y), font, fscale, (0, 0, 0), 1, cv2.LINE_AA)
    path = Path(path)
    with atomic_path(path) as tmp:
        if palette:  # 256 colours: a third of the bytes, fine for a README
            from PIL import Image

            image = Image.fromarray(sheet).quantize(256, method=Image.Quantize.MEDIANCUT,
                                                    dither=Image.Dither.FLOYDSTEINBERG)
            image.save(tmp, format="PNG", optimize=True)
        else:
            tmp.write_bytes(cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))[1].tobytes())
    _share(path)
    return path
