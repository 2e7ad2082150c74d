"""Mini-Kinetics-200 adapter (``--dataset minikinetics``): Kinetics-400 CSVs restricted to the Mini-Kinetics
id lists; scored by top-1, FEM at 112 px in the ``paper`` preset (supplementary A.1).

Reads ``train.csv``/``validate.csv`` (``label,youtube_id,time_start,time_end,split``) and the id lists
``train_ytid_list.txt``/``val_ytid_list.txt``, which decide the split. Videos are found anywhere under
``videos/`` as ``<id>_<start:06d>_<end:06d>.<ext>`` or ``<id>.<ext>``, else as a frame folder under
``rawframes/`` of the same name (an id-list line ``<id> <total_frames>`` may give its count). No temporal
annotations, so the salient-hit rate is empty."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path

from samplerbench.core.errors import UserError
from samplerbench.datasets.base import DatasetIndex, VideoRecord, register_dataset
from samplerbench.datasets.layout import (
    FRAME_DIR,
    SplitListOptions,
    data_root,
    existing,
    find_video,
    frame_folder,
    list_videos,
    split_lists,
)
from samplerbench.datasets.parsing import BadEntry, read_text, records_from_lists, split_labels

CSV_FILES = ("train.csv", "validate.csv")
ID_LISTS = {"train": "train_ytid_list.txt", "val": "val_ytid_list.txt"}
COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def _seconds(text: str, what: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise BadEntry(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise BadEntry(f"{what} {text!r} must be a whole number of seconds >= 0")
    return int(value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Clip:
    """One CSV row: its class and its interval in the YouTube video, seconds."""

    label: str
    start: int
    end: int


def _clip(row: dict[str, str | None]) -> Clip:
    label = (row["label"] or "").strip()
    if not label:
        raise BadEntry("empty label")
    start, end = _seconds(row["time_start"] or "", "time_start"), _seconds(row["time_end"] or "", "time_end")
    if end <= start:
        raise BadEntry(f"time_end {end} is not after time_start {start}")
    return Clip(label=label, start=start, end=end)


def read_kinetics_csv(paths: list[Path]) -> dict[str, Clip | str]:
    """YouTube id -> its clip, or why its row is unusable (malformed, or the id on two rows); kept per id, not
    raised, since a broken row outside Mini-Kinetics must not stop the run."""
    clips: dict[str, Clip | str] = {}
    first_row: dict[str, str] = {}
    for path in paths:
        reader = csv.DictReader(io.StringIO(read_text(path, what="Kinetics CSV"), newline=""))
        try:
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"{path}: no column(s) {', '.join(missing)} in the header; expected a Kinetics "
                                f"CSV with {','.join(COLUMNS)},split")
            for row in reader:
                youtube_id = (row["youtube_id"] or "").strip()
                entry = f"{path}:{reader.line_num}"
                if youtube_id in first_row:
                    clips[youtube_id] = f"on two rows of the CSV ({first_row[youtube_id]} and {entry})"
                    continue
                first_row[youtube_id] = entry
                try:
                    clips[youtube_id] = _clip(row)
                except BadEntry as e:
                    clips[youtube_id] = f"{entry}: {e}"
        except csv.Error as e:
            raise UserError(f"cannot read {path}: {e}") from None
    return clips


@dataclasses.dataclass(frozen=True, kw_only=True)
class MiniKineticsOptions(SplitListOptions):
    """One Kinetics CSV instead of ``train.csv`` + ``validate.csv`` (``--annotations``), and the id lists
    (``--train-list``, ``--val-list``)."""

    annotations: str | None = None


@register_dataset("minikinetics", options=MiniKineticsOptions, paper_fem_res=112)
def build(cfg, cache_dir: Path, options: MiniKineticsOptions) -> DatasetIndex:
    """``--data-root`` with the Kinetics CSVs (or ``--annotations`` for one CSV), the two id lists (or
    ``--train-list``/``--val-list``) and ``videos/``."""
    layout = (f"expected <root>/{CSV_FILES[0]} and <root>/{CSV_FILES[1]} (Kinetics CSVs), "
              f"<root>/{ID_LISTS['train']} and <root>/{ID_LISTS['val']} (Mini-Kinetics-200 ids), "
              "and the videos under <root>/videos/ as <id>_<start:06d>_<end:06d>.mp4")
    root = data_root(cfg, layout)
    csvs = [options.annotations] if options.annotations else [root / name for name in CSV_FILES]
    clips = read_kinetics_csv([existing(p, "Kinetics CSV", layout) for p in csvs])
    lists = split_lists(options, layout, train=root / ID_LISTS["train"], val=root / ID_LISTS["val"],
                        what=("training id list", "validation id list"))
    files = list_videos(root / "videos", recursive=True)
    frame_dir = root / FRAME_DIR
    has_frames = frame_dir.is_dir()  # spares a video dataset two stats per line
    label_of: dict[str, str] = {}

    def record(line: str, subset: str) -> VideoRecord:
        youtube_id, total = split_labels(line, max_labels=1) if len(line.split()) == 2 else (line, [])
        if len(youtube_id.split()) != 1:
            raise BadEntry(f"expected one YouTube id (and, for a frame folder, its frame count), got {line!r}")
        clip = clips.get(youtube_id, "not in the Kinetics CSV")
        if isinstance(clip, str):
            raise BadEntry(f"id {youtube_id!r}: {clip}")
        label_of[youtube_id] = clip.label
        stem = f"{youtube_id}_{clip.start:06d}_{clip.end:06d}"
        duration = float(clip.end - clip.start)
        path = find_video(files, (stem, youtube_id), default=root / "videos" / f"{stem}.mp4")
        folder = next((frame_dir / s for s in (stem, youtube_id) if has_frames and (frame_dir / s).is_dir()), None)
        if total and folder is None:
            folder = frame_dir / stem  # missing: the decode stage says so
        if folder is None or (path.is_file() and not total):
            return VideoRecord(video_id=youtube_id, path=path, labels=(), subset=subset)
        return VideoRecord(video_id=youtube_id, path=folder, labels=(), subset=subset,
                           frames=frame_folder(cfg, folder, total[0] if total else None, duration=duration))

    records, bad = records_from_lists(lists, record, lenient=cfg.data.lenient)
    classes = tuple(sorted({label_of[r.video_id] for r in records}))
    index = {name: i for i, name in enumerate(classes)}
    records = [dataclasses.replace(r, labels=(index[label_of[r.video_id]],)) for r in records]
    return DatasetIndex(name="minikinetics", classes=classes, records=tuple(records), metric="top1",
                        skipped=tuple(bad))
