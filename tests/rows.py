"""Main-table rows for the tests of what reads them (speed-ups, Markdown, headline, summary.csv)."""

from __future__ import annotations

from samplerbench.evaluation.result import MainRow

SCORES = dict(fits=1, mAP=50.0, mAP_anet=50.0, top1=40.0, hit3=70.0, salient_hit_rate=30.0, gflops_per_video=1.0)


def main_row(sampler: str = "uniform", budget_K: int = 4, **fields) -> MainRow:
    """A row of ``sampler`` at ``budget_K`` on a synthetic T = 16, with :data:`SCORES` where ``fields`` say nothing
    (a fixed-K row's frames: K ± 0)."""
    return MainRow(**{"dataset": "synthetic", "sampler": sampler, "frames_T": 16, "budget_K": budget_K, **SCORES,
                      "frames_mean": float(budget_K), "frames_std": 0.0, **fields})
