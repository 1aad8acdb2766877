"""A finished model is never overwritten by a run that has not finished (issue 13, item 1)."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from evpcli.cli import main
from evpcli.config import Audio2LandmarkTrainConfig
from evpcli.errors import EvpError
from evpcli.models import load_audio2lm, model_rows
from evpcli.train.audio2lm import train_audio2lm
from evpcli.workspace import Workspace, claim
from tests.conftest import stop_after
from tests.test_audio2lm import TINY_A2L


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cfg(epochs: int) -> Audio2LandmarkTrainConfig:
    return Audio2LandmarkTrainConfig(epochs=epochs, steps_per_epoch=6, batch_size=8)


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def ws(tiny_pipeline, tmp_path) -> Workspace:
    shutil.copytree(tiny_pipeline["ws"], tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def test_an_interrupted_retraining_leaves_the_finished_model_in_use_and_resumes(ws):
    first = train_audio2lm(ws, cfg(3), TINY_A2L, device="cpu")
    digest = sha(first.checkpoint)
    with pytest.raises(KeyboardInterrupt):  # the same stage again with other epochs, stopped in epoch 2
        train_audio2lm(ws, cfg(6), TINY_A2L, device="cpu", progress=stop_after(9, "train"))
    assert sha(first.checkpoint) == digest
    bundle = load_audio2lm(ws)  # what preview-landmarks, evaluate and render use
    assert bundle.source.key == first.key == f"{first.run_key}-e3" and bundle.emotion_means
    status = ws.status()
    assert [m["key"] for m in status["models"] if m.get("stage") == "audio2lm"] == [first.key]
    assert [(r["stage"], r["run"], r["epochs_done"]) for r in status["unfinished_runs"]] == \
        [("audio2lm", first.run_key, 1)]
    # --resume continues from the furthest point of this run that does not pass 6 epochs: the finished 3 epochs
    done = train_audio2lm(ws, cfg(6), TINY_A2L, device="cpu", resume=True)
    assert done.start_epoch == 3 and done.steps == 3 * 6 and done.key == f"{first.run_key}-e6"
    assert load_audio2lm(ws).source.key == done.key and not ws.status()["unfinished_runs"]
    assert sha(first.checkpoint) == digest  # the 3-epoch model is still there, and loads by its path
    assert load_audio2lm(ws, path=first.checkpoint).net is not None
    assert [r["key"] for r in model_rows(ws, "audio2lm")] == [first.key, done.key]


def test_interrupting_a_resumption_to_more_epochs_keeps_a_usable_model(ws):
    first = train_audio2lm(ws, cfg(2), TINY_A2L, device="cpu")
    with pytest.raises(KeyboardInterrupt):
        train_audio2lm(ws, cfg(5), TINY_A2L, device="cpu", resume=True, progress=stop_after(8, "train"))
    assert load_audio2lm(ws).source.key == first.key
    again = train_audio2lm(ws, cfg(5), TINY_A2L, device="cpu", resume=True)
    assert again.start_epoch == 3  # after the epoch the interrupted resumption finished


def test_resume_to_fewer_epochs_than_done_is_refused(ws):
    train_audio2lm(ws, cfg(4), TINY_A2L, device="cpu")
    with pytest.raises(EvpError, match="has trained 4 epochs already; --resume cannot go back to 2"):
        train_audio2lm(ws, cfg(2), TINY_A2L, device="cpu", resume=True)
    assert [r["meta"]["epochs"] for r in model_rows(ws, "audio2lm")] == [4]


def test_a_run_in_progress_elsewhere_is_refused_and_temp_files_of_dead_runs_removed(ws):
    from evpcli.train.audio2lm import train_audio2lm as train

    first = train(ws, cfg(1), TINY_A2L, device="cpu")
    lock = ws.root / "claims" / f"train-audio2lm-{first.run_key}.lock"
    with claim(lock) as held:  # as another live process training this run would hold it
        assert held
        with pytest.raises(EvpError, match="another evp process is training this audio2lm run"):
            train(ws, cfg(2), TINY_A2L, device="cpu")
    leftover = ws.root / "runs" / f".audio2lm-{first.run_key}-checkpoint.pt.k1ll3d.tmp.pt"
    leftover.write_bytes(b"half a checkpoint")
    train(ws, cfg(2), TINY_A2L, device="cpu")
    assert not leftover.exists()


def test_cli_refuses_resume_to_fewer_epochs_with_one_line(ws, capsys):
    args = ["-q", "--workspace", str(ws.root), "train", "--stage", "audio2lm", "--steps-per-epoch", "1",
            "--batch-size", "4"]
    assert main([*args, "--epochs", "2"]) == 0
    capsys.readouterr()
    assert main([*args, "--epochs", "1", "--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has trained 2 epochs already" in err[0] and "--epochs 2 or more" in err[0]
