"""Random sampling: K distinct frames drawn uniformly, a floor that any sampler should clear."""

from __future__ import annotations

import dataclasses
import zlib

import torch
from torch import Tensor

from samplerbench.samplers.base import FrameFeatures, Sampler, register_sampler


@register_sampler("random")
@dataclasses.dataclass(kw_only=True, eq=False)
class RandomSampler(Sampler):
    """Training-free. Each video's draw is seeded by ``seed`` and its id (else its row), so a video gets
    the same frames whatever made the features; draws are made on the CPU (a CUDA generator would differ)."""

    seed: int = 0

    def scores(self, batch: FrameFeatures) -> Tensor:
        ids = batch.video_ids or [str(i) for i in range(batch.batch_size)]
        out = torch.empty(batch.batch_size, batch.num_frames)
        for i, video_id in enumerate(ids):
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(video_id.encode()))
            out[i] = torch.rand(batch.num_frames, generator=gen)
        return out.to(batch.fem.device)
