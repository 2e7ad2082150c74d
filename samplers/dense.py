"""Dense: every one of the T frames; the reference cost (and usually the accuracy a sampler chases)."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from samplerbench.samplers.base import FrameFeatures, Sampler, register_sampler


@register_sampler("dense")
@dataclasses.dataclass(kw_only=True, eq=False)
class DenseSampler(Sampler):
    """Ignores the budget: the recognizer sees all T frames. The pipeline reports it once, at K = T."""

    keeps_all = True

    def scores(self, batch: FrameFeatures) -> Tensor:
        return torch.ones(batch.batch_size, batch.num_frames, device=batch.fem.device)

    def select(self, batch: FrameFeatures, k: int) -> Tensor:
        return torch.arange(batch.num_frames, device=batch.fem.device).expand(batch.batch_size, -1).clone()
