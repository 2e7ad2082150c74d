"""Several processes, GPUs and nodes through torchrun and ``torch.distributed``; no-ops in a plain process.

torchrun (``python -m torch.distributed.run``) starts one process per GPU (or CPU slot) and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables; :func:`session` turns them into a process group
(NCCL on CUDA, gloo on CPU). Without ``WORLD_SIZE`` nothing is initialised and every helper answers as a
world of one, so ``python bench.py`` runs exactly as a single process.

How the stages use it (see :mod:`samplerbench.pipeline`): rank 0 decides whether a stage is cached and
tells the others, so every rank takes the same branch; decoding and feature extraction compute one
contiguous :func:`shard` of the rows per rank and :func:`gather` the parts in rank order, which is record
order; training wraps the network in :func:`wrap` (DistributedDataParallel, BatchNorm over the global
batch); only rank 0 writes the cache and the results.

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
import torch.distributed.nn as distributed_nn
from torch import Tensor, nn
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


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the global batch over gloo (CPU), where PyTorch's
    SyncBatchNorm does not run (it needs GPU kernels).

    Each rank sums its per-channel ``x`` and ``x²`` and its count; a differentiable all-reduce
    (``torch.distributed.nn``) adds them up, so the forward normalises exactly as one process would over
    the whole batch and the backward carries every rank's share of the statistics' gradient, as
    SyncBatchNorm does. The variance comes from ``E[x²] - E[x]²`` rather than the single-process kernel's
    two-pass formula: equal up to rounding.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)
        c = x.shape[1]
        dims = (0, 2, 3)
        local = torch.cat([x.sum(dims), (x * x).sum(dims), x.new_full((1,), x.numel() / c)])
        total = distributed_nn.all_reduce(local)
        count = total[-1]
        mean = total[:c] / count
        var = total[c : 2 * c] / count - mean * mean
        with torch.no_grad():
            self.num_batches_tracked += 1
            factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.lerp_(mean.detach(), factor)
            self.running_var.lerp_(var.detach() * count / (count - 1), factor)
        scale = self.weight * torch.rsqrt(var + self.eps)
        return x * scale[:, None, None] + (self.bias - mean * scale)[:, None, None]


def wrap(module: nn.Module, *, device: str) -> nn.Module:
    """``module`` in DistributedDataParallel when there are several processes (else itself).

    BatchNorm is converted so that batch statistics cover the global batch, as in one process: PyTorch's
    SyncBatchNorm on CUDA, :class:`GlobalBatchNorm2d` on CPU (its class is swapped in place, which keeps
    the module's very parameters and buffers). ``static_graph``: every step of our loops runs the same
    graph, which lets DDP cope with parameters that a loss never uses (NSNet "w/o NS" leaves its FS head
    out) without a graph traversal per step.
    """
    if world_size() == 1:
        return module
    if device.startswith("cuda"):
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return DistributedDataParallel(module, device_ids=[torch.device(device).index], static_graph=True)
    for m in module.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = GlobalBatchNorm2d
    return DistributedDataParallel(module, static_graph=True)
