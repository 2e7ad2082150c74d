"""The folder a run writes, and how its files replace an earlier run's there.

The ``default`` preset writes ``<out>/<dataset>/``, any other ``<out>/<dataset>-<preset>/``. A folder holds
one run, named by its ``run.json``; a run of another identity (:data:`IDENTITY`) or unaccounted files are
refused unless ``overwrite`` (:func:`check`). Files are staged beside the folder and moved in, ``run.json``
last; then the earlier run's files not rewritten are removed. Other files (``seeds.md`` from ``compare``) stay."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from samplerbench.config import RunConfig, run_config
from samplerbench.core.errors import UserError, environment_faults

# run.json's config fields (paths in the nested config) that make two runs' tables different runs (a re-run
# of the same identity replaces the folder's tables; the sampler and table lists may differ)
IDENTITY = ("preset", "data.dataset", "data.video_list", "data.frames", "sampling.budgets", "seed")
# Files only a run writes, removed when a re-run does not write them again even if no run.json lists them.
RUN_OWNED = ("checkpoints/*.pt", "bank/*.json", "bank/*/*")


def run_folder(out: Path, cfg: RunConfig) -> Path:
    """``<out>/<dataset>/`` for the default preset, ``<out>/<dataset>-<preset>/`` for any other."""
    return Path(out) / (cfg.data.dataset if cfg.preset == "default" else f"{cfg.data.dataset}-{cfg.preset}")


def _at(config: dict[str, Any], path: str) -> Any:
    """The value at the dotted ``path`` of a nested config, or ``None``."""
    for part in path.split("."):
        config = config.get(part) if isinstance(config, dict) else None
    return config


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The :data:`IDENTITY` fields of a config (a run.json's of either shape, or a RunConfig's as a dict), budgets
    as a sorted set: ``--budget 4,2`` is the same run as ``--budget 2,4``."""
    nested = run_config(config)
    out = {field: _at(nested, field) for field in IDENTITY}
    budgets = out["sampling.budgets"]
    if isinstance(budgets, (list, tuple)) and all(isinstance(k, int) for k in budgets):
        out["sampling.budgets"] = sorted(set(budgets))
    return out


def describe(ident: dict[str, Any], fields: tuple[str, ...]) -> str:
    """The ``fields`` of an identity in words: ``preset default, T=16, K=1,2,4,8``."""
    budgets = ident["sampling.budgets"]
    values = {**ident, "sampling.budgets": ",".join(map(str, budgets)) if isinstance(budgets, list) else budgets}
    names = {"data.frames": "T=", "sampling.budgets": "K="}
    return ", ".join(f"{names.get(field, field.split('.')[-1] + ' ')}{values[field]}" for field in fields)


def _run_json(folder: Path) -> dict[str, Any] | None:
    """``folder``'s run.json, or ``None`` when it has none that a run wrote (missing, unreadable, not JSON)."""
    try:
        meta = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and isinstance(meta.get("config"), dict) else None


def check(folder: Path, cfg: RunConfig, *, overwrite: bool) -> None:
    """A :class:`UserError` unless a run of ``cfg`` may write ``folder``: it is missing or holds no file, or
    its run.json names a run of the same :data:`IDENTITY`; with ``overwrite``, any folder may be written."""
    if overwrite or not any(p.is_file() for p in folder.rglob("*")):
        return
    meta = _run_json(folder)
    if meta is None:
        raise UserError(f"--out: {folder} holds files but no run.json saying which run wrote them: choose another "
                        "--out, or pass --overwrite to write into it (files that are not the run's are kept)")
    theirs, ours = identity(meta["config"]), identity(dataclasses.asdict(cfg))
    differ = tuple(field for field in IDENTITY if theirs[field] != ours[field])
    if differ:
        raise UserError(f"--out: {folder} holds the tables of another run ({describe(theirs, differ)}; this run: "
                        f"{describe(ours, differ)}): choose another --out, or pass --overwrite to replace them")


def _earlier_files(folder: Path) -> set[str]:
    """The files of the run ``folder`` holds, relative to it: those its run.json lists (names that stay inside
    the folder) and those matching :data:`RUN_OWNED`."""
    listed = (_run_json(folder) or {}).get("files")
    names = {name for name in listed if isinstance(name, str)} if isinstance(listed, list) else set()
    inside = {name for name in names
              if not PurePosixPath(name).is_absolute() and ".." not in PurePosixPath(name).parts}
    return inside | {p.relative_to(folder).as_posix() for pattern in RUN_OWNED for p in folder.glob(pattern)}


def publish(staging: Path, folder: Path) -> None:
    """Move every file under ``staging`` into ``folder`` (``run.json`` last), then remove the earlier run's files
    not replaced and emptied subfolders. A staged hard link to the file it replaces stays in ``staging``."""
    earlier = _earlier_files(folder)
    new = sorted((p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()),
                 key=lambda name: name == "run.json")
    with environment_faults(folder):
        for name in new:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, folder / name)
        for name in sorted(earlier - set(new)):
            stale = folder / name
            if stale.is_file():
                stale.unlink()
                if stale.parent != folder:
                    with contextlib.suppress(OSError):  # not empty: other files are kept
                        stale.parent.rmdir()


@contextlib.contextmanager
def staged(folder: Path, cfg: RunConfig, *, overwrite: bool) -> Iterator[Path]:
    """A fresh, empty folder beside ``folder`` for a run's files; on success they replace the earlier run's in
    ``folder`` (:func:`publish`), and the staging folder is always removed. ``folder`` is re-checked first."""
    check(folder, cfg, overwrite=overwrite)
    with environment_faults(folder.parent):
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.staging-", dir=folder.parent))
    try:
        yield staging
        publish(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def slug(label: str) -> str:
    """``nsnet (w/o NS)`` -> ``nsnet_w_o_ns``: a portable file name stem for any label."""
    text = "".join(c if c.isalnum() else "_" for c in label.lower())
    return "_".join(filter(None, text.split("_")))
