"""``--device auto|cpu|cuda`` -> a torch device. Tensors move at the edge of each loop, never inside nets."""

from __future__ import annotations

from evpcli.errors import EvpError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name="auto"):
    """A torch device from a name (auto, cpu, cuda, cuda:N) or a torch.device (returned as it is)."""
    import torch

    if isinstance(name, torch.device):
        return name

    if name not in DEVICES and not name.startswith("cuda:"):
        raise EvpError(f"unknown device {name!r}; use one of auto, cpu, cuda")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EvpError("--device cuda asked for, but this torch build sees no CUDA GPU; use --device cpu")
    return torch.device(name)


GPU_DEVICE_FILES = ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")  # NVIDIA, ROCm, WSL's GPU


def cpu_without_torch(name="auto") -> bool:
    """Whether ``--device name`` certainly means the CPU, decided without importing torch (1-2 s): "cpu", or "auto"
    on a machine with no GPU device at all. False means: ask torch (:func:`resolve_device`)."""
    import os

    if not isinstance(name, str):
        return str(name) == "cpu"
    if name == "cpu":
        return True
    return name == "auto" and not any(os.path.exists(p) for p in GPU_DEVICE_FILES)
