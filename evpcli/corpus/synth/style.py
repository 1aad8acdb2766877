"""What the synthetic corpus says and who says it how: the sentences, the actors' voices, clip ids, and each
emotion's style (prosody, voice quality, mouth, head) with the intensity that scales it."""

from __future__ import annotations

from dataclasses import dataclass

from evpcli.config import FPS  # noqa: F401  (the corpus modules read the frame rate from here)

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


# Festival voices built from recordings of real people (evpcli.corpus.festival; an optional system dependency), as
# (gender letter, "festival:<voice>", pitch 0-100 where 50 is the voice's own, rate words/min where 165 is its own).
# Their actors have indices FESTIVAL_BASE + k (names W101, M102, M103), so espeak-only corpora keep their actors.
FESTIVAL_VOICES: tuple[tuple[str, str, int, int], ...] = (
    ("W", "festival:slt", 50, 165), ("M", "festival:kal", 50, 165), ("M", "festival:ked", 50, 165),
)
FESTIVAL_BASE = 100
TTS_ENGINES = ("espeak", "festival")


def voice_of(index: int) -> tuple[str, str, int, int]:
    """(gender letter, voice, base pitch, base rate) of actor ``index``: espeak's :data:`VOICES` (cycled) below
    :data:`FESTIVAL_BASE`, :data:`FESTIVAL_VOICES` (cycled) from it."""
    if index >= FESTIVAL_BASE:
        return FESTIVAL_VOICES[(index - FESTIVAL_BASE) % len(FESTIVAL_VOICES)]
    return VOICES[index % len(VOICES)]


def actor_indices(actors: int, tts: tuple[str, ...] = ("espeak",)) -> list[int]:
    """The actor indices of a corpus of ``actors`` actors whose voices come from the engines ``tts``: espeak's
    0, 1, 2, ...; Festival's 100, 101, 102; both: alternating (0, 100, 1, 101, 2, 102, 3, 4, ...)."""
    unknown = [t for t in tts if t not in TTS_ENGINES]
    if unknown or not tts:
        raise ValueError(f"unknown speech synthesizer {', '.join(unknown) or '(none)'}; use {' or '.join(TTS_ENGINES)}")
    espeak = list(range(actors)) if "espeak" in tts else []
    fest = [FESTIVAL_BASE + k for k in range(len(FESTIVAL_VOICES))] if "festival" in tts else []
    if not espeak:  # Festival only: cycle its voices with new faces
        return [FESTIVAL_BASE + k for k in range(actors)]
    out: list[int] = []
    while len(out) < actors:
        out.append(espeak.pop(0))
        if fest and len(out) < actors:
            out.append(fest.pop(0))
    return out


def actor_name(index: int) -> str:
    """MEAD-style actor id: M001, W002, M003, ... (Festival voices: W101, M102, M103)."""
    return f"{voice_of(index)[0]}{index + 1:03d}"


def intensity(emotion: str, level: int) -> float:
    """How strongly an emotion shows: 0 for neutral, level / 3 otherwise (1/3, 2/3, 1)."""
    return 0.0 if emotion == "neutral" else float(level) / 3.0


def clip_id(actor_index: int, emotion: str, level: int, sentence_index: int) -> str:
    """``M001/happy/level_3/002`` (NNN = 1-based sentence id)."""
    return f"{actor_name(actor_index)}/{emotion}/level_{level}/{sentence_index + 1:03d}"


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
                        tremolo=0.08, open_mul=0.8, pitch_deg=7, roll_deg=-2, motion=0.5),
    "fear": EmotionStyle(rate=1.28, pitch=26, range=10, volume=0.85, dark=0.15, tremolo=0.45, breath=0.015,
                         open_bias=0.15, width_bias=0.6, pitch_deg=2, motion=1.2),
    "surprised": EmotionStyle(rate=0.95, pitch=30, range=55, volume=1.35, bright=0.3, open_mul=1.1,
                              open_bias=0.15, round_bias=0.25, pitch_deg=-5, motion=1.1),
    "disgusted": EmotionStyle(rate=0.8, pitch=-10, range=15, volume=0.9, wordgap=4, dark=0.35, drive=0.6,
                              open_mul=0.85, open_bias=0.08, width_bias=0.2, pitch_deg=-1, roll_deg=4,
                              motion=0.8),
    "contempt": EmotionStyle(rate=0.86, pitch=-6, range=-15, volume=0.9, wordgap=3, dark=0.2, open_mul=0.85,
                             pitch_deg=-5, roll_deg=-4, motion=0.7),
}
