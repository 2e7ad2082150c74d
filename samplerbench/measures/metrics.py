"""Recognition metrics: pure functions, arrays in, floats (percent) out.

Score matrices are ``[N videos, C classes]``, targets the matching multi-hot ``{0, 1}`` arrays; classes
without a positive are skipped. :func:`mean_average_precision` is scikit-learn's (non-interpolated) AP, the
headline number; :func:`mean_average_precision_anet` is the ActivityNet evaluator's interpolated AP."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats
import torch
from torch import Tensor

from samplerbench.core.registry import Registry

# The two mAP columns in one line each, for a run's protocol card.
MAP_DEFINITIONS = {
    "mAP": "mean over classes with a positive val video of scikit-learn's average precision (step-wise area "
           "under the precision-recall curve, not interpolated), in %",
    "mAP (ANet)": "mean over the same classes of the ActivityNet classification evaluator's VOC-style interpolated "
                  "AP, in %",
}


def _selected(per_frame: Tensor, index: Tensor) -> Tensor:
    """Rows ``index`` ``[B, K]`` of ``per_frame`` ``[B, T, X]``: ``[B, K, X]``, by one flat ``index_select``."""
    videos, frames, width = per_frame.shape
    offsets = torch.arange(videos, device=index.device).unsqueeze(1) * frames
    rows = (index.long() + offsets).flatten()
    return per_frame.reshape(videos * frames, width).index_select(0, rows).view(videos, -1, width)


def used_frames(count: Tensor, width: int) -> Tensor:
    """``[B, width]`` bool: the first ``count[b]`` columns of each row, the entries a per-video selection used."""
    return torch.arange(width, device=count.device) < count.unsqueeze(1)


def _mean_over_used(values: Tensor, count: Tensor | None) -> Tensor:
    """The mean over dim 1 of ``values`` ``[B, K, X]``: over all K columns, or each row's first ``count`` ones."""
    if count is None:
        return values.mean(dim=1)
    used = used_frames(count, values.shape[1]).unsqueeze(2)
    return values.where(used, 0.0).sum(dim=1) / count.unsqueeze(1).to(values.dtype)


# How the selected frames' outputs become a video's class probabilities ``[B, C]`` (float32, rows summing to 1):
# ``fn(frame_logits [B, T, C], index [B, K], *, count [B] | None, frame_feats [B, T, F] | None,
# head (weight [C, F], bias [C]) | None)``, in the order the CLI lists them. ``count``: an adaptive sampler's
# per-video budget, the frames a video used being the first ``count`` of its row of ``index``; ``None``: all K.
Aggregation = Callable[..., Tensor]
AGGREGATIONS: Registry[Aggregation] = Registry("aggregation")


@AGGREGATIONS.register("mean_softmax")
def mean_softmax(frame_logits: Tensor, index: Tensor, *, count: Tensor | None = None, **_: Any) -> Tensor:
    """The mean of the frames' softmax (the default, the protocol of every committed result)."""
    return _mean_over_used(torch.softmax(_selected(frame_logits, index), dim=-1, dtype=torch.float32), count)


@AGGREGATIONS.register("mean_logits")
def mean_logits(frame_logits: Tensor, index: Tensor, *, count: Tensor | None = None, **_: Any) -> Tensor:
    """The softmax of the frames' mean logit (AR-Net, SCSampler)."""
    return torch.softmax(_mean_over_used(_selected(frame_logits, index).float(), count), dim=-1)


@AGGREGATIONS.register("max_features")
def max_features(frame_logits: Tensor, index: Tensor, *, count: Tensor | None = None,
                 frame_feats: Tensor | None = None, head: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """``head`` on the element-wise max of the frames' features (OCSampler / FrameExit heads)."""
    if frame_feats is None or head is None:
        raise ValueError("max_features needs the frames' features and the recognizer's head")
    weight, bias = head
    selected = _selected(frame_feats, index).float()
    if count is not None:
        selected = selected.where(used_frames(count, selected.shape[1]).unsqueeze(2), -torch.inf)
    pooled = selected.amax(dim=1)
    return torch.softmax(pooled @ weight.float().T + bias.float(), dim=-1)


def check_aggregation(name: str) -> None:
    """A one-line :class:`UserError` (did you mean) unless ``name`` is one of :data:`AGGREGATIONS`."""
    AGGREGATIONS.get(name)


def video_scores(frame_logits: Tensor, index: Tensor, *, aggregation: str = "mean_softmax",
                 count: Tensor | None = None, frame_feats: Tensor | None = None,
                 head: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Video-level class probabilities ``[B, C]`` (float32, rows summing to 1) from the K frames ``index`` ``[B, K]``
    selects among ``frame_logits`` ``[B, T, C]`` (repeats allowed), aggregated by the :data:`AGGREGATIONS` entry
    ``aggregation`` (``"max_features"`` reads ``frame_feats`` and ``head``). ``count`` ``[B]`` (an adaptive sampler's
    per-video budgets): each video aggregates the first ``count`` frames of its row only; without it, the
    computation is the fixed-K one, unchanged. The softmax runs in float32 so that half-precision caches keep small
    probabilities."""
    return AGGREGATIONS.get(aggregation)(frame_logits, index, count=count, frame_feats=frame_feats, head=head)


def running_mean_softmax(frame_logits: Tensor, order: Tensor) -> Tensor:
    """``[B, T, C]`` float32: at step t (0-based), the mean softmax of the frames ``order[:, :t + 1]`` (``order``
    ``[B, T]``, the frames in the order a sampler reads them): the video prediction of :func:`mean_softmax` after
    every step at once."""
    probs = torch.softmax(_selected(frame_logits, order), dim=-1, dtype=torch.float32)
    steps = torch.arange(1, order.shape[1] + 1, device=probs.device, dtype=probs.dtype)
    return probs.cumsum(dim=1) / steps.view(1, -1, 1)


def per_class_average_precision(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Exact scikit-learn AP ``[C]`` in ``[0, 1]`` of every class of ``scores``/``targets`` ``[N, C]`` at once
    (tied scores credited at the end of their tie group, as sklearn); NaN for classes without a positive."""
    scores = np.asarray(scores)
    n, c = scores.shape
    order = np.argsort(-scores, axis=0, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, axis=0)
    sorted_targets = np.take_along_axis(np.asarray(targets, dtype=np.float64), order, axis=0)
    # For every rank, the last rank of its tie group: the nearest group end at or below it.
    is_group_end = np.ones((n, c), dtype=bool)
    is_group_end[:-1] = sorted_scores[:-1] != sorted_scores[1:]
    ranks = np.broadcast_to(np.arange(n)[:, None], (n, c))
    group_end = np.minimum.accumulate(np.where(is_group_end, ranks, n)[::-1], axis=0)[::-1]

    true_positives = np.cumsum(sorted_targets, axis=0)
    precision = true_positives / np.arange(1, n + 1)[:, None]
    precision_at_group_end = np.take_along_axis(precision, group_end, axis=0)
    num_positives = true_positives[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (sorted_targets * precision_at_group_end).sum(axis=0) / num_positives
    return np.where(num_positives > 0, ap, np.nan)


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes with at least one positive of sklearn's one-vs-rest average precision, in percent
    (exact, ties included, vectorised)."""
    return float(np.nanmean(per_class_average_precision(scores, targets)) * 100.0)


def anet_interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC-style interpolated AP from ``precision`` and ``recall`` after each prediction (by decreasing score): a port
    of ``interpolated_prec_rec`` of the official ActivityNet evaluator; never below sklearn's AP."""
    mprec = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    mrec = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def anet_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Interpolated AP in ``[0, 1]`` of one class (``scores``, binary ``targets`` ``[N]``, at least one positive) as
    the ActivityNet evaluator computes it, but ranked by a *stable* sort so that ties are reproducible."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = np.asarray(targets, dtype=np.float64)[order]
    true_positives = np.cumsum(hits)
    precision = true_positives / np.arange(1, len(hits) + 1)
    recall = true_positives / hits.sum()
    return anet_interpolated_ap(precision, recall)


def mean_average_precision_anet(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean interpolated AP (ActivityNet evaluator) over classes with at least one positive, in percent."""
    scores, targets = np.asarray(scores), np.asarray(targets)
    present = np.flatnonzero(targets.sum(axis=0) > 0)
    return float(np.mean([anet_average_precision(scores[:, c], targets[:, c]) for c in present]) * 100.0)


def top1_accuracy(scores: np.ndarray, targets: np.ndarray) -> float:
    """Percent of videos whose highest-scoring class is one of their labels; a video without labels is a miss."""
    return hit_at_k(scores, targets, k=1)


def hit_at_k(scores: np.ndarray, targets: np.ndarray, k: int = 3) -> float:
    """Percent of videos with a label among their ``k`` highest-scoring classes (ties to the lower class index;
    a video without labels is a miss)."""
    scores, targets = np.asarray(scores), np.asarray(targets)
    top_k = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = np.take_along_axis(targets, top_k, axis=1).any(axis=1)
    return float(hits.mean() * 100.0)


def salient_hit_rate(salient: Tensor, index: Tensor, count: Tensor | None = None) -> float:
    """Percent of the selected frames ``index`` ``[B, K]`` inside an annotated segment (``salient`` ``[B, T]``);
    NaN when no frame is salient. Videos without segments count as misses, so the denominator is ``B·K``, or the
    frames used, Σ ``count``, for per-video budgets (``count`` as in :func:`video_scores`)."""
    if not salient.any():
        return float("nan")
    hits = torch.gather(salient.bool(), 1, index.long())
    if count is not None:
        hits = hits[used_frames(count, hits.shape[1])]
    return float(hits.float().mean().item() * 100.0)


def frame_top1(frame_logits: Tensor, targets: Tensor, salient: Tensor) -> float:
    """Percent of salient frames (every frame when none is annotated) whose top class is one of their video's
    labels: a diagnostic of a frame classifier, not of a sampler. Shapes as in :func:`video_scores`."""
    mask = salient.bool() if salient.any() else torch.ones_like(salient, dtype=torch.bool)
    best = frame_logits.argmax(dim=2)  # [B, T]
    hits = torch.gather(targets > 0, 1, best)  # [B, T]: the frame's top class is a label of its video
    return float(hits[mask].float().mean().item() * 100.0)


def label_agreement(predicted: Tensor, salient: Tensor) -> tuple[float, float]:
    """(precision, recall) in percent of binary frame labels ``predicted`` against the annotated ``salient``
    mask, both ``[B, T]``; NaN when nothing is annotated (precision also when nothing is predicted)."""
    truth = salient.bool()
    if not truth.any():
        return float("nan"), float("nan")
    pred = predicted.bool()
    both = (pred & truth).sum().item()
    precision = both / pred.sum().item() * 100.0 if pred.any() else float("nan")
    return precision, both / truth.sum().item() * 100.0


COST_ROUNDING = 1e-9  # relative: costs closer than this are one cost (a mean over videos rounds differently)


def pareto_flags(points: Sequence[tuple[float, float] | None]) -> list[bool]:
    """Whether each operating point ``(cost, score)`` is Pareto-optimal: no other point is at most as costly and
    at least as high, one strictly. Costs within :data:`COST_ROUNDING` of each other are equal: an adaptive
    sampler's mean over videos of one frame each is not made cheaper than a fixed K = 1 by its last bit. ``None``
    is no operating point (a sampler that reads labels at evaluation, the oracle: an upper bound): never marked,
    and it hides no point."""
    pts = [p for p in points if p is not None]

    def optimal(cost: float, score: float) -> bool:
        def dominates(c: float, s: float) -> bool:
            no_dearer = c <= cost + abs(cost) * COST_ROUNDING
            cheaper = c < cost - abs(cost) * COST_ROUNDING
            return no_dearer and s >= score and (cheaper or s > score)

        return not any(dominates(c, s) for c, s in pts)

    return [p is not None and optimal(*p) for p in points]


EMA_WEIGHT = 0.8  # the paper's Fig. 1 smoothing
REFERENCE_SALIENCY = "Guid."  # the variant Fig. 1's rank correlations are taken against


def zero_phase_ema(values: np.ndarray, weight: float = EMA_WEIGHT) -> np.ndarray:
    """The mean of a forward and a backward exponential moving average (``weight`` on the past, bias-corrected):
    the paper's smoothing without the lag and the ramp from the first point that a one-way EMA draws."""
    def ema(x: np.ndarray) -> np.ndarray:
        return pd.Series(x).ewm(alpha=1 - weight, adjust=True).mean().to_numpy()

    return (ema(values) + ema(values[::-1])[::-1]) / 2


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """``[N]`` Spearman's correlation of each row of ``a`` with the same row of ``b`` (``[N, T]`` each; tied values
    share their mean rank); NaN where a row is constant."""
    ra = scipy.stats.rankdata(a.float().numpy(), axis=1)
    rb = scipy.stats.rankdata(b.float().numpy(), axis=1)
    ra, rb = ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(axis=1) / np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))


def mean_interval(values: np.ndarray) -> dict[str, float]:
    """Mean of ``values`` (NaN ignored) with its normal-approximation 95% interval and count."""
    values = values[~np.isnan(values)]
    mean = float(values.mean()) if len(values) else math.nan
    half = 1.96 * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "videos": len(values)}


def saliency_by_class(scores: dict[str, torch.Tensor], *, targets: torch.Tensor, class_ap: np.ndarray,
                      classes: tuple[str, ...]) -> dict:
    """The paper's Fig. 1 for an easy, a middle and a hard class by NSNet's per-class AP ``class_ap``: each
    variant's mean per-video (min-max normalised) saliency over time, smoothed by :func:`zero_phase_ema`, and,
    measured per video, each variant's rank correlation with :data:`REFERENCE_SALIENCY` averaged over the class's
    videos (``rho``, with a 95% interval); ``"all"`` holds those correlations over every video."""
    ranked = [c for c in np.argsort(-np.nan_to_num(class_ap, nan=-1.0)) if not np.isnan(class_ap[c])]
    picks = {"easy": ranked[0], "middle": ranked[len(ranked) // 2], "hard": ranked[-1]}
    reference = scores[REFERENCE_SALIENCY]
    rho = {v: rank_correlation(s, reference) for v, s in scores.items() if v != REFERENCE_SALIENCY}
    out: dict = {}
    for level, c in picks.items():
        rows = targets[:, c] > 0
        curves = {}
        for variant, s in scores.items():
            s = s[rows].float()
            lo, hi = s.min(dim=1, keepdim=True).values, s.max(dim=1, keepdim=True).values
            mean = ((s - lo) / (hi - lo).clamp_min(1e-12)).mean(dim=0).numpy()
            curves[variant] = zero_phase_ema(mean).tolist()
        out[level] = {"class": classes[c], "ap": float(class_ap[c]) * 100.0, "curves": curves,  # %, as mAP is
                      "rho": {v: mean_interval(r[rows.numpy()]) for v, r in rho.items()}}
    out["all"] = {"rho": {v: mean_interval(r) for v, r in rho.items()}}
    return out
