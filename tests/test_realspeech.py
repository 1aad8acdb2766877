"""Robustness to real speech: per-utterance CMVN of the content path, the voice-activity gate, Festival voices,
and training on augmented copies."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from evpcli import audio, media, vad
from evpcli.corpus import festival
from evpcli.nets.disentangle import Disentangle, rows_of_windows
from evpcli.pairs import build_pairs
from evpcli.train import disentangle as td
from evpcli.workspace import ClipRecord, Workspace, cache_key, save_npz
from tests.test_disentangle import EMOS, TINY, TINY_TRAIN
from tests.test_pairs import emotional, speech


def test_rows_of_windows_gives_back_the_mfcc_rows(arctic_wav):
    m = audio.mfcc(media.load_audio(arctic_wav)[:16000])
    w = audio.frame_windows(m, audio.n_video_frames(16000))
    rows = rows_of_windows(torch.from_numpy(w)).numpy()
    n = min(len(rows), len(m))
    assert n >= len(m) - 4
    assert np.array_equal(rows[:n], m[:n])


def test_cmvn_content_input_ignores_a_constant_channel(arctic_wav):
    """A fixed linear channel adds a constant to the cepstra (and a gain change scales nothing in c1..c12): the
    CMVN content input is the same with and without it; the emotion path still sees the difference."""
    m = audio.mfcc(media.load_audio(arctic_wav)[:24000])
    w = torch.from_numpy(audio.frame_windows(m, audio.n_video_frames(24000)))
    channel = torch.linspace(-6, 4, 12)
    net = Disentangle(dataclasses.replace(TINY, cmvn=True)).eval()
    nz = w.abs().sum(-1, keepdim=True) > 0  # the channel does not touch exact silence (the padding)
    shifted = torch.where(nz, w + channel, w)
    a, b = net.content_input(w), net.content_input(shifted)
    assert torch.allclose(a[nz.expand_as(a)], b[nz.expand_as(b)], atol=1e-4)
    with torch.no_grad():
        assert not torch.allclose(net.emotion(w), net.emotion(shifted), atol=1e-3)
    plain = Disentangle(dataclasses.replace(TINY, cmvn=False))
    assert torch.equal(plain.content_input(w), w)  # without cmvn the windows pass unchanged


def test_voice_activity_holds_in_noise(arctic_wav):
    """Speech between two seconds of white noise at 10 dB SNR: the energy of the noise alone would open the mouth,
    the detector keeps the noisy pauses mostly closed and the speech open."""
    pytest.importorskip("webrtcvad")
    wav = media.load_audio(arctic_wav)[int(0.4 * 16000):int(2.4 * 16000)].astype(np.float64)
    clean = np.concatenate([np.zeros(32000), wav, np.zeros(32000)])
    p = (wav ** 2).mean()
    noisy = clean + np.sqrt(p / 10) * np.random.default_rng(0).standard_normal(len(clean))
    n = audio.n_video_frames(len(noisy))
    act = vad.voice_activity(noisy.astype(np.float32), n)
    assert act.shape == (n,) and act.min() >= 0 and act.max() <= 1
    pause = np.r_[5:45, n - 45:n - 5]
    speech_frames = np.arange(55, n - 55)
    assert act[pause].mean() < 0.3
    assert act[speech_frames].mean() > 0.7


@pytest.mark.skipif(not festival.voice_installed("kal"), reason="Festival's kal_diphone voice is not installed")
def test_festival_speaks_with_a_timeline_the_visemes_read():
    from evpcli.corpus.espeak import Prosody

    text = "The birch canoe slid on the smooth planks."
    u = festival.synthesize(text, "kal")
    assert u.sample_rate == 16000 and u.wav.dtype == np.float32 and np.abs(u.wav).max() > 0.05
    dur = len(u.wav) / u.sample_rate
    assert abs(u.phonemes[-1][1] - dur) < 0.1 and u.phonemes[0][0] == 0.0
    names = {n for _, _, n in u.phonemes}
    assert {"b", "D", "_"} <= names and all(n in festival.PHONES.values() for n in names)
    assert len(u.words) == 8
    slow = festival.synthesize(text, "kal", Prosody(rate=110, wordgap=10))
    assert len(slow.wav) / slow.sample_rate > dur + 7 * 0.1  # slower, plus 7 gaps of 100 ms
    assert festival.synthesize(text, "kal").wav.tobytes() == u.wav.tobytes()  # repeatable


@pytest.fixture(scope="module")
def audio_ws(tmp_path_factory, arctic_wav):
    """Like test_disentangle's corpus, with each clip's audio written to a wav file (augmentation reads it)."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("rs")
    ws = Workspace(root / "ws")
    for s, start in (("001", 0.3), ("002", 1.3), ("003", 2.3)):
        base = speech(arctic_wav, start, 0.9)
        for emo in EMOS:
            wav = emotional(base, emo)
            clip_id = f"A/{emo}/level_1/{s}"
            path = root / f"{clip_id.replace('/', '-')}.wav"
            sf.write(path, wav, 16000)
            n = audio.n_video_frames(len(wav))
            key = cache_key(clip_id, params={"n": len(wav)})
            npz = save_npz(ws.path("mfcc", f"{clip_id.replace('/', '-')}-{key}.npz"), mfcc=audio.mfcc(wav),
                           rms=audio.frame_rms(wav, n), n_frames=n)
            ws.put_clips([ClipRecord(clip_id=clip_id, actor="A", emotion=emo, level=1, sentence=s, video="",
                                     audio=str(path), n_frames=n, status="ok")])
            ws.put_artifact("mfcc", key, npz, clip_id=clip_id)
    build_pairs(ws)
    return ws


def test_training_on_augmented_copies_with_cmvn_is_repeatable(audio_ws, tmp_path):
    import shutil

    torch.set_num_threads(1)
    cfg = dataclasses.replace(TINY_TRAIN, epochs=1, augment_copies=1)
    net = dataclasses.replace(TINY, cmvn=True)
    weights = []
    for k in range(2):
        audio_ws.close()
        ws = Workspace(shutil.copytree(audio_ws.root, tmp_path / f"ws{k}"))
        r = td.train_disentangle(ws, cfg, net, device="cpu")
        assert np.isfinite(r.metrics["cross_to_target"])
        weights.append(torch.load(r.checkpoint, weights_only=True)["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    plain = td.train_disentangle(Workspace(shutil.copytree(audio_ws.root, tmp_path / "plain")),
                                 dataclasses.replace(cfg, augment_copies=0), net, device="cpu")
    other = torch.load(plain.checkpoint, weights_only=True)["model"]
    assert not all(torch.equal(weights[0][k], other[k]) for k in other)  # the copies changed what it learnt


def test_actor_indices_alternate_synthesizers_and_keep_espeak_actors():
    from evpcli.corpus import synth

    assert synth.actor_indices(3) == [0, 1, 2]
    both = synth.actor_indices(5, ("espeak", "festival"))
    assert both == [0, 100, 1, 101, 2]
    assert [synth.actor_name(i) for i in both] == ["M001", "W101", "W002", "M102", "M003"]
    assert synth.voice_of(101)[1] == "festival:kal" and synth.voice_of(1)[1] == "en+f2"
    with pytest.raises(ValueError):
        synth.actor_indices(2, ("espeak", "flite"))


@pytest.mark.skipif(not festival.voice_installed("slt"), reason="Festival's slt voice is not installed")
def test_a_festival_actor_speaks_and_its_mouth_follows_its_speech():
    from evpcli.corpus import synth

    clip = synth.make_clip(100, "happy", 3, 2, size=64)
    assert clip.actor == "W101" and len(clip.frames) == len(clip.gt["mouth_open"])
    rms = audio.frame_rms(clip.wav, len(clip.frames))
    r = np.corrcoef(clip.gt["mouth_open"], np.log(rms + 1e-4))[0, 1]
    assert r > 0.4  # the visemes follow Festival's phoneme timeline


def test_an_out_of_distribution_emotion_clip_is_warned_about():
    from evpcli.infer import EmotionCode, ood_warning

    code = np.zeros(4, np.float32)
    odd = EmotionCode(code, "of me.wav", "audio", predicted="disgusted", probability=0.93, out_of_distribution=True)
    msg = ood_warning(odd)
    assert msg is not None and "disgusted" in msg and "0.93" in msg and "--emotion NAME" in msg
    assert ood_warning(EmotionCode(code, "of me.wav", "audio", predicted="sad", probability=0.9,
                                   out_of_distribution=False)) is None
    assert ood_warning(EmotionCode(code, "sad", "name")) is None
