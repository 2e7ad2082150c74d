"""Tables 1–4: every row's score carries a 95% CI and a paired Δ against the table's reference row (the run's
own setting), resolved differences are marked, and the note names the reference row."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from rows import main_row

from samplerbench.evaluation.evaluator import add_reference_intervals
from samplerbench.report import write as report


def _bench(targets: np.ndarray) -> SimpleNamespace:
    """The parts of a run's Bench that the bootstrap reads: the val targets, the resample count and the seed."""
    split = SimpleNamespace(targets=torch.from_numpy(targets))
    cfg = SimpleNamespace(report=SimpleNamespace(bootstrap=200), seed=0)
    return SimpleNamespace(pipe=SimpleNamespace(source=SimpleNamespace(split=lambda subset: split)), cfg=cfg)


def _scores(n: int = 240, c: int = 8) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    targets = np.zeros((n, c), dtype=int)
    targets[np.arange(n), rng.integers(0, c, n)] = 1
    noise = rng.random((n, c))
    return targets, {"weak": noise + 0.2 * targets, "strong": noise + 0.6 * targets,
                     "weak+": noise + 0.2 * targets + 0.01 * rng.random((n, c))}


def _rows(reference: int | None) -> list[dict]:
    targets, s = _scores()
    rows = [{"recognizer": "resnet18", "train": "w/o TSN", "nsnet_mAP": 0.0, "uniform_mAP": 0.0},
            {"recognizer": "resnet18", "train": "w/ TSN", "nsnet_mAP": 0.0, "uniform_mAP": 0.0},
            {"recognizer": "resnet34", "train": "w/ TSN", "nsnet_mAP": 0.0, "uniform_mAP": 0.0}]
    scores = [{"nsnet_mAP": s["weak"], "uniform_mAP": s["weak"]}, {"nsnet_mAP": s["strong"], "uniform_mAP": s["weak"]},
              {"nsnet_mAP": s["weak+"], "uniform_mAP": s["strong"]}]
    return add_reference_intervals(_bench(targets), rows, scores, reference)


def test_every_column_gets_a_ci_and_a_paired_difference_from_the_reference_row() -> None:
    rows = _rows(reference=0)
    assert [r["reference"] for r in rows] == [True, False, False]
    for r in rows:
        for col in ("nsnet_mAP", "uniform_mAP"):
            assert r[f"{col}_lo"] < r[f"{col}_hi"]
    ref = rows[0]
    assert (ref["nsnet_mAP_delta"], ref["nsnet_mAP_delta_lo"], ref["nsnet_mAP_delta_hi"]) == (0.0, 0.0, 0.0)
    assert rows[1]["nsnet_mAP_delta_lo"] > 0  # strong scores beat weak ones beyond resampling
    assert rows[1]["uniform_mAP_delta"] == 0.0  # same scores as the reference's uniform column
    assert rows[2]["nsnet_mAP_delta_lo"] < 0 < rows[2]["nsnet_mAP_delta_hi"]  # weak vs weak + jitter: unresolved


def test_the_table_names_its_reference_row_and_marks_resolved_differences() -> None:
    text = report.simple_markdown("Table 4", _rows(reference=0), "header", "note.")
    assert "Reference row of Δ: resnet18 w/o TSN, this run's own setting." in text
    assert report.ci_note(1) in text and report.RESOLVED_NOTE in text
    header, _, *lines = [line for line in text.splitlines() if line.startswith("|")]
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns == ["recognizer", "train", "nsnet_mAP % [95% CI]", "Δnsnet_mAP vs resnet18 w/o TSN [95% CI]",
                       "uniform_mAP % [95% CI]", "Δuniform_mAP vs resnet18 w/o TSN [95% CI]"]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0][3] == "0.0 [0.0, 0.0]"  # the reference against itself: never resolved
    assert cells[1][3].endswith(" ✓") and not cells[2][3].endswith("✓")
    assert cells[2][5].endswith(" ✓")  # strong uniform scores vs the reference's weak ones


def test_without_the_runs_own_setting_among_the_rows_there_is_no_difference() -> None:
    rows = _rows(reference=None)
    assert not any(r["reference"] for r in rows) and not any("nsnet_mAP_delta" in r for r in rows)
    text = report.simple_markdown("Table 4", rows, "header", "note.")
    assert "Δ" not in text.split("\n\n")[-1] and "No row is this run's own setting, so no Δ is given." in text


@pytest.mark.parametrize(("lo", "hi", "marked"), [(0.1, 2.0, True), (-3.0, -0.2, True), (-0.1, 2.0, False),
                                                  (None, None, False)])
def test_a_difference_is_resolved_when_its_ci_excludes_zero(lo, hi, marked) -> None:
    row = main_row("nsnet", mAP=40.0, mAP_lo=35.0, mAP_hi=45.0, dmAP_vs_uniform=1.0, dmAP_lo=lo, dmAP_hi=hi,
                   speedup_flops=1.0)
    text = report.main_markdown([row], "header")
    line = next(line for line in text.splitlines() if line.startswith("| nsnet"))
    assert ("✓" in line) == marked and report.RESOLVED_NOTE in text
