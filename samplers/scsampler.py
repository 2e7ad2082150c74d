"""SCSampler (Korbar et al., ICCV 2019) as AR-Net's re-implementation runs it (mengyuest/AR-Net, ``--real_scsampler``).

Light model: standardised FEM features → dropout 0.5 → linear to C logits per frame. ``loss="ce"``:
cross-entropy of the logits averaged over T; ``loss="rank"``: pairwise margin ranking loss ordered by the
recognizer's ground-truth-class logits. Saliency: the frame's largest light logit; the top K are kept.
Multi-label: ce uses the normalised multi-hot target, rank the pairs of every ground-truth class.

Schedule, AR-Net's ``main_base.py`` defaults: SGD momentum 0.9, weight decay 1e-4, lr 0.001 for 50 epochs (its
``--lr_steps 50 100`` fall at or after the end, so the rate is constant), gradient norm clipped at 20 (``--gd``),
batch 48 (every ActivityNet command of its scripts), final weights. AR-Net trains this head together with the
MobileNetV2 below it and gives biases twice the rate and no weight decay; here the FEM is frozen and every
parameter has the same rate and decay."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samplerbench.core.sgd import soft_targets
from samplerbench.samplers.base import FrameFeatures, register_sampler
from samplerbench.samplers.guiding import check_choice
from samplerbench.samplers.training import Standardize, TrainableSampler, training_dtype

LOSSES: tuple[str, ...] = ("ce", "rank")


class LightHead(nn.Module):
    """AR-Net's ``lite_fc`` on standardised FEM features; ``forward([B, T, D]) -> [B, T, C]`` logits."""

    def __init__(self, in_dim: int, num_classes: int, *, dropout: float) -> None:
        super().__init__()
        self.standardize = Standardize(in_dim)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, 0.001)
        nn.init.zeros_(self.fc.bias)

    def forward(self, fem: Tensor) -> Tensor:
        return self.fc(self.dropout(self.standardize(fem)))


def time_averaged_ce(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of the frames' logits ``[B, T, C]`` averaged over T, against soft targets ``[B, C]``."""
    return F.cross_entropy(logits.mean(dim=1), target)


def saliency_rank_loss(lite: Tensor, real: Tensor, labels: Tensor, *, margin: float) -> Tensor:
    """AR-Net's ``cal_sal_rank_loss``: the light logits ``lite`` ``[B, T, C]`` of each ground-truth class
    (``labels`` ``[B, C]`` multi-hot) ranked over every frame pair x < y like the recognizer's logits ``real``;
    0 (with a gradient) when there is no pair (T = 1)."""
    video, cls = (labels > 0).nonzero(as_tuple=True)
    t = lite.shape[1]
    if t < 2 or video.numel() == 0:
        return lite.sum() * 0.0
    x, y = torch.triu_indices(t, t, offset=1, device=lite.device)
    light, truth = lite[video, :, cls], real[video, :, cls]  # [P, T] ground-truth-class logits
    sign = torch.where(truth[:, x] > truth[:, y], 1.0, -1.0).to(lite.dtype)
    return F.margin_ranking_loss(light[:, x], light[:, y], sign, margin=margin)


@register_sampler("scsampler")
@dataclasses.dataclass(kw_only=True, eq=False)
class SCSampler(TrainableSampler):
    """Per-frame saliency from AR-Net's light classifier on FEM features; top-K by saliency."""

    loss: str = "ce"
    dropout: float = 0.5
    rank_margin: float = 0.0
    epochs: int = 50
    batch_size: int = 48
    lr: float = 0.001
    weight_decay: float = 1e-4
    milestones: tuple[float, ...] = ()
    clip_grad_norm: float | None = 20.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("scsampler loss", self.loss, LOSSES)

    def architecture(self) -> dict[str, Any]:
        return {"loss": self.loss}

    def build_net(self, in_dim: int, num_classes: int) -> LightHead:
        return LightHead(in_dim, num_classes, dropout=self.dropout)

    def training_tensors(self, train: FrameFeatures, *, draws: torch.Generator) -> tuple[Tensor, ...]:
        """FEM features and the video's soft label (ce), or FEM features, the recognizer's logits and the
        multi-hot labels (rank)."""
        dtype = training_dtype(train.fem)
        labels, fem = train.labels.to(dtype), train.fem.to(dtype)
        if self.loss == "ce":
            return fem, soft_targets(labels)
        return fem, train.rec_logits.to(dtype), labels

    def training_loss(self, net: nn.Module, fem: Tensor, *targets: Tensor) -> Tensor:
        if self.loss == "ce":
            return time_averaged_ce(net(fem), *targets)
        real, labels = targets
        return saliency_rank_loss(net(fem), real, labels, margin=self.rank_margin)

    def scores(self, batch: FrameFeatures) -> Tensor:
        """The largest class logit of each frame."""
        (out,) = self.infer(batch.fem, lambda net, fem: (net(fem).amax(dim=2),))
        return out

    def gflops(self, frames: int) -> float:
        return self.head_gflops(self.fitted_net(), frames)


@register_sampler("scsampler_rank")
@dataclasses.dataclass(kw_only=True, eq=False)
class SCSamplerRank(SCSampler):
    """``scsampler`` trained with AR-Net's saliency ranking loss (``--sal_rank_loss``)."""

    loss: str = "rank"
