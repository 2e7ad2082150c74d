"""Fusing NSNet's two saliency branches into one K-frame selection (supplementary A.3).

Every function takes the Frame Scrutinize scores ``sf`` and the Video Glimpse scores ``sv``, both ``[B, T]``,
and returns ``[B, K]`` distinct frame indices in temporal order, vectorised over the batch. Ranking: descending
score, ties to the lower frame index.

Scale: ``sv`` is a softmax over T (values shrink as 1/T), so fusions that mix *values* (``add``, ``max``,
``join``, ``mul``) first divide it by its per-video maximum (:func:`normalise_attention`): ratios are kept and
a flat attention becomes all ones, "no preference". Rank-based fusions are scale-free."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from samplerbench.core.errors import UserError
from samplerbench.core.registry import Registry
from samplerbench.measures.topk import check_budget, topk_sorted

# A fusion: ``fn(sf, sv, k, alpha) -> [B, K]`` frame indices (``alpha`` weighs the branches in ``add`` and ``union``,
# the others take it and ignore it); registered in the order of Table 2's rows.
Fusion = Callable[[Tensor, Tensor, int, float], Tensor]
FUSIONS: Registry[Fusion] = Registry("fusion")
# A score fusion: ``fn(sf, svn, alpha) -> [B, T]`` fused scores, ``svn`` the normalised attention; each is also the
# fusion that keeps its top K.
ScoreFusion = Callable[[Tensor, Tensor, float], Tensor]
SCORE_FUSIONS: Registry[ScoreFusion] = Registry("score fusion")


def normalise_attention(sv: Tensor) -> Tensor:
    """``sv`` over its per-video maximum, so it lives on ``sf``'s [0, 1] scale (see the module docstring)."""
    return sv / sv.amax(dim=1, keepdim=True).clamp_min(torch.finfo(sv.dtype).tiny)


def score_fusion(name: str) -> Callable[[ScoreFusion], ScoreFusion]:
    """Function decorator: registers the score fusion ``name`` in :data:`SCORE_FUSIONS`, and its top K in
    :data:`FUSIONS`."""

    def wrap(fn: ScoreFusion) -> ScoreFusion:
        SCORE_FUSIONS.register(name, fn)
        FUSIONS.register(name, lambda sf, sv, k, alpha: topk_sorted(fn(sf, normalise_attention(sv), alpha), k))
        return fn

    return wrap


@score_fusion("add")
def add(sf: Tensor, svn: Tensor, alpha: float) -> Tensor:
    """α·sf + (1-α)·sv."""
    return alpha * sf + (1.0 - alpha) * svn


@score_fusion("mul")
def mul(sf: Tensor, svn: Tensor, alpha: float) -> Tensor:
    """sf·sv."""
    return sf * svn


@score_fusion("max")
def maximum(sf: Tensor, svn: Tensor, alpha: float) -> Tensor:
    """max(sf, sv)."""
    return torch.maximum(sf, svn)


def fuse_scores(sf: Tensor, sv: Tensor, *, fusion: str, alpha: float = 0.6) -> Tensor:
    """The fused per-frame score ``[B, T]`` of a score fusion (:data:`SCORE_FUSIONS`): ``add``, ``mul``, ``max``."""
    return SCORE_FUSIONS.get(fusion)(sf, normalise_attention(sv), alpha)


def ranks(scores: Tensor) -> Tensor:
    """``[B, T]``: each frame's 0-based position in the descending, stable ranking of its row."""
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    positions = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def smallest_sorted(key: Tensor, k: int) -> Tensor:
    """Indices of the k smallest keys per row (ties to the lower index), in temporal order."""
    return torch.sort(key, dim=1, stable=True).indices[:, :k].sort(dim=1).values


@FUSIONS.register("join")
def join(sf: Tensor, sv: Tensor, k: int, alpha: float) -> Tensor:
    """The 2T scores of both branches in one list, sorted descending; the first K distinct frames met (the same
    frames as ``max``). Ties go to the lower frame index, then to ``sf``."""
    b, t = sf.shape
    interleaved = torch.stack((sf, normalise_attention(sv)), dim=2).reshape(b, 2 * t)
    first_seen = ranks(interleaved).view(b, t, 2).amin(dim=2)
    return smallest_sorted(first_seen, k)


@FUSIONS.register("intersection")
def intersection(sf: Tensor, sv: Tensor, k: int, alpha: float) -> Tensor:
    """Frames in both branches' top-L lists, growing L one list at a time until K frames agree.

    We read the supplementary's I(K+i') as the intersection of the grown prefixes (π^f, then π^v, by turns):
    a frame is kept only when both branches rank it high, and the result has exactly K frames."""
    need_f = (ranks(sf) - k + 1).clamp_min(0)
    need_v = (ranks(sv) - k + 1).clamp_min(0)
    entry_step = torch.maximum(2 * need_f - 1, 2 * need_v).clamp_min(0)
    return smallest_sorted(entry_step, k)


def union_quotas(k: int, alpha: float) -> tuple[int, int, str | None]:
    """``(⌈Kα⌉, ⌈K(1-α)⌉, branch that gives back a frame on overflow or None)``.

    On overflow the surplus goes to the branch with the larger remainder (largest-remainder apportionment);
    a tie keeps π^f's frame."""
    share_f = round(k * alpha, 9)  # 5 * 0.6 must be 3, not 3.0000000000000004
    kf, kv = math.ceil(share_f), math.ceil(round(k - share_f, 9))
    if kf + kv <= k:
        return kf, kv, None
    remainder_f = share_f - math.floor(share_f)
    return kf, kv, ("v" if remainder_f >= 0.5 else "f")


def union_effective_alpha(k: int, alpha: float) -> float:
    """The share of K that union's quota gives π^f when the branches' top frames do not overlap: ``alpha`` itself
    only where Kα is whole (K = 4, α = 0.6 takes 2 + 2 frames: 0.5)."""
    kf, _, gives_back = union_quotas(k, alpha)
    return (kf - (gives_back == "f")) / k


@FUSIONS.register("union")
def union(sf: Tensor, sv: Tensor, k: int, alpha: float) -> Tensor:
    """⌈Kα⌉ top frames of π^f ∪ ⌈K(1-α)⌉ top frames of π^v, filled up to K from π^f in order; on overflow one
    branch gives back its last quota frame (:func:`union_quotas`)."""
    rank_f, rank_v = ranks(sf), ranks(sv)
    kf, kv, gives_back = union_quotas(k, alpha)
    in_f, in_v = rank_f < kf, rank_v < kv
    if gives_back is not None:
        overflow = ((in_f | in_v).sum(dim=1, keepdim=True) > k)
        if gives_back == "v":
            in_v = in_v & ~(overflow & (rank_v == kv - 1))
        else:
            in_f = in_f & ~(overflow & (rank_f == kf - 1))
    t = sf.shape[1]
    # Chosen frames come first (key < 0), then the rest of π^f in its order.
    key = torch.where(in_f | in_v, rank_f - t, rank_f)
    return smallest_sorted(key, k)


@FUSIONS.register("fs")
def frame_scrutinize(sf: Tensor, sv: Tensor, k: int, alpha: float) -> Tensor:
    """The FS branch alone."""
    return topk_sorted(sf, k)


@FUSIONS.register("vg")
def video_glimpse(sf: Tensor, sv: Tensor, k: int, alpha: float) -> Tensor:
    """The VG branch alone."""
    return topk_sorted(sv, k)


def check_fusion(fusion: str) -> None:
    """A one-line :class:`UserError` (did you mean) unless ``fusion`` is one of :data:`FUSIONS`."""
    FUSIONS.get(fusion)


def fuse_select(sf: Tensor, sv: Tensor, k: int, *, fusion: str, alpha: float = 0.6) -> Tensor:
    """Select K of T frames per video from the two branches' scores: ``[B, T] x 2 -> [B, K]``. ``alpha`` weighs
    π^f against π^v in ``add`` and ``union`` only; ``fs`` / ``vg`` are the single branches."""
    check_fusion(fusion)
    if sf.shape != sv.shape or sf.dim() != 2:
        raise ValueError(f"sf and sv must both be [B, T]; got {tuple(sf.shape)} and {tuple(sv.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise UserError(f"fusion alpha={alpha} must lie in [0, 1]")
    check_budget(k, sf.shape[1])
    return FUSIONS.get(fusion)(sf, sv, k, alpha)
