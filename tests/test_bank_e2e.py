"""Round trip: a run with ``--export-bank`` and the run on its bank (``--dataset bank``) score every sampler
identically, mgsampler included (from the motion the bank carries), the adaptive samplers at every point of their
sweeps; the bank run says what its cost covers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from runconfigs import micro

from samplerbench.cli import main
from samplerbench.samplers import list_samplers

pytestmark = pytest.mark.slow

CONFIG = micro(samplers=None, budgets=(1, 2))  # every registered sampler, two budgets


def test_a_bank_run_scores_every_sampler_as_the_run_that_exported_it(tmp_path: Path, capsys) -> None:
    (tmp_path / "run.toml").write_text(CONFIG)
    common = ["--config", str(tmp_path / "run.toml"), "--device", "cpu", "--quiet", "--cache-dir", str(tmp_path / "c")]
    assert main([*common, "--out", str(tmp_path / "videos"), "--export-bank"]) == 0
    bank = tmp_path / "videos" / "synthetic" / "bank"
    assert (bank / "index.json").is_file()
    assert main(["--config", str(tmp_path / "run.toml"), "--device", "cpu", "--quiet", "--cache-dir",
                 str(tmp_path / "c"), "--out", str(tmp_path / "banked"), "--dataset", "bank", "--data-root",
                 str(bank)]) == 0
    assert "left out" not in capsys.readouterr().err
    videos = pd.read_csv(tmp_path / "videos" / "synthetic" / "summary.csv").set_index(["sampler", "budget_K"])
    banked = pd.read_csv(tmp_path / "banked" / "bank" / "summary.csv").set_index(["sampler", "budget_K"])
    assert sorted(videos.index) == sorted(banked.index)
    assert set(videos.index.get_level_values(0)) >= set(list_samplers())  # mgsampler too
    # an adaptive sampler's row at K is matched on GFLOPs from videos, on frames from a bank (heads-only GFLOPs)
    fixed = videos.index[videos["knob"].isna()]
    pd.testing.assert_series_equal(videos.loc[fixed, "mAP"], banked.loc[fixed, "mAP"], check_exact=True)
    sweeps = [pd.read_csv(tmp_path / run / "adaptive.csv").set_index(["sampler", "knob_value"])
              for run in ("videos/synthetic", "banked/bank")]
    assert set(sweeps[0].index.get_level_values(0)) == set(videos.index.get_level_values(0)[videos["knob"].notna()])
    for column in ("mAP", "frames_mean", "frames_std"):
        pd.testing.assert_series_equal(sweeps[0][column], sweeps[1].loc[sweeps[0].index, column], check_exact=True)
    assert banked["decoded_frames"].isna().all() and banked["videos_per_s_e2e"].isna().all()
    assert banked.loc[banked.index.get_level_values(0) != "oracle", "videos_per_s"].gt(0).all()
    meta = json.loads((tmp_path / "banked" / "bank" / "run.json").read_text())
    assert any("sampler heads" in w for w in meta["warnings"])
    assert "sampler heads" in (tmp_path / "banked" / "bank" / "main.md").read_text()
