"""Temporal random shift per epoch: the augmentation the NSNet supplementary (A.1) trains with.

:func:`shift_views` gives each epoch one row per video whose frame t is drawn, per segment, among the video's
``train_views`` decoded views (V^T combinations, not V). Draws come from a CPU generator seeded with
``(seed, epoch)``, so every process and device make the same ones."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from samplerbench.samplers.base import FRAME_FIELDS, FrameFeatures


def video_runs(feats: FrameFeatures) -> tuple[Tensor, Tensor]:
    """``(first row, rows)`` of every video, ``[V]`` each: runs of consecutive equal ``video_ids`` (each row its
    own video when the features have no ids)."""
    n = feats.batch_size
    if feats.video_ids is None or n == 0:
        return torch.arange(n), torch.ones(n, dtype=torch.long)
    ids = feats.video_ids
    starts = [i for i in range(n) if i == 0 or ids[i] != ids[i - 1]]
    counts = [b - a for a, b in zip(starts, [*starts[1:], n], strict=True)]
    return torch.tensor(starts, dtype=torch.long), torch.tensor(counts, dtype=torch.long)


def shifted_rows(starts: Tensor, counts: Tensor, frames: int, generator: torch.Generator) -> Tensor:
    """``[V, T]``: for every video and segment, the row whose frame t the epoch uses, one of the video's
    ``counts`` rows from ``starts``, drawn uniformly by ``generator``."""
    draws = torch.rand(len(starts), frames, generator=generator, dtype=torch.float64)
    view = (draws * counts[:, None]).long().minimum(counts[:, None] - 1)
    return starts[:, None] + view


def shift_views(feats: FrameFeatures, generator: torch.Generator) -> FrameFeatures:
    """One epoch's features: one row per video, frame t of each per-frame field (:data:`FRAME_FIELDS`) taken from the
    row :func:`shifted_rows` draws; labels and ids from the video's first row (all its rows share them)."""
    starts, counts = video_runs(feats)
    if bool((counts == 1).all()):
        return feats
    rows = shifted_rows(starts, counts, feats.num_frames, generator)
    segments = torch.arange(feats.num_frames).expand_as(rows)

    def take(x: Tensor) -> Tensor:
        return x[rows.to(x.device), segments.to(x.device)]

    values = {name: take(getattr(feats, name)) for name in FRAME_FIELDS if getattr(feats, name) is not None}
    if feats.labels is not None:
        values["labels"] = feats.labels[starts.to(feats.labels.device)]
    if feats.video_ids is not None:
        values["video_ids"] = tuple(feats.video_ids[i] for i in starts.tolist())
    return dataclasses.replace(feats, **values)
