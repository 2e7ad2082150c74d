"""Scoring a selection: mAP, top-1, hit@3, salient-hit rate, computed exactly from the cached per-frame recognizer
outputs (:func:`~samplerbench.measures.metrics.video_scores`) without running the recognizer again."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from samplerbench.measures.metrics import (
    hit_at_k,
    mean_average_precision,
    mean_average_precision_anet,
    salient_hit_rate,
    top1_accuracy,
    video_scores,
)


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The metrics of one (sampler, K or knob value) and the per-video scores the bootstrap resamples: one
    selection's, or the metrics averaged over several fits with their scores stacked (:func:`combine_fits`)."""

    scores: np.ndarray  # [N, C] video scores, or [F, N, C]: one per fit
    mAP: float
    mAP_anet: float
    top1: float
    hit3: float
    salient_hit_rate: float

    def metrics(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "scores"}


def evaluate_selection(index: Tensor, *, logits: Tensor, targets: Tensor, salient: Tensor,
                       aggregation: str = "mean_softmax", count: Tensor | None = None, feats: Tensor | None = None,
                       head: tuple[Tensor, Tensor] | None = None) -> Evaluation:
    """Metrics of the selection ``index`` ``[N, K]`` given the val split's cached logits ``[N, T, C]`` (and
    features ``[N, T, F]`` and the recognizer's ``head`` for ``aggregation="max_features"``); with ``count`` ``[N]``
    (per-video budgets) each video scores the first ``count`` frames of its row, and the salient-hit rate is over
    the frames used."""
    scores = video_scores(logits, index, aggregation=aggregation, count=count, frame_feats=feats, head=head).numpy()
    y = targets.numpy()
    return Evaluation(
        scores=scores,
        mAP=mean_average_precision(scores, y),
        mAP_anet=mean_average_precision_anet(scores, y),
        top1=top1_accuracy(scores, y),
        hit3=hit_at_k(scores, y, k=3),
        salient_hit_rate=salient_hit_rate(salient, index, count),
    )


def combine_fits(evaluations: Sequence[Evaluation]) -> Evaluation:
    """The evaluations of several fits of one sampler as one: each metric the mean over fits, the scores stacked
    ``[F, N, C]`` (what :func:`~samplerbench.measures.stats.paired_bootstrap` resamples fit by fit); one fit stays
    as it is."""
    if len(evaluations) == 1:
        return evaluations[0]
    names = [f.name for f in dataclasses.fields(Evaluation) if f.name != "scores"]
    means = {name: float(np.mean([getattr(e, name) for e in evaluations])) for name in names}
    return Evaluation(scores=np.stack([e.scores for e in evaluations]), **means)


def first_fits(scores: dict[Any, np.ndarray]) -> dict[Any, np.ndarray]:
    """Each entry's ``[N, C]`` scores of its first fit (the one the run's checkpoints and selections hold)."""
    return {key: s[0] if s.ndim == 3 else s for key, s in scores.items()}
