"""User-facing errors: the CLI prints these as one line, without a traceback."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path


class UserError(Exception):
    """Bad input from the user (a flag, a path, an annotation). The message is the whole story."""


class EnvironmentFault(UserError):
    """A disk, filesystem or permission fault the user can fix; the command line adds what to do next, which
    depends on the command (a run resumes from its completed stages)."""


# The environment faults a user can fix, and how; any other OSError is a bug or a broken machine and keeps
# its traceback.
_REMEDIES = {
    errno.ENOSPC: "free some space there or choose a folder on another filesystem",
    errno.EDQUOT: "free some of your quota or choose a folder on another filesystem",
    errno.EROFS: "the filesystem is read-only: choose a writable folder",
    errno.EACCES: "fix the permissions or choose another folder",
    errno.EPERM: "fix the permissions or choose another folder",
    errno.EEXIST: "a file stands where a folder is needed: move it or choose another folder",
    errno.ENOTDIR: "a file stands where a folder is needed: move it or choose another folder",
    errno.EISDIR: "a folder stands where a file is needed: move it or choose another path",
    errno.ENAMETOOLONG: "a name on that path is longer than the filesystem allows: choose a shorter path",
    errno.ELOOP: "a symbolic link on that path leads back to itself: fix the link or choose another folder",
    errno.ENOENT: "a folder on that path does not exist and cannot be made there (a pseudo-filesystem such as "
                  "/proc or /sys, or a folder removed meanwhile): choose another folder",
    errno.EINVAL: "the filesystem refuses that name or operation (a pseudo-filesystem, or characters it does not "
                  "allow): choose a folder on an ordinary filesystem",
    errno.EIO: "the device reported an I/O error: check the disk, or choose a folder on another one",
    errno.EMFILE: "this process has too many open files: raise the limit (ulimit -n) or use fewer --workers",
    errno.ENFILE: "the system has too many open files: close some programs or use fewer --workers",
    errno.ENXIO: "no device answers there (a FIFO without a reader, a removed device): choose a regular file",
    errno.ENODEV: "no device answers there (a FIFO without a reader, a removed device): choose a regular file",
    errno.EBUSY: "the file is in use by another program: close it or choose another path",
    errno.ETXTBSY: "the file is in use by another program: close it or choose another path",
    errno.ESTALE: "the network filesystem lost that file (a stale handle): remount it or choose a local folder",
}


def environment_error(exc: BaseException, path: Path | str | None = None, *,
                      action: str = "write") -> UserError | None:
    """The one-line :class:`UserError` for a disk-full, read-only or permission fault met while trying to ``action``
    ``path``, or ``None``; the fault may be ``exc`` or an OSError in its cause/context chain (torch.save wraps it)."""
    while exc is not None and not (isinstance(exc, OSError) and exc.errno in _REMEDIES):
        exc = exc.__cause__ or exc.__context__
    if exc is None:
        return None
    where = path if path is not None else exc.filename
    what = f"cannot {action} {where}" if where else f"cannot {action}"
    reason = exc.strerror or os.strerror(exc.errno)
    return EnvironmentFault(f"{what}: {reason}; {_REMEDIES[exc.errno]}")


@contextlib.contextmanager
def environment_faults(path: Path | str, *, action: str = "write") -> Iterator[None]:
    """Inside the block, a disk-full, read-only or permission fault becomes :func:`environment_error`'s one
    line about ``path``; any other error goes on as it is."""
    try:
        yield
    except Exception as exc:
        error = environment_error(exc, path, action=action)
        if error is None:
            raise
        raise error from exc
