"""Paired bootstrap confidence intervals for comparing samplers on the same videos.

Every sampler is scored on the same resamples of the videos, which keeps their correlation and makes the
interval of a *difference* much narrower than two independent intervals.

Intervals are *basic* (reverse-percentile): ``[2θ - q_hi, 2θ - q_lo]``. The surprising fact: the plain
percentile interval sits *above* the point, because mAP is biased upward on small samples and a resample
has fewer distinct positives still; the basic interval subtracts that bias once (reduced, not removed;
tests/test_stats.py simulates the coverage). Bounds are clipped to [0, 100], [-100, 100] for differences.

A trained sampler may come as several fits (``[F, N, C]`` scores: one per training seed on the same features).
Its point is the mean of the fits' metric, and each resample scores one fit drawn at random beside the
resampled videos, so its intervals cover both the choice of val videos and one fit's training randomness."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from samplerbench.measures.metrics import mean_average_precision

Metric = Callable[[np.ndarray, np.ndarray], float]

# Upper bound on the elements of one [videos × positives] comparison block, to bound memory (~32 MB float32).
_BLOCK_ELEMENTS = 1 << 23


def resampled_average_precision(scores: np.ndarray, targets: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """sklearn's average precision of every class on a batch of bootstrap resamples, without re-sorting.

    ``counts`` are multiplicities (a duplicate is a tie with itself); AP's sums become float32 matrix products,
    exact for counts below 2**24.

    Args:
        scores: ``[N, C]`` scores.
        targets: ``[N, C]`` multi-hot labels.
        counts: ``[R, N]`` non-negative integer multiplicities of the videos.

    Returns:
        ``[R, C]`` AP in ``[0, 1]``; NaN where a class has no positive in the resample.
    """
    scores = np.asarray(scores)
    labels = np.asarray(targets) > 0
    counts = np.asarray(counts, dtype=np.float32)
    n, c = scores.shape
    pos_class, pos_video = np.nonzero(labels.T)
    numerator = np.zeros((counts.shape[0], c))
    block = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, len(pos_video), block):
        video, cls = pos_video[start : start + block], pos_class[start : start + block]
        at_or_above = scores[:, cls] >= scores[video, cls]
        retrieved = counts @ at_or_above.astype(np.float32)
        hits = counts @ (at_or_above & labels[:, cls]).astype(np.float32)
        credit = counts[:, video].astype(np.float64) * hits / np.maximum(retrieved, 1.0)
        # Positives come class by class (nonzero of the transpose), so each class is one contiguous run.
        starts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])
        numerator[:, cls[starts]] += np.add.reduceat(credit, starts, axis=1)
    num_positives = counts @ labels.astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(num_positives > 0, numerator / num_positives, np.nan)


def _resampled_metric(
    metric: Metric,
    scores: np.ndarray,
    targets: np.ndarray,
    indices: np.ndarray,
) -> np.ndarray:
    """The metric on every resample; mAP goes through the batched exact path, anything else per resample."""
    if metric is mean_average_precision:
        counts = np.stack([np.bincount(row, minlength=len(targets)) for row in indices])
        return np.nanmean(resampled_average_precision(scores, targets, counts), axis=1) * 100.0
    return np.array([metric(scores[row], targets[row]) for row in indices])


def basic_interval(draws: np.ndarray, point: float, level: float, *, low: float, high: float) -> tuple[float, float]:
    """The basic bootstrap interval ``[2·point - q_hi, 2·point - q_lo]`` at coverage ``level`` (``q``: percentiles of
    ``draws``, NaN ignored), clipped to ``[low, high]``."""
    tail = (1.0 - level) / 2.0 * 100.0
    q_lo, q_hi = np.nanpercentile(draws, [tail, 100.0 - tail])
    return float(np.clip(2 * point - q_hi, low, high)), float(np.clip(2 * point - q_lo, low, high))


def paired_bootstrap(
    scores_by_name: dict[str, np.ndarray],
    targets: np.ndarray,
    *,
    metric: Metric = mean_average_precision,
    reference: str = "uniform",
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, float]]:
    """Point estimates and paired basic bootstrap intervals (:func:`basic_interval`) of a metric (in %).

    Args:
        scores_by_name: sampler name → ``[N, C]`` video scores, rows aligned with ``targets``, or ``[F, N, C]``: the
            scores of F fits (module docstring).
        targets: ``[N, C]`` multi-hot labels.
        metric: ``(scores, targets) -> float``; :func:`~samplerbench.measures.metrics.mean_average_precision` uses a
            fast batched path, any other metric is recomputed on each resample.
        reference: the sampler differences are taken against; if absent the ``diff*`` fields are omitted.
        resamples: number of bootstrap resamples.
        seed: seed of the resampled indices; the same seed gives the same intervals.
        level: coverage of the intervals.

    Returns:
        name → ``{"mAP": point, "lo", "hi", "fits"}`` plus ``{"diff", "diff_lo", "diff_hi"}``, and ``"fit_std"``
        (the std over fits, ddof 1) for several fits. The point is the metric on all videos (the mean over fits),
        keyed ``"mAP"`` for any ``metric``.
    """
    targets = np.asarray(targets)
    fits = {name: np.asarray(scores).reshape(-1, *np.shape(scores)[-2:]) for name, scores in scores_by_name.items()}
    for name, stack in fits.items():
        if stack.shape[1:] != targets.shape or np.ndim(scores_by_name[name]) not in (2, 3):
            raise ValueError(f"scores of {name!r} have shape {np.shape(scores_by_name[name])}, targets "
                             f"{targets.shape}")
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(targets), size=(resamples, len(targets)))
    picks = rng.integers(0, np.iinfo(np.int64).max, size=resamples)  # a resample's fit: picks % F
    by_fit = {name: np.array([metric(s, targets) for s in stack]) for name, stack in fits.items()}
    draws = {}
    for name, stack in fits.items():
        per_fit = np.stack([_resampled_metric(metric, s, targets, indices) for s in stack])  # [F, R]
        draws[name] = per_fit[picks % len(stack), np.arange(resamples)]

    results: dict[str, dict[str, float]] = {}
    for name, values in by_fit.items():
        point = float(values.mean())
        lo, hi = basic_interval(draws[name], point, level, low=0.0, high=100.0)
        row = {"mAP": point, "lo": lo, "hi": hi, "fits": len(values)}
        if len(values) > 1:
            row["fit_std"] = float(values.std(ddof=1))
        if reference in by_fit:
            diff = point - float(by_fit[reference].mean())
            diff_lo, diff_hi = basic_interval(draws[name] - draws[reference], diff, level,
                                              low=-100.0, high=100.0)
            row |= {"diff": float(diff), "diff_lo": diff_lo, "diff_hi": diff_hi}
        results[name] = row
    return results
