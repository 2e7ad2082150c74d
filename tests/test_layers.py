"""The import contracts of ``pyproject.toml`` hold (layers; samplers reach no stage; reports run none; nothing
imports the command line), checked as ``.ci/run`` checks them, so that ``pytest`` alone catches a module that
imports upward or a new module placed in no layer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold() -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", str(ROOT / ".ci" / "layers")], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " kept, 0 broken." in done.stdout, done.stdout[-4000:]  # contracts were checked
