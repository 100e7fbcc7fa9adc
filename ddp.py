"""Data-parallel training under torchrun: one process per rank (gloo on CPU, nccl on CUDA).

Without torchrun (WORLD_SIZE unset or 1) every function here is a no-op or returns its input, so
train.py reads the same for one process and many."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup_device(device: str) -> tuple[torch.device, int, int]:
    """Device, rank and world size; `device` is auto, cpu, cuda or cuda:N."""
    device = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    rank, world = 0, 1
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(device)
    return torch.device(device), rank, world


def barrier() -> None:
    """Wait for every rank (e.g. until rank 0 has written a file the others read)."""
    if dist.is_initialized():
        dist.barrier()


def any_rank(flag: bool, device) -> bool:
    """True on every rank if it is true on one."""
    if not dist.is_initialized():
        return flag
    total = torch.tensor(float(flag), device=device)
    dist.all_reduce(total, op=dist.ReduceOp.MAX)
    return bool(total)


def global_batch(parts: dict, work: dict, tasks: tuple[str, ...], world: int, device) -> tuple[dict[str, float], dict]:
    """The loss of each task over the global batch (the mean over the ranks that had it; logged,
    not rank 0's shard) and the work summed over the ranks, in one all-reduce."""
    if world == 1:
        return {t: float(v) for t, v in parts.items()}, work
    values = [float(parts[t]) if t in parts else 0.0 for t in tasks] + [float(t in parts) for t in tasks] + list(work.values())
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    total = total.tolist()
    losses = {t: total[i] / total[len(tasks) + i] for i, t in enumerate(tasks) if total[len(tasks) + i] > 0}
    return losses, dict(zip(work, total[2 * len(tasks):]))


def close_distributed(clean: bool = True) -> None:
    """End the process group on every rank while the interpreter is fully alive.

    DDP keeps references to the process group, so destroy_process_group does not free gloo's
    worker threads: they live on to interpreter exit. A rank that left right after its last
    collective could exit while a worker thread still held that collective's tensors; freeing them
    then needs the GIL of an interpreter being torn down, which aborts the process ("terminate
    called without an active exception", SIGABRT). A barrier as the last collective (it holds no
    Python tensor) makes every rank wait until all are done (rank 0 evaluates and saves last), so
    no worker holds a tensor at exit. After an error, ranks may not all get here: no barrier then."""
    if not dist.is_initialized():
        return
    if clean:
        dist.barrier()
    dist.destroy_process_group()
