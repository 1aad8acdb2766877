"""One clip: speech, mouth tracks, expression, blinks and head pose combined into driving landmarks, the portrait
warped to them frame by frame, and the ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evpcli.config import EMOTIONS
from evpcli.corpus.synth.actors import make_actor
from evpcli.corpus.synth.draw import draw_mouth
from evpcli.corpus.synth.expressions import expression_offsets
from evpcli.corpus.synth.motion import blinks, euler_to_rotation, head_pose, smooth_noise
from evpcli.corpus.synth.rig import actor_rig
from evpcli.corpus.synth.speech import make_speech
from evpcli.corpus.synth.style import FPS, SENTENCES, STYLES, clip_id, intensity
from evpcli.corpus.synth.visemes import mouth_tracks, speech_offsets
from evpcli.errors import EvpError
from evpcli.face.parts import LOWER_EYELIDS, UPPER_EYELIDS, mouth_opening


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
    weight = a * (1 + 0.08 * smooth_noise(rng, n, 2, 0.1, 0.4)) if a > 0 else np.zeros(n)
    shape = actor.shape3d
    frames3d = shape[None] + speech_offsets(tracks, shape) + weight[:, None, None] * expression_offsets(emotion, shape)[None]
    blink = blinks(rng, n)
    lids = frames3d[:, LOWER_EYELIDS] - frames3d[:, UPPER_EYELIDS]
    frames3d[:, UPPER_EYELIDS] += 0.95 * blink[:, None, None] * lids

    euler = head_pose(rng, n, style, a)
    rotation = euler_to_rotation(euler)
    scale = actor.scale * (1 + 0.025 * smooth_noise(rng, n, 2))
    translation = actor.translation + (size / 256) * np.stack([3.0 * smooth_noise(rng, n, 2),
                                                               2.0 * smooth_noise(rng, n, 2)], 1)
    rotated = np.einsum("tij,tkj->tki", rotation, frames3d)
    landmarks = scale[:, None, None] * rotated[..., :2] + translation[:, None]
    head = scale[:, None, None] * np.einsum("tij,kj->tki", rotation, actor.head3d)[..., :2] + translation[:, None]

    rig = actor_rig(actor_index, size, seed)
    iod_px = actor.scale * np.linalg.norm(shape[45] - shape[36])
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        frames[t] = rig.warp.warp(actor.image, rig.dst_points(np.concatenate([landmarks[t], head[t]])))
        draw_mouth(frames[t], landmarks[t], iod_px)

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
        "mouth_open": mouth_opening(frames3d).astype(np.float32),
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
