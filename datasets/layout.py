"""Finding a dataset on disk: the data root, its annotation files and each record's video file. A missing path
is one :class:`~samplerbench.core.errors.UserError` naming it and showing the adapter's whole expected layout."""

from __future__ import annotations

import dataclasses
import os
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path

from samplerbench.core.errors import UserError
from samplerbench.datasets.base import DatasetOptions, FrameFolder
from samplerbench.datasets.parsing import BadEntry

VIDEO_EXTENSIONS = ("mp4", "mkv", "webm", "avi", "mov")
FRAME_DIR = "rawframes"  # mmaction2's folder of frame folders, beside the videos


def data_root(cfg, layout: str) -> Path:
    """``--data-root`` as a folder, or a :class:`UserError` that explains ``layout``."""
    if cfg.data.root is None:
        raise UserError(f"--dataset {cfg.data.dataset} needs --data-root ({layout})")
    root = Path(cfg.data.root).expanduser()
    if not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder ({layout})")
    return root


def existing(path: Path | str, what: str, layout: str, *, folder: bool = False) -> Path:
    """``path`` (user-expanded) when it is a file (or a folder), else a :class:`UserError` naming it."""
    path = Path(path).expanduser()
    if not (path.is_dir() if folder else path.is_file()):
        raise UserError(f"{what} {path} not found ({layout})")
    return path


@dataclasses.dataclass(frozen=True, kw_only=True)
class SplitListOptions(DatasetOptions):
    """The options of an adapter that reads a training and a validation list (``--train-list``,
    ``--val-list``); ``None`` = the adapter's default file inside the data root."""

    train_list: str | None = None
    val_list: str | None = None


def split_lists(options: SplitListOptions, layout: str, *, train: Path, val: Path,
                what: tuple[str, str] = ("training list", "validation list")) -> dict[str, Path]:
    """``{"train": file, "val": file}``: the options' lists, else the adapter's default files ``train`` and
    ``val``; each must exist (``what`` names them in the error)."""
    return {
        "train": existing(options.train_list or train, what[0], layout),
        "val": existing(options.val_list or val, what[1], layout),
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


def template_pattern(template: str) -> re.Pattern[str]:
    """A regex matching the file names ``template`` (one integer field, e.g. ``img_{:05d}.jpg``) makes; a
    template without exactly one field is a :class:`UserError`."""
    parts = list(string.Formatter().parse(template))
    fields = [p for p in parts if p[1] is not None]
    if len(fields) != 1:
        raise UserError(f"--filename-tmpl {template!r}: expected one integer field, as in img_{{:05d}}.jpg")
    try:
        template.format(1)
    except (ValueError, IndexError, KeyError) as e:
        raise UserError(f"--filename-tmpl {template!r}: {e}") from None
    return re.compile("".join(re.escape(text) + (r"[0-9]+" if field is not None else "")
                              for text, field, _, _ in parts))


def count_frames(folder: Path, template: str) -> int:
    """How many files of ``folder`` are named as ``template`` says (0 when it is missing): one listing."""
    pattern = template_pattern(template)
    try:
        return sum(1 for name in os.listdir(folder) if pattern.fullmatch(name))
    except (FileNotFoundError, NotADirectoryError):
        return 0


def frame_folder(cfg, path: Path, total_frames: int | None, *, duration: float = 0.0) -> FrameFolder:
    """The frame folder ``path`` as the run's ``--filename-tmpl``/``--start-index`` read it.

    ``total_frames`` is its list line's count, else the folder is counted. Frames span the video's ``duration``
    (seconds) evenly when known, else :data:`~samplerbench.datasets.base.FRAME_FOLDER_FPS` is assumed. Fewer frames
    than the line gives is a :class:`BadEntry`; a missing or empty folder is left to the decode stage to skip."""
    present = count_frames(path, cfg.data.filename_tmpl)
    if total_frames is None:
        total_frames = present
    elif 0 < present < total_frames:
        raise BadEntry(f"frame folder {path} has {present} frames named {cfg.data.filename_tmpl!r}, "
                       f"the line says {total_frames}")
    if total_frames < 0:
        raise BadEntry(f"negative frame count {total_frames}")
    extra = {"fps": total_frames / duration} if duration > 0 and total_frames > 0 else {}
    return FrameFolder(path=path, total_frames=total_frames, template=cfg.data.filename_tmpl,
                       start_index=cfg.data.start_index, **extra)


def is_frame_folder(path: Path) -> bool:
    """Whether a list line's ``path`` names a frame folder: not a video file name, and a folder on disk (the
    extension test spares a video list one stat per line)."""
    return path.suffix.lower().lstrip(".") not in VIDEO_EXTENSIONS and path.is_dir()
