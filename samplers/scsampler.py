"""SCSampler-style saliency (Korbar et al., ICCV 2019), on one frame's FEM feature at a time.

SCSampler scores each clip independently with a cheap network and keeps the top-K. Two training signals:

* ``loss="ce"`` (``scsampler``): a classifier trained with cross-entropy, every frame labelled with its
  video's class (as SCSampler labels clips); saliency = the maximum class probability, i.e. how confidently
  the cheap model recognises *something* in the frame. Multi-label videos: the target is the multi-hot
  label normalised to sum 1 (soft cross-entropy).
* ``loss="rank"`` (``scsampler_rank``): one score per frame trained so that, within a video, frames are
  ordered like the recognizer's confidence on the ground-truth class (the response guiding score). Choice:
  the pairwise margin ranking loss over all ordered frame pairs of a video whose confidences differ by more
  than ``rank_gap`` (SCSampler's saliency-ranking formulation is pairwise), with margin ``rank_margin``.

Network: standardise → Linear D→``hidden`` → ReLU → dropout ``dropout`` → Linear → C logits or 1 score.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samplerbench.samplers.base import FrameBank, register_sampler
from samplerbench.samplers.guiding import check_choice, response_guiding
from samplerbench.samplers.training import Standardize, TrainableSampler, training_dtype

LOSSES: tuple[str, ...] = ("ce", "rank")


class FrameHead(nn.Module):
    """A per-frame MLP; ``forward([B, T, D]) -> [B, T, out]``."""

    def __init__(self, in_dim: int, out_dim: int, *, hidden: int, dropout: float) -> None:
        super().__init__()
        self.standardize = Standardize(in_dim)
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim)
        )

    def forward(self, fem: Tensor) -> Tensor:
        return self.mlp(self.standardize(fem))


@register_sampler("scsampler")
@dataclasses.dataclass(kw_only=True, eq=False)
class SCSampler(TrainableSampler):
    """Per-frame saliency from a light head on FEM features; top-K by saliency."""

    loss: str = "ce"
    hidden: int = 256
    dropout: float = 0.5
    rank_margin: float = 0.1
    rank_gap: float = 0.0

    def __post_init__(self) -> None:
        check_choice("scsampler loss", self.loss, LOSSES)

    def architecture(self) -> dict[str, Any]:
        return {"loss": self.loss, "hidden": self.hidden}

    def build_net(self, in_dim: int, num_classes: int) -> FrameHead:
        out = num_classes if self.loss == "ce" else 1
        return FrameHead(in_dim, out, hidden=self.hidden, dropout=self.dropout)

    def training_tensors(self, train: FrameBank, *, draws: torch.Generator) -> tuple[Tensor, ...]:
        """FEM features and the target: the video's soft label (ce) or per-frame GT confidence (rank)."""
        dtype = training_dtype(train.fem)
        labels, fem = train.labels.to(dtype), train.fem.to(dtype)
        if self.loss == "ce":
            return fem, labels / labels.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return fem, response_guiding(train.rec_logits, labels).to(dtype)

    def training_loss(self, net: nn.Module, fem: Tensor, target: Tensor) -> Tensor:
        out = net(fem)
        if self.loss == "ce":
            b, t, c = out.shape
            return F.cross_entropy(out.reshape(b * t, c), target.repeat_interleave(t, dim=0))
        score = out.squeeze(2)
        diff = target[:, :, None] - target[:, None, :]  # [B, T, T]: > 0 where frame i should outrank j
        pairs = diff > self.rank_gap
        if not pairs.any():
            return score.sum() * 0.0  # no ordered pair in this batch (e.g. T = 1): nothing to learn
        first = score[:, :, None].expand_as(diff)[pairs]
        second = score[:, None, :].expand_as(diff)[pairs]
        return F.margin_ranking_loss(first, second, torch.ones_like(first), margin=self.rank_margin)

    def scores(self, batch: FrameBank) -> Tensor:
        (out,) = self.infer(batch.fem, lambda net, fem: (net(fem),))
        return out.softmax(dim=2).amax(dim=2) if self.loss == "ce" else out.squeeze(2)

    def gflops(self, frames: int) -> float:
        return self.head_gflops(self.fitted_net(), frames)


@register_sampler("scsampler_rank")
@dataclasses.dataclass(kw_only=True, eq=False)
class SCSamplerRank(SCSampler):
    """``scsampler`` trained with the ranking loss: learns the recognizer's ground-truth confidence order."""

    loss: str = "rank"
