"""Content-addressed stage cache.

Each stage's result is stored under ``<root>/<stage>/<key>.pt`` where the key hashes the stage's own config
and the keys of the stages it reads. Changing a sampler's knob therefore never retrains the recognizer, and
a run that was interrupted resumes from the last completed stage. Writes go to a temporary file in the same
folder and are renamed into place, so a killed run never leaves a partial file that looks complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


# Bumped whenever what a stage stores changes shape or meaning, so older cache entries are never misread.
CACHE_FORMAT = 2


def stage_key(stage: str, **parts: Any) -> str:
    """A short stable hash of a stage name and everything that determines its output."""
    blob = json.dumps({"stage": stage, "format": CACHE_FORMAT, **_jsonable(parts)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` only once it is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class StageCache:
    """``load``/``save`` of stage outputs (tensors, dicts, lists, numbers, strings) by stage and key."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.pt"

    def load(self, stage: str, key: str) -> Any | None:
        p = self.path(stage, key)
        if not p.exists():
            return None
        return torch.load(p, map_location="cpu", weights_only=True)

    def save(self, stage: str, key: str, value: Any) -> None:
        atomic_write(self.path(stage, key), lambda tmp: torch.save(value, tmp))
