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
import re
import sys
import tempfile
import types
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from samplerbench.core.errors import UserError, environment_error, environment_faults
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


# Modules of settings, messages, run-time estimates, the registry of names and the cache itself (whose format is
# CACHE_FORMAT), not computation: editing them changes no stage's result.
NOT_CODE = frozenset({
    "samplerbench.config", "samplerbench.config.schema", "samplerbench.config.presets", "samplerbench.config.legacy",
    "samplerbench.config.files", "samplerbench.core.fields", "samplerbench.core.errors", "samplerbench.core.stagelog",
    "samplerbench.core.registry", "samplerbench.formats.cache", "samplerbench.stages.estimate",
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


def file_digest(path: Path) -> str:
    """A short SHA-256 of the bytes of the file ``path``: which weights file a run started from, whatever its
    name (run.json's ``weights``, compared by ``samplerbench compare``)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:16]


def new_file_mode() -> int:
    """The permissions the user's umask gives a new file (``0o666`` less the umask): what every file a run
    writes gets, instead of the 0600 of ``mkstemp``."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``/proc/self/status``); elsewhere
    by setting and restoring it, which is not thread-safe for that instant."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` only once it is complete, with the user's
    default permissions (not ``mkstemp``'s 0600). A disk, read-only or permission fault is a
    :class:`~samplerbench.core.errors.UserError` naming ``path``, which keeps what it held."""
    tmp: str | None = None
    try:
        with environment_faults(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            write(Path(tmp))
            os.chmod(tmp, new_file_mode())
            os.replace(tmp, path)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def save_torch(path: Path, value: Any) -> None:
    """``torch.save(value)`` into ``path`` through :func:`atomic_write`, via a file object so that a full disk raises
    the OSError (ENOSPC) rather than torch's opaque "unexpected pos" error."""
    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            torch.save(value, f)

    atomic_write(path, write)


def load_torch(path: Path, *, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` of a file the user named (``what``: "weights file",
    "checkpoint"), or a one-line :class:`~samplerbench.core.errors.UserError` saying truly what ``path`` is instead: a
    folder, something other than a regular file, unreadable, pickled objects besides tensors, not a PyTorch file.
    Never the advice to unpickle with ``weights_only=False``."""
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory, not a file")
    if path.exists() and not path.is_file():
        raise UserError(f"{what} {path} is not a regular file (a FIFO, socket or device)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise environment_error(exc, path, action="read") or UserError(
            f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint (KeyError, EOFError...)
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found:
            raise UserError(f"{what} {path} holds Python objects besides tensors ({found.group(1)}), which "
                            "samplerbench never unpickles: save a state_dict() instead") from None
        raise UserError(f"{what} {path} is not a PyTorch checkpoint file") from None


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
