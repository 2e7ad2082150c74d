"""Several processes, GPUs and nodes through torchrun and ``torch.distributed``; no-ops in a plain process.

:func:`session` turns torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` into a process group (NCCL on CUDA,
gloo on CPU). Without ``WORLD_SIZE`` every helper answers as a world of one. How the stages split work
between ranks is described in :mod:`samplerbench.stages.pipeline`; only rank 0 writes the cache and the results."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.parallel import DistributedDataParallel
from torch.utils._python_dispatch import TorchDispatchMode

from samplerbench.core.errors import UserError

T = TypeVar("T")
aten = torch.ops.aten


def local_cores() -> int:
    """The CPU cores this process may use (its affinity mask, not the machine's count), shared out evenly among
    torchrun's processes on this node (``LOCAL_WORLD_SIZE``); at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything but ``cpu``, ``cuda`` or ``cuda:N`` of a
    device this machine has is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise UserError(f"--device {device!r}: expected cpu, cuda, cuda:N or auto")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    if parsed.type == "cuda" and (parsed.index or 0) >= torch.cuda.device_count():
        raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0: the process that writes the cache, the results and the console lines."""
    return rank() == 0


@contextlib.contextmanager
def session(device: str) -> Iterator[str]:
    """Join torchrun's process group for the duration of a run; yields the device this process uses: under
    torchrun ``cuda`` (or ``cuda:N``) becomes ``cuda:<LOCAL_RANK>``, elsewhere ``device`` comes back unchanged."""
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
    """Every rank's ``obj``, in rank order, on every rank (pickled: for small values; tensors of rows go
    through :func:`gather_rows`)."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_rows(t: Tensor) -> Tensor:
    """Every rank's ``t`` concatenated along its first dimension in rank order, on every rank; the row counts
    may differ. Tensors travel as tensors (through the GPU on NCCL), never pickled."""
    w = world_size()
    if w == 1:
        return t
    dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    sizes = [torch.zeros((), dtype=torch.long, device=dev) for _ in range(w)]
    dist.all_gather(sizes, torch.tensor(len(t), device=dev))
    counts = [int(n) for n in sizes]
    padded = torch.zeros(max(counts), *t.shape[1:], dtype=t.dtype, device=dev)
    padded[: len(t)] = t
    parts = [torch.empty_like(padded) for _ in range(w)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:n] for p, n in zip(parts, counts, strict=True)]).to(t.device)


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


class GlobalDraws(TorchDispatchMode):
    """Random draws of a training step made for the whole global batch; each rank keeps its own rows.

    ``bernoulli_`` and ``native_dropout`` are drawn at the global batch's shape from a generator seeded alike on
    every rank, and rank ``r`` keeps rows ``r, r + W, ...``. On CPU masks match one process exactly; on CUDA only
    in distribution (fused kernel). Any other seeded op raises."""

    def __init__(self, samples: int, *, rank: int, world: int) -> None:
        super().__init__()
        self.samples, self.rank, self.world = samples, rank, world

    def _full(self, local: Tensor, func: Any) -> Tensor:
        """An empty tensor for the global draw of which ``local`` is this rank's part, laid out in memory as
        ``local`` is: CPU kernels fill a tensor in memory order, and one process draws into a tensor laid out
        like its input (``empty_like``), e.g. batch-inside-time after attention's transposes."""
        rows = local.shape[0] if local.dim() else 0
        if rows == 0 or rows % self.samples:
            raise RuntimeError(f"{func} in a training step draws a {tuple(local.shape)} tensor whose first "
                               f"dimension is not the {self.samples} samples of this rank's batch: its draw cannot "
                               f"be made for the global batch, and {self.world} processes would train with "
                               f"other random numbers than one")
        shape = (rows * self.world, *local.shape[1:])
        # outermost dim first; a size-1 dim ties with the dim around it and sits inside it
        order = sorted(range(local.dim()), key=lambda d: (-local.stride(d), local.shape[d] == 1))
        memory = local.new_empty([shape[d] for d in order])
        return memory.permute([order.index(d) for d in range(local.dim())])

    def _mine(self, full: Tensor, local: Tensor) -> Tensor:
        per_sample = local.shape[0] // self.samples
        return full.unflatten(0, (self.samples, self.world, per_sample))[:, self.rank].reshape(local.shape)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if torch.Tag.nondeterministic_seeded not in func.tags:
            return func(*args, **kwargs)
        if func is aten.bernoulli_.float:
            local = args[0]
            full = func(self._full(local, func), *args[1:], **kwargs)
            return local.copy_(self._mine(full, local))
        if func is aten.native_dropout.default:
            x, p, train = args
            if not train or p == 0:
                return func(*args, **kwargs)
            keep = self._mine(self._full(x, func).bernoulli_(1 - p), x).bool()
            return x * keep * (1.0 / (1 - p)), keep
        raise RuntimeError(f"{func} draws random numbers in a training step under torchrun; samplerbench draws "
                           f"only dropout-style masks (bernoulli_, native_dropout) for the global batch, so "
                           f"that any number of processes trains alike")


@contextlib.contextmanager
def global_draws(samples: int) -> Iterator[None]:
    """Run one training step's forward with :class:`GlobalDraws` for this rank's ``samples`` (no-op in a
    world of one). Attention runs on PyTorch's math kernel there, whose dropout is an ordinary dropout op;
    the fused CUDA kernels draw inside themselves, where no mode can reach."""
    if world_size() == 1:
        yield
        return
    with GlobalDraws(samples, rank=rank(), world=world_size()), sdpa_kernel(SDPBackend.MATH):
        yield


def _all_reduce(x: Tensor) -> Tensor:
    """The sum over ranks, differentiable (its backward sums the gradients over ranks): PyTorch's functional
    collective, which its deprecation notice on ``torch.distributed.nn.all_reduce`` points to."""
    return funcol.all_reduce(x, "sum", dist.group.WORLD)


class _GlobalStatistics:
    """BatchNorm whose training statistics cover the global batch over gloo (CPU), where SyncBatchNorm cannot run,
    for inputs ``[B, C]`` or ``[B, C, *spatial]``.

    Two differentiable all-reduces (sum and count, then squared deviations): the two-pass variance of one
    process, not ``E[x²] - E[x]²``, which loses digits when the mean is large."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)
        c = x.shape[1]
        dims = (0, *range(2, x.dim()))
        per_channel = (c, *(1,) * (x.dim() - 2))  # a [C] statistic broadcast over the spatial dims
        sums = _all_reduce(torch.cat([x.sum(dims), x.new_full((1,), x.numel() / c)]))
        count = sums[-1]
        mean = sums[:c] / count
        var = _all_reduce((x - mean.view(per_channel)).square().sum(dims)) / count
        with torch.no_grad():
            self.num_batches_tracked += 1
            factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.lerp_(mean.detach(), factor)
            self.running_var.lerp_(var.detach() * count / (count - 1), factor)
        scale = self.weight * torch.rsqrt(var + self.eps)
        return x * scale.view(per_channel) + (self.bias - mean * scale).view(per_channel)


class GlobalBatchNorm1d(_GlobalStatistics, nn.BatchNorm1d):
    """:class:`nn.BatchNorm1d` over the global batch (FrameExit's gates)."""


class GlobalBatchNorm2d(_GlobalStatistics, nn.BatchNorm2d):
    """:class:`nn.BatchNorm2d` over the global batch (the backbones)."""


GLOBAL_BATCH_NORMS: dict[type[nn.Module], type[nn.Module]] = {nn.BatchNorm1d: GlobalBatchNorm1d,
                                                              nn.BatchNorm2d: GlobalBatchNorm2d}


def wrap(module: nn.Module, *, device: str) -> nn.Module:
    """``module`` in DistributedDataParallel when there are several processes (else itself).

    BatchNorm is converted to cover the global batch (SyncBatchNorm on CUDA, :data:`GLOBAL_BATCH_NORMS` in
    place on CPU). ``static_graph`` lets DDP cope with parameters a loss never uses (NSNet "w/o NS")."""
    if world_size() == 1:
        return module
    if device.startswith("cuda"):
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return DistributedDataParallel(module, device_ids=[torch.device(device).index], static_graph=True)
    for m in module.modules():
        if type(m) in GLOBAL_BATCH_NORMS:
            m.__class__ = GLOBAL_BATCH_NORMS[type(m)]
    return DistributedDataParallel(module, static_graph=True)
