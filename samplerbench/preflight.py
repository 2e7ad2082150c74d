"""Checks a run makes before its first stage: do its decoded frames fit in memory, and can its output and
cache folders take files. Each failure is one :class:`~samplerbench.errors.UserError`, so a run that cannot
finish says so at once instead of after decoding or training for minutes.

The memory rule (the upper bound on T, and through K <= T on K): a run holds every decoded frame in memory
from the decode stage to the end, ``rows × T × 3 × rec_res²`` bytes (uint8), where a row is a validation
video or a training video's temporal-shift view (``train_views``). Decoding a split briefly holds that
split twice (its parts and their concatenation), and samplers that read pixels (``needs_frames``) get a copy
resized to ``fem_res`` (unless it equals ``rec_res``). Under torchrun every process of a node holds all of
it. The total is a lower bound on the run's memory (models and activations come on top), so a run is
refused only when even that exceeds the memory available, and the message says the largest T that fits.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from samplerbench.config import RunConfig
from samplerbench.errors import UserError, environment_error
from samplerbench.samplers import get_sampler_class, list_samplers


def available_memory() -> int | None:
    """Bytes this process may still allocate: ``MemAvailable`` of ``/proc/meminfo``, lowered to its cgroup's
    ``memory.max`` less ``memory.current`` where it has a limit (a container, a Slurm job); ``None`` where
    neither is known (not Linux)."""
    known = []
    try:
        meminfo = Path("/proc/meminfo").read_text()
        known += [int(line.split()[1]) * 1024 for line in meminfo.splitlines() if line.startswith("MemAvailable:")]
    except OSError:
        pass
    try:  # cgroup v2: the line "0::/path" names this process's group under /sys/fs/cgroup
        group = Path("/sys/fs/cgroup") / Path("/proc/self/cgroup").read_text().split("::", 1)[1].strip().lstrip("/")
        limit = (group / "memory.max").read_text().strip()
        if limit != "max":
            known.append(int(limit) - int((group / "memory.current").read_text()))
    except (OSError, IndexError, ValueError):
        pass
    return min(known, default=None)


def frame_bytes(cfg: RunConfig, *, train_rows: int, val_rows: int, frames: int | None = None) -> int:
    """Peak bytes of decoded frames of a run of ``cfg`` (with ``frames`` = T instead of ``cfg.frames`` when
    given) on one node; see the module note."""
    t = cfg.frames if frames is None else frames
    rows = train_rows + val_rows + max(train_rows, val_rows)
    per_row = 3 * cfg.rec_res**2 * rows
    if cfg.fem_res != cfg.rec_res and any(get_sampler_class(n).needs_frames for n in cfg.samplers or list_samplers()):
        per_row += 3 * cfg.fem_res**2 * (train_rows + val_rows)
    return t * per_row * int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def expected_rows(cfg: RunConfig) -> tuple[int, int]:
    """``(train rows, val rows)`` known before indexing: exact for the synthetic dataset, which the config
    describes; otherwise one video per split, the least a dataset has (the run checks again once indexed)."""
    if cfg.dataset == "synthetic":
        s = cfg.synthetic
        return s.num_classes * s.train_per_class * cfg.train_views, s.num_classes * s.val_per_class
    return cfg.train_views, 1


def check_frame_memory(cfg: RunConfig, *, train_rows: int, val_rows: int) -> None:
    """A :class:`UserError` when the decoded frames alone would not fit in the memory available."""
    available = available_memory()
    need = frame_bytes(cfg, train_rows=train_rows, val_rows=val_rows)
    if available is None or need <= available:
        return
    fits = available // frame_bytes(cfg, train_rows=train_rows, val_rows=val_rows, frames=1)
    advice = f"at most --frames {fits} fits (and K <= T)" if fits else "lower rec_res or use fewer videos"
    raise UserError(f"--frames {cfg.frames}: the decoded frames of {train_rows} training and {val_rows} validation "
                    f"rows at {cfg.rec_res} px alone need {need / 2**30:.1f} GiB, but {available / 2**30:.1f} GiB "
                    f"of memory is available; {advice}")


def check_writable(folder: Path, flag: str) -> None:
    """Create ``folder`` when missing and write and delete a file in it; a folder that cannot take the run's
    files (a file in its place, read-only, no permission, full) is a :class:`UserError` naming ``flag``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        error = environment_error(exc, folder)
        if error is None:
            raise
        raise UserError(f"{flag}: {error}") from exc
