"""Training-time audio augmentation: the channels real speech arrives through, applied to 16 kHz mono speech.

Additive noise (white, pink, brown or speech-shaped) at 5-30 dB SNR over the active speech, room reverberation (a
synthetic exponentially decaying impulse response, RT60 0.15-0.7 s), narrow-band and telephone speech (through 8
kHz, half the time also the 300-3400 Hz band-pass, half the time 8-bit mu-law), gain and pitch shifts (librosa's
phase vocoder + resampling, duration kept). Every transform keeps the clip's length, so the MFCC rows of an
augmented copy stay aligned with the original's landmarks and DTW pairs. Small numpy/scipy DSP rather than a
library: audiomentations would pin ``soxr<1`` (a downgrade of the resampler librosa uses here) and pulls in
compiled extras.

:func:`augment` draws one random chain from an :class:`~evpcli.config.AugmentConfig` with a numpy Generator, so
copies are repeatable from a seed.
"""

from __future__ import annotations

import numpy as np

from evpcli.config import AugmentConfig

SR = 16000


def _frame_rms(wav: np.ndarray, frame: int = 400) -> np.ndarray:
    n = max(len(wav) // frame, 1)
    x = np.pad(wav, (0, max(n * frame - len(wav), 0)))[: n * frame].astype(np.float64)
    return np.sqrt((x.reshape(n, frame) ** 2).mean(1))


def active_power(wav: np.ndarray) -> float:
    """Mean power of the 25 ms frames at least 10 % as loud (RMS) as the 95th percentile: the active speech."""
    rms = _frame_rms(wav)
    loud = np.percentile(rms, 95)
    if loud <= 0:
        return 0.0
    return float((rms[rms >= 0.1 * loud] ** 2).mean())


def coloured_noise(n: int, colour: str, rng: np.random.Generator, like: np.ndarray | None = None) -> np.ndarray:
    """Unit-power noise (n,) float64: ``white``, ``pink`` (1/f power), ``brown`` (1/f^2) or ``speech`` (the long-term
    spectrum of ``like``)."""
    x = rng.standard_normal(n)
    if colour != "white":
        spec = np.fft.rfft(x)
        f = np.maximum(np.arange(len(spec), dtype=np.float64), 1.0)
        if colour == "pink":
            spec /= np.sqrt(f)
        elif colour == "brown":
            spec /= f
        elif colour == "speech" and like is not None and len(like) >= 512:
            import scipy.signal

            freqs, psd = scipy.signal.welch(like, fs=SR, nperseg=512)
            spec *= np.sqrt(np.interp(np.fft.rfftfreq(n, 1 / SR), freqs, psd))
        x = np.fft.irfft(spec, n)
    p = (x ** 2).mean()
    return x / np.sqrt(p) if p > 0 else x


def add_noise(wav: np.ndarray, snr_db: float, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Noise at ``snr_db`` below the active speech power; it runs through the pauses too."""
    p = active_power(wav)
    if p <= 0:
        return wav
    return wav + np.sqrt(p / 10 ** (snr_db / 10)) * coloured_noise(len(wav), colour, rng, wav)


def room_impulse(rt60: float, rng: np.random.Generator, direct_to_reverb_db: float = 3.0) -> np.ndarray:
    """A synthetic room impulse response: a direct path, then exponentially decaying noise (-60 dB at ``rt60`` s)
    starting 2-8 ms later, its energy ``direct_to_reverb_db`` below the direct path."""
    n = int(rt60 * SR)
    delay = int(rng.uniform(0.002, 0.008) * SR)
    t = np.arange(n) / SR
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail *= np.sqrt(10 ** (-direct_to_reverb_db / 10) / max((tail ** 2).sum(), 1e-12))
    h = np.zeros(delay + n)
    h[0] = 1.0
    h[delay:] += tail
    return h


def reverb(wav: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    import scipy.signal

    out = scipy.signal.fftconvolve(wav, room_impulse(rt60, rng))[: len(wav)]
    return out * np.sqrt(max((wav ** 2).mean(), 1e-12) / max((out ** 2).mean(), 1e-12))


def telephone(wav: np.ndarray, mu_law: bool = True, band: bool = True) -> np.ndarray:
    """Down to 8 kHz and back (nothing above 4 kHz: narrow-band speech), with ``band`` through the 300-3400 Hz
    telephone band first, optionally 8-bit mu-law (G.711) in between."""
    import scipy.signal

    if band:
        sos = scipy.signal.butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos")
        wav = scipy.signal.sosfilt(sos, wav)
    y = scipy.signal.resample_poly(wav, 1, 2)
    if mu_law:
        peak = max(np.abs(y).max(), 1e-9)
        x = np.clip(y / peak, -1, 1)
        q = np.round(np.sign(x) * np.log1p(255 * np.abs(x)) / np.log1p(255) * 127) / 127
        y = np.sign(q) * np.expm1(np.abs(q) * np.log1p(255)) / 255 * peak
    return scipy.signal.resample_poly(y, 2, 1)[: len(wav)]


def pitch_shift(wav: np.ndarray, semitones: float) -> np.ndarray:
    import librosa

    return librosa.effects.pitch_shift(np.asarray(wav, np.float32), sr=SR, n_steps=semitones)


def augment(wav: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """One random chain: pitch, reverberation, telephone band, noise, gain (each with its probability). Returns
    float32 of the same length, clipped to [-1, 1]."""
    y = np.asarray(wav, np.float64)
    n = len(y)
    if rng.random() < cfg.pitch_prob:
        y = pitch_shift(y, rng.uniform(-cfg.pitch_semitones, cfg.pitch_semitones)).astype(np.float64)
    if rng.random() < cfg.reverb_prob:
        y = reverb(y, rng.uniform(*cfg.rt60), rng)
    if rng.random() < cfg.telephone_prob:
        y = telephone(y, mu_law=rng.random() < 0.5, band=rng.random() < 0.5)
    if rng.random() < cfg.noise_prob:
        colour = ("white", "pink", "brown", "speech")[rng.integers(4)]
        y = add_noise(y, rng.uniform(*cfg.snr_db), colour, rng)
    y = y * 10 ** (rng.uniform(*cfg.gain_db) / 20)
    y = np.pad(y, (0, max(n - len(y), 0)))[:n]
    return np.clip(y, -1, 1).astype(np.float32)
