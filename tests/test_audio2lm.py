"""The audio-to-landmark stage, evaluate and preview-landmarks on a tiny real pipeline:
synthetic corpus -> prepare-dataset -> build-pairs -> tiny disentanglement model -> audio2lm."""

import json
import shutil

import numpy as np
import pytest

from evpcli import media
from evpcli.cli import main
from evpcli.config import (Audio2LandmarkConfig, Audio2LandmarkTrainConfig, DisentangleConfig, DisentangleTrainConfig,
                           SilenceGate)
from evpcli.face.parts import mouth_opening
from evpcli.workspace import Workspace

TINY_DIS = DisentangleConfig(content_channels=(8, 8, 16, 16, 16), emotion_channels=(8, 16), content_dim=32,
                             emotion_dim=16, decoder_channels=(16, 8, 8))
TINY_A2L = Audio2LandmarkConfig(identity_hidden=32, identity_dim=32, content_dim=32, emotion_dim=16, lstm_hidden=64,
                                lstm_layers=2)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A workspace with 12 prepared synthetic clips (1 actor, 3 emotions, 4 sentences, sentence 4 held out) and a
    tiny disentanglement model."""
    from evpcli.corpus.synth import synth_corpus
    from evpcli.pairs import build_pairs
    from evpcli.prepare import prepare_dataset
    from evpcli.train.disentangle import train_disentangle

    root = tmp_path_factory.mktemp("a2l")
    synth_corpus(root / "corpus", actors=1, sentences=4, emotions=["happy", "sad", "neutral"], levels=(3,), size=128,
                 seed=0, jobs=2)
    ws = Workspace(root / "ws")
    prepare_dataset(ws, root / "corpus", layout="mead", jobs=2)
    build_pairs(ws)
    train_disentangle(ws, DisentangleTrainConfig(epochs=1, steps_per_epoch=8, pretrain_steps=8, holdout_sentences=1,
                                                 eval_tuples=8), TINY_DIS, device="cpu")
    return root, ws


def test_training_lowers_the_loss_and_resumes(pipeline, tmp_path):
    from evpcli.metrics import landmark_distance
    from evpcli.infer import predict_landmarks
    from evpcli.models import load_audio2lm
    from evpcli.train.audio2lm import load_clip_data, train_audio2lm

    _, ws = pipeline
    cfg = Audio2LandmarkTrainConfig(epochs=10, steps_per_epoch=20, batch_size=16, lr=2e-3)
    r = train_audio2lm(ws, cfg, TINY_A2L, device="cpu")
    log = np.genfromtxt(r.files["log_csv"], delimiter=",", names=True)
    assert len(log) == 10 and log["loss"][-3:].mean() < 0.75 * log["loss"][0]
    assert r.metrics["heldout_clips"] == 3 and r.metrics["train_clips"] == 9
    assert set(r.metrics["heldout"]) == {"M-LD", "M-LVD", "F-LD", "F-LVD"}
    # it learned the training clips' motion: far closer than the static reference face
    model = load_audio2lm(ws)
    train = [c for c in load_clip_data(ws) if c.sentence != "4"]
    err = np.mean([landmark_distance(predict_landmarks(model, c.windows, None, c.reference, gate=None)[c.valid],
                                     c.normalised[c.valid]) for c in train])
    static = np.mean([landmark_distance(np.repeat(c.reference[None], c.valid.sum(), 0), c.normalised[c.valid])
                      for c in train])
    assert err < 0.8 * static, (err, static)
    # --resume with more epochs continues after the last finished epoch
    r2 = train_audio2lm(ws, Audio2LandmarkTrainConfig(epochs=11, steps_per_epoch=20, batch_size=16, lr=2e-3), TINY_A2L,
                        device="cpu", resume=True)
    assert r2.run_key == r.run_key and r2.start_epoch == 10 and r2.steps == 20
    assert (r.key, r2.key) == (f"{r.run_key}-e10", f"{r.run_key}-e11") and r.checkpoint.exists()  # both kept
    assert len(np.genfromtxt(r2.files["log_csv"], delimiter=",", names=True)) == 11


def test_prediction_follows_the_clip_and_emotion_means_exist(pipeline):
    from evpcli.infer import predict_landmarks
    from evpcli.models import load_audio2lm
    from evpcli.train.audio2lm import load_clip_data

    _, ws = pipeline
    model = load_audio2lm(ws)
    assert set(model.emotion_means) == {"happy", "sad", "neutral"}
    c = load_clip_data(ws)[0]
    lm = predict_landmarks(model, c.windows, None, c.reference, c.rms)
    assert lm.shape == (len(c.windows), 68, 2) and np.isfinite(lm).all()
    # landmarks stay a face near the actor's reference (a few pixels of motion, not garbage)
    assert np.abs(lm - c.reference).mean() < 8
    per_frame = predict_landmarks(model, c.windows, np.repeat(model.emotion_means["sad"][None], len(c.windows), 0),
                                  c.reference, c.rms)
    fixed = predict_landmarks(model, c.windows, model.emotion_means["sad"], c.reference, c.rms)
    np.testing.assert_allclose(per_frame, fixed, atol=1e-4)


def test_silence_gate_closes_the_mouth_smoothly():
    from evpcli.infer import apply_silence_gate, silence_weights

    ref = np.zeros((68, 2), np.float32)
    ref[[61, 62, 63], 1], ref[[65, 66, 67], 1] = 100, 101
    lm = np.repeat(ref[None], 40, 0)
    lm[:, [65, 66, 67], 1] += 10  # open mouth all along
    rms = np.r_[np.full(20, 0.2), np.zeros(20)].astype(np.float32)  # speech then silence
    w = silence_weights(rms, SilenceGate())
    assert w[:18].min() > 0.99 and w[22:].max() < 0.01 and np.all(np.diff(w) <= 1e-9)
    out = apply_silence_gate(lm, ref, rms)
    opening = mouth_opening(out)
    # the reference's own 1 px gap closes too (a mean face of speaking frames is half open)
    assert opening[:18].min() == pytest.approx(11) and opening[22:].max() == pytest.approx(0, abs=1e-5)
    kept = apply_silence_gate(lm, ref, rms, SilenceGate(close=False))
    assert mouth_opening(kept)[22:].max() == pytest.approx(1)
    # noise in the pauses: the energy alone keeps the mouth open, the noise floor and voice activity close it
    noisy = np.r_[np.full(20, 0.2), np.full(20, 0.06)].astype(np.float32)
    assert silence_weights(noisy, SilenceGate(floor_percentile=0))[22:].min() > 0.99
    assert silence_weights(noisy, SilenceGate())[22:].max() < 0.01
    activity = np.r_[np.ones(20), np.zeros(20)]
    flat = np.full(40, 0.2, np.float32)  # no quieter pause at all: only the voice activity tells
    assert silence_weights(flat, SilenceGate())[:38].min() > 0.99
    assert silence_weights(flat, SilenceGate(), activity)[22:].max() < 0.01
    np.testing.assert_array_equal(out[:, :48][:, 13:], lm[:, :48][:, 13:])  # brows, nose, eyes untouched


def test_cli_train_evaluate_and_preview(pipeline, arctic_wav, capsys):
    root, ws = pipeline
    w = ["--workspace", str(ws.root)]
    assert main([*w, "-q", "train", "--stage", "audio2lm", "--epochs", "2", "--steps-per-epoch", "4",
                 "--batch-size", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 2
    assert main([*w, "-q", "evaluate", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["test_clips"] == 3 and r["heldout_sentences"] == ["4"]
    for row in ("energy baseline", "EVP (own emotion)", "EVP (emotion of another clip)"):
        assert set(r["rows"][row]) == {"M-LD", "M-LVD", "F-LD", "F-LVD"}
    assert 0 <= r["emotion_accuracy"]["real landmarks"] <= 1
    assert (ws.root / "runs").glob("evaluate-*.json")

    out = root / "lm.mp4"
    assert main([*w, "-q", "preview-landmarks", "--audio", str(arctic_wav), "--emotion", "happy", "--out", str(out)]) == 0
    info = media.probe(out)
    assert info.size == (256, 256) and info.has_audio
    assert abs(info.duration - len(media.load_audio(arctic_wav)) / 16000) < 0.2
    frames = media.read_video(out).frames
    assert frames.mean() > 1 and frames.std(axis=0).mean() > 0.1  # a sketch that moves
    assert main([*w, "-q", "preview-landmarks", "--audio", str(arctic_wav), "--emotion", "bored", "--out",
                 str(root / "x.mp4")]) == 2
    assert "unknown emotion 'bored'" in capsys.readouterr().err
    assert main([*w, "-q", "preview-landmarks", "--audio", str(arctic_wav), "--out", str(root / "x.mp4")]) == 2
    assert "exactly one of --emotion" in capsys.readouterr().err
    assert not (root / "x.mp4").exists()


def test_evaluate_needs_heldout_sentences(pipeline, tmp_path, capsys):
    from evpcli.models import newest_row
    from evpcli.workspace import load_checkpoint, save_checkpoint

    _, ws = pipeline
    copy = Workspace(tmp_path / "ws")
    shutil.copytree(ws.root, copy.root)
    path = newest_row(copy, "disentangle")["path"]
    save_checkpoint(path, {**load_checkpoint(path), "heldout_sentences": []})
    assert main(["--workspace", str(copy.root), "evaluate"]) == 1
    assert "holds out no sentences" in capsys.readouterr().err


def test_finetuning_updates_the_encoders_and_frozen_keeps_them(pipeline):
    import torch

    from evpcli.models import load_audio2lm, load_disentangle
    from evpcli.train.audio2lm import train_audio2lm

    _, ws = pipeline
    before = load_disentangle(ws).net.state_dict()

    def encoder_change():
        after = load_audio2lm(ws).net.disentangle.state_dict()
        return max(float((after[k] - before[k]).abs().max()) for k in before if before[k].dtype == torch.float32)

    train_audio2lm(ws, Audio2LandmarkTrainConfig(epochs=1, steps_per_epoch=3, batch_size=4, seed=3), TINY_A2L,
                   device="cpu")
    assert encoder_change() == 0.0
    train_audio2lm(ws, Audio2LandmarkTrainConfig(epochs=1, steps_per_epoch=3, batch_size=4, seed=4,
                                                 finetune_encoders=True), TINY_A2L, device="cpu")
    assert encoder_change() > 0.0


def test_preview_path_imports_no_training_code(pipeline, arctic_wav):
    """preview-landmarks (speech -> landmarks -> video) runs through models.py and infer.py alone."""
    import subprocess
    import sys

    root, ws = pipeline
    out = root / "no-train.mp4"
    code = ("import sys; from evpcli.cli import main\n"
            f"rc = main(['--workspace', {str(ws.root)!r}, '-q', 'preview-landmarks', '--audio', {str(arctic_wav)!r}, "
            f"'--emotion', 'sad', '--out', {str(out)!r}])\n"
            "assert rc == 0, rc\n"
            "print(sorted(m for m in sys.modules if m.startswith('evpcli.train') or m == 'evpcli.pairs'))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    assert media.probe(out).has_audio


def test_cosine_learning_rate_is_a_function_of_the_epoch():
    from evpcli.config import Audio2LandmarkTrainConfig
    from evpcli.errors import UsageError
    from evpcli.train.audio2lm import epoch_lr_factor

    cfg = Audio2LandmarkTrainConfig(epochs=4)
    assert cfg.lr_schedule == "cosine"
    assert [round(epoch_lr_factor(cfg, e), 6) for e in range(4)] == [1.0, 0.853553, 0.5, 0.146447]
    flat = Audio2LandmarkTrainConfig(epochs=4, lr_schedule="constant")
    assert [epoch_lr_factor(flat, e) for e in range(4)] == [1.0] * 4
    with pytest.raises(UsageError):
        Audio2LandmarkTrainConfig(lr_schedule="step")
