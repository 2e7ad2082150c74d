"""The two rules every selection obeys, shared by the samplers and the fusion functions (kept free of
``samplerbench.samplers`` imports to avoid an import cycle through NSNet)."""

from __future__ import annotations

import torch
from torch import Tensor

from samplerbench.core.errors import UserError


def topk_sorted(scores: Tensor, k: int) -> Tensor:
    """Indices of the k highest scores per row, sorted by time: ``[B, T] -> [B, k]``; ties to the earlier frame."""
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return torch.sort(order, dim=1).values


def check_budget(k: int, t: int) -> None:
    """A sampler keeps K of T frames: 1 <= K <= T, or a one-line error."""
    if not 1 <= k <= t:
        raise UserError(f"budget K={k} must satisfy 1 <= K <= T={t}")
