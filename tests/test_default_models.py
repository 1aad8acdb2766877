"""The default models shipped in the package: manifest, checksums, the fallback rule, the wheel, the recipe."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from evpcli import models
from evpcli.errors import EvpError
from evpcli.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 30 * 1024 * 1024


def test_manifest_matches_the_shipped_files():
    manifest = models.shipped_manifest()
    assert manifest is not None, "evpcli/data/models/manifest.json is missing"
    names = {p.name for p in models.SHIPPED_DIR.iterdir() if p.is_file()}
    assert names == {*manifest["files"], models.MANIFEST}
    assert set(models.SHIPPED_FILES.values()) <= set(manifest["files"])
    total = 0
    for name, entry in manifest["files"].items():
        path = models.SHIPPED_DIR / name
        assert models.sha256_file(path) == entry["sha256"], name
        assert path.stat().st_size == entry["bytes"]
        total += entry["bytes"]
    assert total <= MAX_BYTES
    for key in ("evp_version", "configs", "corpus", "seed", "evaluation", "first_epoch", "trained_on"):
        assert manifest.get(key) is not None, key
    assert manifest["fp16_check"]["mean_px"] < 0.05
    assert "EVP (own emotion)" in manifest["evaluation"]["rows"]


def test_shipped_files_hold_weights_only():
    from evpcli.workspace import load_checkpoint

    state = load_checkpoint(models.SHIPPED_DIR / models.SHIPPED_FILES[models.STAGE_AUDIO2LM])
    assert "optimizer" not in state
    assert not any(k.startswith("disentangle.decoder.") for k in state["model"])


def test_empty_workspace_falls_back_to_the_shipped_models(tmp_path):
    ws = Workspace(tmp_path / "nothing")
    a2l = models.load_audio2lm(ws)
    assert a2l.source.origin == "shipped" and a2l.source.path.endswith("audio2lm.pt")
    assert a2l.net.disentangle.decoder is None
    assert a2l.emotion_means and a2l.heldout_sentences and {"scale", "limit"} <= set(a2l.code_stats)
    dis = models.load_disentangle(ws)
    assert dis.source.origin == "shipped" and dis.net.decoder is None
    assert models.load_landmark_emotion(ws).source.origin == "shipped"
    assert "shipped" in a2l.source.describe()
    with pytest.raises(EvpError, match="evp train --stage disentangle"):
        models.load_disentangle(ws, shipped=False)  # training builds on the workspace's own encoders only
    with pytest.raises(EvpError, match="without L_cross"):
        models.load_audio2lm(ws, ablate="cross")  # no shipped ablations


def test_shipped_model_predicts_landmarks(tmp_path, arctic_wav):
    import torch

    from evpcli import media
    from evpcli.face.normalize import TEMPLATE
    from evpcli.infer import emotion_code, speech_landmarks

    a2l = models.load_audio2lm(Workspace(tmp_path / "ws"))
    assert next(a2l.net.parameters()).dtype == torch.float32  # half-precision storage, float32 compute
    wav = media.load_audio(arctic_wav)
    lm = speech_landmarks(a2l, wav, emotion_code(a2l, "happy").code, TEMPLATE.astype(np.float32))
    assert lm.shape[1:] == (68, 2) and np.isfinite(lm).all()
    assert np.ptp(lm[:, 66, 1] - lm[:, 62, 1]) > 1.0  # the mouth moves


def _tampered(tmp_path, monkeypatch, name: str) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(models.SHIPPED_DIR, copy)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / name).write_bytes(bytes(data))
    monkeypatch.setattr(models, "SHIPPED_DIR", copy)
    return copy


def test_tampered_shipped_file_fails_with_one_clear_line(tmp_path, monkeypatch):
    _tampered(tmp_path, monkeypatch, "audio2lm.pt")
    with pytest.raises(EvpError, match="reinstall") as err:
        models.load_audio2lm(Workspace(tmp_path / "ws"))
    assert "\n" not in str(err.value) and "sha256" in str(err.value)
    models.load_landmark_emotion(Workspace(tmp_path / "ws"))  # the other file is intact


def test_tampered_shipped_file_exits_1_in_the_cli(tmp_path, monkeypatch, capsys, arctic_wav):
    from evpcli.cli import main

    _tampered(tmp_path, monkeypatch, "audio2lm.pt")
    code = main(["-w", str(tmp_path / "ws"), "preview-landmarks", "--audio", str(arctic_wav), "--emotion", "happy",
                 "--out", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("evp: error:") and "reinstall" in err and len(err.splitlines()) == 1


def test_missing_shipped_file_says_reinstall(tmp_path, monkeypatch):
    copy = _tampered(tmp_path, monkeypatch, "lm_emotion.pt")
    (copy / "lm_emotion.pt").unlink()
    with pytest.raises(EvpError, match="missing; reinstall"):
        models.load_landmark_emotion(Workspace(tmp_path / "ws"))


def test_preview_in_an_empty_workspace_says_it_used_the_shipped_model(tmp_path, capsys, arctic_wav):
    from evpcli.cli import main

    code = main(["-w", str(tmp_path / "ws"), "preview-landmarks", "--audio", str(arctic_wav), "--emotion", "sad",
                 "--out", str(tmp_path / "p.mp4"), "--json"])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert r["model"]["origin"] == "shipped" and r["actor"] == "the canonical mean face"


def test_a_workspace_model_wins_over_the_shipped_one(tiny_models):
    _, ws = tiny_models
    assert models.load_audio2lm(ws).source.origin == "workspace"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_contains_the_shipped_models(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
                   check=True, timeout=900)
    wheel = next(tmp_path.glob("evpcli-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = json.loads((models.SHIPPED_DIR / models.MANIFEST).read_text())
    for name in [*manifest["files"], models.MANIFEST]:
        assert f"evpcli/data/models/{name}" in names, name


@pytest.mark.slow
@pytest.mark.timeout(3600)  # corpus, features, pairs and one epoch: 10-20 minutes on 2 cores
def test_recipe_reproduces_the_first_epoch(tmp_path):
    """scripts/train_default_models.sh --first-epoch: the corpus, features, pairs and the first disentanglement
    epoch from nothing; its loss equals the manifest's (CPU, seed 0)."""
    manifest = models.shipped_manifest()
    expected = manifest["first_epoch"]["disentangle"]
    env = {**os.environ, "EVP": f"{sys.executable} -m evpcli", "PYTHON": sys.executable,
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run(["bash", str(ROOT / "scripts" / "train_default_models.sh"), str(tmp_path / "work"),
                    "--first-epoch"], check=True, env=env, timeout=3600, stdout=subprocess.DEVNULL)
    ws = tmp_path / "work" / "workspace"
    logs = list((ws / "runs").glob("disentangle-*-log.csv"))
    assert len(logs) == 1
    import csv

    with open(logs[0], newline="") as f:
        first = next(csv.DictReader(f))
    assert int(first["epoch"]) == 1
    for k in ("loss", "cross", "self", "cla", "con"):
        assert float(first[k]) == pytest.approx(expected[k], rel=1e-4), k
