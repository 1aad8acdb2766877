"""The conventions users of video tools expect (issue 25): --device on every command that computes, its help."""

from __future__ import annotations

import pytest

from evpcli.cli import global_options_first, main


def test_device_may_follow_the_command_and_takes_cuda_n(capsys):
    assert global_options_first(["render", "--device", "cpu", "--audio", "a.wav"]) == ["--device", "cpu", "render",
                                                                                      "--audio", "a.wav"]
    assert global_options_first(["render", "--device=cuda:1"]) == ["--device=cuda:1", "render"]
    # train keeps its own --device
    assert global_options_first(["train", "--device", "cpu"]) == ["train", "--device", "cpu"]
    assert main(["--device", "tpu", "status"]) == 2
    assert "cuda:N" in capsys.readouterr().err


def test_cuda_n_is_checked_against_the_machine(monkeypatch):
    torch = pytest.importorskip("torch")
    from evpcli.device import resolve_device
    from evpcli.errors import EvpError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert str(resolve_device("cuda:1")) == "cuda:1"
    with pytest.raises(EvpError, match="has 2 CUDA GPUs"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EvpError, match="no CUDA GPU"):
        resolve_device("cuda:0")
    assert str(resolve_device("auto")) == "cpu"


@pytest.mark.parametrize("command", ["render", "interpolate", "batch-render", "evaluate", "demo", "ui", "fit-pose",
                                     "preview-landmarks", "prepare-dataset", "build-pairs"])
def test_every_computing_command_shows_device_in_its_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert "--device" in capsys.readouterr().out
