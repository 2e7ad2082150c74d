"""Random sampling: K distinct frames drawn uniformly, a floor that any sampler should clear."""

from __future__ import annotations

import zlib

import torch
from torch import Tensor

from samplerbench.samplers.base import FrameBank, Sampler, register_sampler


@register_sampler("random")
class RandomSampler(Sampler):
    """Training-free. Draws are seeded by ``seed`` and the bank's contents, so a given video gets the same
    frames on every call (evaluation is deterministic) while different videos get independent draws."""

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def scores(self, batch: FrameBank) -> Tensor:
        fem = batch.fem.detach().to(torch.float32).contiguous().cpu()
        out = torch.empty(batch.batch_size, batch.num_frames)
        for i in range(batch.batch_size):
            digest = zlib.crc32(fem[i].numpy().tobytes())
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + digest)
            out[i] = torch.rand(batch.num_frames, generator=gen)
        return out
