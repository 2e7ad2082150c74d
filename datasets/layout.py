"""Finding a dataset on disk: the data root, the annotation files in it, and each record's video file.

Every adapter states its expected layout once and passes it here, so a missing folder or file is always
one :class:`~samplerbench.errors.UserError` that names the path and shows the whole layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from samplerbench.errors import UserError

VIDEO_EXTENSIONS = ("mp4", "mkv", "webm", "avi", "mov")


def data_root(cfg, layout: str) -> Path:
    """``--data-root`` as a folder, or a :class:`UserError` that explains ``layout``."""
    if cfg.data_root is None:
        raise UserError(f"--dataset {cfg.dataset} needs --data-root ({layout})")
    root = Path(cfg.data_root).expanduser()
    if not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder ({layout})")
    return root


def existing(path: Path | str, what: str, layout: str, *, folder: bool = False) -> Path:
    """``path`` (user-expanded) when it is a file (or a folder), else a :class:`UserError` naming it."""
    path = Path(path).expanduser()
    if not (path.is_dir() if folder else path.is_file()):
        raise UserError(f"{what} {path} not found ({layout})")
    return path


def split_lists(cfg, layout: str, *, train: Path, val: Path,
                what: tuple[str, str] = ("training list", "validation list")) -> dict[str, Path]:
    """``{"train": file, "val": file}``: ``--train-list``/``--val-list``, else the adapter's default files
    ``train`` and ``val``; each must exist (``what`` names them in the error)."""
    return {
        "train": existing(cfg.train_list or train, what[0], layout),
        "val": existing(cfg.val_list or val, what[1], layout),
    }


def list_videos(folder: Path, *, recursive: bool = False) -> dict[str, Path]:
    """File name -> path of every file in ``folder`` (and its subfolders when ``recursive``), from one scan:
    looking each video up with ``exists`` would cost one stat per candidate name on a network drive."""
    if not folder.is_dir():
        return {}
    files = folder.rglob("*") if recursive else folder.iterdir()
    return {p.name: p for p in sorted(files) if p.is_file()}


def find_video(files: Mapping[str, Path], stems: Sequence[str], *, default: Path) -> Path:
    """The first of ``<stem>.<ext>`` (stems in order, extensions in :data:`VIDEO_EXTENSIONS` order) among
    ``files``; ``default`` when none exists, so the decode stage reports the expected file as missing and a
    partly downloaded dataset still runs and says what is absent."""
    for ext in VIDEO_EXTENSIONS:
        for stem in stems:
            if f"{stem}.{ext}" in files:
                return files[f"{stem}.{ext}"]
    return default
