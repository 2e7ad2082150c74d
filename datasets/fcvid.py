"""FCVID adapter (``--dataset fcvid``): 239 classes of untrimmed, multi-label web videos; scored by mAP.

Reads FCVID converted to the generic list format (:mod:`samplerbench.datasets.listfile`): ``train_list.txt``,
``val_list.txt`` and a *required* ``classes.txt``. No temporal annotations, so the salient-hit rate is empty."""

from __future__ import annotations

from pathlib import Path

from samplerbench.datasets.base import DatasetIndex, register_dataset
from samplerbench.datasets.layout import data_root, existing, split_lists
from samplerbench.datasets.listfile import CLASS_LIST, TRAIN_LIST, VAL_LIST, ListOptions, parse_list_dataset
from samplerbench.datasets.parsing import parse_class_list

NUM_CLASSES = 239  # in the official release; a subset of the classes is accepted, for smaller experiments


@register_dataset("fcvid", options=ListOptions)
def build(cfg, cache_dir: Path, options: ListOptions) -> DatasetIndex:
    """``--data-root`` with ``classes.txt``, ``train_list.txt`` and ``val_list.txt`` (or the matching flags);
    video paths in the lists are relative to the root."""
    layout = (f"expected <root>/{CLASS_LIST} ({NUM_CLASSES} class names), <root>/{TRAIN_LIST} and <root>/{VAL_LIST} "
              "with 'relative/path label [label ...]' lines")
    root = data_root(cfg, layout)
    classes = parse_class_list(existing(options.classes or root / CLASS_LIST, "class list", layout))
    lists = split_lists(options, layout, train=root / TRAIN_LIST, val=root / VAL_LIST)
    return parse_list_dataset(cfg, name="fcvid", lists=lists, root=root, classes=classes)
