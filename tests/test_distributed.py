"""torchrun with 2 CPU processes (gloo) against one process: same decoded frames, same features, same mAP.

Both runs are the tiny preset with every sampler, subprocesses with one thread each, started side by side,
in float64 (``dtype``). Why not float32: training from scratch amplifies rounding ~1e5-fold in the tiny
preset's 8 recognizer steps, so a float32 run does not even reproduce itself when only its thread count
changes (measured: 1 vs 2 threads in one process moved the ResNet-18 features by 56% and mAP by up to 7.6
points; 1 vs 2 processes by 23% and 12.7). A different sum order is all that two processes change, once
BatchNorm and dropout cover the global batch; float64 starts that difference 1e9 times smaller, so what
the test sees is the distributed machinery itself: a missing gather, a wrong shard, a per-rank mask or a
local BatchNorm each move the features by far more than the tolerance.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from samplerbench.formats.store import FrameStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
preset = "tiny"
tables = ["main"]
dtype = "float64"
"""


def _stage_entries(cache: Path, stage: str) -> list[dict]:
    return [torch.load(p, weights_only=True) for p in sorted(glob.glob(str(cache / "stages" / stage / "*.pt")))]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dist")
    (root / "run.toml").write_text(CONFIG)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(root / "xdg")}
    args = ["bench.py", "--config", str(root / "run.toml"), "--device", "cpu", "--quiet"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    commands = {"one": [sys.executable], "two": torchrun}
    procs = {name: subprocess.Popen([*cmd, *args, "--out", str(root / name / "out"), "--cache-dir",
                                     str(root / name / "cache")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
             for name, cmd in commands.items()}
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{name}:\n{output[-3000:]}"
        (root / name / "console.txt").write_text(output)
    return {name: root / name for name in commands}


def test_quiet_runs_print_no_stage_lines_or_bars_on_any_rank(runs):
    for name in runs:
        console = (runs[name] / "console.txt").read_text()
        assert "epoch" not in console and "(computed)" not in console, console[-2000:]


def test_two_processes_decode_the_same_frames(runs):
    """Each rank wrote its own shards of the frame store; together they are what one process wrote."""
    one, two = ({tuple(s.column("video_ids")): s for s in map(FrameStore, (runs[n] / "cache" / "frames").iterdir())}
                for n in runs)
    assert len(one) == 2 and one.keys() == two.keys()  # train and val, the same videos in the same order
    for ids, s in one.items():
        assert torch.equal(s[:], two[ids][:]) and s.column("salient") == two[ids].column("salient")


def test_the_second_run_had_two_processes(runs):
    """... and both say so, with their precision, in run.json and in every table's opening line."""
    for name, processes, says in (("one", 1, "float64, "), ("two", 2, "float64 x2 processes, ")):
        folder = runs[name] / "out" / "synthetic-tiny"
        assert json.loads((folder / "run.json").read_text())["processes"] == processes
        assert says in (folder / "main.md").read_text()


def test_two_processes_cache_the_same_features(runs):
    """Measured: 1e-12 (ResNet-18) and 1e-10 (MobileNetV2) relative; float64 rounding grown by training."""
    one, two = ({d["train_feats"].shape[-1]: d for d in _stage_entries(runs[n] / "cache", "outputs")} for n in runs)
    assert sorted(one) == sorted(two) == [512, 1280]  # resnet18 recognizer, mobilenet_v2 FEM
    for dim, d in one.items():
        for name in ("train_feats", "val_feats", "val_logits"):
            assert d[name].dtype == torch.float64
            diff = (d[name] - two[dim][name]).norm() / d[name].norm()
            assert diff < 1e-7, (dim, name, diff.item())


def test_two_processes_give_the_same_map(runs):
    """Every sampler, NSNet and SCSampler with their dropout included, within 0.5 points (measured: equal)."""
    one, two = (pd.read_csv(runs[n] / "out/synthetic-tiny/summary.csv").set_index(["sampler", "budget_K"])["mAP"]
                for n in runs)
    assert one.index.equals(two.index)
    assert set(one.index.get_level_values("sampler")) >= {"nsnet", "nsnet (w/o NS)", "scsampler", "random", "oracle"}
    assert ((one - two).abs() <= 0.5).all(), pd.DataFrame({"one": one, "two": two})
