"""``--video-list FILE``: a dataset restricted to the video ids a paper (or a peer) evaluated on.

One id per line as the adapter names videos; blank and ``#`` lines ignored
(:func:`~samplerbench.datasets.parsing.read_lines`). The surprising rule: a split none of whose videos is listed
is kept whole (a published list is usually of validation videos only). The protocol card says which splits
were restricted and which listed ids are missing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from samplerbench.core.errors import UserError
from samplerbench.datasets.base import DatasetIndex
from samplerbench.datasets.parsing import read_lines

SPLITS = ("train", "val")
QUOTED = 5  # ids quoted in an error message


@dataclasses.dataclass(frozen=True, kw_only=True)
class VideoList:
    """The distinct ids of a ``--video-list`` file, in file order."""

    path: str
    ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ListMatch:
    """How a :class:`VideoList` met a dataset: ``annotated`` and ``kept`` videos per split (before and after),
    the ``restricted`` splits, and the listed ids that no video of the dataset has (``absent``, file order)."""

    path: str
    listed: int
    annotated: dict[str, int]
    kept: dict[str, int]
    restricted: tuple[str, ...]
    absent: tuple[str, ...]


def read_video_list(path: Path | str) -> VideoList:
    """The ids of a video list file; a missing, unreadable or empty file is a one-line :class:`UserError` naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        problem = "not a file" if path.exists() else "no such file"
        raise UserError(f"--video-list {path}: {problem} (expected a file of video ids, one per line)")
    lines = read_lines(path)  # an undecodable file: a UserError naming it
    ids = tuple(dict.fromkeys(line for _, line in lines))
    if not ids:
        raise UserError(f"--video-list {path}: no video id in it (one id per line; # starts a comment)")
    return VideoList(path=str(path), ids=ids)


def restrict(data: DatasetIndex, listed: VideoList) -> tuple[DatasetIndex, ListMatch]:
    """``data`` with only the listed videos in every split that has one of them (a split without any stays
    whole), and how the list matched; a list that matches no video is a one-line :class:`UserError`."""
    wanted = set(listed.ids)
    restricted = tuple(s for s in SPLITS if any(r.video_id in wanted for r in data.split(s)))
    if not restricted:
        shown = ", ".join(repr(i) for i in listed.ids[:QUOTED]) + (" ..." if len(listed.ids) > QUOTED else "")
        raise UserError(f"--video-list {listed.path}: none of its {len(listed.ids)} ids ({shown}) is a video of "
                        f"dataset {data.name!r}")
    records = tuple(r for r in data.records if r.subset not in restricted or r.video_id in wanted)
    kept = dataclasses.replace(data, records=records)
    known = {r.video_id for r in data.records}
    return kept, ListMatch(path=listed.path, listed=len(listed.ids),
                           annotated={s: len(data.split(s)) for s in SPLITS},
                           kept={s: len(kept.split(s)) for s in SPLITS}, restricted=restricted,
                           absent=tuple(i for i in listed.ids if i not in known))
