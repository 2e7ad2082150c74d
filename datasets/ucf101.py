"""UCF101 adapter (``--dataset ucf101``): the official ``ucfTrainTestlist`` files; scored by top-1.

``classInd.txt`` numbers classes from 1; ``trainlistNN.txt``/``testlistNN.txt`` for ``--split 1|2|3``. A video's
class is its path's folder, looked up ignoring case. A path that is a folder is an mmaction2 rawframe line
``Class/v_Class_gXX_cYY total_frames [label]``, whose label is 0-based (a video line's is 1-based). No temporal
annotations, so the salient-hit rate is empty."""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath
from typing import ClassVar

from samplerbench.core.fields import Range
from samplerbench.datasets.base import DatasetIndex, VideoRecord, register_dataset
from samplerbench.datasets.layout import FRAME_DIR, data_root, existing, frame_folder, is_frame_folder, split_lists
from samplerbench.datasets.listfile import ListOptions
from samplerbench.datasets.parsing import BadEntry, parse_class_list, records_from_lists, split_labels

SPLIT_DIR = "ucfTrainTestlist"
VIDEO_DIRS = ("UCF-101", "videos")  # the official archive's folder, or a plain one


@dataclasses.dataclass(frozen=True, kw_only=True)
class UCF101Options(ListOptions):
    """UCF101's official split (``--split``), and the lists that replace its files (``--classes``, ...)."""

    RANGES: ClassVar[dict[str, Range]] = {"split": Range(1, 3)}
    split: int = 1


def parse_ucf_line(line: str, *, class_index: dict[str, int], train: bool,
                   frame_root: Path | None = None) -> tuple[str, int, int | None]:
    """``(relative path, 0-based class, frame count)`` of one split-list line; the path may contain spaces (a
    trailing integer is the class number, see :func:`~samplerbench.datasets.parsing.split_labels`). When
    ``frame_root / path`` is a folder the line is a rawframe line, else the frame count is ``None``."""
    rel, numbers = split_labels(line, max_labels=2)
    total_frames, first = None, 1
    if frame_root is not None and numbers and is_frame_folder(frame_root / rel):
        total_frames, numbers, first = numbers[0], numbers[1:], 0
    elif len(numbers) == 2:  # a video line ends in one number at most
        rel, numbers = split_labels(line, max_labels=1)
    if train and not numbers and total_frames is None:
        raise BadEntry(f"expected 'Class/file.avi N', got {line!r}")
    path = PurePosixPath(rel)
    if len(path.parts) != 2:
        raise BadEntry(f"path {rel!r} is not 'Class/file'")
    label = class_index.get(path.parts[0].lower())
    if label is None:
        raise BadEntry(f"unknown class {path.parts[0]!r} (not in classInd.txt)")
    if numbers and numbers[0] != label + first:
        raise BadEntry(f"class number {numbers[0]} does not match the folder {path.parts[0]!r} "
                       f"(class {label + first})")
    return rel, label, total_frames


@register_dataset("ucf101", options=UCF101Options)
def build(cfg, cache_dir: Path, options: UCF101Options) -> DatasetIndex:
    """``--data-root`` with ``ucfTrainTestlist/`` (or ``--classes``/``--train-list``/``--val-list``) and the
    videos in ``UCF-101/<Class>/`` (or ``videos/<Class>/``)."""
    n = f"{options.split:02d}"
    layout = (f"expected <root>/{SPLIT_DIR}/classInd.txt, trainlist{n}.txt and testlist{n}.txt, "
              "and the videos in <root>/UCF-101/<Class>/")
    root = data_root(cfg, layout)
    splits = root / SPLIT_DIR
    classes = parse_class_list(existing(options.classes or splits / "classInd.txt", "class list", layout))
    class_index = {name.lower(): i for i, name in enumerate(classes)}
    video_dir = next((root / d for d in VIDEO_DIRS if (root / d).is_dir()), root / VIDEO_DIRS[0])
    lists = split_lists(options, layout, train=splits / f"trainlist{n}.txt", val=splits / f"testlist{n}.txt",
                        what=("training list", "test list"))

    frame_root = root / FRAME_DIR if (root / FRAME_DIR).is_dir() else video_dir

    def record(line: str, subset: str) -> VideoRecord:
        rel, label, total_frames = parse_ucf_line(line, class_index=class_index, train=subset == "train",
                                                  frame_root=frame_root)
        if total_frames is None:
            return VideoRecord(video_id=PurePosixPath(rel).stem, path=video_dir / rel, labels=(label,),
                               subset=subset)
        return VideoRecord(video_id=PurePosixPath(rel).stem, path=frame_root / rel, labels=(label,), subset=subset,
                           frames=frame_folder(cfg, frame_root / rel, total_frames))

    records, bad = records_from_lists(lists, record, lenient=cfg.data.lenient)
    return DatasetIndex(name="ucf101", classes=classes, records=tuple(records), metric="top1", skipped=tuple(bad))
