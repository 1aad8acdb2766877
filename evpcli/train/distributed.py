"""Data-parallel training over the processes ``torchrun`` starts (``torchrun --nproc-per-node N -m evpcli train``).

torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and the rendezvous address) in every process it starts;
:func:`data_parallel` reads them, joins the process group (gloo on a CPU, nccl on CUDA, one GPU per local rank) and
yields the process's :class:`Ranks`. Without them (a plain ``evp train``) it yields a single rank and touches no
torch.distributed state, so single-process training runs exactly the code and arithmetic it always has.

How a training loop uses it (the DDP recipe, written out because the stages call their sub-networks directly,
not through one ``forward``):

- every rank draws the *whole* batch from the same per-epoch generator (so the random stream is the one a single
  process draws) and keeps its own contiguous part (:meth:`Ranks.shard`): the ranks see different data, together
  exactly the single-process batch;
- after ``backward`` the gradients are averaged over the ranks (:func:`average_gradients`, one all-reduce of a
  flat buffer); with equal parts that is the gradient of the whole batch's mean loss. Batch-norm running statistics
  are averaged the same way after each step, so every rank holds the same model;
- rank 0 alone writes checkpoints, logs, plots and the finished model, and publishes it in the index; it decides
  where ``--resume`` continues from and tells the others (:meth:`Ranks.broadcast`);
- after each epoch the ranks compare a hash of their weights (:func:`check_in_sync`) and stop with an error if
  they differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from evpcli.errors import EvpError, UsageError


@dataclass(frozen=True)
class Ranks:
    """This process's place among ``world_size`` training processes (a single process: 1, 0, 0)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files and the index."""
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of a batch of ``n`` rows (all of it for a single process)."""
        if not self.distributed:
            return slice(0, n)
        per = n // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)

    def check_batch(self, batch_size: int) -> None:
        if self.distributed and batch_size % self.world_size:
            raise UsageError(f"--batch-size {batch_size} does not split over {self.world_size} training processes; "
                             f"use a multiple of {self.world_size}")

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable objects; returned as is for a single process)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean(self, values: list[float]) -> list[float]:
        """The mean over the ranks of each of ``values`` (returned as is for a single process)."""
        if not self.distributed:
            return values
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(t)
        return (t / self.world_size).cpu().tolist()


def from_env() -> Ranks:
    """The ranks torchrun set in the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); a single process
    without them."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise UsageError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise UsageError(f"RANK {rank} is not in 0..{world - 1} (WORLD_SIZE {world})")
    return Ranks(world, rank, local)


def _collective_device():
    import torch
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


@contextlib.contextmanager
def data_parallel(device: str = "auto") -> Iterator[tuple[Ranks, Any]]:
    """(ranks, torch device) for a training run. Under torchrun: joins the process group (gloo for the CPU, nccl for
    CUDA: rank r uses GPU ``LOCAL_RANK``) unless the caller already has, and leaves it at the end if it joined."""
    from evpcli.device import resolve_device

    ranks = from_env()
    dev = resolve_device(device)
    if not ranks.distributed:
        yield ranks, dev
        return
    import torch
    import torch.distributed as dist

    if dev.type == "cuda":
        dev = torch.device("cuda", ranks.local_rank % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(dev)
    joined = False
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:
            raise UsageError("WORLD_SIZE is set but MASTER_ADDR is not; start distributed training with "
                             "`torchrun --nproc-per-node N -m evpcli train ...`")
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=ranks.rank, world_size=ranks.world_size)
        joined = True
    try:
        yield ranks, dev
    finally:
        if joined:
            dist.destroy_process_group()


def _average(tensors: list, ranks: Ranks) -> None:
    """Replace each tensor by its mean over the ranks, in place (one all-reduce of a flat buffer)."""
    if not ranks.distributed or not tensors:
        return
    import torch
    import torch.distributed as dist

    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= ranks.world_size
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def average_gradients(params, ranks: Ranks) -> None:
    """Replace each parameter's gradient by its mean over the ranks."""
    if ranks.distributed:
        _average([p.grad for p in params if p.grad is not None], ranks)


def average_buffers(model, ranks: Ranks) -> None:
    """Average the floating-point buffers (batch-norm running statistics) over the ranks."""
    if ranks.distributed:
        _average([b for b in model.buffers() if b.is_floating_point()], ranks)


def weights_hash(model) -> str:
    """sha256 of every parameter and buffer of ``model`` (bytes, in state-dict order): equal means bit-identical."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def check_in_sync(model, ranks: Ranks) -> list[str]:
    """Every rank's :func:`weights_hash` (rank order); raises :class:`EvpError` when they differ (a rank trained
    apart from the others: the run would be wrong). A single process gets its own hash only."""
    mine = weights_hash(model)
    if not ranks.distributed:
        return [mine]
    import torch.distributed as dist

    hashes: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(hashes, mine)
    if len(set(hashes)) != 1:
        raise EvpError(f"the {ranks.world_size} training processes hold different weights (rank hashes "
                       f"{', '.join(h[:12] for h in hashes)}); this is a bug in evp's data-parallel training")
    return hashes
