"""Uniform sampling: K evenly spaced frames of the T, the default of most recognizers (TSN)."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from samplerbench.samplers.base import FrameFeatures, Sampler, check_budget, register_sampler


def uniform_indices(t: int, k: int, *, device: torch.device | str | None = None) -> Tensor:
    """Centres of K equal segments of [0, T): ``(2i + 1)·T // 2K``, exact integer arithmetic, distinct since K <= T."""
    return (2 * torch.arange(k, device=device) + 1) * t // (2 * k)


@register_sampler("uniform")
@dataclasses.dataclass(kw_only=True, eq=False)
class UniformSampler(Sampler):
    """Training-free; the baseline every learned sampler must beat."""

    def scores(self, batch: FrameFeatures) -> Tensor:
        # Uniform has no saliency; a flat score says "no preference" to anything that reads scores.
        return torch.zeros(batch.batch_size, batch.num_frames, device=batch.fem.device)

    def select(self, batch: FrameFeatures, k: int) -> Tensor:
        check_budget(k, batch.num_frames)
        return uniform_indices(batch.num_frames, k, device=batch.fem.device).expand(batch.batch_size, k).clone()
