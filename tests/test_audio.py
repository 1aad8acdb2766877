import numpy as np
import pytest
import soundfile as sf

from evpcli import audio, media
from evpcli.config import AudioConfig
from tests.conftest import sine

CFG = AudioConfig()


def reference_mfcc(wav: np.ndarray, sr: int = 16000) -> np.ndarray:
    """MFCC written from the definition with numpy only (no librosa), to cross-check evpcli.audio.mfcc."""
    pad = int(0.12 * sr)
    x = np.pad(wav.astype(np.float64), (pad, pad))
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])
    n_frames = 1 + (len(x) - 400) // 160
    frames = np.stack([x[i * 160: i * 160 + 400] for i in range(n_frames)])
    n = np.arange(400)
    window = 0.54 - 0.46 * np.cos(2 * np.pi * n / 400)  # periodic Hamming
    spec = np.abs(np.fft.rfft(frames * window, n=512, axis=1)) ** 2  # (N, 257)
    hz_to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    mel_to_hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), 26 + 2))
    freqs = np.arange(257) * sr / 512
    fb = np.zeros((26, 257))
    for b in range(26):
        lo, c, hi = edges[b], edges[b + 1], edges[b + 2]
        fb[b] = np.maximum(0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)))
    logmel = np.log(np.maximum(spec @ fb.T, 1e-10))  # (N, 26)
    k = np.arange(13)[:, None]
    dct = np.sqrt(2 / 26) * np.cos(np.pi * k * (2 * np.arange(26)[None, :] + 1) / (2 * 26))
    dct[0] /= np.sqrt(2)
    cep = logmel @ dct.T
    cep *= 1 + 11 * np.sin(np.pi * np.arange(13) / 22)
    return cep[:, 1:]


def test_mfcc_matches_independent_computation(arctic_wav):
    wav = media.load_audio(arctic_wav)
    ours = audio.mfcc(wav)
    ref = reference_mfcc(wav)
    assert ours.shape == ref.shape == (1 + (len(wav) + 3840 - 400) // 160, 12)
    assert ours.dtype == np.float32
    err = np.abs(ours - ref)
    assert np.median(err) < 1e-3 and err.max() < 0.05 * np.abs(ref).max()


def test_mfcc_rate_is_100_per_second():
    m = audio.mfcc(sine(2.0))
    assert abs(len(m) - (200 + 24)) <= 3  # 2 s + 2 x 120 ms padding, 10 ms hop


@pytest.mark.parametrize("seconds,frames", [(3.0, 75), (0.2, 5), (1.0, 25), (2.04, 51), (7.36, 184)])
def test_windows_one_per_video_frame(seconds, frames):
    wav = sine(seconds)
    n = audio.n_video_frames(len(wav))
    assert n == frames
    w = audio.frame_windows(audio.mfcc(wav), n)
    assert w.shape == (frames, 28, 12) and w.dtype == np.float32


def test_window_of_frame_t_is_centred_on_it():
    # A click at video frame 40 (1.6 s): its energy must sit in rows 12..15 of window 40 (3 frames of context
    # before it, 4 after), and reach window 37 only at its last rows and window 44 only at its first.
    wav = np.zeros(16000 * 3, np.float32)
    rng = np.random.default_rng(0)
    wav[int(1.6 * 16000): int(1.6 * 16000) + 640] = rng.normal(0, 0.5, 640)
    w = audio.frame_windows(audio.mfcc(wav), 75)
    energy = np.abs(w).sum(axis=2)  # (75, 28)
    assert energy[40, 12:16].min() > 10 * energy[40, :8].max()
    assert np.argmax(energy[37]) >= 24 and np.argmax(energy[44]) <= 3
    assert energy[30].max() < 1e-2 and energy[50].max() < 1e-2  # far away: silence


def test_silence_gives_zero_features_and_zero_rms():
    wav = np.zeros(16000, np.float32)
    m = audio.mfcc(wav)
    assert np.abs(m).max() < 1e-3
    assert np.all(audio.frame_rms(wav, 25) == 0)


def test_edges_are_padded_with_silence():
    wav = sine(1.0)
    n = audio.n_video_frames(len(wav))
    w = audio.frame_windows(audio.mfcc(wav), n)
    # the first window starts 3 frames (12 rows) before the clip: 120 ms of padding, mostly silence rows
    assert np.abs(w[0, :9]).max() < 1e-3 and np.abs(w[0, 14:]).sum() > 0
    assert np.abs(w[-1, :12]).sum() > 0 and np.abs(w[-1, -4:]).max() < 1e-3


def test_44k_stereo_input_resampled(tmp_path):
    sr = 44100
    t = np.arange(int(2.5 * sr)) / sr
    left = 0.4 * np.sin(2 * np.pi * 440 * t)
    right = 0.2 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), sr)
    wav = media.load_audio(path)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - 40000) <= 2
    assert abs(np.sqrt(np.mean(wav[1000:-1000] ** 2)) - 0.3 / np.sqrt(2)) < 0.01  # mono = mean of channels
    spectrum = np.abs(np.fft.rfft(wav))
    assert abs(np.argmax(spectrum) * 16000 / len(wav) - 440) < 2
    w = audio.frame_windows(audio.mfcc(wav), audio.n_video_frames(len(wav)))
    assert w.shape == (62, 28, 12)


def test_frame_rms_of_known_signal():
    wav = np.concatenate([sine(1.0, amp=0.5), np.zeros(16000, np.float32)])
    rms = audio.frame_rms(wav, 50)
    assert rms.shape == (50,)
    np.testing.assert_allclose(rms[:25], 0.5 / np.sqrt(2), rtol=0.02)
    assert np.all(rms[25:] == 0)


def test_speech_windows_of_a_clip():
    from evpcli.errors import EvpError

    wav = sine(2.0)
    np.testing.assert_array_equal(audio.speech_windows(wav), audio.frame_windows(audio.mfcc(wav), 50))
    with pytest.raises(EvpError, match="shorter than one video frame"):
        audio.speech_windows(np.zeros(100, np.float32))


def librosa_mfcc(wav: np.ndarray, cfg: AudioConfig = CFG) -> np.ndarray:
    """evpcli.audio.mfcc as it was written with librosa's helpers (frame, get_window, mel) and scipy's DCT: the
    numpy version must equal it, so features cached or trained before stay valid."""
    import librosa
    import scipy.fft

    x = audio.pad_audio(wav, cfg)
    if len(x) < cfg.win_length:
        x = np.pad(x, (0, cfg.win_length - len(x)))
    x = np.append(x[0], x[1:] - cfg.preemphasis * x[:-1]).astype(np.float64)
    frames = librosa.util.frame(x, frame_length=cfg.win_length, hop_length=cfg.hop_length, axis=0)
    window = librosa.filters.get_window("hamming", cfg.win_length, fftbins=True)
    power = (np.abs(np.fft.rfft(frames * window, n=cfg.n_fft, axis=1)) ** 2).T
    mel_fb = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=0.0,
                                 fmax=cfg.sample_rate / 2, htk=True, norm=None)
    cep = scipy.fft.dct(np.log(np.maximum(mel_fb @ power, 1e-10)), type=2, axis=0, norm="ortho")[: cfg.n_cepstra]
    cep *= (1 + cfg.lifter / 2 * np.sin(np.pi * np.arange(cfg.n_cepstra) / cfg.lifter))[:, None]
    return np.ascontiguousarray(cep[1:].T, dtype=np.float32)


def test_mfcc_equals_librosa_on_real_speech(arctic_wav, tmp_path):
    import librosa

    wav = media.load_audio(arctic_wav)
    # the helpers themselves are librosa's and scipy's, bit for bit
    np.testing.assert_array_equal(audio.hamming(400), librosa.filters.get_window("hamming", 400, fftbins=True))
    np.testing.assert_array_equal(audio.mel_filters(16000, 512, 26),
                                  librosa.filters.mel(sr=16000, n_fft=512, n_mels=26, fmin=0.0, fmax=8000.0,
                                                      htk=True, norm=None))
    # an 8 kHz recording (telephone speech, as the real-speech clips are), read at 16 kHz as render reads it
    path = tmp_path / "tel.wav"
    sf.write(path, librosa.resample(wav, orig_sr=16000, target_sr=8000), 8000)
    tel = media.load_audio(path)
    cfg8 = AudioConfig(sample_rate=8000, win_length=200, hop_length=80, n_fft=256)  # and MFCC at 8 kHz itself
    for x, cfg in ((wav, CFG), (tel, CFG), (wav[:450], CFG), (np.zeros(3000, np.float32), CFG),
                   (sf.read(path, dtype="float32")[0], cfg8)):
        ours, theirs = audio.mfcc(x, cfg), librosa_mfcc(x, cfg)
        assert ours.shape == theirs.shape and ours.dtype == np.float32
        assert np.abs(ours - theirs).max() < 1e-6 * max(1.0, np.abs(theirs).max())


def test_resampling_equals_librosa(tmp_path):
    import librosa

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, 22050 + 7).astype(np.float32)
    for rate in (8000, 22050, 44100, 48000):
        np.testing.assert_array_equal(media.resample(x, rate), librosa.resample(x, orig_sr=rate, target_sr=16000))
    assert media.resample(x, 16000) is x


def test_render_path_imports_no_librosa():
    """Speech in, windows out, without librosa, scipy.signal or numba: their imports cost seconds on a busy CPU."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, soundfile as sf, tempfile, os\n"
            "from evpcli import audio, media\n"
            "p = os.path.join(tempfile.mkdtemp(), 'a.wav'); sf.write(p, np.zeros(22050, np.float32), 22050)\n"
            "audio.speech_windows(media.load_audio(p))\n"
            "print(sorted(m for m in ('librosa', 'scipy.signal', 'numba', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
