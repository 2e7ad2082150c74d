"""Content-addressed stage cache.

Each result is stored under ``<root>/<stage>/<key>.pt``, the key hashing the stage's config, its inputs' keys
and its code's source (:func:`source_hash`). Writes are atomic (temporary file, then rename); a damaged
entry is moved aside and recomputed, never fatal."""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import inspect
import json
import os
import sys
import types
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from samplerbench.core.errors import environment_error
from samplerbench.core.files import save_torch
from samplerbench.core.stagelog import warn


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


# Modules of settings, messages, run-time estimates, the registry of names, file writing and the cache itself
# (whose format is CACHE_FORMAT), not computation: editing them changes no stage's result.
NOT_CODE = frozenset({
    "samplerbench.config", "samplerbench.config.schema", "samplerbench.config.presets", "samplerbench.config.legacy",
    "samplerbench.config.files", "samplerbench.core.fields", "samplerbench.core.errors", "samplerbench.core.stagelog",
    "samplerbench.core.registry", "samplerbench.core.files", "samplerbench.formats.cache",
    "samplerbench.stages.estimate",
})


def code_modules(*roots: types.ModuleType) -> list[str]:
    """The names of ``roots`` and of every samplerbench module they reach through their globals (an imported
    module, or a function or class defined in it), transitively, less :data:`NOT_CODE`; sorted.

    What a function imports inside its body is not seen: a stage's computation must import at module level."""
    seen: set[str] = set()
    todo = [root.__name__ for root in roots]
    while todo:
        name = todo.pop()
        if name in seen or name in NOT_CODE or name not in sys.modules:
            continue
        seen.add(name)
        for value in vars(sys.modules[name]).values():
            owner = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
            if isinstance(owner, str) and owner.startswith("samplerbench."):
                todo.append(owner)
    return sorted(seen)


@functools.cache
def module_source(name: str) -> str:
    """The source text of the imported module ``name``."""
    return inspect.getsource(sys.modules[name])


def source_hash(*roots: types.ModuleType) -> str:
    """A short hash of the source of :func:`code_modules` ``(*roots)``: a stage key's ``code`` part, so that
    editing what a stage runs invalidates its cached results (and, through the keys, everything downstream)."""
    digest = hashlib.sha256()
    for name in code_modules(*roots):
        digest.update(f"{name}\n{module_source(name)}\n".encode())
    return digest.hexdigest()[:16]


def _without_docstrings(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def code_digest(*roots: types.ModuleType) -> str:
    """A short hash of the code of :func:`code_modules` ``(*roots)`` that ignores docstrings, comments and
    layout: run.json's ``code``, which ``samplerbench compare`` requires runs to share."""
    digest = hashlib.sha256()
    for name in code_modules(*roots):
        digest.update(f"{name}\n{_without_docstrings(module_source(name))}\n".encode())
    return digest.hexdigest()[:16]


class StageCache:
    """``load``/``save`` of stage outputs (tensors, dicts, lists, numbers, strings) by stage and key."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.pt"

    def load(self, stage: str, key: str, *, heal: bool = True) -> Any | None:
        """The entry, or ``None`` when missing or damaged. With ``heal`` a damaged entry is reported and renamed to
        ``<key>.pt.corrupt-<time>``; an unreadable one (permissions) is a
        :class:`~samplerbench.core.errors.UserError`."""
        p = self.path(stage, key)
        try:
            return torch.load(p, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            raise environment_error(exc, p, action="read") from exc
        except Exception as exc:  # torch raises many types for a damaged file (EOFError, RuntimeError, ...)
            if heal:
                # the first sentence: torch goes on to guess at causes for several more
                reason = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else type(exc).__name__
                warn(f"cache entry {p} does not load ({reason}); {_move_aside(p)}, recomputing it")
            return None

    def save(self, stage: str, key: str, value: Any) -> None:
        save_torch(self.path(stage, key), value)


def _move_aside(path: Path) -> str:
    """Rename a damaged file to ``<name>.corrupt-<time>``; says where it went, or why it stayed."""
    aside = path.with_name(f"{path.name}.corrupt-{datetime.now():%Y%m%dT%H%M%S%f}")
    try:
        os.replace(path, aside)
    except OSError as exc:
        return f"left in place ({exc.strerror})"
    return f"moved aside to {aside.name}"
