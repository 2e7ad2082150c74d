"""OCSampler (Lin et al., CVPR 2022), following MCG-NJU/OCSampler
(``mmaction/models/recognizers/sampler2d_recognizer2d.py`` and ``configs/activitynet_10to6_resnet50.py``).

Policy: a linear logit per frame on the standardised FEM features, softmax over T → π. Training: K frames
drawn from π without replacement (Gumbel-top-K, noise drawn per epoch and row) against a TSN-style baseline
selection; reward = the recognizer's top class probability on the policy's frames minus the baseline's;
loss = −(reward · log P(drawn set) + ``explore_rate`` · entropy(π)), P(set) over all K! orders for K ≤ 8,
else the drawn order's. Test: the K most probable frames, in temporal order.

Schedule, as ``configs/activitynet_10to6_resnet50.py``: SGD momentum 0.9, weight decay 1e-4, lr 0.005
(``0.001 / 8 * 40``), cosine to 0 over 50 epochs, gradient norm clipped at 40, batch 40 (``videos_per_gpu``), final
weights. Differences from the code: the reward uses the suite's aggregation of cached logits; one policy is trained
at ``train_budget`` (the run's main budget); the FEM is frozen, so there is no TSM temporal shift."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any

import torch
from torch import Tensor, nn

from samplerbench.measures.metrics import video_scores
from samplerbench.samplers.base import FrameFeatures, register_sampler
from samplerbench.samplers.training import Standardize, TrainableSampler, training_dtype

EXACT_ORDERS = 8  # up to K = 8 the set's probability sums all K! orders (K = 8: 40,320), as the original
PROB_CLAMP = 1e-15  # the original clamps the drawn frames' probabilities to [1e-15, 1 - 1e-15]


class PolicyHead(nn.Module):
    """``forward([B, T, D]) -> [B, T]`` logits of the policy π = softmax over T."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.standardize = Standardize(in_dim)
        self.logit = nn.Linear(in_dim, 1)
        nn.init.normal_(self.logit.weight, 0.0, 0.01)
        nn.init.zeros_(self.logit.bias)

    def forward(self, fem: Tensor) -> Tensor:
        return self.logit(self.standardize(fem)).squeeze(-1)


@functools.cache
def orders(k: int) -> Tensor:
    """``[K!, K]`` every order of K items."""
    return torch.tensor(list(itertools.permutations(range(k))), dtype=torch.long).view(-1, k)


def set_log_prob(drawn: Tensor) -> Tensor:
    """log P(the set) of frames drawn without replacement, from their probabilities ``drawn`` ``[B, K]`` in the
    order drawn: log Σ over orders σ of Π_j p_σj / (1 − Σ_{i<j} p_σi) for K ≤ :data:`EXACT_ORDERS`, else the
    log probability of the order drawn (the original's ``calc_mode`` 'all' and 'approximate')."""
    p = drawn.clamp(PROB_CLAMP, 1 - PROB_CLAMP)
    if p.shape[1] <= EXACT_ORDERS:
        permuted = p[:, orders(p.shape[1]).to(p.device)]  # [B, K!, K]
        before = permuted.cumsum(dim=2) - permuted
        remaining = (1 - before).clamp_min(PROB_CLAMP).log().sum(dim=2)  # [B, K!]
        return p.log().sum(dim=1) + torch.logsumexp(-remaining, dim=1)
    before = p.cumsum(dim=1) - p
    return (p.log() - (1 - before).clamp_min(PROB_CLAMP).log()).sum(dim=1)


def tsn_indices(t: int, shift: Tensor) -> Tensor:
    """The baseline selection (``bp_mode='tsn'``): for K = ``shift.shape[1]``, segment j of ⌊T/K⌋ frames starts
    at ⌊j·(T − ⌊T/K⌋)/(K − 1)⌋ (``linspace`` cast to integers) and contributes its frame ⌊u·⌊T/K⌋⌋ for the
    uniform draw u in ``shift`` ``[B, K]``."""
    k = shift.shape[1]
    length = t // k
    starts = (torch.arange(k, device=shift.device) * (t - length)) // max(k - 1, 1)
    return starts + (shift * length).long().clamp_max(length - 1)


def confidence(rec_logits: Tensor, index: Tensor) -> Tensor:
    """``[B]`` the recognizer's highest class probability on the frames ``index`` (the reward of kind 1)."""
    return video_scores(rec_logits, index).amax(dim=1)


@register_sampler("ocsampler")
@dataclasses.dataclass(kw_only=True, eq=False)
class OCSampler(TrainableSampler):
    """A one-step policy over the T frames' FEM features, trained by policy gradient on the recognizer's
    confidence; keeps the K most probable frames."""

    train_budget: int = 4
    explore_rate: float = 0.1
    epochs: int = 50
    batch_size: int = 40
    lr: float = 0.005
    weight_decay: float = 1e-4
    lr_decay: str = "cosine"
    clip_grad_norm: float | None = 40.0

    def architecture(self) -> dict[str, Any]:
        return {}

    def build_net(self, in_dim: int, num_classes: int) -> PolicyHead:
        return PolicyHead(in_dim)

    def training_tensors(self, train: FrameFeatures, *, draws: torch.Generator) -> tuple[Tensor, ...]:
        """FEM features, the recognizer's logits, and the epoch's draws: Gumbel noise ``[N, T]`` for the
        policy's sample, uniforms ``[N, K]`` for the baseline's."""
        dtype = training_dtype(train.fem)
        n, t = train.batch_size, train.num_frames
        k = min(self.train_budget, t)
        uniform = torch.rand(n, t, generator=draws, dtype=torch.float64).clamp(PROB_CLAMP, 1 - PROB_CLAMP)
        gumbel = -(-uniform.log()).log()
        shift = torch.rand(n, k, generator=draws, dtype=torch.float64)
        return train.fem.to(dtype), train.rec_logits.to(dtype), gumbel.to(dtype), shift.to(dtype)

    def training_loss(self, net: nn.Module, fem: Tensor, rec_logits: Tensor, gumbel: Tensor,
                      shift: Tensor) -> Tensor:
        log_pi = net(fem).log_softmax(dim=1)
        drawn = (log_pi.detach() + gumbel).topk(shift.shape[1], dim=1).indices  # in the order drawn
        reward = confidence(rec_logits, drawn) - confidence(rec_logits, tsn_indices(fem.shape[1], shift))
        entropy = -(log_pi.exp() * log_pi).sum(dim=1)
        return -(reward * set_log_prob(log_pi.exp().gather(1, drawn)) + self.explore_rate * entropy).mean()

    def scores(self, batch: FrameFeatures) -> Tensor:
        """π, the policy's probability of each frame."""
        (out,) = self.infer(batch.fem, lambda net, fem: (net(fem).softmax(dim=1),))
        return out

    def gflops(self, frames: int) -> float:
        return self.head_gflops(self.fitted_net(), frames)
