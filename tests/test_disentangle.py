"""Disentanglement networks and training: shapes, losses that fall, determinism, resume, ablation, loaders, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from evpcli.cli import main
from evpcli import audio
from evpcli.config import EMOTIONS, DisentangleConfig, DisentangleTrainConfig
from evpcli.infer import clip_emotion_code
from evpcli.models import load_disentangle
from evpcli.nets.disentangle import Disentangle
from evpcli.pairs import build_pairs
from evpcli.train import disentangle as td
from evpcli.train import disentangle_data as tdata
from evpcli.workspace import Workspace, load_checkpoint
from tests.test_pairs import add_clip, emotional, speech

TINY = DisentangleConfig(content_channels=(8, 16), content_pool_after=(0, 1), content_dim=32, emotion_channels=(8, 16),
                         emotion_dim=8, decoder_channels=(16, 8))
TINY_TRAIN = DisentangleTrainConfig(epochs=4, steps_per_epoch=15, batch_size=8, pretrain_steps=10, holdout_sentences=1,
                                    eval_tuples=32, lr=3e-3)
EMOS = ("neutral", "angry", "sad", "happy")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus_ws(tmp_path_factory, arctic_wav):
    """One actor, three 'sentences' (parts of a real utterance), four librosa-made 'emotions', with pairs."""
    root = tmp_path_factory.mktemp("dis")
    ws = Workspace(root / "ws")
    for s, start in (("001", 0.3), ("002", 1.3), ("003", 2.3)):
        base = speech(arctic_wav, start, 0.9)
        for emo in EMOS:
            add_clip(ws, "A", emo, 1, s, emotional(base, emo))
    build_pairs(ws)
    return ws


def _copy_ws(src: Workspace, dst) -> Workspace:
    import shutil

    src.close()
    shutil.copytree(src.root, dst)
    return Workspace(dst)


def test_default_networks_have_the_evp_shapes():
    torch.manual_seed(0)
    model = Disentangle().eval()
    x = torch.randn(5, 28, 12)
    with torch.no_grad():
        assert model.content(x).shape == (5, 256)
        e = model.emotion(x)
        assert e.shape == (5, 128) and (e >= 0).all()
        assert model.emotion(torch.randn(2, 200, 12)).shape == (2, 128)  # any duration
        assert model(x, x).shape == (5, 28, 12)
        assert model.classifier(e).shape == (5, len(EMOTIONS))


def test_losses_are_each_computed_and_ablation_drops_one(corpus_ws):
    torch.manual_seed(0)
    bank = tdata.load_bank(corpus_ws)
    sampler = tdata.TupleSampler(bank, {"001", "002"})
    rows, labels = sampler.sample(np.random.default_rng(0), 6)
    assert rows.shape == (6, 4, 28)
    # x_im and x_in come from one pair (same sentence), x_jn and x_jm from one of another sentence
    clip_of = np.searchsorted(bank.row_offsets, rows[:, :, 0], side="right") - 1
    sent = np.array(bank.sentences)[clip_of]
    emo = np.array(bank.emotions)[clip_of]
    assert np.all(sent[:, 0] == sent[:, 2]) and np.all(sent[:, 1] == sent[:, 3]) and np.all(sent[:, 0] != sent[:, 1])
    assert np.all(emo[:, 0] == emo[:, 3]) and np.all(emo[:, 1] == emo[:, 2]) and np.all(emo[:, 0] != emo[:, 1])
    assert np.array_equal(np.array(EMOTIONS)[labels[:, 0]], emo[:, 0])
    model = Disentangle(TINY)
    x = [torch.from_numpy(bank.rows[rows[:, k]]) for k in range(4)]
    m, n = torch.from_numpy(labels[:, 0]), torch.from_numpy(labels[:, 1])
    full = td.disentangle_losses(model, *x, m, n)
    assert set(full) == {"cross", "self", "cla", "con"} and all(torch.isfinite(v) for v in full.values())
    assert set(td.disentangle_losses(model, *x, m, n, {"cross", "self", "cla"})) == {"cross", "self", "cla"}


def test_bank_windows_and_warped_partners(corpus_ws):
    bank = tdata.load_bank(corpus_ws)
    from evpcli import audio

    for k in (0, 5):
        f = corpus_ws.load_clip_feature("mfcc", bank.clip_ids[k])
        own = audio.frame_windows(f["mfcc"], int(f["n_frames"]))
        np.testing.assert_array_equal(bank.clip_windows(k), own)
        np.testing.assert_array_equal(bank.rows[bank.window_rows(k, np.arange(len(own)))], own)
    # the partner warped onto a clip's time line matches it row by row better than the partner's own windows at
    # the aligned frame (which keep the partner's tempo)
    k = next(i for i, p in enumerate(bank.pairs) if {p.emotion_a, p.emotion_b} == {"angry", "sad"})
    p, (ka, kb) = bank.pairs[k], bank.pair_clips[k]
    frames = np.arange(3, bank.n_frames(ka) - 3)
    mine = bank.rows[bank.window_rows(ka, frames)]
    warped = bank.rows[bank.window_rows(ka, frames, kb, p.map_ab)]
    aligned = bank.rows[bank.window_rows(kb, p.index[frames, 1])]
    assert np.abs(mine - warped).mean() < np.abs(mine - aligned).mean()


def test_training_lowers_the_losses_and_writes_everything(corpus_ws, capsys):
    r = td.train_disentangle(corpus_ws, TINY_TRAIN, TINY, device="cpu")
    with open(r.files["log_csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [int(x["epoch"]) for x in rows] == [1, 2, 3, 4]
    for col in ("loss", "self", "cross"):
        assert float(rows[-1][col]) < 0.9 * float(rows[0][col]), (col, rows)
    for p in (r.checkpoint, *r.files.values()):
        assert p.exists() and p.stat().st_size > 0
    assert r.files["loss_png"].read_bytes()[:4] == b"\x89PNG"
    m = json.loads(r.files["metrics_json"].read_text())
    assert m["heldout_sentences"] == ["003"] and m["heldout_clips"] == len(EMOS)
    for k in ("heldout_accuracy", "cross_to_target", "cross_to_source", "content_ratio", "steps_per_second"):
        assert np.isfinite(m[k])
    # loaders for later stages
    bundle = load_disentangle(corpus_ws, device="cpu")
    assert bundle.config == TINY and not bundle.net.training and bundle.source.key == r.key
    assert bundle.heldout_sentences == {"003"}
    codes = bundle.emotion_means
    assert sorted(codes) == sorted(EMOS) and all(c.shape == (TINY.emotion_dim,) for c in codes.values())
    wav = emotional(speech(td.Path(__file__).parent / "data" / "arctic_a0007.wav", 0.3, 0.9), "sad")
    code = clip_emotion_code(bundle, audio.speech_windows(wav))
    assert code.shape == (TINY.emotion_dim,) and code.dtype == np.float32
    # the stored code of that very clip is the same mean of Ee over its windows
    stored = np.load(r.files["codes"])
    k = list(stored["clip_ids"]).index("A/sad/level_1/001")
    np.testing.assert_allclose(code, stored["clip_codes"][k], rtol=1e-4, atol=1e-5)
    # the emotion means are the means of the stored clip codes
    sad = stored["clip_emotions"] == "sad"
    np.testing.assert_allclose(codes["sad"], stored["clip_codes"][sad].mean(0), rtol=1e-5, atol=1e-6)


def test_training_is_deterministic_and_resume_continues_exactly(corpus_ws, tmp_path):
    cfg = DisentangleTrainConfig(**{**TINY_TRAIN.__dict__, "epochs": 3, "steps_per_epoch": 4, "pretrain_steps": 4})
    cfg1 = DisentangleTrainConfig(**{**cfg.__dict__, "epochs": 1})
    ws_a = _copy_ws(corpus_ws, tmp_path / "a")
    ws_b = _copy_ws(corpus_ws, tmp_path / "b")
    full = td.train_disentangle(ws_a, cfg, TINY, device="cpu")
    td.train_disentangle(ws_b, cfg1, TINY, device="cpu")  # stopped after 1 epoch ...
    resumed = td.train_disentangle(ws_b, cfg, TINY, device="cpu", resume=True)  # ... then resumed to 3
    assert resumed.start_epoch == 1 and resumed.steps == 2 * cfg.steps_per_epoch
    sa, sb = load_checkpoint(full.checkpoint)["model"], load_checkpoint(resumed.checkpoint)["model"]
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name
    with open(resumed.files["log_csv"]) as f:
        assert [int(x["epoch"]) for x in csv.DictReader(f)] == [1, 2, 3]


def test_ablation_turns_one_loss_off(corpus_ws, tmp_path):
    ws = _copy_ws(corpus_ws, tmp_path / "abl")
    cfg = DisentangleTrainConfig(**{**TINY_TRAIN.__dict__, "epochs": 1, "steps_per_epoch": 3, "pretrain_steps": 0,
                                    "ablate": "cross"})
    before = torch.are_deterministic_algorithms_enabled()
    r = td.train_disentangle(ws, cfg, TINY, device="cpu")
    assert torch.are_deterministic_algorithms_enabled() == before  # the run's setting does not leak to the caller
    with open(r.files["log_csv"]) as f:
        row = next(csv.DictReader(f))
    assert row["cross"] == "" and float(row["self"]) > 0
    assert r.metrics["ablate"] == "cross"
    with pytest.raises(td.EvpError, match="ablate"):
        td.train_disentangle(ws, DisentangleTrainConfig(ablate="nope"), TINY, device="cpu")


def test_train_cli_prints_the_metrics(corpus_ws, tmp_path, monkeypatch, capsys):
    ws = _copy_ws(corpus_ws, tmp_path / "cli")
    monkeypatch.setattr(td, "DEFAULT_NET_CONFIG", TINY)
    args = ["--workspace", str(ws.root), "-q", "train", "--stage", "disentangle", "--epochs", "1",
            "--steps-per-epoch", "2", "--pretrain-steps", "2", "--holdout-sentences", "1", "--device", "cpu"]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 2 and 0.0 <= out["metrics"]["heldout_accuracy"] <= 1.0
    assert main(["--workspace", str(ws.root), "train", "--stage", "disentangle", "--epochs", "1",
                 "--steps-per-epoch", "2", "--pretrain-steps", "0", "--holdout-sentences", "1"]) == 0
    err = capsys.readouterr().err
    assert "held-out emotion accuracy" in err and "distance to x_in" in err and "content invariance" in err
    assert main(["--workspace", str(ws.root), "train", "--stage", "disentangle", "--holdout-sentences", "2"]) == 1
    assert "hold out" in capsys.readouterr().err
    assert main(["--workspace", str(ws.root), "train", "--stage", "renderer"]) == 2


def test_train_cli_refuses_options_of_another_stage(corpus_ws, capsys):
    w = ["--workspace", str(corpus_ws.root)]
    assert main([*w, "train", "--stage", "disentangle", "--finetune-encoders"]) == 2
    assert "--finetune-encoders does not apply to --stage disentangle" in capsys.readouterr().err
    assert main([*w, "train", "--stage", "audio2lm", "--pretrain-steps", "3"]) == 2
    assert "--pretrain-steps does not apply" in capsys.readouterr().err
    assert main([*w, "train", "--stage", "disentangle", "--epochs", "0"]) == 2  # range checks live with the config
    assert "--epochs must be at least 1" in capsys.readouterr().err
