"""Real recorded speech for ``bench_real_speech.py``: clips that ship inside Debian packages (read from the
installed packages at run time, nothing is copied into the repository) plus the ARCTIC clip of ``tests/data``,
and variants derived from them (telephone band, additive noise, a long multi-speaker "dialogue").

Install the sources once (Debian/Ubuntu, about 25 MB)::

    sudo apt-get install pocketsphinx-testdata asterisk-core-sounds-en-wav alsa-utils

Sources (what, licence):

- ``tests/data/arctic_a0007.wav``: CMU ARCTIC, one US male speaker, 16 kHz (free, see its COPYING);
- ``pocketsphinx-testdata`` ``librivox/*.wav``: LibriVox *Sense and Sensibility*, one reader, 16 kHz read speech
  (recording public domain, package BSD-2);
- ``pocketsphinx-testdata`` ``cards/*.wav``, ``goforward.raw``, ``numbers.raw``, ``something.raw``: CMU Sphinx
  test utterances, 16 kHz (BSD-2);
- ``asterisk-core-sounds-en-wav`` ``en_US_f_Allison/*.wav``: Allison Smith's telephone prompts, **8 kHz**
  (CC-BY-SA-3.0);
- ``alsa-utils`` ``/usr/share/sounds/alsa/*.wav``: the speaker-test voice ("front centre", ...), 48 kHz (GPL-2).

The set is split once, here, into a **tuning** set (the only clips any choice of this project may look at) and a
**held-out** set (reported apart, never tuned on). The held-out set has two voices the tuning set lacks (the ALSA
voice and the Sphinx test speaker), the same reader and prompt voice with other sentences, and its own dialogue.
Derived clips say how they were made in their name: ``@8k`` (resampled to 8 kHz and back: no energy above 4 kHz,
as telephone speech), ``+white15`` / ``+pink10`` (noise added at 15 / 10 dB SNR over the active speech; the
noise runs through the pauses too), ``dialogue-*`` (utterances of several speakers joined by 0.6-1.2 s pauses
over a -55 dBFS noise floor, 34-35 s). Noise is drawn from fixed seeds, so every run measures the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 16000
REPO = Path(__file__).resolve().parents[1]
PS = Path("/usr/share/pocketsphinx/test/data")
ALLISON = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ALSA = Path("/usr/share/sounds/alsa")
PACKAGE_OF = {str(PS): "pocketsphinx-testdata", str(ALLISON): "asterisk-core-sounds-en-wav", str(ALSA): "alsa-utils"}

# name -> file; .raw files are headerless 16 kHz 16-bit little-endian mono.
SOURCES: dict[str, Path] = {
    "arctic-a0007": REPO / "tests" / "data" / "arctic_a0007.wav",
    **{f"librivox-{n}": PS / "librivox" / f"sense_and_sensibility_01_austen_64kb-{n}.wav"
       for n in ("0870", "0880", "0890", "0920", "0930")},
    **{f"cards-{n}": PS / "cards" / f"{n}.wav" for n in ("002", "003", "005")},
    **{f"sphinx-{n}": PS / f"{n}.raw" for n in ("goforward", "numbers", "something")},
    **{f"allison-{n}": ALLISON / f"{n}.wav" for n in (
        "vm-intro", "demo-thanks", "queue-youarenext", "auth-incorrect", "conf-onlyperson", "vm-nobox",
        "agent-alreadyon", "dir-instr", "vm-newuser", "pbx-invalidpark", "privacy-unident", "vm-rec-busy")},
    **{f"alsa-{n}": ALSA / f"{n}.wav" for n in ("Front_Center", "Front_Left", "Rear_Right", "Side_Left")},
}

TUNING: tuple[str, ...] = (
    "arctic-a0007", "arctic-a0007@8k", "arctic-a0007+white15",
    "librivox-0870", "librivox-0880", "librivox-0870@8k", "librivox-0880+pink10",
    "cards-002", "cards-005",
    "allison-vm-intro", "allison-demo-thanks", "allison-queue-youarenext", "allison-auth-incorrect",
    "allison-conf-onlyperson", "allison-vm-nobox", "allison-vm-intro+pink10",
    "dialogue-tuning",
)
HELDOUT: tuple[str, ...] = (
    "alsa-Front_Center", "alsa-Front_Left", "alsa-Rear_Right", "alsa-Side_Left",
    "sphinx-goforward", "sphinx-numbers", "sphinx-something", "sphinx-numbers@8k",
    "librivox-0890", "librivox-0920", "librivox-0930", "librivox-0920@8k", "librivox-0930+white15",
    "librivox-0890+pink10",
    "allison-agent-alreadyon", "allison-dir-instr", "allison-vm-newuser", "allison-pbx-invalidpark",
    "allison-privacy-unident", "allison-vm-rec-busy", "allison-dir-instr+pink10",
    "dialogue-heldout",
)
DIALOGUES: dict[str, tuple[str, ...]] = {
    "dialogue-tuning": ("librivox-0870", "allison-vm-intro", "arctic-a0007", "cards-005", "librivox-0880",
                        "allison-auth-incorrect", "cards-003"),
    "dialogue-heldout": ("librivox-0890", "sphinx-something", "alsa-Front_Left", "librivox-0920",
                         "sphinx-numbers", "allison-vm-newuser", "sphinx-goforward"),
}


@dataclass
class RealClip:
    """One benchmark clip: 16 kHz float32 ``wav``; ``clean`` is the noise-free source of a noisy variant (its
    pauses are the clip's pauses), else None; ``kind`` is one of clean16k, 8k, noisy, long."""

    name: str
    split: str
    kind: str
    wav: np.ndarray
    clean: np.ndarray | None
    source: str


def _load_source(name: str) -> np.ndarray:
    from evpcli import media

    path = SOURCES[name]
    if not path.exists():
        pkg = next((p for d, p in PACKAGE_OF.items() if str(path).startswith(d)), None)
        hint = f"; install it with: sudo apt-get install {pkg}" if pkg else ""
        raise FileNotFoundError(f"{path} is missing{hint}")
    if path.suffix == ".raw":
        return np.fromfile(path, "<i2").astype(np.float32) / 32768.0
    return media.load_audio(path, SR)


def _active_power(wav: np.ndarray) -> float:
    """Mean power of the frames (25 ms) whose RMS is at least 10 % of the 95th percentile (active speech)."""
    n = len(wav) // 400
    rms = np.sqrt((wav[: n * 400].reshape(n, 400).astype(np.float64) ** 2).mean(1))
    active = rms >= 0.1 * np.percentile(rms, 95)
    return float((rms[active] ** 2).mean())


def noise(kind: str, n: int, seed: int) -> np.ndarray:
    """Unit-power white or pink (1/f power) noise, (n,) float64, from a fixed seed."""
    x = np.random.default_rng(seed).standard_normal(n)
    if kind == "pink":
        spec = np.fft.rfft(x)
        f = np.arange(len(spec), dtype=np.float64)
        spec /= np.sqrt(np.maximum(f, 1.0))
        x = np.fft.irfft(spec, n)
    return x / np.sqrt((x ** 2).mean())


def add_noise(wav: np.ndarray, kind: str, snr_db: float, seed: int) -> np.ndarray:
    """``wav`` plus noise at ``snr_db`` below its active speech power (the noise fills the pauses too)."""
    power = _active_power(wav) / 10 ** (snr_db / 10)
    return (wav + np.sqrt(power) * noise(kind, len(wav), seed)).astype(np.float32)


def telephone_8k(wav: np.ndarray) -> np.ndarray:
    """Resampled to 8 kHz and back to 16 kHz (nothing above 4 kHz remains)."""
    import scipy.signal

    return scipy.signal.resample_poly(scipy.signal.resample_poly(wav, 1, 2), 2, 1).astype(np.float32)


def dialogue(parts: list[np.ndarray], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Utterances joined by pauses of 0.6-1.2 s over a -55 dBFS pink noise floor -> (wav, clean) where clean has
    exact silence in the pauses (so the benchmark knows where they are)."""
    rng = np.random.default_rng(seed)
    chunks = []
    for k, p in enumerate(parts):
        p = p / max(np.abs(p).max(), 1e-6) * 0.5
        chunks.append(p.astype(np.float32))
        if k + 1 < len(parts):
            chunks.append(np.zeros(int(rng.uniform(0.6, 1.2) * SR), np.float32))
    clean = np.concatenate(chunks)
    floor = 10 ** (-55 / 20) * noise("pink", len(clean), seed + 1)
    return (clean + floor).astype(np.float32), clean


def make_clip(name: str, split: str) -> RealClip:
    """Build one named clip (a source, a derived variant ``base@8k`` / ``base+pinkNN`` / ``base+whiteNN``, or a
    dialogue). Seeds derive from the name, so a clip is the same on every run."""
    import zlib

    seed = zlib.crc32(name.encode())
    if name in DIALOGUES:
        wav, clean = dialogue([_load_source(n) for n in DIALOGUES[name]], seed)
        return RealClip(name, split, "long", wav, clean, "+".join(DIALOGUES[name]))
    if "+" in name:
        base, spec = name.split("+", 1)
        kind = "pink" if spec.startswith("pink") else "white"
        clean = _load_source(base)
        return RealClip(name, split, "noisy", add_noise(clean, kind, float(spec[len(kind):]), seed), clean,
                        str(SOURCES[base]))
    if name.endswith("@8k"):
        base = name[:-3]
        return RealClip(name, split, "8k", telephone_8k(_load_source(base)), None, str(SOURCES[base]))
    kind = "8k" if name.startswith("allison-") else "clean16k"
    return RealClip(name, split, kind, _load_source(name), None, str(SOURCES[name]))


def real_clips(split: str = "all") -> tuple[list[RealClip], list[str]]:
    """The clips of ``split`` ("tuning", "heldout" or "all") -> (clips, messages about clips that are missing)."""
    names = [(n, "tuning") for n in TUNING if split in ("tuning", "all")]
    names += [(n, "heldout") for n in HELDOUT if split in ("heldout", "all")]
    out, missing = [], []
    for n, s in names:
        try:
            out.append(make_clip(n, s))
        except FileNotFoundError as exc:
            missing.append(f"{n}: {exc}")
    return out, missing
