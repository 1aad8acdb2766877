"""``--device``: selection and dtypes on the CPU (torch.cuda.is_available mocked); the real GPU run is skipped
without a GPU."""

import dataclasses

import numpy as np
import pytest
import torch

from evpcli.config import RENDERER_CPU, RENDERER_GPU
from evpcli.device import resolve_device
from evpcli.errors import EvpError
from evpcli.train.renderer import default_net_config


@pytest.mark.parametrize("available, want", [(False, "cpu"), (True, "cuda")])
def test_auto_picks_cuda_only_when_torch_sees_a_gpu(monkeypatch, available, want):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    assert resolve_device("auto") == torch.device(want)
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_without_a_gpu_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:1"):
        with pytest.raises(EvpError, match="sees no CUDA GPU; use --device cpu"):
            resolve_device(name)
    with pytest.raises(EvpError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_cuda_with_a_gpu_keeps_the_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # cuda:N is checked against the GPUs seen
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    dev = torch.device("cuda", 0)
    assert resolve_device(dev) is dev


def test_renderer_default_config_follows_the_device():
    assert default_net_config(torch.device("cuda")) is RENDERER_GPU
    assert default_net_config(torch.device("cuda", 1)) is RENDERER_GPU
    assert default_net_config("cuda:0") is RENDERER_GPU
    assert default_net_config(torch.device("cpu")) is RENDERER_CPU
    assert RENDERER_GPU.size == 512 and RENDERER_CPU.size == 128


def test_cli_train_renderer_on_cuda_without_a_gpu_exits_1_with_one_line(monkeypatch, tmp_path, capsys,
                                                                         carphone_mp4):
    from evpcli.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "ws"
    code = main(["-q", "-w", str(out), "train", "--stage", "renderer", "--target", str(carphone_mp4),
                 "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "no CUDA GPU" in err[0]
    assert not list(out.glob("models/*.pt"))


def test_neural_renderer_runs_a_bf16_generator_and_returns_uint8(monkeypatch):
    """The render path's dtype handling: a generator whose output is bfloat16 (as under CUDA autocast) still gives
    a uint8 crop (the output is cast to float32 before leaving the device)."""
    from evpcli.engines.neural import NeuralRenderer
    from tests.renderdata import carphone_target

    import dataclasses

    from evpcli.nets.renderer import RendererGenerator

    cfg = dataclasses.replace(RENDERER_CPU, hybrid=False)

    torch.manual_seed(0)
    net = RendererGenerator(cfg).to(torch.bfloat16)
    t = carphone_target()
    frame, lm = t.frames[5], t.landmarks[5]

    class Cast(torch.nn.Module):  # bf16 weights, float32 input as the renderer gives
        def __init__(self, inner):
            super().__init__()
            self.inner, self.cfg = inner, inner.cfg

        def forward(self, x):
            return self.inner(x.to(torch.bfloat16))

    r = NeuralRenderer(Cast(net), cfg)
    out = r.render(frame, lm, lm, 1.0)
    assert out.dtype == np.uint8 and out.shape == frame.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none in this torch build/machine)")
def test_renderer_trains_two_steps_on_cuda(tmp_path):
    import dataclasses

    from evpcli.config import RendererTrainConfig
    from evpcli.train.renderer import fit_renderer
    from evpcli.train.renderer_data import prepare_training_target
    from tests.renderdata import carphone_target

    t = carphone_target()
    cfg = dataclasses.replace(RendererTrainConfig(), epochs=1, steps_per_epoch=2)
    data = prepare_training_target(iter(t.frames), t.landmarks, t.valid, RENDERER_GPU, cfg)
    trained = fit_renderer(data, RENDERER_GPU, cfg, tmp_path / "c.pt", tmp_path / "l.csv", "cuda", heldout_every=0)
    assert next(trained.generator.parameters()).device.type == "cuda"
    assert all(torch.isfinite(p).all() for p in trained.generator.parameters())


@pytest.fixture(scope="module")
def tiny_run():
    from evpcli.config import NeuralRendererConfig, RendererTrainConfig
    from evpcli.train.renderer_data import cache_frames, prepare_training_target
    from tests.renderdata import synth_target

    net = NeuralRendererConfig(size=32, channels=(8, 16), res_blocks=1, d_channels=8, d_layers=2, d_scales=2)
    train = RendererTrainConfig(epochs=1, steps_per_epoch=3, batch_size=2, seq_len=3, lr=1e-3, source_offset=8)
    t = synth_target(128)
    data = prepare_training_target(iter(t.frames), t.landmarks, t.valid, net, train)
    return data, net, train, cache_frames(data, net, train)


def test_cpu_training_ignores_the_gpu_options(tiny_run, tmp_path):
    """bf16 autocast and channels-last are for CUDA: on a CPU the run is the float32 one, bit for bit; forced on (as
    CUDA would), the same run goes through bf16 and channels-last and still gives float32 weights."""
    data, net, train, cache = tiny_run
    from evpcli.train.renderer import fit_renderer

    def run(name, cfg, **kw):
        return fit_renderer(data, net, cfg, tmp_path / f"{name}.pt", tmp_path / f"{name}.csv", heldout_every=0,
                            cache=cache, **kw).generator

    on = dataclasses.replace(train, mixed_precision=True, channels_last=True)
    off = dataclasses.replace(train, mixed_precision=False, channels_last=False)
    plain, ignored = run("off", off), run("on", on)  # the second on a CPU: options ignored
    for k, v in plain.state_dict().items():
        assert torch.equal(v, ignored.state_dict()[k]), k
    forced = run("forced", on, gpu_options=True)  # the CUDA path, on the CPU's bf16 autocast
    weights = forced.state_dict()
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in weights.values())
    assert next(forced.parameters()).is_contiguous(memory_format=torch.channels_last) or \
        all(p.dim() != 4 for p in forced.parameters())
    assert any(not torch.equal(v, plain.state_dict()[k]) for k, v in weights.items())  # bf16 did run
