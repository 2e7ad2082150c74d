from __future__ import annotations

import json

import pandas as pd
import pytest

from samplerbench.cli import main


def _run_folder(path, seed, maps):
    path.mkdir(parents=True)
    rows = [dict(dataset="synthetic", sampler=s, frames_T=16, budget_K=4, mAP=m, top1=m / 2, salient_hit_rate=50.0,
                 gflops_per_video=1.0) for s, m in maps.items()]
    pd.DataFrame(rows).to_csv(path / "summary.csv", index=False)
    (path / "run.json").write_text(json.dumps({"seed": seed, "preset": "default", "machine": "m1"}))
    return path


def test_compare_mean_and_std_over_seeds(tmp_path, capsys):
    a = _run_folder(tmp_path / "s0", 0, {"uniform": 50.0, "nsnet": 70.0})
    b = _run_folder(tmp_path / "s1", 1, {"uniform": 54.0, "nsnet": 72.0})
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "agg")]) == 0
    out = capsys.readouterr().out
    assert "52.0 ± 2.8" in out and "71.0 ± 1.4" in out and "0,1" in out  # sample std, ddof=1
    agg = pd.read_csv(tmp_path / "agg.csv").set_index("sampler")
    assert agg.loc["nsnet", "mAP_mean"] == pytest.approx(71.0) and agg.loc["nsnet", "runs"] == 2
    text = (tmp_path / "agg.md").read_text()
    assert text.startswith("# Mean ± std over runs")
    assert f"- {b}: preset `default`, seed 1, machine: m1" in text


def test_compare_rejects_a_folder_without_summary(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err
