"""torchrun with 2 CPU processes (gloo) against one process: same decoded frames, same features, same mAP.

Both runs are subprocesses with one thread each, started side by side. The config is the tiny preset made
numerically calm, so that the comparison tests the distributed machinery rather than chaos: ShuffleNetV2 as
FEM (MobileNetV2 and EfficientNet train with dropout, whose masks differ per rank) and low learning rates
(at the preset's, one process and two diverge after an epoch from rounding differences alone: the loss
curves agree to 4 digits in the first epoch, then jump apart).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
preset = "tiny"
samplers = ["uniform", "oracle", "mgsampler", "nsnet", "scsampler"]
tables = ["main"]
fem_arch = "shufflenet_v2_x1_0"
rec_epochs = 2
rec_lr = 0.002
fem_epochs = 2
fem_lr = 0.005
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
    return {name: root / name for name in commands}


def test_two_processes_decode_the_same_frames(runs):
    one, two = ({tuple(d["video_ids"]): d for d in _stage_entries(runs[n] / "cache", "decode")} for n in runs)
    assert len(one) == 2 and one.keys() == two.keys()  # train and val, the same videos in the same order
    for ids, d in one.items():
        assert torch.equal(d["frames"], two[ids]["frames"]) and torch.equal(d["salient"], two[ids]["salient"])


def test_two_processes_cache_the_same_features(runs):
    """Tolerance: the 2-process gradient is the same sum taken in another order (per-rank halves, then an
    all-reduce), and the BatchNorm variance comes from E[x²] - E[x]²: rounding differences of ~1e-6 that a
    few SGD steps grow; 2% of the features' scale is far below what a different batch or augmentation
    gives (the preset's own run-to-run change when a seed changes is of order 100%)."""
    one, two = ({d["train_feats"].shape[-1]: d for d in _stage_entries(runs[n] / "cache", "outputs")} for n in runs)
    assert sorted(one) == sorted(two) == [512, 1024]  # resnet18 recognizer, shufflenet FEM
    for dim, d in one.items():
        for name in ("train_feats", "val_feats", "val_logits"):
            diff = (d[name] - two[dim][name]).norm() / d[name].norm()
            assert diff < 0.02, (dim, name, diff.item())


def test_two_processes_give_the_same_map(runs):
    """Samplers trained without dropout agree within 0.5 points (in practice exactly). NSNet (dropout 0.9
    before its classifier) and SCSampler (0.5) draw their masks from per-rank streams, so two processes
    train them with other masks than one: measured 0.7 (SCSampler) and up to 5.6 points (NSNet) on this
    24-video validation set, about the size of a change of seed; they are held to 10 points."""
    one, two = (pd.read_csv(runs[n] / "out" / "synthetic" / "summary.csv").set_index(["sampler", "budget_K"])["mAP"]
                for n in runs)
    assert one.index.equals(two.index)
    with_dropout = one.index.get_level_values("sampler").isin(["nsnet", "nsnet (w/o NS)", "scsampler"])
    gap = (one - two).abs()
    assert (gap[~with_dropout] <= 0.5).all(), pd.DataFrame({"one": one, "two": two})
    assert (gap[with_dropout] <= 10.0).all(), pd.DataFrame({"one": one, "two": two})
