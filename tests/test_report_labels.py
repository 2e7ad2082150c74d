"""What the tables and the console say about a run: a smoke test says so, the paper's figures appear only
where they mean something, and the last line names the file to open and the headline result."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from rows import main_row

from samplerbench.config import build_config
from samplerbench.evaluation.result import MainRow
from samplerbench.measures import metrics
from samplerbench.report import write as report
from samplerbench.tables.main import add_pareto_flags

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


def row(sampler: str, k: int, score: float, lo: float | None = None, hi: float | None = None) -> MainRow:
    return main_row(sampler, k, mAP=score, mAP_lo=lo, mAP_hi=hi, top1=score / 2)


ROWS = [row("dense", 16, 30.0), row("mgsampler", 4, 40.0, 35.0, 45.0), row("nsnet", 4, 55.3, 48.12, 60.2),
        row("nsnet", 2, 70.0), row("oracle", 4, 90.0), row("uniform", 4, 27.1, 20.0, 33.0)]


@pytest.mark.parametrize(("rows", "metric", "smoke", "line"), [
    (ROWS, "mAP", False, "headline: nsnet K=4 mAP 55.3 [48.1, 60.2] vs uniform 27.1"),
    (ROWS, "mAP", True, "headline (smoke test, measures nothing): nsnet K=4 mAP 55.3 [48.1, 60.2] vs uniform 27.1"),
    (ROWS, "top1", False, "headline: nsnet K=4 top-1 27.6 vs uniform 13.6"),  # top-1 has no CI
    ([r for r in ROWS if r.sampler != "uniform"], "mAP", False, "headline: nsnet K=4 mAP 55.3 [48.1, 60.2]"),
    ([r for r in ROWS if r.sampler in ("dense", "oracle", "uniform")], "mAP", False, None),
], ids=["best sampler vs uniform", "smoke test", "top-1 dataset", "no uniform", "nothing but references"])
def test_the_last_line_names_the_file_to_open_and_the_headline(tmp_path, rows, metric, smoke, line):
    """The headline is the best sampler at the main budget other than uniform (its reference), dense and the
    oracle, with its CI, against uniform at the same K."""
    (tmp_path / "run.json").write_text(json.dumps({"smoke_test": smoke, "headline": report.headline(rows, metric, 4)}))
    start = f"results written to {tmp_path}/ — open main.md"
    assert report.final_line(tmp_path) == (f"{start}; {line}" if line else start)


def test_the_oracle_is_never_pareto_optimal_and_hides_no_sampler():
    points = [(1.0, 30.0), (2.0, 40.0), (4.0, 35.0), None]  # uniform, nsnet, dense; the oracle is no operating point
    assert metrics.pareto_flags(points) == [True, True, False, False]
    rows = [main_row("uniform", gflops_per_video=1.0, mAP=30.0, top1=30.0),
            main_row("nsnet", gflops_per_video=2.0, mAP=40.0, top1=20.0),
            main_row("dense", gflops_per_video=4.0, mAP=35.0, top1=35.0),
            main_row("oracle", gflops_per_video=1.0, mAP=90.0, top1=90.0, reads_labels=True)]
    add_pareto_flags(rows, "mAP")
    assert [r.pareto for r in rows] == [True, True, False, False]
    add_pareto_flags(rows, "top1")  # the dataset's metric decides
    assert [r.pareto for r in rows] == [True, False, True, False]


def test_costs_equal_but_for_rounding_are_one_cost_on_the_pareto_front():
    """The default run's confidence_exit at one frame a video averaged to a cost a few ulps under uniform's K = 1:
    it must not be marked beside random, which scores higher at the same cost."""
    one_frame = 0.0987
    below = np.nextafter(np.nextafter(one_frame, 0.0), 0.0)
    points = [(one_frame, 46.9), (one_frame, 45.2), (float(below), 45.2), (0.2, 60.0)]
    assert metrics.pareto_flags(points) == [True, False, False, True]
    assert metrics.pareto_flags([(1.0, 50.0), (1.0, 50.0)]) == [True, True]  # equal points hide neither
    assert metrics.pareto_flags([(0.0, 50.0), (0.0, 40.0)]) == [True, False]  # a bank's free samplers


def test_summary_csv_and_main_md_take_their_columns_from_the_row_type(tmp_path):
    """summary.csv's header is MainRow's fields in order (but run.json's ``reads_labels``), top-1 first among the
    scores of a top-1 dataset; main.md's columns are the row spec's, MAIN_COLUMNS."""
    rows = [main_row("dense", 16, timed_iters=7, decoded_frames=16, videos_per_s=10.0),
            main_row("oracle", 4, reads_labels=True)]
    fields = [f.name for f in dataclasses.fields(MainRow)]
    assert report.SUMMARY_COLUMNS == MainRow.summary_columns() == [f for f in fields if f != "reads_labels"]
    for metric in ("mAP", "top1"):
        report.summary_table(rows, metric).to_csv(tmp_path / "summary.csv", index=False, float_format="%.4f")
        header, dense, oracle = (tmp_path / "summary.csv").read_text().splitlines()
        columns = header.split(",")
        assert columns == report.summary_columns(metric) and sorted(columns) == sorted(report.SUMMARY_COLUMNS)
        first = "top1" if metric == "top1" else "mAP"
        assert columns[columns.index("fits") + 1] == first
        cells = dict(zip(columns, dense.split(","), strict=True))
        assert (cells["timed_iters"], cells["decoded_frames"]) == ("7", "16")  # integers, though the oracle's are empty
        assert dict(zip(columns, oracle.split(","), strict=True))["timed_iters"] == ""
        text = report.main_markdown(rows, "header", metric)
        table_header = next(line for line in text.splitlines() if line.startswith("| sampler"))
        headers = [c.strip() for c in table_header.strip("|").split("|")]
        assert headers == [c.header for c in report.main_columns(metric)]
        assert sorted(headers) == sorted(c.header for c in report.MAIN_COLUMNS)
        assert headers[2] == ("top-1 %" if metric == "top1" else "mAP % [95% CI]")
