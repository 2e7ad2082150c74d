"""Round trip: a run with ``--export-bank`` and the run on its bank (``--dataset bank``) score every sampler
identically; the bank run says what it leaves out."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from runconfigs import micro

from samplerbench.cli import main
from samplerbench.samplers import get_sampler_class, list_samplers

pytestmark = pytest.mark.slow

# every sampler but those that read motion from decoded frames (mgsampler), which a bank lacks; two budgets
SAMPLERS = f"samplers = {[n for n in list_samplers() if not get_sampler_class(n).needs_motion]}\n"
CONFIG = micro(samplers=None, budgets=(1, 2))


def test_a_bank_run_scores_every_sampler_as_the_run_that_exported_it(tmp_path: Path, capsys) -> None:
    (tmp_path / "run.toml").write_text(SAMPLERS + CONFIG)
    common = ["--config", str(tmp_path / "run.toml"), "--device", "cpu", "--quiet", "--cache-dir", str(tmp_path / "c")]
    assert main([*common, "--out", str(tmp_path / "videos"), "--export-bank"]) == 0
    bank = tmp_path / "videos" / "synthetic" / "bank"
    assert (bank / "index.json").is_file()
    # the default sampler list: mgsampler is left out with a note, the rest run
    (tmp_path / "bank.toml").write_text(CONFIG)
    assert main(["--config", str(tmp_path / "bank.toml"), "--device", "cpu", "--quiet", "--cache-dir",
                 str(tmp_path / "c"), "--out", str(tmp_path / "banked"), "--dataset", "bank", "--data-root",
                 str(bank)]) == 0
    assert "mgsampler left out: it reads motion" in capsys.readouterr().err
    videos = pd.read_csv(tmp_path / "videos" / "synthetic" / "summary.csv").set_index(["sampler", "budget_K"])
    banked = pd.read_csv(tmp_path / "banked" / "bank" / "summary.csv").set_index(["sampler", "budget_K"])
    assert sorted(videos.index) == sorted(banked.index)
    pd.testing.assert_series_equal(videos["mAP"], banked.loc[videos.index, "mAP"], check_exact=True)
    assert banked["decoded_frames"].isna().all() and banked["videos_per_s_e2e"].isna().all()
    assert banked.loc[banked.index.get_level_values(0) != "oracle", "videos_per_s"].gt(0).all()
    meta = json.loads((tmp_path / "banked" / "bank" / "run.json").read_text())
    assert any("sampler heads" in w for w in meta["warnings"])
    assert "sampler heads" in (tmp_path / "banked" / "bank" / "main.md").read_text()
