"""A run's protocol card: on which videos, labels, frames and definitions its numbers stand.

Per split: videos annotated, kept by ``--video-list``, found, read, missing and unreadable (with reasons);
the label map; T, budgets, resolutions; frame picking and timing; both mAP definitions. :func:`protocol_card`
builds it (pure); :mod:`samplerbench.report.write` writes it to ``run.json``, ``main.md`` and ``labels.csv``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from samplerbench.config import RunConfig
from samplerbench.core.timeline import FRAME_RULE, TIME_RULE
from samplerbench.datasets.base import MISSING, DatasetIndex
from samplerbench.datasets.videolist import SPLITS, ListMatch
from samplerbench.measures.metrics import MAP_DEFINITIONS

INLINE_LABELS = 10  # main.md spells the label map out up to this many classes, else points to labels.csv
QUOTED = 5  # ids quoted in main.md


def split_counts(*, listed: int, read: int, skipped: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """One split's videos: ``listed`` in the run, ``read`` (decoded), and its ``skipped`` ``(video_id, path,
    reason)`` split into missing files and unreadable ones."""
    missing = [vid for vid, _, reason in skipped if reason == MISSING]
    unreadable = [[vid, reason] for vid, _, reason in skipped if reason != MISSING]
    return {"listed": listed, "found": listed - len(missing), "read": read, "missing": missing,
            "unreadable": unreadable}


def protocol_card(cfg: RunConfig, *, data: DatasetIndex, read: Mapping[str, int],
                  skipped: Mapping[str, Sequence[tuple[str, str, str]]], video_list: ListMatch | None) -> dict:
    """The card of a run of ``cfg`` on ``data`` (after ``--video-list``, whose ``video_list`` match is given):
    ``read`` videos and ``skipped`` ones per split. JSON-ready; ids listed in full."""
    annotated = video_list.annotated if video_list else {s: len(data.split(s)) for s in SPLITS}
    videos = {s: {"annotated": annotated[s], **split_counts(listed=len(data.split(s)), read=read[s],
                                                            skipped=skipped[s])} for s in SPLITS}
    return {
        "dataset": data.name,
        "videos": videos,
        "malformed_annotation_entries": len(data.skipped),
        "video_list": None if video_list is None else {
            "file": video_list.path, "ids": video_list.listed, "restricted_splits": list(video_list.restricted),
            "not_in_dataset": list(video_list.absent)},
        "labels": list(data.classes),
        "T": cfg.data.frames,
        "K": sorted(cfg.sampling.budgets),
        "main_K": cfg.sampling.main_budget,
        "short_side": cfg.data.short_side,
        "crop": cfg.recognizer.res,
        "recognizer": {"arch": cfg.recognizer.arch, "resolution": cfg.recognizer.res, "tsn": cfg.recognizer.tsn},
        "fem": {"arch": cfg.fem.arch, "resolution": cfg.fem.res},
        "frames": FRAME_RULE,
        "timestamps": TIME_RULE,
        "video_score": cfg.sampling.aggregation,
        "metrics": dict(MAP_DEFINITIONS),
    }


def _quoted(ids: Sequence[str]) -> str:
    return ", ".join(f"`{i}`" for i in ids[:QUOTED]) + (f" and {len(ids) - QUOTED} more" if len(ids) > QUOTED else "")


def protocol_markdown(card: dict, *, labels_file: str) -> str:
    """The card as a compact key/value table for ``main.md``: counts, not ids (those are in ``skipped.csv`` and
    ``run.json``), and the label map itself only when short (else ``labels_file``)."""
    v = card["videos"]

    def per_split(key: str) -> str:
        return " / ".join(str(v[s][key] if isinstance(v[s][key], int) else len(v[s][key])) for s in SPLITS)

    kept = f"; --video-list keeps {per_split('listed')}" if card["video_list"] else ""
    rows = [("videos (train / val)", f"annotation lists {per_split('annotated')}{kept}; found {per_split('found')}; "
                                     f"read {per_split('read')}; missing file {per_split('missing')}; unreadable "
                                     f"{per_split('unreadable')} (which and why: `skipped.csv`; every id: "
                                     "`protocol` in `run.json`)")]
    if card["malformed_annotation_entries"]:
        rows.append(("malformed annotation entries", f"{card['malformed_annotation_entries']} skipped (--lenient)"))
    if card["video_list"]:
        listed = card["video_list"]
        absent = listed["not_in_dataset"]
        rows.append(("--video-list", f"`{listed['file']}`: {listed['ids']} ids; restricts "
                                     f"{' and '.join(listed['restricted_splits'])}; "
                                     + (f"{len(absent)} not in the dataset ({_quoted(absent)})" if absent else
                                        "all in the dataset")))
    names = card["labels"]
    label_map = ", ".join(f"{i} {name}" for i, name in enumerate(names)) if len(names) <= INLINE_LABELS else \
        f"index → name in `{labels_file}`"
    rows += [
        ("labels", f"{len(names)} classes: {label_map}"),
        ("T, K", f"T={card['T']}; K ∈ {{{', '.join(map(str, card['K']))}}}, main K={card['main_K']}"),
        ("resolution", f"shorter side {card['short_side']} px, centre crop {card['crop']} px; recognizer "
                       f"{card['recognizer']['arch']}{' w/ TSN' if card['recognizer']['tsn'] else ''} at "
                       f"{card['recognizer']['resolution']} px, FEM {card['fem']['arch']} at "
                       f"{card['fem']['resolution']} px"),
        ("frames", card["frames"]),
        ("timestamps", card["timestamps"]),
        ("video score", f"`{card['video_score']}` of the K kept frames' recognizer outputs"),
        *card["metrics"].items(),
    ]
    return "\n".join(["| protocol | |", "|---|---|", *(f"| {k} | {_cell(val)} |" for k, val in rows)])


def _cell(text: str) -> str:
    """``text`` inside a Markdown table cell: a ``|`` (in a file name, a class name) would end the cell."""
    return text.replace("|", "\\|")
