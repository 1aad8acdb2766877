"""Speech from Festival's voices built from recordings of real people, with phoneme timing (an optional system
dependency: ``sudo apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts``).

:func:`synthesize` returns the same :class:`evpcli.corpus.espeak.Utterance` as espeak's binding (float32 speech,
phoneme timeline, word onsets), with Festival's phonemes (the US "radio" set) renamed to espeak's mnemonics, so
the synthetic corpus's visemes read both. Voices (:data:`VOICES`):

- ``kal``: ``kal_diphone``, a US male diphone voice (16 kHz), recorded by Kevin Lenzo (CMU);
- ``ked``: ``ked_diphone``, another US male diphone voice (16 kHz), from the same team;
- ``slt``: ``cmu_us_slt_arctic_hts``, an HTS statistical voice trained on CMU ARCTIC's US female speaker (32 kHz).

Prosody uses the espeak :class:`~evpcli.corpus.espeak.Prosody` scales, mapped to what Festival offers: ``rate``
(words/min, 165 = the voice's own speed) -> ``Duration_Stretch`` (diphone) or hts_engine's speed ``-r`` (HTS);
``pitch`` (0-100, 50 = the voice's own level; 10 points = 1.2 semitones) -> the F0 target mean (diphone) or a
pitch shift of the output (HTS, librosa); ``range`` (0-100, 50 = own range) -> the F0 target spread (diphone only:
HTS generates its own contour); ``volume`` (100 = unchanged) -> gain; ``wordgap`` (10 ms units) -> silence inserted
after every word but the last, with the timeline shifted to match. Festival is deterministic: the same arguments
give the same samples. Each call runs one ``festival -b`` process (about 0.3-0.5 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evpcli.corpus.espeak import Prosody, Utterance
from evpcli.errors import EvpError


@dataclass(frozen=True)
class FestivalVoice:
    """A Festival voice: the Scheme command that selects it, its kind (diphone or hts), the Debian package that
    ships it, and its own F0 mean / spread (Hz) and duration stretch."""

    command: str
    kind: str
    package: str
    f0_mean: float
    f0_std: float
    stretch: float = 1.0


VOICES: dict[str, FestivalVoice] = {
    "kal": FestivalVoice("voice_kal_diphone", "diphone", "festvox-kallpc16k", 105.0, 14.0, 1.1),
    "ked": FestivalVoice("voice_ked_diphone", "diphone", "festvox-kdlpc16k", 105.0, 15.0, 1.0),
    "slt": FestivalVoice("voice_cmu_us_slt_arctic_hts", "hts", "festvox-us-slt-hts", 165.0, 34.0),
}

# Festival's US phone set -> espeak mnemonics (what evpcli.corpus.synth.viseme reads).
PHONES: dict[str, str] = {
    "aa": "A:", "ae": "a", "ah": "V", "ao": "O:", "aw": "aU", "ax": "@", "ay": "aI", "eh": "E", "er": "3:",
    "ey": "eI", "ih": "I", "iy": "i:", "ow": "oU", "oy": "OI", "uh": "U", "uw": "u:",
    "b": "b", "ch": "tS", "d": "d", "dh": "D", "f": "f", "g": "g", "hh": "h", "jh": "dZ", "k": "k", "l": "l",
    "m": "m", "n": "n", "ng": "N", "p": "p", "r": "r", "s": "s", "sh": "S", "t": "t", "th": "T", "v": "v",
    "w": "w", "y": "j", "z": "z", "zh": "Z", "pau": "_", "h#": "_", "brth": "_",
}


def festival_path() -> str | None:
    """The ``festival`` executable, or None when it is not installed."""
    return shutil.which("festival")


def voice_installed(name: str) -> bool:
    """Whether Festival and the voice ``name`` (a key of :data:`VOICES`) are installed."""
    if name not in VOICES or festival_path() is None:
        return False
    roots = [Path("/usr/share/festival/voices"), Path("/usr/local/share/festival/voices")]
    folder = VOICES[name].command.removeprefix("voice_")
    return any(any(r.glob(f"*/{folder}")) for r in roots if r.exists())


def require(name: str) -> FestivalVoice:
    """The voice ``name``, or an EvpError saying what to install."""
    if name not in VOICES:
        raise EvpError(f"unknown Festival voice {name!r}; use one of {', '.join(VOICES)}")
    v = VOICES[name]
    if not voice_installed(name):
        raise EvpError(f"Festival voice {name!r} is not installed; install it with: "
                       f"sudo apt-get install festival {v.package}")
    return v


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _script(text: str, voice: FestivalVoice, prosody: Prosody, wav_path: str) -> str:
    lines = [f"({voice.command})"]
    if voice.kind == "diphone":
        semitones = (prosody.pitch - 50) * 0.12
        mean = voice.f0_mean * 2 ** (semitones / 12)
        std = voice.f0_std * max(prosody.range, 0) / 50
        lines += [f"(set! int_lr_params '((target_f0_mean {mean:.2f}) (target_f0_std {std:.2f}) "
                  "(model_f0_mean 170) (model_f0_std 34)))",
                  f"(Parameter.set 'Duration_Stretch {voice.stretch * 165.0 / max(prosody.rate, 1):.4f})"]
    else:
        lines.append(f"(set! hts_engine_params (append hts_engine_params (list (list \"-r\" "
                     f"{max(prosody.rate, 1) / 165.0:.4f}))))")
    lines += [f"(set! utt1 (Utterance Text {_scheme_string(text)}))",
              "(utt.synth utt1)",
              f"(utt.save.wave utt1 {_scheme_string(wav_path)} 'riff)",
              "(mapcar (lambda (s) (format t \"S %s %f\\n\" (item.name s) (item.feat s \"end\"))) "
              "(utt.relation.items utt1 'Segment))",
              "(mapcar (lambda (w) (format t \"W %f %f\\n\" (item.feat w \"word_start\") (item.feat w \"word_end\"))) "
              "(utt.relation.items utt1 'Word))"]
    return "\n".join(lines) + "\n"


def synthesize(text: str, voice: str = "kal", prosody: Prosody = Prosody(), seed: int = 0) -> Utterance:
    """Speak ``text`` with Festival voice ``voice``: float32 speech at the voice's rate, phonemes in espeak's
    mnemonics, word onsets (start_s, word index). ``seed`` is accepted for symmetry with espeak (Festival has no
    randomness)."""
    import soundfile as sf

    v = require(voice)
    with tempfile.TemporaryDirectory(prefix="evp-festival-") as tmp:
        wav_path = os.path.join(tmp, "out.wav")
        script = os.path.join(tmp, "say.scm")
        Path(script).write_text(_script(text, v, prosody, wav_path))
        proc = subprocess.run([festival_path() or "festival", "-b", script], capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0 or not os.path.exists(wav_path):
            raise EvpError(f"Festival failed on {text[:40]!r} with voice {voice}: "
                           f"{(proc.stderr or proc.stdout).strip()[-200:]}")
        data, sr = sf.read(wav_path, dtype="float32", always_2d=True)
    wav = data.mean(axis=1)
    segs, words = [], []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "S":
            segs.append((parts[1], float(parts[2])))
        elif len(parts) == 3 and parts[0] == "W":
            words.append((float(parts[1]), float(parts[2])))
    phonemes, t0 = [], 0.0
    for name, end in segs:
        phonemes.append((t0, end, PHONES.get(name, name)))
        t0 = end
    if v.kind == "hts" and prosody.pitch != 50:
        import librosa

        wav = librosa.effects.pitch_shift(wav, sr=sr, n_steps=(prosody.pitch - 50) * 0.12).astype(np.float32)
    wav = wav * (prosody.volume / 100.0)
    if prosody.wordgap > 0 and len(words) > 1:
        wav, phonemes, words = _insert_gaps(wav, sr, phonemes, words, prosody.wordgap * 0.01)
    return Utterance(wav=np.clip(wav, -1, 1).astype(np.float32), sample_rate=int(sr), phonemes=phonemes,
                     words=[(start, k) for k, (start, _) in enumerate(words)])


def _insert_gaps(wav: np.ndarray, sr: int, phonemes: list, words: list, gap_s: float):
    """Silence of ``gap_s`` after every word but the last; phoneme and word times shifted to match."""
    cuts = sorted(end for _, end in words[:-1])
    pieces, last = [], 0
    for c in cuts:
        i = min(int(round(c * sr)), len(wav))
        pieces += [wav[last:i], np.zeros(int(round(gap_s * sr)), np.float32)]
        last = i
    pieces.append(wav[last:])

    def shift(t: float) -> float:
        return t + gap_s * sum(1 for c in cuts if c <= t + 1e-6)

    new_ph = [(shift(a) if a > 0 else a, shift(b), n) for a, b, n in phonemes]
    # a phoneme that ends at a word boundary keeps its length; the gap becomes a pause
    out_ph = []
    for (a, b, n), (_, b0, _) in zip(new_ph, phonemes, strict=True):
        if any(abs(b0 - c) < 1e-6 for c in cuts):
            out_ph += [(a, b - gap_s, n), (b - gap_s, b, "_")]
        else:
            out_ph.append((a, b, n))
    return np.concatenate(pieces), out_ph, [(shift(s), shift(e)) for s, e in words]
