"""Training frame classifiers (recognizer and FEM) and caching their per-frame outputs.

"w/o TSN" (one frame per video per step, the paper's main results) or "w/ TSN" (K segments, logits averaged).
Multi-label videos train on a soft target spread evenly over their labels."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from contextlib import AbstractContextManager as ContextManager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from samplerbench.core import distributed
from samplerbench.core.sgd import Fit, Schedule, soft_targets, train_epochs
from samplerbench.core.stagelog import progress
from samplerbench.core.workers import IN_PROCESS, context, init_worker
from samplerbench.formats.store import FrameSource
from samplerbench.recognizers.backbones import FrameClassifier


def resize_frames(frames: Tensor, resolution: int) -> Tensor:
    """uint8 ``[..., 3, H, W]`` -> uint8 ``[..., 3, r, r]``; a no-op at the cached resolution."""
    if frames.shape[-1] == resolution and frames.shape[-2] == resolution:
        return frames
    lead = frames.shape[:-3]
    out = TF.resize(frames.reshape(-1, *frames.shape[-3:]), [resolution, resolution], antialias=True)
    return out.reshape(*lead, *out.shape[-3:])


def _pick_frames(num_frames: int, offsets: Tensor) -> Tensor:
    """One frame inside each of ``segments`` equal parts of the T frames, ``[batch, segments]``, placed by
    ``offsets`` in ``[0, 1)``; ``segments=1`` is "w/o TSN", ``segments=K`` TSN's segment sampling."""
    segments = offsets.shape[1]
    edges = torch.linspace(0, num_frames, segments + 1)
    width = (edges[1:] - edges[:-1]).clamp_min(1.0)
    return (edges[:-1] + offsets * width).floor().long().clamp_(0, num_frames - 1)


class _Batches(Dataset):
    """A training step's input, built in a loader worker: item ``(rows, picks, flip)`` -> uint8
    ``[rows · segments, 3, r, r]``, the picked frames of each row resized to ``r`` and flipped where asked."""

    def __init__(self, frames: FrameSource, resolution: int) -> None:
        self.frames = frames
        self.resolution = resolution

    def __getitem__(self, item: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        rows, picks, flip = item
        x = resize_frames(self.frames.take(rows, picks).flatten(0, 1), self.resolution)
        return torch.where(flip.repeat_interleave(picks.shape[1])[:, None, None, None], x.flip(-1), x)


class _Frames(Dataset):
    """Feature extraction's input: item ``(start, stop)``, a range of the flattened ``N·T`` frames, resized."""

    def __init__(self, frames: FrameSource, resolution: int) -> None:
        self.frames = frames
        self.resolution = resolution

    def __getitem__(self, item: tuple[int, int]) -> Tensor:
        start, stop = item
        t = self.frames.shape[1]
        rows = torch.arange(start // t, -(-stop // t))
        flat = self.frames.take(rows).flatten(0, 1)[start - rows[0] * t : stop - rows[0] * t]
        return resize_frames(flat, self.resolution)


def _loader(dataset: Dataset, items: Iterable, *, workers: int, device: str) -> DataLoader:
    """Items of ``dataset`` in the order of ``items``, read by ``workers`` processes (in this one for
    :data:`~samplerbench.core.workers.IN_PROCESS`), pinned for a CUDA device. The loader draws its worker seed
    from a generator of its own: from the global one it would shift every dropout mask that training draws after
    it."""
    return DataLoader(dataset, sampler=items, batch_size=None, num_workers=workers, persistent_workers=workers > 0,
                      pin_memory=device.startswith("cuda"), multiprocessing_context=context() if workers else None,
                      worker_init_fn=init_worker, generator=torch.Generator())


def fast_path(model: nn.Module, device: str, *,
              compile_model: bool) -> tuple[nn.Module, ContextManager, torch.memory_format]:
    """``model`` ready for ``device``, the context to run it in and the memory format of its inputs: on CUDA,
    channels_last and bf16 autocast for a float32 model (a float64 one is a precision check and stays as it
    is); ``torch.compile``d when asked."""
    precise = next(model.parameters()).dtype == torch.float64
    if torch.device(device).type != "cuda" or precise:
        return (torch.compile(model) if compile_model else model), contextlib.nullcontext(), torch.contiguous_format
    model = model.to(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16)
    return (torch.compile(model) if compile_model else model), autocast, torch.channels_last


def train_frame_classifier(
    model: FrameClassifier,
    frames: FrameSource,
    labels: Tensor,
    *,
    schedule: Schedule,
    heldout: Tensor,
    heldout_segments: int,
    segments: int,
    seed: int,
    device: str,
    resolution: int,
    desc: str,
    workers: int,
    compile_model: bool = False,
) -> Fit:
    """Train in place as ``schedule`` says (:func:`~samplerbench.core.sgd.train_epochs`), with random flips.

    The held-out loss is a video's (logits averaged over ``heldout_segments`` centre frames), so "w/o TSN" and
    "w/ TSN" stop alike. Augmentation is keyed by (seed, epoch, row), independent of the torchrun rank.

    Args:
        frames: uint8 ``[N, T, 3, H, W]`` training frames (one row per view), read per step by ``workers``.
        labels: multi-hot ``[N, C]``.
        schedule: the optimiser, learning-rate curve, epochs, batch and stop rule (the backbones':
            :func:`samplerbench.config.backbone_schedule`).
        heldout: ``[N]`` bool, the rows never trained on (:func:`~samplerbench.core.sgd.heldout_rows` of ``schedule``).
        heldout_segments: the parts of a held-out row whose centre frames its held-out loss reads (the run's K).
        segments: 1 trains "w/o TSN"; K trains "w/ TSN" with K segments and averaged logits.
    """
    torch.manual_seed(seed)  # dropout: the same stream on every rank (see distributed.GlobalDraws)
    model.to(device).train()
    dtype = next(model.parameters()).dtype
    fast, autocast, fmt = fast_path(model, device, compile_model=compile_model)
    net = distributed.wrap(fast, device=device)
    fit_rows, held_rows = (~heldout).nonzero().squeeze(1), heldout.nonzero().squeeze(1)
    targets = soft_targets(labels)
    augment = torch.Generator().manual_seed(seed)
    # The loader's sampler: it iterates this list afresh each epoch, so each epoch refills it in place.
    epoch_items: list[tuple[Tensor, Tensor, Tensor]] = []
    loader = _loader(_Batches(frames, resolution), epoch_items, workers=workers, device=device)

    def logits_of(module: nn.Module, x: Tensor, rows: int) -> Tensor:
        """Each row's logits averaged over its frames in ``x``."""
        with autocast:
            _, logits = module(x.to(device, non_blocking=True).contiguous(memory_format=fmt))
        return logits.to(dtype).view(rows, -1, logits.shape[-1]).mean(dim=1)

    def epoch_inputs(epoch: int, batches: list[Tensor]) -> Iterable[tuple[Tensor, Tensor]]:
        draws = torch.rand(len(frames), segments + 1, generator=augment)  # per row: picks, then flip
        epoch_items[:] = [(rows, _pick_frames(frames.shape[1], draws[rows, :segments]), draws[rows, segments] < 0.5)
                          for rows in (fit_rows[b] for b in batches)]
        return ((x, rows) for (rows, _, _), x in zip(epoch_items, loader, strict=True))

    def loss(x: Tensor, rows: Tensor) -> Tensor:
        logits = logits_of(net, x, len(rows))
        return F.cross_entropy(logits, targets[rows].to(device, logits.dtype))

    centres = _pick_frames(frames.shape[1], torch.full((1, heldout_segments), 0.5))
    mine = held_rows[distributed.shard(len(held_rows))]
    held_items = [(rows, centres.expand(len(rows), -1), torch.zeros(len(rows), dtype=torch.bool))
                  for rows in mine.split(schedule.batch_size)]

    def heldout_loss() -> tuple[float, int]:
        total = 0.0
        for (rows, _, _), x in zip(held_items, _loader(_Batches(frames, resolution), held_items,
                                                        workers=IN_PROCESS, device=device), strict=True):
            logits = logits_of(fast, x, len(rows))
            total += F.cross_entropy(logits, targets[rows].to(device, logits.dtype), reduction="sum").item()
        return total, len(mine)

    return train_epochs(model, schedule=schedule, loss=loss, epoch_inputs=epoch_inputs,
                        heldout_loss=heldout_loss if len(held_rows) else None, rows=len(fit_rows), seed=seed,
                        desc=desc)


@torch.inference_mode()
def extract_outputs(
    model: FrameClassifier, frames: FrameSource, *, resolution: int, device: str, batch_size: int = 256, desc: str,
    workers: int, compile_model: bool = False,
) -> tuple[Tensor, Tensor]:
    """Per-frame (features ``[N,T,F]``, logits ``[N,T,C]``) of every frame of ``frames``, in eval mode, in
    the model's floating-point type; ``batch_size`` frames at a time, read by ``workers`` loader processes."""
    model.to(device).eval()
    fast, autocast, fmt = fast_path(model, device, compile_model=compile_model)
    dtype = next(model.parameters()).dtype
    n, t = frames.shape[:2]
    ranges = [(start, min(start + batch_size, n * t)) for start in range(0, n * t, batch_size)]
    feats, logits = [], []
    for x in progress(_loader(_Frames(frames, resolution), ranges, workers=workers, device=device),
                      total=len(ranges), desc=desc, unit="batch"):
        with autocast:
            f, lg = fast(x.to(device, non_blocking=True).contiguous(memory_format=fmt))
        feats.append(f.to("cpu", dtype))
        logits.append(lg.to("cpu", dtype))
    if not ranges:  # a rank with no rows under torchrun
        empty = torch.zeros(0, t, dtype=dtype)
        return empty[..., None].expand(0, t, model.feature_dim), empty[..., None].expand(0, t, model.head.out_features)
    return torch.cat(feats).view(n, t, -1), torch.cat(logits).view(n, t, -1)
