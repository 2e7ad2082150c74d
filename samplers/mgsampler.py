"""MGSampler-style motion-guided sampling (Zhi et al., ICCV 2021): training-free, on raw frames.

Per-frame motion is the mean absolute grayscale difference between consecutive pre-sampled frames; the
motion is accumulated over time and normalised to a distribution function, and the K frames sit at its
even quantiles (j + 0.5)/K. Frames where much changes are sampled densely, static stretches sparsely.

Choices where the original is silent or does not apply:
  * the first frame has no predecessor; it gets its difference to the *next* frame, so a burst of motion
    at the very start is not invisible (with T = 1 the motion is 0);
  * ``motion_floor`` is added to every frame's motion (in grey levels / 255), so a static video, whose
    cumulative motion is flat, falls back to uniform sampling instead of a degenerate distribution;
  * a frame is chosen for quantile q as the first frame whose normalised cumulative motion exceeds q (frame i
    owns [cdf_{i-1}, cdf_i)), so a static video gets exactly the ``uniform`` sampler's frames; when
    two quantiles land on one frame the later index moves right (and, at the end of the video, left) so
    the K indices are distinct, sorted and in range.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from samplerbench.samplers.base import FrameBank, Sampler, check_budget, register_sampler

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma
OPS_PER_PIXEL = 4  # 3 multiply-adds for the luma, 1 absolute difference accumulated into the mean


def frame_motion(frames: Tensor) -> Tensor:
    """``[B, T, 3, H, W]`` uint8 → ``[B, T]`` mean absolute luma difference to the neighbouring frame."""
    weights = torch.tensor(GRAY_WEIGHTS, dtype=torch.float32, device=frames.device)[None, None, :, None, None]
    gray = (frames.float() / 255.0 * weights).sum(dim=2)  # [B, T, H, W]
    if gray.shape[1] == 1:
        return torch.zeros(gray.shape[:2], device=frames.device)
    diffs = (gray[:, 1:] - gray[:, :-1]).abs().mean(dim=(2, 3))  # [B, T-1]
    return torch.cat((diffs[:, :1], diffs), dim=1)


def distinct_in_range(indices: Tensor, t: int) -> Tensor:
    """Make non-decreasing ``[B, K]`` indices strictly increasing inside [0, T): push collisions right,
    then pull the tail left where it ran past the end."""
    k = indices.shape[1]
    offsets = torch.arange(k, device=indices.device)
    pushed = torch.cummax(indices - offsets, dim=1).values + offsets
    return torch.minimum(pushed, offsets + (t - k))


def quantile_indices(motion: Tensor, k: int, *, floor: float) -> Tensor:
    """``[B, T]`` motion → ``[B, K]`` frames at the even quantiles of its normalised cumulative sum."""
    cdf = (motion + floor).cumsum(dim=1)
    cdf = cdf / cdf[:, -1:]
    targets = ((torch.arange(k, dtype=cdf.dtype, device=cdf.device) + 0.5) / k).expand(cdf.shape[0], k).contiguous()
    found = torch.searchsorted(cdf.contiguous(), targets, right=True).clamp_max(motion.shape[1] - 1)
    return distinct_in_range(found, motion.shape[1])


@register_sampler("mgsampler")
@dataclasses.dataclass(kw_only=True, eq=False)
class MGSampler(Sampler):
    """Motion-guided sampling; ``scores`` is the per-frame motion (for plots), ``select`` the quantile rule.

    ``frame_size`` = (H, W) for :meth:`gflops`; ``None`` takes the size of the frames last scored.
    """

    needs_frames = True
    motion_floor: float = 1e-4
    frame_size: tuple[int, int] | None = None
    seen_size: tuple[int, int] | None = dataclasses.field(default=None, init=False, repr=False)

    def scores(self, batch: FrameBank) -> Tensor:
        batch.require("frames", who=self.name)
        self.seen_size = (batch.frames.shape[-2], batch.frames.shape[-1])
        return frame_motion(batch.frames)

    def select(self, batch: FrameBank, k: int) -> Tensor:
        check_budget(k, batch.num_frames)
        return quantile_indices(self.scores(batch), k, floor=self.motion_floor)

    def gflops(self, frames: int) -> float:
        """Frame differencing: ``OPS_PER_PIXEL`` per pixel per frame — tiny, but counted, not assumed 0."""
        size = self.frame_size or self.seen_size
        if size is None:
            raise RuntimeError("mgsampler: frame size unknown; pass frame_size=(H, W) or score frames first")
        h, w = size
        return frames * h * w * OPS_PER_PIXEL / 1e9
