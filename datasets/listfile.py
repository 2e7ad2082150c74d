"""Generic list-file adapter (``--dataset list``): mmaction2-style ``relative/path label [label ...]`` lines.

Labels are 0-based; several make a multi-label video. A path that is a folder is a rawframe line ``frame_dir
total_frames label [label ...]`` (:func:`~samplerbench.datasets.layout.frame_folder`). Paths are relative to
``--data-root`` or absolute and may contain spaces (:func:`~samplerbench.datasets.parsing.split_labels`).
Class names come from an optional class list, else the label numbers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from samplerbench.datasets.base import DatasetIndex, VideoRecord, register_dataset
from samplerbench.datasets.layout import (
    SplitListOptions,
    data_root,
    existing,
    frame_folder,
    is_frame_folder,
    split_lists,
)
from samplerbench.datasets.parsing import BadEntry, parse_class_list, records_from_lists, split_labels

TRAIN_LIST = "train_list.txt"
VAL_LIST = "val_list.txt"
CLASS_LIST = "classes.txt"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ListOptions(SplitListOptions):
    """The lists of a list-file dataset, and its class list (``--classes``): one name per line."""

    classes: str | None = None


def parse_label_line(line: str, *, num_classes: int | None,
                     root: Path | None = None) -> tuple[str, int | None, tuple[int, ...]]:
    """``(path, frame count, sorted distinct labels)`` of one ``path label [label ...]`` line, or of a
    rawframe line ``frame_dir total_frames label [label ...]`` when ``root / path`` is a folder (the frame
    count is ``None`` for a video line)."""
    path, values = split_labels(line)
    total_frames = None
    if root is not None and values and is_frame_folder(root / path):
        total_frames, values = values[0], values[1:]
    if not values:
        form = "'frame_dir total_frames label [label ...]'" if total_frames is not None else "'path label [label ...]'"
        raise BadEntry(f"expected {form} with integer labels at the end, got {line!r}")
    for value in values:
        if value < 0 or (num_classes is not None and value >= num_classes):
            limit = f"0..{num_classes - 1}" if num_classes is not None else "non-negative"
            raise BadEntry(f"label {value} out of range ({limit})")
    return path, total_frames, tuple(sorted(set(values)))


def parse_list_dataset(
    cfg, *, name: str, lists: dict[str, Path], root: Path, classes: tuple[str, ...] | None
) -> DatasetIndex:
    """Index ``{"train": file, "val": file}`` list files; ``classes`` (when known) bounds the labels."""
    num_classes = len(classes) if classes is not None else None

    def record(line: str, subset: str) -> VideoRecord:
        path, total_frames, labels = parse_label_line(line, num_classes=num_classes, root=root)
        frames = None if total_frames is None else frame_folder(cfg, root / path, total_frames)
        return VideoRecord(video_id=path, path=root / path, labels=labels, subset=subset, frames=frames)

    records, bad = records_from_lists(lists, record, lenient=cfg.data.lenient)
    if classes is None:
        classes = tuple(str(i) for i in range(max((max(r.labels) for r in records), default=-1) + 1))
    return DatasetIndex(name=name, classes=classes, records=tuple(records), metric="mAP", skipped=tuple(bad))


@register_dataset("list", options=ListOptions)
def build(cfg, cache_dir: Path, options: ListOptions) -> DatasetIndex:
    """``--data-root`` with ``train_list.txt``, ``val_list.txt`` (or ``--train-list``/``--val-list``) and,
    optionally, ``classes.txt`` (or ``--classes``)."""
    layout = (f"expected <root>/{TRAIN_LIST} and <root>/{VAL_LIST} with 'relative/path label [label ...]' lines, "
              f"optionally <root>/{CLASS_LIST}")
    root = data_root(cfg, layout)
    lists = split_lists(options, layout, train=root / TRAIN_LIST, val=root / VAL_LIST)
    class_list = Path(options.classes).expanduser() if options.classes else root / CLASS_LIST
    if options.classes:
        existing(class_list, "class list", layout)
    classes = parse_class_list(class_list) if class_list.is_file() else None
    return parse_list_dataset(cfg, name="list", lists=lists, root=root, classes=classes)
