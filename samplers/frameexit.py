"""FrameExit (Ghodrati, Ehteshami Bejnordi, Habibian, CVPR 2021), from its paper and the official inference code
(Qualcomm-AI-research/FrameExit: ``model/adaptive_models.py``, ``inference.py``,
``config/activitynet_inference_2d.yml``), on the suite's cached recognizer outputs.

    order     the coarse-to-fine policy (:func:`~samplerbench.samplers.adaptive.coarse_to_fine_order`; the code's
              ActivityNet ``input_order`` at T = 10)
    z_t       max(z_{t-1}, φ(x_t)): accumulated max pooling of the recognizer's per-frame features (standardised)
    step 1    exit when the prediction's highest class probability exceeds ``first_threshold`` (the code's 0.99)
    step t    2 ≤ t < T: gate g_t(z_t, z_{t-1}) -> exit probability; exit when it is at least ``exit_threshold``
    step T    exit
    gate      the code's ExitingGate: one shared embedding (1×1 conv = linear F→128, BN, ReLU, linear 128→64, BN,
              ReLU) of z_t and of z_{t-1}, concatenated, linear 128→1; one gate per step
    training  binary cross-entropy of every gate against labels made on the fly: exit (1) where the classification
              loss of the prediction at that step is at most ε_t, else continue (0)

The video prediction is always the shared recognizer's over the frames used (scored by the run's aggregation; the
gates' labels and the step-1 rule read the mean softmax of its cached logits): FrameExit's per-step classifiers,
trained with its gates, are replaced by it so that one recognizer scores every sampler, and only the gates train,
on the recognizer's frozen outputs (this suite's reading). What else is
this suite's, not the paper's (docs/samplers.md, "Adaptive samplers"): the form of ε_t (``epsilon_rule``, ``beta``;
the paper's exact rule could not be confirmed), the knob (the paper traces its curve by retraining with another
trade-off β; here one trained gate set is swept over ``exit_threshold``), the standardised gate input (the code's
gates read a 4,096-d MLP with BN over ResNet-50 features), and the schedule (SGD momentum 0.9, batch 64, lr 0.01
cosine to 0 over 30 epochs, weight decay 1e-4). The code's gate outputs the probability of *continuing* and exits
below 0.5; this one outputs the probability of exiting, the same rule at ``exit_threshold`` = 0.5. The paper's
first gate g_1 reads z_1 alone; the code (and this suite) uses the confidence threshold instead."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samplerbench.core.sgd import soft_targets
from samplerbench.measures.metrics import running_mean_softmax
from samplerbench.samplers.adaptive import AdaptiveSampler, check_sweep, coarse_to_fine_order
from samplerbench.samplers.base import FrameFeatures, register_sampler
from samplerbench.samplers.guiding import check_choice
from samplerbench.samplers.training import Standardize, TrainableSampler, training_dtype

EPSILON_RULES: tuple[str, ...] = ("exp", "constant")
PROB_FLOOR = 1e-12  # the smallest probability the classification loss takes the log of


class ExitGate(nn.Module):
    """The code's ExitingGate on pooled features (its 1×1 convolutions on ``[B, F, 1, 1]`` are linear layers):
    ``forward(z_t [B, F], z_{t-1} [B, F]) -> [B]`` exit logits."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(in_dim, 128), nn.BatchNorm1d(128), nn.ReLU(),
                                   nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU())
        self.linear = nn.Linear(128, 1)

    def forward(self, z: Tensor, previous: Tensor) -> Tensor:
        return self.linear(torch.cat([self.embed(z), self.embed(previous)], dim=1)).squeeze(1)


class GateNet(nn.Module):
    """One :class:`ExitGate` per gated step (2..T-1; one at least, unused for T ≤ 2, since an optimiser needs
    parameters): ``forward(features in reading order [B, T, F]) -> [B, max(T - 2, 0)]`` exit logits."""

    def __init__(self, in_dim: int, frames: int) -> None:
        super().__init__()
        self.standardize = Standardize(in_dim)
        self.gates = nn.ModuleList(ExitGate(in_dim) for _ in range(max(frames - 2, 1)))

    def forward(self, feats: Tensor) -> Tensor:
        z = self.standardize(feats).cummax(dim=1).values
        steps = range(1, feats.shape[1] - 1)
        if not steps:
            return z.new_zeros(z.shape[0], 0)
        return torch.stack([gate(z[:, t], z[:, t - 1]) for t, gate in zip(steps, self.gates, strict=False)], dim=1)


def in_order(per_frame: Tensor, order: Tensor) -> Tensor:
    """``per_frame`` ``[B, T, X]`` with its frames in ``order`` ``[B, T]``."""
    return per_frame.gather(1, order.unsqueeze(2).expand(-1, -1, per_frame.shape[2]))


def exit_labels(rec_logits: Tensor, labels: Tensor, order: Tensor, *, beta: float, rule: str) -> Tensor:
    """``[N, T - 2]`` bool, the gates' training labels at steps 2..T-1: exit where the cross-entropy of the running
    prediction (the mean softmax of the frames read so far) against the video's soft target is at most ε_t, with
    ε_t = β·exp(t/2) (``rule="exp"``, t the 1-based step) or β (``"constant"``)."""
    predicted = running_mean_softmax(rec_logits, order)  # [N, T, C]
    loss = -(soft_targets(labels.float())[:, None] * predicted.clamp_min(PROB_FLOOR).log()).sum(dim=2)
    steps = torch.arange(1, order.shape[1] + 1, device=loss.device, dtype=loss.dtype)
    epsilon = beta * (steps / 2).exp() if rule == "exp" else torch.full_like(steps, beta)
    return (loss <= epsilon)[:, 1:-1]


@register_sampler("frameexit")
@dataclasses.dataclass(kw_only=True, eq=False)
class FrameExit(TrainableSampler, AdaptiveSampler):
    """Coarse-to-fine frames, accumulated features and learned exit gates (module docstring)."""

    knob = "exit_threshold"
    reads_recognizer = True
    uses_fem = False
    net_input = "rec_feats"
    sweep: tuple[float, ...] = (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95)
    first_threshold: float = 0.99
    beta: float = 0.01
    epsilon_rule: str = "exp"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    weight_decay: float = 1e-4
    lr_decay: str = "cosine"
    milestones: tuple[float, ...] = ()
    frames: int | None = dataclasses.field(default=None, init=False, repr=False)  # T the gates were built for

    def __post_init__(self) -> None:
        TrainableSampler.__post_init__(self)
        check_sweep(self.knob, self.sweep)
        check_choice("frameexit epsilon_rule", self.epsilon_rule, EPSILON_RULES)
        if not 0 < self.first_threshold <= 1 or not self.beta > 0:
            raise ValueError(f"first_threshold = {self.first_threshold} must be in (0, 1] and beta = {self.beta} "
                             "above 0")

    def architecture(self) -> dict[str, Any]:
        return {"frames": self.frames, "beta": self.beta, "epsilon_rule": self.epsilon_rule}

    def prepare(self, train: FrameFeatures) -> None:
        self.frames = train.num_frames

    def build_net(self, in_dim: int, num_classes: int) -> GateNet:
        assert self.frames is not None
        return GateNet(in_dim, self.frames)

    def order(self, batch: FrameFeatures) -> Tensor:
        return coarse_to_fine_order(batch.num_frames, device=batch.fem.device).expand(batch.batch_size, -1)

    def training_tensors(self, train: FrameFeatures, *, draws: torch.Generator) -> tuple[Tensor, ...]:
        """The recognizer's features in reading order and the gates' labels of the epoch's frames."""
        dtype = training_dtype(train.rec_feats)
        order = self.order(train)
        labels = exit_labels(train.rec_logits, train.labels, order, beta=self.beta, rule=self.epsilon_rule)
        return in_order(train.rec_feats, order).to(dtype), labels.to(dtype)

    def training_loss(self, net: nn.Module, feats: Tensor, labels: Tensor) -> Tensor:
        """Binary cross-entropy over every gate and video; zero (with a gradient) for a batch where no gate can
        learn: no gated step (T ≤ 2), or a lone row, which BatchNorm cannot normalise."""
        if labels.numel() == 0 or feats.shape[0] < 2:
            return sum(p.sum() for p in net.parameters()) * 0.0
        return F.binary_cross_entropy_with_logits(net(feats), labels)

    def exit_scores(self, batch: FrameFeatures) -> Tensor:
        """Step 1: +inf where the first frame's top class probability exceeds ``first_threshold``, else -inf;
        steps 2..T-1: the gates' exit probabilities; step T: +inf."""
        batch.require("rec_logits", "rec_feats", who=self.name)
        self.fitted_net()
        if batch.num_frames != self.frames:
            raise ValueError(f"frameexit's gates were trained for T = {self.frames} frames, not {batch.num_frames}")
        order = self.order(batch)
        first = torch.softmax(in_order(batch.rec_logits, order[:, :1]).squeeze(1), dim=1, dtype=torch.float32)
        opening = torch.where(first.amax(dim=1) > self.first_threshold, math.inf, -math.inf).unsqueeze(1)
        if batch.num_frames == 1:
            return torch.full_like(opening, math.inf)
        (gates,) = self.infer(in_order(batch.rec_feats, order), lambda net, x: (net(x).sigmoid(),))
        return torch.cat([opening, gates, torch.full_like(opening, math.inf)], dim=1)

    def head_gflops(self, count: Tensor, frames: int) -> Tensor:
        """The gates run: one per step from 2 to min(count, T - 1), each :func:`gate_gflops`."""
        gated = (count.clamp(max=frames - 1) - 1).clamp(min=0)
        return gated.double() * gate_gflops(self.fitted_net().gates[0].embed[0].in_features)


@functools.cache
def gate_gflops(in_dim: int) -> float:
    """fvcore-convention GFLOPs of one :class:`ExitGate` on ``in_dim``-wide features of one video (every step's
    gate has this shape; cached: the trace takes a while)."""
    from samplerbench.measures.cost import count_gflops  # lazy: cost.py pulls in fvcore

    z = torch.zeros(1, in_dim)
    return count_gflops(ExitGate(in_dim).eval(), (z, z))
