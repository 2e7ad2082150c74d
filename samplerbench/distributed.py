"""Several processes, GPUs and nodes through torchrun and ``torch.distributed``; no-ops in a plain process.

torchrun (``python -m torch.distributed.run``) starts one process per GPU (or CPU slot) and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables; :func:`session` turns them into a process group
(NCCL on CUDA, gloo on CPU). Without ``WORLD_SIZE`` nothing is initialised and every helper answers as a
world of one, so ``python bench.py`` runs exactly as a single process.

How the stages use it (see :mod:`samplerbench.pipeline`): rank 0 decides whether a stage is cached and
tells the others, so every rank takes the same branch; decoding and feature extraction compute one
contiguous :func:`shard` of the rows per rank and :func:`gather` the parts in rank order, which is record
order; training wraps the network in :func:`wrap` (DistributedDataParallel); only rank 0 writes the cache
and the results.

Cost at the paper's scale: :func:`gather` is ``all_gather_object``, which pickles each part and hands every
rank a full copy. That is fine for the tiny and default presets (megabytes), but ActivityNet at 224 px is
~20k videos × 4 views × 16 frames × 150 kB ≈ 190 GB of training frames: every rank would hold all of it,
as a single process does today. At that size decode on each node into the shared cache and keep frames
out of memory (a memory-mapped cache) before scaling out; this module does not do that.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from samplerbench.errors import UserError

T = TypeVar("T")


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0: the process that writes the cache, the results and the console lines."""
    return rank() == 0


@contextlib.contextmanager
def session(device: str) -> Iterator[str]:
    """Join torchrun's process group for the duration of a run; yields the device this process uses.

    Under torchrun each process takes the GPU of its ``LOCAL_RANK`` (``cuda`` → ``cuda:<LOCAL_RANK>``), so
    ``--device cuda:N`` means "CUDA" there. Outside torchrun ``device`` comes back unchanged.
    """
    if "WORLD_SIZE" not in os.environ:
        yield device
        return
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    try:
        yield device
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (pickled)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (pickled; see the module note on its cost)."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def shard(n: int) -> slice:
    """This rank's contiguous share of ``n`` rows (sizes differ by at most one), so that concatenating the
    :func:`gather`-ed parts restores the original order."""
    r, w = rank(), world_size()
    return slice(n * r // w, n * (r + 1) // w)


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, the others after it: for work that fills a shared folder (the synthetic
    dataset) once and is only read by the rest."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def local_batch(batch_size: int) -> int:
    """The per-rank share of a global batch: the global batch stays the same for any number of processes."""
    w = world_size()
    if batch_size % w:
        raise UserError(f"batch size {batch_size} is not divisible by the {w} processes: each rank takes an equal "
                        f"share of the global batch; choose rec_batch, fem_batch and sampler_batch divisible by {w}")
    return batch_size // w


def rank_seed(seed: int) -> int:
    """Seed for per-rank randomness that no sample owns (dropout): rank 0 keeps ``seed``, the others get
    distinct streams, so ranks do not drop the same units of their different samples."""
    return seed + 1_000_003 * rank()


def wrap(module: nn.Module, *, device: str, find_unused_parameters: bool = False) -> nn.Module:
    """``module`` in DistributedDataParallel when there are several processes (else itself).

    On CUDA, BatchNorm becomes SyncBatchNorm so batch statistics cover the global batch, as in one process.
    PyTorch's SyncBatchNorm runs on GPUs only: on CPU (gloo) each rank normalises over its own share of the
    batch, so a CPU run with W processes trains with W times smaller BatchNorm batches than one process.
    """
    if world_size() == 1:
        return module
    if device.startswith("cuda"):
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return DistributedDataParallel(module, device_ids=[torch.device(device).index],
                                       find_unused_parameters=find_unused_parameters)
    return DistributedDataParallel(module, find_unused_parameters=find_unused_parameters)
