"""Speed of the evaluation hot paths (pytest-benchmark).

Run with ``pytest -m benchmark --benchmark-enable tests/test_bench_metrics.py``. The targets asserted here
are for an otherwise idle 2-core machine: mAP of ActivityNet-sized score matrices well under a second,
scoring a selection from cached logits far faster than any sampler can select, and a 1,000-resample
paired bootstrap of a whole table in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samplerbench.measures.metrics import mean_average_precision, video_scores
from samplerbench.measures.stats import paired_bootstrap

pytestmark = pytest.mark.benchmark


def _single_label(n: int, c: int, rng: np.random.Generator) -> np.ndarray:
    targets = np.zeros((n, c), dtype=np.int64)
    targets[np.arange(n), rng.integers(0, c, n)] = 1
    return targets


def _mean_seconds(benchmark) -> float | None:
    """Mean time per round, or None when benchmarking is disabled (the function then ran once, untimed)."""
    return None if benchmark.stats is None else benchmark.stats.stats.mean


def test_bench_mean_average_precision_5000_videos_200_classes(benchmark) -> None:
    rng = np.random.default_rng(0)
    targets = _single_label(5000, 200, rng)
    scores = rng.random((5000, 200)).astype(np.float32) + 0.5 * targets
    result = benchmark.pedantic(mean_average_precision, args=(scores, targets), rounds=5, warmup_rounds=1)
    assert 0.0 < result <= 100.0
    seconds = _mean_seconds(benchmark)
    assert seconds is None or seconds < 1.0


def test_bench_video_scores_uniform_gather_50000_videos(benchmark) -> None:
    videos, frames, budget, classes = 50_000, 16, 4, 200
    logits = torch.randn(videos, frames, classes)

    def score_uniform() -> torch.Tensor:
        # The uniform sampler's selection (segment centres), then the video scores from the cached logits.
        centres = (torch.arange(budget) * frames + frames // 2) // budget
        return video_scores(logits, centres.expand(videos, budget))

    out = benchmark.pedantic(score_uniform, rounds=3, warmup_rounds=1)
    assert out.shape == (videos, classes)
    seconds = _mean_seconds(benchmark)
    if seconds is not None:
        benchmark.extra_info["videos_per_s"] = videos / seconds
        assert videos / seconds >= 50_000


def test_bench_paired_bootstrap_1000_resamples_10_samplers(benchmark) -> None:
    rng = np.random.default_rng(0)
    targets = _single_label(360, 10, rng)
    scores = {f"sampler{i}": rng.random((360, 10)) + 0.1 * i * targets for i in range(9)}
    scores["uniform"] = rng.random((360, 10)) + 0.3 * targets
    out = benchmark.pedantic(paired_bootstrap, args=(scores, targets), kwargs={"resamples": 1000}, rounds=3)
    assert out["sampler8"]["diff_lo"] > 0
    seconds = _mean_seconds(benchmark)
    assert seconds is None or seconds < 5.0
