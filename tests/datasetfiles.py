"""Each dataset's on-disk layout in miniature: annotation files in the real formats plus videos written here.

Two classes, shown by colour (red top half vs blue), so a few training videos are enough for a run to go
through every stage; ``videos=False`` writes only the annotations (parser tests); ``frames=True`` stores
every video as a folder of 12 JPEG frames (mmaction2's rawframes) instead, with rawframe list lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from videofiles import BLUE, RED, clip_image, write_clip, write_frames

COLOURS = (RED, BLUE)
FRAMES = 12  # per frame folder, as write_clip's videos
TRAIN = [("tr0", 0), ("tr1", 1), ("tr2", 0), ("tr3", 1)]
VAL = [("va0", 0), ("va1", 1), ("va2", 0)]


def _video(path: Path, label: int, videos: bool) -> None:
    if videos:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_clip(path, colour=COLOURS[label])


def _frames(folder: Path, label: int) -> None:
    write_frames(folder, np.stack([clip_image(COLOURS[label])] * FRAMES))


def make_activitynet(root: Path, *, videos: bool = True, frames: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    database = {}
    for subset, items in (("training", TRAIN), ("validation", VAL)):
        for vid, label in items:
            database[vid] = {"subset": subset, "duration": 3.0, "url": "",
                             "annotations": [{"segment": [1.0, 2.0], "label": ["Red", "Blue"][label]}]}
            if frames:
                _frames(root / "rawframes" / f"v_{vid}", label)
            else:
                _video(root / "videos" / f"v_{vid}.mp4", label, videos)
    (root / "activity_net.v1-3.min.json").write_text(json.dumps({"version": "VERSION 1.3", "taxonomy": [],
                                                                  "database": database}))
    return root


def make_list(root: Path, *, videos: bool = True, classes: bool = True, frames: bool = False) -> Path:
    """``train_list.txt``/``val_list.txt`` (video ``va0`` carries both labels) and ``classes.txt``."""
    root.mkdir(parents=True, exist_ok=True)
    if classes:
        (root / "classes.txt").write_text("Red\nBlue\n")
    for name, items in (("train_list.txt", TRAIN), ("val_list.txt", VAL)):
        lines = []
        for vid, label in items:
            rel = f"clips/{vid}" if frames else f"clips/{vid}.mp4"
            lines.append(f"{rel}{f' {FRAMES}' if frames else ''} {label}" + (" 1" if vid == "va0" else ""))
            if frames:
                _frames(root / rel, label)
            else:
                _video(root / rel, label, videos)
        (root / name).write_text("\n".join(lines) + "\n")
    return root


def make_ucf101(root: Path, *, videos: bool = True, frames: bool = False) -> Path:
    """The official split lists and ``UCF-101/``; with ``frames``, mmaction2's rawframe lists (0-based labels)
    and ``rawframes/``."""
    names = ("ApplyEyeMakeup", "Archery")
    splits = root / "ucfTrainTestlist"
    splits.mkdir(parents=True)
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    train, test = [], []
    for items, lines, with_label in ((TRAIN, train, True), (VAL, test, False)):
        for vid, label in items:
            rel = f"{names[label]}/v_{names[label]}_{vid}"
            if frames:
                lines.append(f"{rel} {FRAMES} {label}")
                _frames(root / "rawframes" / rel, label)
                continue
            lines.append(f"{rel}.avi {label + 1}" if with_label else f"{rel}.avi")
            _video(root / "UCF-101" / f"{rel}.avi", label, videos)
    (splits / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (splits / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


def make_minikinetics(root: Path, *, videos: bool = True, frames: bool = False) -> Path:
    """Kinetics CSVs with one row outside Mini-Kinetics (``zzz``, unlisted) and two label names with commas;
    with ``frames``, ``rawframes/<id>_<start>_<end>/`` and ``<id> <frame count>`` id-list lines."""
    names = ('"passing American football (in game)"', "abseiling")
    root.mkdir(parents=True, exist_ok=True)
    for csv_name, items, split in (("train.csv", TRAIN, "train"), ("validate.csv", VAL, "val")):
        rows = ["label,youtube_id,time_start,time_end,split"]
        for i, (vid, label) in enumerate(items):
            start = 10 * i
            rows.append(f"{names[label]},{vid},{start},{start + 10},{split}")
            stem = f"{vid}_{start:06d}_{start + 10:06d}"
            if frames:
                _frames(root / "rawframes" / stem, label)
            else:
                _video(root / "videos" / names[label].strip('"') / f"{stem}.mp4", label, videos)
        rows.append(f"abseiling,zzz,0,10,{split}")
        (root / csv_name).write_text("\n".join(rows) + "\n")
    count = f" {FRAMES}" if frames else ""
    (root / "train_ytid_list.txt").write_text("".join(f"{vid}{count}\n" for vid, _ in TRAIN))
    (root / "val_ytid_list.txt").write_text("".join(f"{vid}{count}\n" for vid, _ in VAL))
    return root


MAKERS = {"activitynet": make_activitynet, "fcvid": make_list, "list": make_list, "ucf101": make_ucf101,
          "minikinetics": make_minikinetics}
