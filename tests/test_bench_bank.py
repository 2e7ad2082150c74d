"""Benchmark: the main comparison of the trainable samplers on a frame bank of 20,000 videos × T = 16 with
2,048-d recognizer features, 1,280-d FEM features and 200 classes (features stored as float16: 2.3 GB on disk),
generated here, in at most 10 minutes and 6 GB peak RSS on one core of this machine (the bank is memory-mapped).

The run is ``bench.py --dataset bank`` in a subprocess (uniform as the bootstrap's reference; 8 sampler epochs,
see :data:`CONFIG`; the default preset's 1,000 bootstrap resamples); its wall time and peak RSS go to the
benchmark's ``extra_info``. Run with ``pytest -m benchmark --benchmark-enable -k bank``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.format import open_memmap

from samplerbench.formats.bank import write_index

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.benchmark

TRAIN, VAL, T, D_FEM, D_REC, C = 16_000, 4_000, 16, 1280, 2048, 200
CHUNK = 1000  # rows generated at a time: the generator's memory stays small too
# 8 sampler epochs and one fit each, not the default preset's own schedules (NSNet 120 epochs) and 3 fits: over
# 16,000 training videos that is 2,000 SGD steps per sampler; the default's schedules would take hours on one core.
CONFIG = """
[data]
frames = 16
[sampling]
samplers = ["uniform", "nsnet", "scsampler", "ocsampler"]
epochs = 8
fits = 1
[report]
tables = ["main"]
"""


def make_bank(root: Path, *, seed: int = 0) -> Path:
    """A bank whose videos each show one class on a random run of 2-6 salient frames (its FEM and recognizer
    features carry the class embedding there, background elsewhere; logits are confident there), written
    chunk by chunk through memory maps."""
    gen = np.random.default_rng(seed)
    fem_class = gen.normal(size=(C, D_FEM)).astype(np.float32)
    rec_class = gen.normal(size=(C, D_REC)).astype(np.float32)
    ids = {}
    for split, n in (("train", TRAIN), ("val", VAL)):
        (root / split).mkdir(parents=True)
        arrays = {name: open_memmap(root / split / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
                  for name, dtype, shape in (("fem_features", np.float16, (n, T, D_FEM)),
                                             ("rec_features", np.float16, (n, T, D_REC)),
                                             ("rec_logits", np.float16, (n, T, C)), ("labels", np.uint8, (n, C)),
                                             ("salient", np.bool_, (n, T)))}
        for start in range(0, n, CHUNK):
            rows = min(CHUNK, n - start)
            y = gen.integers(0, C, rows)
            first, length = gen.integers(0, T - 2, rows), gen.integers(2, 7, rows)
            t = np.arange(T)
            salient = (t >= first[:, None]) & (t < (first + length)[:, None])
            s = salient[..., None].astype(np.float32)
            for name, emb, width in (("fem_features", fem_class, D_FEM), ("rec_features", rec_class, D_REC)):
                noise = gen.standard_normal((rows, T, width), dtype=np.float32)
                arrays[name][start:start + rows] = s * emb[y][:, None] + noise
            logits = gen.standard_normal((rows, T, C), dtype=np.float32)
            logits[np.arange(rows), :, y] += 4.0 * salient
            arrays["rec_logits"][start:start + rows] = logits
            arrays["labels"][start:start + rows] = np.eye(C, dtype=np.uint8)[y]
            arrays["salient"][start:start + rows] = salient
        for array in arrays.values():
            array.flush()
        ids[split] = [f"{split}{i:05d}" for i in range(n)]
    write_index(root, classes=[f"class{c}" for c in range(C)], video_ids=ids, producer={"tool": "test_bench_bank"})
    return root


def test_bench_bank_main_comparison(benchmark, tmp_path: Path) -> None:
    bank = make_bank(tmp_path / "bank")
    (tmp_path / "run.toml").write_text(CONFIG)
    argv = [sys.executable, "bench.py", "--dataset", "bank", "--data-root", str(bank), "--config",
            str(tmp_path / "run.toml"), "--device", "cpu", "--workers", "1", "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "out")]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    assert os.waitstatus_to_exitcode(status) == 0
    peak_gb = usage.ru_maxrss / 2**20
    benchmark.extra_info.update(wall_s=round(seconds, 1), peak_rss_gb=round(peak_gb, 2))
    benchmark.pedantic(lambda: None, rounds=1)
    print(f"bank of {TRAIN + VAL} videos: main comparison in {seconds:.0f} s, peak RSS {peak_gb:.2f} GB")
    print((tmp_path / "out" / "bank" / "main.md").read_text())
    assert seconds <= 600 and peak_gb <= 6.0
