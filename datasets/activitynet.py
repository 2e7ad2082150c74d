"""ActivityNet v1.3 adapter: the annotation JSON plus a folder of videos.

The file format (``activity_net.v1-3.min.json``)::

    {"version": "VERSION 1.3",
     "taxonomy": [{"nodeId": 1, "nodeName": "Archery", "parentId": ..., "parentName": ...}, ...],
     "database": {"<id>": {"subset": "training" | "validation" | "testing", "duration": 123.4,
                           "url": "...", "annotations": [{"segment": [s, e], "label": "Archery"}, ...]}}}

``training`` becomes ``"train"``, ``validation`` ``"val"``; ``testing`` (no public labels) is left out. A
video with no file in ``videos/`` is looked for as a frame folder ``rawframes/v_<id>/``, whose frames are taken
to span the annotated ``duration`` evenly. Malformed entries follow :mod:`samplerbench.datasets.parsing`'s policy.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from samplerbench.core.errors import UserError
from samplerbench.datasets.base import DatasetIndex, DatasetOptions, VideoRecord, register_dataset
from samplerbench.datasets.layout import FRAME_DIR, data_root, existing, find_video, frame_folder, list_videos
from samplerbench.datasets.parsing import BadEntry, check_entries, read_text

ANNOTATION_FILE = "activity_net.v1-3.min.json"
SUBSETS = {"training": "train", "validation": "val"}

# ActivityNet's durations come from the downloaded file while the segments were annotated on the YouTube
# player, with both rounded; real v1.3 entries end up to about a second past the duration. Anything later
# than this is a broken entry, not rounding.
SEGMENT_END_TOLERANCE_S = 1.0

class _JsonObject(dict):
    """A JSON object that remembers which of its keys appeared more than once (``json`` keeps the last)."""

    duplicates: tuple[str, ...] = ()


def _object_hook(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        obj.duplicates = tuple(sorted({k for k in keys if keys.count(k) > 1}))
    return obj


def _load_json(path: Path) -> Any:
    text = read_text(path, what="annotation file")
    try:
        return json.loads(text, object_pairs_hook=_object_hook)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadEntry(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _require(entry: dict, key: str, where: str = "") -> Any:
    if key not in entry:
        raise BadEntry(f"missing key {key!r}{where}")
    return entry[key]


def _parse_segment(ann: Any, i: int, duration: float, known_labels: frozenset[str]) -> tuple[str, float, float]:
    where = f" in annotation {i}"
    if not isinstance(ann, dict):
        raise BadEntry(f"annotation {i} is not an object")
    segment = _require(ann, "segment", where)
    label = _require(ann, "label", where)
    if not isinstance(label, str):
        raise BadEntry(f"label{where} must be a string, got {label!r}")
    if known_labels and label not in known_labels:
        raise BadEntry(f"unknown label {label!r}{where} (not in the file's taxonomy)")
    if not isinstance(segment, list) or len(segment) != 2:
        raise BadEntry(f"segment{where} must be [start, end], got {segment!r}")
    start, end = (_number(v, f"segment{where}") for v in segment)
    if start < 0:
        raise BadEntry(f"segment {segment}{where} starts before 0")
    if end <= start:
        raise BadEntry(f"segment {segment}{where} does not end after it starts")
    if end > duration + SEGMENT_END_TOLERANCE_S:
        raise BadEntry(f"segment {segment}{where} ends after the video's duration ({duration} s)")
    return label, start, end


def _parse_entry(entry: dict, known_labels: frozenset[str]) -> tuple[float, list[tuple[str, float, float]]]:
    """The duration and ``[(label, start, end), ...]`` of one labelled database entry, each segment checked
    against the duration."""
    duration = _number(_require(entry, "duration"), "duration")
    if duration <= 0:
        raise BadEntry(f"duration must be positive, got {duration}")
    annotations = _require(entry, "annotations")
    if not isinstance(annotations, list) or not annotations:
        raise BadEntry(f"annotations must be a non-empty list, got {annotations!r}")
    return duration, [_parse_segment(a, i, duration, known_labels) for i, a in enumerate(annotations)]


def _subset(entry: Any) -> str:
    if not isinstance(entry, dict):
        raise BadEntry("entry is not an object")
    subset = _require(entry, "subset")
    if subset not in (*SUBSETS, "testing"):
        raise BadEntry(f"unknown subset {subset!r} (expected training, validation or testing)")
    return subset


def _taxonomy_labels(data: dict, path: Path) -> frozenset[str]:
    taxonomy = data.get("taxonomy") or []
    if not isinstance(taxonomy, list) or not all(isinstance(n, dict) and "nodeName" in n for n in taxonomy):
        raise UserError(f"{path}: 'taxonomy' must be a list of objects with a 'nodeName'")
    return frozenset(n["nodeName"] for n in taxonomy)


def parse_activitynet(path: Path, *, video_dir: Path, lenient: bool = False, name: str = "activitynet",
                      cfg=None) -> DatasetIndex:
    """Index an ActivityNet v1.3 annotation file; videos are looked up in ``video_dir`` as ``v_<id>.<ext>`` or
    ``<id>.<ext>`` (see :func:`~samplerbench.datasets.layout.find_video`), else, given the run's ``cfg``, as a
    frame folder ``<video_dir>/../rawframes/v_<id>/``. Classes are the sorted distinct annotation labels."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise UserError(f"{path}: no 'database' object; is this an ActivityNet v1.3 annotation file?")
    known_labels = _taxonomy_labels(data, path)
    database: _JsonObject = data["database"]
    files = list_videos(video_dir)

    parsed: list[tuple[str, str, float, list[tuple[str, float, float]]]] = []
    bad: list[tuple[str, str]] = [(vid, "duplicate video id") for vid in database.duplicates]
    for video_id, entry in database.items():
        if video_id in database.duplicates:
            continue
        try:
            subset = _subset(entry)
            if subset == "testing":
                continue
            duration, segments = _parse_entry(entry, known_labels)
        except BadEntry as e:
            bad.append((video_id, str(e)))
            continue
        parsed.append((video_id, SUBSETS[subset], duration, segments))

    check_entries(str(path), bad, lenient=lenient, entry_format="video {!r}")

    classes = tuple(sorted({label for *_, segments in parsed for label, _, _ in segments}))
    index = {c: i for i, c in enumerate(classes)}
    frame_dir = video_dir.parent / FRAME_DIR
    has_frames = cfg is not None and frame_dir.is_dir()
    records = []
    for video_id, subset, duration, segments in parsed:
        default = video_dir / f"v_{video_id}.mp4"
        video = find_video(files, (f"v_{video_id}", video_id), default=default)
        folder = frame_dir / f"v_{video_id}"
        frames = frame_folder(cfg, folder, None, duration=duration) \
            if has_frames and video is default and folder.is_dir() else None
        records.append(VideoRecord(
            video_id=video_id,
            path=folder if frames else video,
            labels=tuple(sorted({index[label] for label, _, _ in segments})),
            subset=subset,
            segments=tuple(sorted((s, e) for _, s, e in segments)),
            frames=frames,
        ))
    return DatasetIndex(name=name, classes=classes, records=tuple(records), metric="mAP", skipped=tuple(bad))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ActivityNetOptions(DatasetOptions):
    """The annotation file (``--annotations``); ``None`` = ``activity_net.v1-3.min.json`` in the data root."""

    annotations: str | None = None


@register_dataset("activitynet", options=ActivityNetOptions)
def build(cfg, cache_dir: Path, options: ActivityNetOptions) -> DatasetIndex:
    """``--data-root`` holds ``activity_net.v1-3.min.json`` (or ``--annotations``) and ``videos/``."""
    layout = f"expected <root>/{ANNOTATION_FILE} and <root>/videos/v_<id>.mp4 (or frames in <root>/{FRAME_DIR}/v_<id>/)"
    root = data_root(cfg, layout)
    annotations = existing(options.annotations or root / ANNOTATION_FILE, "annotation file", layout)
    return parse_activitynet(annotations, video_dir=root / "videos", lenient=cfg.data.lenient, cfg=cfg)
