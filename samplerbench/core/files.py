"""Files a run writes and reads, safely: complete or not at all (:func:`atomic_write`), with the user's permissions,
torch files that are never unpickled (:func:`load_torch`), and content digests."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from samplerbench.core.errors import UserError, environment_error, environment_faults


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
