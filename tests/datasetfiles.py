"""Each dataset's on-disk layout in miniature: annotation files in the real formats plus videos written here.

Two classes, shown by colour (red top half vs blue), so a few training videos are enough for a run to go
through every stage; ``videos=False`` writes only the annotations (parser tests).
"""

from __future__ import annotations

import json
from pathlib import Path

from videofiles import BLUE, RED, write_clip

COLOURS = (RED, BLUE)
TRAIN = [("tr0", 0), ("tr1", 1), ("tr2", 0), ("tr3", 1)]
VAL = [("va0", 0), ("va1", 1), ("va2", 0)]


def _video(path: Path, label: int, videos: bool) -> None:
    if videos:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_clip(path, colour=COLOURS[label])


def make_activitynet(root: Path, *, videos: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    database = {}
    for subset, items in (("training", TRAIN), ("validation", VAL)):
        for vid, label in items:
            database[vid] = {"subset": subset, "duration": 3.0, "url": "",
                             "annotations": [{"segment": [1.0, 2.0], "label": ["Red", "Blue"][label]}]}
            _video(root / "videos" / f"v_{vid}.mp4", label, videos)
    (root / "activity_net.v1-3.min.json").write_text(json.dumps({"version": "VERSION 1.3", "taxonomy": [],
                                                                  "database": database}))
    return root


def make_list(root: Path, *, videos: bool = True, classes: bool = True) -> Path:
    """``train_list.txt``/``val_list.txt`` (video ``va0`` carries both labels) and ``classes.txt``."""
    root.mkdir(parents=True, exist_ok=True)
    if classes:
        (root / "classes.txt").write_text("Red\nBlue\n")
    for name, items in (("train_list.txt", TRAIN), ("val_list.txt", VAL)):
        lines = []
        for vid, label in items:
            rel = f"clips/{vid}.mp4"
            lines.append(f"{rel} {label}" + (" 1" if vid == "va0" else ""))
            _video(root / rel, label, videos)
        (root / name).write_text("\n".join(lines) + "\n")
    return root


def make_ucf101(root: Path, *, videos: bool = True) -> Path:
    names = ("ApplyEyeMakeup", "Archery")
    splits = root / "ucfTrainTestlist"
    splits.mkdir(parents=True)
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    train, test = [], []
    for items, lines, with_label in ((TRAIN, train, True), (VAL, test, False)):
        for vid, label in items:
            rel = f"{names[label]}/v_{names[label]}_{vid}.avi"
            lines.append(f"{rel} {label + 1}" if with_label else rel)
            _video(root / "UCF-101" / rel, label, videos)
    (splits / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (splits / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


def make_minikinetics(root: Path, *, videos: bool = True) -> Path:
    """Kinetics CSVs with one row outside Mini-Kinetics (``zzz``, unlisted) and two label names with commas."""
    names = ('"passing American football (in game)"', "abseiling")
    root.mkdir(parents=True, exist_ok=True)
    for csv_name, items, split in (("train.csv", TRAIN, "train"), ("validate.csv", VAL, "val")):
        rows = ["label,youtube_id,time_start,time_end,split"]
        for i, (vid, label) in enumerate(items):
            start = 10 * i
            rows.append(f"{names[label]},{vid},{start},{start + 10},{split}")
            folder = root / "videos" / names[label].strip('"')
            _video(folder / f"{vid}_{start:06d}_{start + 10:06d}.mp4", label, videos)
        rows.append(f"abseiling,zzz,0,10,{split}")
        (root / csv_name).write_text("\n".join(rows) + "\n")
    (root / "train_ytid_list.txt").write_text("".join(f"{vid}\n" for vid, _ in TRAIN))
    (root / "val_ytid_list.txt").write_text("".join(f"{vid}\n" for vid, _ in VAL))
    return root


MAKERS = {"activitynet": make_activitynet, "fcvid": make_list, "list": make_list, "ucf101": make_ucf101,
          "minikinetics": make_minikinetics}
