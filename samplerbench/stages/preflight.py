"""Checks a run makes before its first stage: do its per-frame outputs fit in memory, and can its output and
cache folders take files. Each failure is one :class:`~samplerbench.core.errors.UserError`.

Memory rule: a run holds ``rows × T × (features + classes) × itemsize`` bytes per trained network (rows: val
videos plus training views), on every process of a node under torchrun. That is a lower bound, so a run is
refused only when even it exceeds the memory available; the message gives the largest T that fits."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection
from pathlib import Path

import torch

from samplerbench.config import WEIGHT_ROLES, Network, RunConfig
from samplerbench.core.errors import EnvironmentFault, UserError, environment_error
from samplerbench.datasets import run_options
from samplerbench.recognizers.backbones import FrameClassifier


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


def _feature_dim(arch: str) -> int:
    with torch.device("meta"):  # the architecture alone, no weights allocated
        return FrameClassifier(arch=arch, num_classes=1).feature_dim


def held_networks(cfg: RunConfig, extra: Collection[Network]) -> list[str]:
    """The architecture of every recognizer and FEM whose outputs a run of ``cfg`` holds: its own, and the ``extra``
    ones its tables train (:func:`samplerbench.tables.extra_networks`)."""
    held = {(role, getattr(cfg, role).arch, getattr(cfg, role).tsn): getattr(cfg, role).arch for role in WEIGHT_ROLES}
    held |= {network: network[1] for network in extra}
    return list(held.values())


def output_bytes(cfg: RunConfig, *, extra: Collection[Network], train_rows: int, val_rows: int, classes: int,
                 frames: int | None = None) -> int:
    """Bytes of the per-frame outputs a run of ``cfg`` whose tables train the ``extra`` networks holds on one node
    (with ``frames`` = T instead of ``cfg.data.frames`` when given); see the module note."""
    t = cfg.data.frames if frames is None else frames
    per_frame = sum(_feature_dim(arch) + classes for arch in held_networks(cfg, extra))
    itemsize = 8 if cfg.dtype == "float64" else 4
    return (train_rows + val_rows) * t * per_frame * itemsize * int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def expected_rows(cfg: RunConfig) -> tuple[int, int, int]:
    """``(train rows, val rows, classes)`` known before indexing: exact for the synthetic dataset, which the
    config describes; otherwise one video per split and one class, the least a dataset has (the run checks
    again once indexed)."""
    if cfg.data.dataset == "synthetic":
        s = run_options(cfg)
        return s.num_classes * s.train_per_class * cfg.data.train_views, s.num_classes * s.val_per_class, s.num_classes
    return cfg.data.train_views, 1, 1


def check_memory(cfg: RunConfig, *, extra: Collection[Network], train_rows: int, val_rows: int, classes: int) -> None:
    """A :class:`UserError` when the per-frame outputs alone (of the run's networks and the ``extra`` ones its
    tables train) would not fit in the memory available."""
    available = available_memory()
    need = output_bytes(cfg, extra=extra, train_rows=train_rows, val_rows=val_rows, classes=classes)
    if available is None or need <= available:
        return
    fits = available // output_bytes(cfg, extra=extra, train_rows=train_rows, val_rows=val_rows, classes=classes,
                                     frames=1)
    advice = f"at most --frames {fits} fits (and K <= T)" if fits else "use fewer videos or fewer ablation tables"
    raise UserError(f"--frames {cfg.data.frames}: the per-frame features and logits of {train_rows} training and "
                    f"{val_rows} validation rows alone need {need / 2**30:.1f} GiB, but {available / 2**30:.1f} GiB "
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
        raise EnvironmentFault(f"{flag}: {error}") from exc
