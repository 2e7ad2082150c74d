"""What the tables and the console say about a run: a smoke test says so, the paper's figures appear only
where they mean something, and the last line names the file to open and the headline result."""

from __future__ import annotations

import json

import pytest

from samplerbench.config import build_config
from samplerbench.measures import metrics
from samplerbench.report import write as report

ABLATION_ROWS = [{"guiding": "response", "mAP": 50.0, "paper_mAP": 74.1},
                 {"guiding": "prototype", "mAP": 52.0, "paper_mAP": 74.7}]


def test_a_smoke_test_says_so_first_and_prints_no_paper_figures():
    tiny = build_config("tiny")
    header = report.table_header(tiny, "a machine", ["2 class(es) without a validation video"], features="f")
    first, provenance, warning = header.split("\n\n")
    assert first.startswith("**Smoke test** (preset `tiny`)") and "say nothing about the samplers" in first
    assert "preset `tiny`" in provenance and warning == "**Warning:** 2 class(es) without a validation video."
    assert report.printed_rows(ABLATION_ROWS, tiny) == [{"guiding": "response", "mAP": 50.0},
                                                        {"guiding": "prototype", "mAP": 52.0}]
    assert report.paper_caveat(tiny) == ""
    assert not report.table_header(build_config(), "a machine", [], features="f").startswith("**Smoke test**")


@pytest.mark.parametrize(("dataset", "caveat"), [("synthetic", True), ("fcvid", True), ("activitynet", False)])
def test_paper_figures_beside_another_dataset_say_whose_they_are(dataset, caveat):
    cfg = build_config(data={"dataset": dataset})
    assert report.printed_rows(ABLATION_ROWS, cfg) == ABLATION_ROWS
    assert ("ActivityNet v1.3" in report.paper_caveat(cfg) and "not on this dataset" in report.paper_caveat(cfg)) \
        == caveat
    text = report.simple_markdown("Table 1", ABLATION_ROWS, "header", "note." + report.paper_caveat(cfg))
    assert "paper (ActivityNet) mAP" in text


def row(sampler: str, k: int, score: float, lo: float | None = None, hi: float | None = None) -> dict:
    return {"sampler": sampler, "budget_K": k, "mAP": score, "mAP_lo": lo, "mAP_hi": hi, "top1": score / 2}


ROWS = [row("dense", 16, 30.0), row("mgsampler", 4, 40.0, 35.0, 45.0), row("nsnet", 4, 55.3, 48.12, 60.2),
        row("nsnet", 2, 70.0), row("oracle", 4, 90.0), row("uniform", 4, 27.1, 20.0, 33.0)]


@pytest.mark.parametrize(("rows", "metric", "smoke", "line"), [
    (ROWS, "mAP", False, "headline: nsnet K=4 mAP 55.3 [48.1, 60.2] vs uniform 27.1"),
    (ROWS, "mAP", True, "headline (smoke test, measures nothing): nsnet K=4 mAP 55.3 [48.1, 60.2] vs uniform 27.1"),
    (ROWS, "top1", False, "headline: nsnet K=4 top-1 27.6 vs uniform 13.6"),  # top-1 has no CI
    ([r for r in ROWS if r["sampler"] != "uniform"], "mAP", False, "headline: nsnet K=4 mAP 55.3 [48.1, 60.2]"),
    ([r for r in ROWS if r["sampler"] in ("dense", "oracle", "uniform")], "mAP", False, None),
], ids=["best sampler vs uniform", "smoke test", "top-1 dataset", "no uniform", "nothing but references"])
def test_the_last_line_names_the_file_to_open_and_the_headline(tmp_path, rows, metric, smoke, line):
    """The headline is the best sampler at the main budget other than uniform (its reference), dense and the
    oracle, with its CI, against uniform at the same K."""
    (tmp_path / "run.json").write_text(json.dumps({"smoke_test": smoke, "headline": report.headline(rows, metric, 4)}))
    start = f"results written to {tmp_path}/ — open main.md"
    assert report.final_line(tmp_path) == (f"{start}; {line}" if line else start)


def test_the_oracle_is_never_pareto_optimal_and_hides_no_sampler():
    rows = [dict(sampler="uniform", gflops_per_video=1.0, mAP=30.0),
            dict(sampler="nsnet", gflops_per_video=2.0, mAP=40.0),
            dict(sampler="dense", gflops_per_video=4.0, mAP=35.0),
            dict(sampler="oracle", gflops_per_video=1.0, mAP=90.0, reads_labels=True)]
    assert metrics.pareto_flags(rows) == [True, True, False, False]
