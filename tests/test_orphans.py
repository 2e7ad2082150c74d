"""Worker processes die with the run that started them, however it ends: SIGKILL of the main process (as the
out-of-memory killer sends) takes its decode workers and their fork server along within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")]

SCRIPT = '''
import ctypes, os, sys
from pathlib import Path

from samplerbench.stages import decode


def job(folder):
    """Say who runs it (pid, and parent: the fork server), then block in C holding the GIL for two minutes,
    as a decoder stuck in its C++ may: only the kernel can end such a process, not a Python thread."""
    Path(folder, f"{os.getpid()}.{os.getppid()}").touch()
    ctypes.PyDLL(None).sleep(120)


if __name__ == "__main__":
    folder, kind = sys.argv[1], sys.argv[2]
    jobs = [(folder,)] * 2
    if kind == "pool":  # the crash-isolated probe pool
        decode._run_isolated(job, jobs, workers=2, desc="probe")
    else:  # the DataLoader workers that decode
        list(decode._stream_loader(job, jobs, workers=2, desc="decode"))
'''


def alive(pid: int) -> bool:
    """Running or sleeping; a zombie (dead, not yet reaped by whoever adopted it) counts as gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.parametrize("kind", ["pool", "loader"])
def test_workers_die_with_a_killed_main_process(tmp_path: Path, kind: str) -> None:
    (tmp_path / "main.py").write_text(SCRIPT)
    pids = tmp_path / "pids"
    pids.mkdir()
    main = subprocess.Popen([sys.executable, str(tmp_path / "main.py"), str(pids), kind], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 180  # the fork server imports torch first: slow on a busy machine
        while len(list(pids.iterdir())) < 2:
            assert main.poll() is None and time.monotonic() < deadline, "the workers never started"
            time.sleep(0.2)
        time.sleep(0.5)  # let every worker arm its parent-death signal
        started = {int(p) for name in os.listdir(pids) for p in name.split(".")}  # workers and fork server
        main.send_signal(signal.SIGKILL)
        main.wait()
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in started if alive(pid)], "orphaned workers (or fork server) outlived the run"
    finally:
        main.kill()
        for pid in (pid for pid in started if alive(pid)):
            os.kill(pid, signal.SIGKILL)
