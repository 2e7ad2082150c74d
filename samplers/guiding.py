"""Guiding saliency scores: how useful each training frame is to the recognizer (supplementary A.1, B.1).

NSNet turns them into NS pseudo labels; the oracle selects with them. Multi-label videos take the max over
their classes; temporal-shift rows count as separate videos."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from samplerbench.core.errors import UserError
from samplerbench.measures.fusion import ranks

GUIDINGS: tuple[str, ...] = ("prototype", "response")
ROW_CHUNK = 1024  # videos per vectorised block: bounds the [rows, T, C] / [rows, T, F] temporaries
PSEUDO_RULES: tuple[str, ...] = ("minmax", "topk")


def _pairs(labels: Tensor) -> tuple[Tensor, Tensor]:
    """(video, class) of every positive label."""
    video, cls = (labels > 0).nonzero(as_tuple=True)
    return video, cls


def class_prototypes(rec_logits: Tensor, rec_feats: Tensor, labels: Tensor, *, eps: float = 0.30) -> Tensor:
    """Prototype feature ``[C, F]`` of every class, per supplementary A.1: the mean over c's videos of the top
    ⌈ε·m⌉ (at least 1) of the m frames predicted as c, by confidence on c.

    Where the paper is silent: a class with no correctly predicted frame uses all its videos' frames (top ⌈ε·T⌉);
    a class with no training video gets a zero prototype (flat guiding score)."""
    if not 0.0 < eps <= 1.0:
        raise UserError(f"prototype eps={eps} must lie in (0, 1]")
    c = rec_logits.shape[2]
    video, cls = _pairs(labels)
    device = rec_feats.device
    if video.numel() == 0:
        return torch.zeros(c, rec_feats.shape[2], device=device)
    logits = rec_logits.float()
    conf = (logits[video, :, cls] - logits.logsumexp(dim=2)[video]).exp()  # [P, T] softmax prob. of the class
    correct = rec_logits.argmax(dim=2)[video] == cls[:, None]  # [P, T]
    has_correct = correct.any(dim=1)
    class_has_correct = torch.zeros(c, device=device).index_add_(0, cls, has_correct.float()) > 0
    fallback = ~class_has_correct[cls]  # [P]: use every frame of the video
    candidates = correct | fallback[:, None]
    count = candidates.sum(dim=1)
    keep = (count.double() * eps).sub(1e-9).ceil().clamp_min(1).long()  # ⌈ε·m⌉, at least 1
    rank = ranks(torch.where(candidates, conf, -1.0))
    weights = (candidates & (rank < keep[:, None])).float()
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1.0)
    guiding_feats = torch.cat([  # [P, F]
        torch.einsum("pt,ptf->pf", w, rec_feats[v].float())
        for w, v in zip(weights.split(ROW_CHUNK), video.split(ROW_CHUNK), strict=True)
    ])
    contributes = (has_correct | fallback).float()
    sums = torch.zeros(c, rec_feats.shape[2], device=device).index_add_(0, cls, guiding_feats * contributes[:, None])
    counts = torch.zeros(c, device=device).index_add_(0, cls, contributes)
    return sums / counts.clamp_min(1.0)[:, None]


def _max_over_labels(per_class: Tensor, labels: Tensor) -> Tensor:
    """``[N, T, C] -> [N, T]``: the max over each video's ground-truth classes (0 for an unlabelled row)."""
    positive = (labels > 0)[:, None, :]
    best = torch.where(positive, per_class, torch.finfo(per_class.dtype).min).amax(dim=2)
    return torch.where(positive.any(dim=2), best, torch.zeros_like(best))


def prototype_guiding(rec_feats: Tensor, labels: Tensor, prototypes: Tensor) -> Tensor:
    """``[N, T]`` cosine similarity of each frame's recognizer feature to its ground-truth class prototype."""
    protos = F.normalize(prototypes.float(), dim=1).T
    return torch.cat([
        _max_over_labels(F.normalize(feats.float(), dim=2) @ protos, lab)  # [rows, T, C] cosines
        for feats, lab in zip(rec_feats.split(ROW_CHUNK), labels.split(ROW_CHUNK), strict=True)
    ])


def response_guiding(rec_logits: Tensor, labels: Tensor) -> Tensor:
    """``[N, T]`` the recognizer's softmax probability of the ground-truth class (Table 1's alternative)."""
    return torch.cat([
        _max_over_labels(logits.float().softmax(dim=2), lab)
        for logits, lab in zip(rec_logits.split(ROW_CHUNK), labels.split(ROW_CHUNK), strict=True)
    ])


def guiding_scores(
    guiding: str, *, rec_logits: Tensor, rec_feats: Tensor, labels: Tensor, prototypes: Tensor | None
) -> Tensor:
    """Dispatch on the guiding kind; ``prototypes`` is required for ``"prototype"``."""
    if guiding == "prototype":
        if prototypes is None:
            raise ValueError("prototype guiding needs class prototypes: fit on training features first")
        return prototype_guiding(rec_feats, labels, prototypes)
    if guiding == "response":
        return response_guiding(rec_logits, labels)
    raise UserError(f"unknown guiding score {guiding!r}; valid: {', '.join(GUIDINGS)}")


def check_choice(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise UserError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")


def ns_pseudo_labels(
    guiding: Tensor, *, rule: str = "minmax", threshold: float = 0.5, ratio: float = 0.3
) -> Tensor:
    """Salient (1) / non-salient (0) labels ``[N, T]`` from a guiding score; the paper leaves the rule open.

    ``"minmax"`` (default): per-video min-max normalise, salient where ≥ ``threshold`` (a flat row is all salient).
    ``"topk"``: the top ⌈``ratio``·T⌉ frames of each video."""
    check_choice("pseudo-label rule", rule, PSEUDO_RULES)
    if rule == "minmax":
        low = guiding.amin(dim=1, keepdim=True)
        span = guiding.amax(dim=1, keepdim=True) - low
        normalised = torch.where(span > 0, (guiding - low) / span.clamp_min(1e-12), torch.ones_like(guiding))
        return (normalised >= threshold).float()
    t = guiding.shape[1]
    keep = max(1, math.ceil(ratio * t - 1e-9))
    order = torch.sort(guiding, dim=1, descending=True, stable=True).indices[:, :keep]
    return torch.zeros_like(guiding, dtype=torch.float32).scatter_(1, order, 1.0)
