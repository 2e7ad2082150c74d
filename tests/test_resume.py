"""A run killed mid-way (SIGINT or SIGKILL) and started again resumes from its completed stages and never
takes a partial file for a complete one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

CONFIG = """
samplers = ["uniform"]
tables = ["main"]
frames = 4
budgets = [2]
rec_epochs = 40
fem_epochs = 1
throughput_iters = 1
bootstrap = 20
[synthetic]
num_classes = 2
train_per_class = 3
val_per_class = 2
min_frames = 6
max_frames = 12
width = 64
height = 48
"""


def bench(tmp_path: Path, rec_epochs: int) -> subprocess.Popen:
    """The run of :data:`CONFIG`; ``rec_epochs`` does not enter the decode stage's key (long first runs leave
    time to kill them while training, and the re-run need not be long)."""
    (tmp_path / "run.toml").write_text(CONFIG.replace("rec_epochs = 40", f"rec_epochs = {rec_epochs}"))
    argv = [sys.executable, "bench.py", "--preset", "tiny", "--config", str(tmp_path / "run.toml"), "--device", "cpu",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(root: Path, pattern: str, count: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while len(list(root.glob(pattern))) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no completed stage in time"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_killed_run_resumes_from_completed_stages(tmp_path: Path, sig: signal.Signals) -> None:
    proc = bench(tmp_path, rec_epochs=40)
    stages = tmp_path / "cache" / "stages"
    wait_for(tmp_path / "cache", "frames/*/index.json", 2, proc)  # both splits decoded; the recognizer is training
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted; completed stages are cached" in err, err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not list((stages / "model").glob("*.pt"))  # the recognizer never finished
    # A write cut short leaves at most a temporary file; plant one that would crash torch.load if read.
    (stages / "model").mkdir(parents=True, exist_ok=True)
    (stages / "model" / ".0123456789abcdef.pt.x1y2.tmp").write_bytes(b"PK\x03\x04 truncated")

    again = bench(tmp_path, rec_epochs=2)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    log = {s["stage"]: s["cached"] for s in json.loads((tmp_path / "out/synthetic/run.json").read_text())["stages"]}
    assert log["decode/train"] and log["decode/val"]  # resumed
    assert not log["train recognizer/resnet18"]  # recomputed, not read from the partial file
