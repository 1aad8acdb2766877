"""The audio front end: MFCC features, per-video-frame windows, per-frame energy.

All functions take 16 kHz mono float32 audio as loaded by :func:`evpcli.media.load_audio`.
"""

from __future__ import annotations

import functools

import numpy as np

from evpcli.config import FPS, AudioConfig

DEFAULT_AUDIO = AudioConfig()


SILENT_RMS = 1e-3  # audio quieter than -60 dBFS (RMS): silent (an emotion clip, a training clip)


def pad_audio(wav: np.ndarray, cfg: AudioConfig = DEFAULT_AUDIO) -> np.ndarray:
    """Add ``cfg.pad_seconds`` of silence at each end (EVP pads 120 ms)."""
    pad = int(round(cfg.pad_seconds * cfg.sample_rate))
    return np.pad(np.asarray(wav, dtype=np.float32), (pad, pad))


def mfcc(wav: np.ndarray, cfg: AudioConfig = DEFAULT_AUDIO, pad: bool = True) -> np.ndarray:
    """MFCC of a clip as EVP computes it: (N, 12) float32, one row per 10 ms, c0 dropped.

    Pre-emphasis 0.97, 25 ms (periodic) Hamming frames every 10 ms (row k is samples 160 k .. 160 k + 400 of the
    padded signal), power spectrum with n_fft 512, 26 HTK mel filters over 0-8 kHz, natural log (floored at
    1e-10, so exact silence gives all-zero coefficients 1..12), orthonormal DCT-II, cepstral lifter 22; c0
    (the energy term) is dropped. With ``pad`` (default) 120 ms of silence is added at each end first, so row
    ``4 t`` starts 3 video frames before video frame t and :func:`frame_windows` can centre windows on frames.

    numpy only: the window, the mel filters and the DCT are librosa's and scipy's (``get_window("hamming")``,
    ``filters.mel(htk=True, norm=None)``, ``dct(norm="ortho")``) written out, equal to them to float32 precision
    (tests/test_audio.py compares), so render does not pay for importing librosa (about a second).
    """
    x = pad_audio(wav, cfg) if pad else np.asarray(wav, dtype=np.float32)
    if len(x) < cfg.win_length:
        x = np.pad(x, (0, cfg.win_length - len(x)))
    x = np.append(x[0], x[1:] - cfg.preemphasis * x[:-1]).astype(np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(x, cfg.win_length)[::cfg.hop_length]  # (N, 400)
    window = hamming(cfg.win_length)
    power = (np.abs(np.fft.rfft(frames * window, n=cfg.n_fft, axis=1)) ** 2).T  # (n_fft/2+1, N)
    mel_fb = mel_filters(cfg.sample_rate, cfg.n_fft, cfg.n_mels)
    log_mel = np.log(np.maximum(mel_fb @ power, 1e-10))  # (26, N)
    cep = dct_matrix(cfg.n_mels, cfg.n_cepstra) @ log_mel  # (13, N)
    n = np.arange(cfg.n_cepstra)
    cep *= (1 + cfg.lifter / 2 * np.sin(np.pi * n / cfg.lifter))[:, None]
    return np.ascontiguousarray(cep[1:].T, dtype=np.float32)


@functools.lru_cache(maxsize=4)
def hamming(n: int) -> np.ndarray:
    """Periodic Hamming window (n,) float64, computed as scipy's ``get_window("hamming", n, fftbins=True)`` is
    (a symmetric window of n + 1 points without its last)."""
    fac = np.linspace(-np.pi, np.pi, n + 1)
    w = np.zeros(n + 1)
    for k, a in enumerate((0.54, 1.0 - 0.54)):  # scipy's coefficients, to the last bit
        w += a * np.cos(k * fac)
    w = w[:-1]
    w.flags.writeable = False
    return w


@functools.lru_cache(maxsize=4)
def mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular HTK mel filters over 0 .. sr/2, unnormalised: (n_mels, n_fft // 2 + 1) float32, as librosa's
    ``filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0, htk=True, norm=None)``."""
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    top = 2595.0 * np.log10(1.0 + (sr / 2) / 700.0)
    mel_f = 700.0 * (10.0 ** (np.linspace(0.0, top, n_mels + 2) / 2595.0) - 1.0)  # band edges, Hz
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, len(fft_freqs)), np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights.flags.writeable = False
    return weights


@functools.lru_cache(maxsize=4)
def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The first ``n_out`` rows of the orthonormal DCT-II of length ``n_in``: (n_out, n_in) float64."""
    k = np.arange(n_out)[:, None]
    m = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * np.arange(n_in)[None, :] + 1) / (2 * n_in))
    m[0] /= np.sqrt(2.0)
    m.flags.writeable = False
    return m


def n_video_frames(n_samples: int, cfg: AudioConfig = DEFAULT_AUDIO) -> int:
    """Video frames covered by ``n_samples`` of audio: 3.0 s at 25 fps -> 75."""
    return int(np.floor(n_samples * cfg.fps / cfg.sample_rate + 1e-6))


def frame_windows(m: np.ndarray, n_frames: int, fps: float = FPS, cfg: AudioConfig = DEFAULT_AUDIO) -> np.ndarray:
    """One MFCC window per video frame: (n_frames, 28, 12) float32.

    ``m`` is :func:`mfcc` of a padded clip. The window of video frame t covers MFCC rows
    ``t*h - 3*h .. t*h + 4*h`` of the unpadded clip (h = 4 rows per frame at 25 fps), i.e. rows
    ``t*h .. t*h + 28`` of the padded one. Rows past either end are silence (zeros: the MFCC of exact silence).
    With ``fps`` other than 25, the start row is ``round(t * 100 / fps)``.
    """
    m = np.asarray(m, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"mfcc must be (N, coeffs), got shape {m.shape}")
    rows_per_second = cfg.sample_rate / cfg.hop_length
    starts = np.round(np.arange(n_frames) * rows_per_second / fps).astype(np.int64)
    need = int(starts[-1]) + cfg.window if n_frames else 0
    if need > len(m):
        m = np.concatenate([m, np.zeros((need - len(m), m.shape[1]), np.float32)])
    idx = starts[:, None] + np.arange(cfg.window)[None, :]
    return np.ascontiguousarray(m[idx])


def frame_rms(wav: np.ndarray, n_frames: int, fps: float = FPS, cfg: AudioConfig = DEFAULT_AUDIO) -> np.ndarray:
    """RMS energy of the (unpadded) audio under each video frame: (n_frames,) float32.

    Frame t covers samples ``[t, t+1) * sr / fps``; samples past the end count as silence.
    """
    wav = np.asarray(wav, dtype=np.float32)
    edges = np.round(np.arange(n_frames + 1) * cfg.sample_rate / fps).astype(np.int64)
    if edges[-1] > len(wav):
        wav = np.pad(wav, (0, int(edges[-1]) - len(wav)))
    sq = np.concatenate([[0.0], np.cumsum(wav.astype(np.float64) ** 2)])
    counts = np.maximum(np.diff(edges), 1)
    return np.sqrt((sq[edges[1:]] - sq[edges[:-1]]) / counts).astype(np.float32)


def speech_windows(wav: np.ndarray, cfg: AudioConfig = DEFAULT_AUDIO) -> np.ndarray:
    """The network input for a whole speech clip: one (28, 12) MFCC window per 25 fps video frame,
    (T, 28, 12) float32 with T = :func:`n_video_frames`. Raises EvpError for a clip shorter than one frame."""
    from evpcli.errors import EvpError

    n = n_video_frames(len(wav), cfg)
    if n < 1:
        raise EvpError("the speech clip is shorter than one video frame (40 ms)")
    return frame_windows(mfcc(wav, cfg), n, cfg.fps, cfg)
