"""A default tiny run in a fresh clone leaves ``git status`` clean: the tiny preset writes
``results/synthetic-tiny/``, which is git-ignored, and never the committed ``results/synthetic/``.

The clone is of the working tree's HEAD: what is tested is the last commit, not uncommitted changes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_default_tiny_run_leaves_a_clone_clean(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    done = subprocess.run([sys.executable, "bench.py", "--preset", "tiny", "--cache-dir", str(tmp_path / "cache"),
                           "--quiet"], cwd=clone, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", status
    assert (clone / "results" / "synthetic-tiny" / "main.md").is_file()
    assert done.stdout.splitlines()[-1].startswith(
        "results written to results/synthetic-tiny/ — open main.md; headline (smoke test, measures nothing): ")
