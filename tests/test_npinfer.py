"""The numpy inference of the audio-to-landmark model (evpcli.npinfer) against the torch modules it stands in for."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from evpcli import audio, media, npinfer
from evpcli.config import Audio2LandmarkConfig, DisentangleConfig
from evpcli.face.normalize import TEMPLATE
from evpcli.infer import classify_code, clip_emotion_code, predict_landmarks
from evpcli.models import load_audio2lm, load_disentangle, shipped_model


@pytest.fixture(scope="module")
def speech_windows(arctic_wav):
    wav = media.load_audio(arctic_wav)
    wav = np.concatenate([wav, np.zeros(4000, np.float32), wav[: len(wav) // 2]])  # a pause, 600 windows-ish
    return audio.speech_windows(wav), audio.frame_rms(wav, audio.n_video_frames(len(wav)))


def test_reader_equals_torch_load():
    path = shipped_model("audio2lm")[0]
    ours, theirs = npinfer.read_checkpoint(path), torch.load(path, weights_only=True)
    assert set(ours) == set(theirs) and ours["config"] == theirs["config"]
    for k, v in theirs["model"].items():
        assert ours["model"][k].dtype == v.numpy().dtype and np.array_equal(ours["model"][k], v.numpy()), k
    assert np.array_equal(ours["emotion_means"], theirs["emotion_means"].numpy())


def test_reader_refuses_what_it_does_not_know(tmp_path):
    torch.save({"x": torch.nn.Linear(2, 2)}, tmp_path / "module.pt")  # a pickled module, not weights
    with pytest.raises(npinfer.UnsupportedCheckpoint):
        npinfer.read_checkpoint(tmp_path / "module.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(npinfer.UnsupportedCheckpoint):
        npinfer.read_checkpoint(tmp_path / "junk.pt")


def test_shipped_model_numpy_equals_torch(speech_windows):
    windows, rms = speech_windows
    a = load_audio2lm(None, device="cpu", backend="torch")
    b = load_audio2lm(None, device="cpu", backend="numpy")
    assert isinstance(b.net, npinfer.NumpyAudio2Landmark)
    assert b.disentangle_config.cmvn == a.disentangle_config.cmvn
    assert b.source == a.source and set(b.emotion_means) == set(a.emotion_means)
    for e in a.emotion_means:
        np.testing.assert_array_equal(a.emotion_means[e], b.emotion_means[e])
    for name in ("scale", "limit"):
        np.testing.assert_array_equal(a.code_stats[name], b.code_stats[name])
    code_a, code_b = clip_emotion_code(a, windows), clip_emotion_code(b, windows)
    assert np.abs(code_a - code_b).max() < 1e-4 * max(1.0, np.abs(code_a).max())
    assert classify_code(a, code_a)[0] == classify_code(b, code_b)[0]
    assert abs(classify_code(a, code_a)[1] - classify_code(b, code_b)[1]) < 1e-4
    for code in (a.emotion_means["happy"], None, np.linspace(a.emotion_means["sad"], a.emotion_means["happy"],
                                                               len(windows))):
        la = predict_landmarks(a, windows, code, TEMPLATE, rms)
        lb = predict_landmarks(b, windows, code, TEMPLATE, rms)
        assert la.shape == lb.shape == (len(windows), 68, 2) and lb.dtype == np.float32
        assert np.abs(la - lb).max() < 1e-3  # px of the 256 frame: float32 rounding only


def test_cmvn_model_numpy_equals_torch(tmp_path, speech_windows):
    """A workspace-style checkpoint (float32, per-clip CMVN, random batch-norm statistics, odd sizes)."""
    from evpcli.nets.audio2lm import Audio2LandmarkModel
    from evpcli.nets.disentangle import Disentangle
    from evpcli.workspace import save_checkpoint

    torch.manual_seed(0)
    dcfg = DisentangleConfig(content_channels=(8, 16, 24), content_pool_after=(0, 2), emotion_channels=(8, 12),
                             content_dim=32, emotion_dim=16, decoder_channels=(16, 8), cmvn=True)
    acfg = Audio2LandmarkConfig(identity_hidden=24, identity_dim=20, content_dim=32, emotion_dim=16, lstm_hidden=16,
                                lstm_layers=2, pca_dim=6)
    net = Audio2LandmarkModel(Disentangle(dcfg), acfg)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    net.disentangle.set_normalisation(torch.randn(12), torch.rand(12) + 0.5)
    net.set_pca(torch.randn(136) * 0.1, torch.randn(6, 136) * 0.1, 8.0)
    means = torch.rand(8, 16)
    save_checkpoint(tmp_path / "a2l.pt", {
        "stage": "audio2lm", "model": net.state_dict(), "emotion_means": means,
        "emotion_present": torch.ones(8, dtype=torch.bool), "heldout_sentences": ["s1"],
        "config": {"net": acfg.__dict__, "disentangle_net": {**dcfg.__dict__, "cmvn": True}}})
    a = load_audio2lm(None, path=tmp_path / "a2l.pt", backend="torch")
    b = load_audio2lm(None, path=tmp_path / "a2l.pt", backend="numpy")
    assert b.disentangle_config.cmvn and b.heldout_sentences == {"s1"}
    windows, rms = speech_windows
    reference = TEMPLATE + np.random.default_rng(0).normal(0, 2, TEMPLATE.shape)
    for code in (means[3].numpy(), None):
        la = predict_landmarks(a, windows, code, reference, rms)
        lb = predict_landmarks(b, windows, code, reference, rms)
        assert np.abs(la - lb).max() < 1e-3
        assert np.abs(la - reference).max() > 0.1  # the network moved something


def test_auto_backend_on_the_cpu_imports_no_torch(arctic_wav):
    code = ("import sys\n"
            "from evpcli import audio, media\n"
            "from evpcli.face.normalize import TEMPLATE\n"
            "from evpcli.infer import emotion_code, predict_landmarks\n"
            "from evpcli.models import load_audio2lm\n"
            "m = load_audio2lm(None, device='cpu', backend='auto')\n"
            f"w = audio.speech_windows(media.load_audio({str(arctic_wav)!r}))\n"
            "lm = predict_landmarks(m, w, emotion_code(m, 'happy').code, TEMPLATE)\n"
            "print(type(m.net).__name__, lm.shape, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "NumpyAudio2Landmark" and out.stdout.strip().endswith("False")


def test_auto_backend_falls_back_to_torch(tmp_path, monkeypatch):
    """A checkpoint the numpy reader does not know, or a GPU device, loads with torch."""
    from evpcli import device

    def unknown(path):
        raise npinfer.UnsupportedCheckpoint("test")

    monkeypatch.setattr(npinfer, "read_checkpoint", unknown)
    assert hasattr(load_audio2lm(None, device="cpu", backend="auto").net, "parameters")
    monkeypatch.undo()
    monkeypatch.setattr(device, "cpu_without_torch", lambda name: False)
    assert hasattr(load_audio2lm(None, device="cpu", backend="auto").net, "parameters")
    monkeypatch.undo()
    assert device.cpu_without_torch("cpu") and not device.cpu_without_torch("cuda")


def test_content_encoder_runs_in_bounded_memory():
    """Chunks of CHUNK windows: a 10-minute clip's content codes need no gigabytes of activations."""
    b = load_audio2lm(None, device="cpu", backend="numpy")
    x = np.random.default_rng(0).normal(0, 1, (3 * npinfer.CHUNK + 5, 28, 12)).astype(np.float32)
    whole = b.net.content(x)
    parts = np.concatenate([b.net.content(x[:npinfer.CHUNK + 3]), b.net.content(x[npinfer.CHUNK + 3:])])
    assert whole.shape == (len(x), 256)
    assert np.abs(whole - parts).max() < 1e-5


def test_the_two_engines_keep_one_contract(speech_windows):
    """The interface evpcli.infer drives (evpcli.torchinfer's docstring): the numpy engine and the torch adapter give
    the same arrays, shapes and dtypes for every method, so infer needs no backend branch."""
    from evpcli.torchinfer import TorchAudio2Landmark

    windows, _ = speech_windows
    windows = windows[:120]
    a = load_audio2lm(None, device="cpu", backend="torch")
    b = load_audio2lm(None, device="cpu", backend="numpy")
    assert isinstance(a.engine, TorchAudio2Landmark) and a.engine.net is a.net and b.engine is b.net
    ta, nb = a.engine, b.engine
    assert ta.disp_scale == nb.disp_scale
    code_a, code_b = ta.emotion_code(windows), nb.emotion_code(windows)
    assert code_a.shape == code_b.shape == (a.config.emotion_dim,) and code_a.dtype == code_b.dtype == np.float32
    assert np.abs(code_a - code_b).max() < 1e-4 * max(1.0, np.abs(code_a).max())
    la, lb = ta.logits(code_a), nb.logits(code_a)
    assert la.shape == lb.shape == (8,) and np.abs(la - lb).max() < 1e-4 * max(1.0, np.abs(la).max())
    assert ta.content_codes(windows) is None  # torch computes them inside its forward pass
    content = nb.content_codes(windows)
    assert content.shape == (len(windows), a.config.content_dim)
    ident = np.random.default_rng(0).normal(0, 0.2, 136).astype(np.float32)
    for emotion in (None, a.emotion_means["happy"]):
        da = ta.displacements(windows, emotion, ident)
        for db in (nb.displacements(windows, emotion, ident), nb.displacements(windows, emotion, ident, content)):
            assert da.shape == db.shape == (len(windows), 68, 2) and da.dtype == db.dtype == np.float32
            assert np.abs(da - db).max() < 1e-3
    # the disentanglement model's engine reads the same emotion code as the audio-to-landmark model's encoder
    dis = load_disentangle(None, device="cpu")
    assert np.abs(dis.engine.emotion_code(windows) - code_a).max() < 1e-4 * max(1.0, np.abs(code_a).max())
