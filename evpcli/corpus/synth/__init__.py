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

Modules, one concern each: :mod:`.style` (sentences, voices, emotion styles, clip ids), :mod:`.speech` (speech
and prosody), :mod:`.visemes` (phonemes -> mouth tracks -> lip offsets), :mod:`.expressions` (emotion
prototypes), :mod:`.actors` (portrait and actor faces), :mod:`.rig` (the warp rig), :mod:`.motion` (head pose,
blinks), :mod:`.draw` (the mouth interior), :mod:`.clip` (one clip and its ground truth), :mod:`.writer` (files
and the parallel corpus writer), :mod:`.sheet` (the contact sheet).
"""

from evpcli.corpus.synth.actors import Actor, make_actor
from evpcli.corpus.synth.clip import SynthClip, make_clip
from evpcli.corpus.synth.expressions import EXPRESSION_GAIN, expression_offsets
from evpcli.corpus.synth.motion import blinks, euler_to_rotation, head_pose, rotation_to_euler
from evpcli.corpus.synth.sheet import contact_sheet
from evpcli.corpus.synth.speech import Speech, make_speech, prosody_for
from evpcli.corpus.synth.style import (DEFAULT_LEVELS, FESTIVAL_VOICES, FPS, LEAD_S, SAMPLE_RATE, SENTENCES, STYLES, VOICES,
                                       EmotionStyle, actor_indices, actor_name, clip_id, intensity, voice_of)
from evpcli.corpus.synth.visemes import mouth_tracks, speech_offsets, viseme
from evpcli.corpus.synth.writer import clip_paths, corpus_clips, save_npz_deterministic, synth_corpus, write_clip

__all__ = [
    "DEFAULT_LEVELS", "EXPRESSION_GAIN", "FESTIVAL_VOICES", "FPS", "LEAD_S", "SAMPLE_RATE", "SENTENCES", "STYLES",
    "VOICES", "Actor",
    "EmotionStyle", "Speech", "SynthClip", "actor_indices", "actor_name", "blinks", "clip_id", "clip_paths", "contact_sheet",
    "corpus_clips", "euler_to_rotation", "expression_offsets", "head_pose", "intensity", "make_actor", "make_clip",
    "make_speech", "mouth_tracks", "prosody_for", "rotation_to_euler", "save_npz_deterministic", "speech_offsets",
    "synth_corpus", "viseme", "voice_of", "write_clip",
]
