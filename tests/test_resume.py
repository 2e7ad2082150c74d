"""A run killed mid-way (SIGINT or SIGKILL) and started again resumes from its completed stages and never
takes a partial file for a complete one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from runconfigs import MICRO_DATA

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

CONFIG = """
samplers = ["uniform"]
tables = ["main"]
frames = 4
budgets = [2]
rec_epochs = 40
patience = 40
fem_epochs = 1
throughput_iters = 1
bootstrap = 20
""" + MICRO_DATA


def bench(tmp_path: Path, rec_epochs: int) -> subprocess.Popen:
    """The run of :data:`CONFIG`; ``rec_epochs`` does not enter the decode stage's key (long first runs, never
    stopped early, leave time to kill them while training, and the re-run need not be long)."""
    (tmp_path / "run.toml").write_text(CONFIG.replace("rec_epochs = 40", f"rec_epochs = {rec_epochs}"))
    argv = [sys.executable, "bench.py", "--preset", "tiny", "--config", str(tmp_path / "run.toml"), "--device", "cpu",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    # SIGINT's default action restored: a shell without job control (CI under nohup or `&`) starts its background
    # jobs with SIGINT ignored, the child inherits that, and Python then installs no KeyboardInterrupt handler
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


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
    stages = json.loads((tmp_path / "out/synthetic-tiny/run.json").read_text())["stages"]
    log = {s["stage"]: s["cached"] for s in stages}
    assert log["decode/train"] and log["decode/val"]  # resumed
    assert not log["train recognizer/resnet18"]  # recomputed, not read from the partial file


DECODE = """
import json, sys, time
from pathlib import Path
from samplerbench.stages import pipeline, videos
from samplerbench.formats import store
from samplerbench.config import build_config
from samplerbench.core.stagelog import StageLog

store.SHARD_VIDEOS = 4  # the tiny preset's 40 training videos in 10 shards
delay, decode = float(sys.argv[2]), videos.decode_stream

def slowed(*args, **kwargs):
    for item in decode(*args, **kwargs):
        time.sleep(delay)
        yield item

videos.decode_stream = slowed
pipe = pipeline.Pipeline(build_config("tiny", device="cpu", workers=1), cache_dir=Path(sys.argv[1]),
                         log=StageLog(quiet=True))
split = pipe.source.split("train")
print(json.dumps({"stages": pipe.log.records, "store": str(split.frames.root)}))
"""


def decode_train(cache: Path, delay: float) -> subprocess.Popen:
    """The training split of the tiny preset decoded into ``cache``, ``delay`` seconds per video; in a session
    of its own, so that killing it can take its decoding workers along."""
    return subprocess.Popen([sys.executable, "-c", DECODE, str(cache), str(delay)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_a_decode_killed_half_way_resumes_from_its_finished_shards(tmp_path: Path) -> None:
    first = decode_train(tmp_path / "cache", delay=0.25)
    wait_for(tmp_path / "cache", "frames/*/shard-0000[0-2].json", 3, first)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=60)
    frames = next((tmp_path / "cache" / "frames").iterdir())
    done = sorted(p.name for p in frames.glob("shard-*.json"))
    assert 3 <= len(done) < 10 and not (frames / "index.json").exists()
    # a shard cut short by the kill is at most a temporary file, never a shard without its metadata
    assert sorted(p.with_suffix(".json").name for p in frames.glob("shard-*.u8")) == done

    again = decode_train(tmp_path / "cache", delay=0.0)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    stage = json.loads(out)["stages"][-1]
    assert stage["stage"] == "decode/train" and not stage["cached"] and stage["shards_resumed"] == len(done)

    fresh = decode_train(tmp_path / "fresh", delay=0.0)
    out_fresh, err = fresh.communicate(timeout=300)
    assert fresh.returncode == 0, err
    from samplerbench.formats.store import FrameStore

    resumed, whole = FrameStore(json.loads(out)["store"]), FrameStore(json.loads(out_fresh)["store"])
    assert resumed.column("video_ids") == whole.column("video_ids") and torch.equal(resumed[:], whole[:])
