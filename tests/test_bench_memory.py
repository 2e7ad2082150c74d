"""Benchmark: a run's peak memory does not grow with the number of videos (frames stay in the frame store).

The ``list`` adapter over N real H.264 videos at T=16, 112 px, one view per training video, every sampler
that reads motion or features (uniform, mgsampler, scsampler), N=100 and N=1000; the peak RSS of each run is
recorded in the benchmark's ``extra_info``. Run with ``pytest -m benchmark --benchmark-enable -k memory``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from videofiles import BLUE, RED, write_clip

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.benchmark

CONFIG = """
samplers = ["uniform", "mgsampler", "scsampler"]
tables = ["main"]
frames = 16
budgets = [4]
main_budget = 4
short_side = 128
rec_res = 112
fem_res = 112
train_views = 1
rec_epochs = 1
fem_epochs = 1
sampler_epochs = 2
throughput_iters = 1
bootstrap = 20
"""


def make_dataset(root: Path, n: int) -> Path:
    """``n`` videos of 48 frames, 160x128 px, two classes by colour, 80% of them for training: with 100
    videos that is 80 training rows, more than the largest training batch (64), so that both sizes train on
    the same batch shapes and the difference measured is the dataset's alone."""
    root.mkdir(parents=True)
    lines = {"train": [], "val": []}
    for i in range(n):
        label = i % 2
        write_clip(root / f"v{i:04d}.mp4", 48, colour=(RED, BLUE)[label], width=160, height=128)
        lines["train" if i < n * 4 // 5 else "val"].append(f"v{i:04d}.mp4 {label}")
    for subset, rows in lines.items():
        (root / f"{subset}_list.txt").write_text("\n".join(rows) + "\n")
    (root / "run.toml").write_text(CONFIG)
    return root


def peak_rss_mb(data: Path, tmp: Path) -> float:
    """Peak resident memory (MB) of a whole run over ``data``: the largest of the run's processes."""
    argv = [sys.executable, "bench.py", "--dataset", "list", "--data-root", str(data), "--config",
            str(data / "run.toml"), "--device", "cpu", "--workers", "2", "--quiet", "--cache-dir", str(tmp / "cache"),
            "--out", str(tmp / "out")]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the largest of every child so far
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    return usage.ru_maxrss / 1024


def test_bench_memory_is_flat_in_the_number_of_videos(benchmark, tmp_path: Path) -> None:
    peaks = {}
    for n in (100, 1000):
        data = make_dataset(tmp_path / f"data{n}", n)
        peaks[n] = peak_rss_mb(data, tmp_path / f"run{n}")
    benchmark.extra_info.update({f"peak_rss_mb_{n}": round(mb) for n, mb in peaks.items()})
    benchmark.pedantic(lambda: None, rounds=1)
    print(f"peak RSS: {peaks[100]:.0f} MB at 100 videos, {peaks[1000]:.0f} MB at 1000")
    assert peaks[1000] - peaks[100] <= 250
