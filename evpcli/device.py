"""``--device auto|cpu|cuda|cuda:N`` -> a torch device. Tensors move at the edge of each loop, never inside nets."""

from __future__ import annotations

from evpcli.errors import EvpError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name="auto"):
    """A torch device from a name (auto, cpu, cuda, cuda:N) or a torch.device (returned as it is)."""
    import torch

    if isinstance(name, torch.device):
        return name

    name = check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EvpError(f"--device {name} asked for, but this torch build sees no CUDA GPU; use --device cpu")
    if name.startswith("cuda:"):
        n = torch.cuda.device_count()
        if int(name[5:]) >= n:
            raise EvpError(f"--device {name}: this machine has {n} CUDA GPU{'s' * (n != 1)} (cuda:0"
                           f"{f'..cuda:{n - 1}' if n > 1 else ''}); choose one of them")
    return torch.device(name)


def check_device_name(name: str) -> str:
    """``name`` if it is a device evp takes (auto, cpu, cuda, cuda:N), else UsageError (exit 2)."""
    import re

    from evpcli.errors import UsageError

    name = str(name).strip().lower()
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N (the N-th GPU)")
    return name


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
