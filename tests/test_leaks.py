"""A video is its resolved file, not its spelling: one file listed in both splits (or twice in one) is an
error naming both entries, for every adapter that reads paths; an empty list file is named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from datasetfiles import MAKERS

from samplerbench.config import build_config
from samplerbench.core.errors import UserError
from samplerbench.datasets import get_dataset

KINETICS = "passing American football (in game)"


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + line + "\n")


def _link(link: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.touch()
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)


def _spelled_again(root: Path) -> None:  # list, fcvid: the training video again as ./clips/...
    _append(root / "val_list.txt", "./clips/tr0.mp4 0")


def _ucf101_link(root: Path) -> None:
    folder = root / "UCF-101" / "ApplyEyeMakeup"
    _link(folder / "v_ApplyEyeMakeup_va9.avi", folder / "v_ApplyEyeMakeup_tr0.avi")
    _append(root / "ucfTrainTestlist" / "testlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_va9.avi")


def _activitynet_link(root: Path) -> None:
    import json
    index = root / "activity_net.v1-3.min.json"
    doc = json.loads(index.read_text())
    doc["database"]["va9"] = {**doc["database"]["va0"]}
    index.write_text(json.dumps(doc))
    _link(root / "videos" / "v_va9.mp4", root / "videos" / "v_tr0.mp4")


def _minikinetics_link(root: Path) -> None:
    _append(root / "validate.csv", "abseiling,va9,0,10,val")
    _append(root / "val_ytid_list.txt", "va9")
    _link(root / "videos" / "abseiling" / "va9_000000_000010.mp4", root / "videos" / KINETICS / "tr0_000000_000010.mp4")


# (adapter, how the leak is made, what the one line says)
LEAKS = [
    ("list", _spelled_again, "clips/tr0.mp4 is the file of {root}/train_list.txt:1 too"),
    ("fcvid", _spelled_again, "clips/tr0.mp4 is the file of {root}/train_list.txt:1 too"),
    ("ucf101", _ucf101_link, "v_ApplyEyeMakeup_va9.avi is the file of {root}/ucfTrainTestlist/trainlist01.txt:1 too"),
    ("activitynet", _activitynet_link, "videos 'tr0' (train) and 'va9' (val) of dataset activitynet are one file"),
    ("minikinetics", _minikinetics_link, "va9_000000_000010.mp4 is the file of {root}/train_ytid_list.txt:1 too"),
]


@pytest.mark.parametrize(("dataset", "leak", "says"), LEAKS, ids=[c[0] for c in LEAKS])
def test_one_file_in_both_splits_is_refused(tmp_path: Path, dataset, leak, says) -> None:
    root = MAKERS[dataset](tmp_path / "data", videos=False)
    leak(root)
    with pytest.raises(UserError) as err:
        get_dataset(dataset)(build_config(data={"dataset": dataset, "root": str(root)}), tmp_path / "cache")
    assert says.format(root=root) in str(err.value) and "\n" not in str(err.value), err.value


EMPTY = {"list": "val_list.txt", "fcvid": "val_list.txt", "ucf101": "ucfTrainTestlist/testlist01.txt",
         "minikinetics": "val_ytid_list.txt"}


@pytest.mark.parametrize("dataset", list(EMPTY))
def test_an_empty_list_file_is_named(tmp_path: Path, dataset: str) -> None:
    root = MAKERS[dataset](tmp_path / "data", videos=False)
    (root / EMPTY[dataset]).write_text("# nothing here\n\n")
    with pytest.raises(UserError, match=f"{root / EMPTY[dataset]}: the val list is empty"):
        get_dataset(dataset)(build_config(data={"dataset": dataset, "root": str(root)}), tmp_path / "cache")
