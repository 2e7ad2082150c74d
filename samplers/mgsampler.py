"""MGSampler (Zhi et al., ICCV 2021): motion-guided sampling, training-free, as MCG-NJU/MGSampler's code does it.

Motion (``FrameFeatures.motion``) is 1 − SSIM between each pre-sampled frame and the video's next frame
(:func:`samplerbench.stages.decode.decode_motion`); it is square-rooted, normalised and accumulated, and for every
quantile (j + 0.5)/K the frame with the nearest cumulative motion is kept.

Differences from the original: candidates are the T pre-sampled frames; a static video is weighted uniformly;
two quantiles nearest to one frame are moved apart so the K frames are distinct."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from samplerbench.measures.motion import OPS_PER_PIXEL
from samplerbench.samplers.base import FrameFeatures, Sampler, check_budget, register_sampler


def distinct_in_range(indices: Tensor, t: int) -> Tensor:
    """Make non-decreasing ``[B, K]`` indices strictly increasing inside [0, T): push collisions right,
    then pull the tail left where it ran past the end."""
    k = indices.shape[1]
    offsets = torch.arange(k, device=indices.device)
    pushed = torch.cummax(indices - offsets, dim=1).values + offsets
    return torch.minimum(pushed, offsets + (t - k))


def cumulative_motion(motion: Tensor) -> Tensor:
    """``[B, T]`` motion → MGSampler's ``pic_diff``: the running sum of √motion over its total (uniform weights
    for a video without motion), ending at 1."""
    weights = motion.clamp_min(0).sqrt()
    total = weights.sum(dim=1, keepdim=True)
    weights = torch.where(total > 0, weights, torch.ones_like(weights))
    return weights.cumsum(dim=1) / weights.sum(dim=1, keepdim=True)


def quantile_indices(motion: Tensor, k: int) -> Tensor:
    """``[B, T]`` motion → ``[B, K]`` distinct sorted frames: for each quantile (j + 0.5)/K the frame whose
    cumulative motion is nearest to it (the first of equally near ones), collisions spread apart."""
    cdf = cumulative_motion(motion)
    targets = (torch.arange(k, dtype=cdf.dtype, device=cdf.device) + 0.5) / k
    nearest = (cdf[:, None, :] - targets[None, :, None]).abs().argmin(dim=2)  # [B, K], non-decreasing
    return distinct_in_range(nearest, motion.shape[1])


@register_sampler("mgsampler")
@dataclasses.dataclass(kw_only=True, eq=False)
class MGSampler(Sampler):
    """Motion-guided sampling; ``scores`` is the per-frame motion (for plots), ``select`` the quantile rule.
    ``frame_size``: (H, W) the motion is measured on, for :meth:`gflops`."""

    needs_motion = True
    frame_size: tuple[int, int] | None = None

    def scores(self, batch: FrameFeatures) -> Tensor:
        batch.require("motion", who=self.name)
        return batch.motion

    def select(self, batch: FrameFeatures, k: int) -> Tensor:
        check_budget(k, batch.num_frames)
        return quantile_indices(self.scores(batch), k)

    def gflops(self, frames: int) -> float:
        """1 − SSIM of ``frames`` adjacent pairs, :data:`~samplerbench.measures.motion.OPS_PER_PIXEL` per pixel (the
        decoding of the successors is in the decode cost, not here)."""
        if self.frame_size is None:
            raise RuntimeError("mgsampler: frame size unknown; pass frame_size=(H, W)")
        h, w = self.frame_size
        return frames * h * w * OPS_PER_PIXEL / 1e9
