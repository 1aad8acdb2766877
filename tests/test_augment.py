"""Training-time audio augmentation: lengths kept, SNR and band as asked, repeatable from a seed."""

from __future__ import annotations

import numpy as np

from evpcli import augment, media
from evpcli.config import AugmentConfig


def _speech(arctic_wav) -> np.ndarray:
    return media.load_audio(arctic_wav)[: 2 * 16000]


def _band_energy(wav: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(wav)) ** 2
    f = np.fft.rfftfreq(len(wav), 1 / 16000)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_noise_is_added_at_the_asked_snr(arctic_wav):
    wav = _speech(arctic_wav).astype(np.float64)
    for colour in ("white", "pink", "brown", "speech"):
        noisy = augment.add_noise(wav, 10.0, colour, np.random.default_rng(0))
        snr = 10 * np.log10(augment.active_power(wav) / ((noisy - wav) ** 2).mean())
        assert abs(snr - 10.0) < 0.5, (colour, snr)


def test_telephone_band_removes_high_and_low_frequencies(arctic_wav):
    wav = _speech(arctic_wav).astype(np.float64)
    tel = augment.telephone(wav, mu_law=False)
    assert len(tel) == len(wav)
    total = _band_energy(tel, 0, 8000)
    assert _band_energy(tel, 4000, 8000) < 1e-3 * total
    assert _band_energy(tel, 0, 150) < 0.02 * total
    assert _band_energy(wav, 4000, 8000) > 5e-3 * _band_energy(wav, 0, 8000)  # the clip had them


def test_reverb_spreads_energy_in_time_and_keeps_level():
    click = np.zeros(16000)
    click[1000] = 1.0
    wet = augment.reverb(click, 0.5, np.random.default_rng(0))
    assert len(wet) == len(click)
    late = (wet[1000 + 1600:1000 + 8000] ** 2).sum()  # 0.1-0.45 s after the click
    assert late > 0.01 * (wet ** 2).sum()
    assert np.isclose((wet ** 2).mean(), (click ** 2).mean(), rtol=1e-6)


def test_augment_keeps_length_and_is_repeatable(arctic_wav):
    wav = _speech(arctic_wav)
    cfg = AugmentConfig(noise_prob=1.0, reverb_prob=1.0, telephone_prob=1.0, pitch_prob=1.0)
    a = augment.augment(wav, np.random.default_rng([3, 1]), cfg)
    b = augment.augment(wav, np.random.default_rng([3, 1]), cfg)
    c = augment.augment(wav, np.random.default_rng([3, 2]), cfg)
    assert a.dtype == np.float32 and len(a) == len(wav)
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert np.abs(a).max() <= 1.0
    assert not np.allclose(a, wav, atol=1e-3)
