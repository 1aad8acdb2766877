"""A clip's speech: espeak-ng (or a Festival voice, for actors from FESTIVAL_BASE on) in the actor's voice with the
emotion's prosody and voice quality, padded with silence to a whole number of video frames, with its phoneme
timeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.signal

from evpcli.config import EMOTIONS
from evpcli.corpus.espeak import Prosody, synthesize
from evpcli.corpus.synth.style import FPS, LEAD_S, SAMPLE_RATE, SENTENCES, STYLES, EmotionStyle, intensity, voice_of


def prosody_for(actor_index: int, emotion: str, level: int) -> Prosody:
    """Prosody (espeak's scales, which the Festival binding maps) of an actor's voice in an emotion at a level."""
    _, _, base_pitch, base_rate = voice_of(actor_index)
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
    voice = voice_of(actor_index)[1]
    rng = np.random.default_rng([seed, 11, actor_index, EMOTIONS.index(emotion), level, sentence_index])
    speak = synthesize
    if voice.startswith("festival:"):
        from evpcli.corpus import festival

        speak, voice = festival.synthesize, voice.split(":", 1)[1]
    utt = speak(SENTENCES[sentence_index % len(SENTENCES)], voice, prosody_for(actor_index, emotion, level),
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
