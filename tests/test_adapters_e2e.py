"""Every dataset adapter end to end: annotation files in its format plus MP4s written here, through the tiny
preset (two samplers, the main table), with an unreadable video in the mix."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from datasetfiles import MAKERS

from samplerbench.config import build_config
from samplerbench.runs.benchmark import run

pytestmark = pytest.mark.slow

# smaller than tiny: the point is that every stage runs on each format, not what it learns
SMALLER = dict(frames=4, budgets=(2,), rec_epochs=1, fem_epochs=1, throughput_iters=1, bootstrap=20)
BROKEN = {  # the validation video each layout gets as a zero-byte file
    "activitynet": "videos/v_va2.mp4",
    "fcvid": "clips/va2.mp4",
    "list": "clips/va2.mp4",
    "ucf101": "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_va2.avi",
    "minikinetics": "videos/passing American football (in game)/va2_000020_000030.mp4",
}


@pytest.mark.parametrize("dataset", list(MAKERS))
def test_adapter_runs_the_tiny_preset(dataset: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = MAKERS[dataset](tmp_path / "data")
    (root / BROKEN[dataset]).write_bytes(b"")
    cfg = build_config("tiny", data={"dataset": dataset, "root": str(root)},
                       sampling={"samplers": ("uniform", "random")}, report={"tables": ("main",)}, **SMALLER)
    folder = run(cfg, out=tmp_path / "out", cache_dir=tmp_path / "cache", quiet=True)

    assert f"1 video skipped as unreadable (see {folder / 'skipped.csv'}" in capsys.readouterr().out
    skipped = pd.read_csv(folder / "skipped.csv")
    assert skipped["reason"].tolist() == ["zero-byte file"] and skipped["path"][0].endswith(Path(BROKEN[dataset]).name)
    meta = json.loads((folder / "run.json").read_text())
    assert meta["dataset"]["classes"] == 2 and meta["dataset"]["val_videos"] == 3 and len(meta["skipped_videos"]) == 1

    summary = pd.read_csv(folder / "summary.csv")
    assert set(summary["sampler"]) == {"uniform", "random"} and summary["mAP"].between(0, 100).all()
    scores = [c for c in summary.columns if c in ("mAP", "top1")]
    assert scores == (["top1", "mAP"] if dataset in ("ucf101", "minikinetics") else ["mAP", "top1"])
    main = (folder / "main.md").read_text()
    first_score = "top-1 %" if dataset in ("ucf101", "minikinetics") else "mAP % [95% CI]"
    assert main.index(first_score) < min(main.index("top-1 %"), main.index("mAP % [95% CI]")) + 1
    if dataset == "activitynet":  # annotated segments: a real rate
        assert summary["salient_hit_rate"].between(0, 100).all()
    else:  # no temporal annotations: empty, not a fake 0
        assert summary["salient_hit_rate"].isna().all()
        assert all(row["salient_hit_rate"] is None for row in meta["tables"]["main"])
        assert all(not math.isnan(row["mAP"]) for row in meta["tables"]["main"])
