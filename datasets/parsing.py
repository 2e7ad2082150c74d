"""Parsing helpers shared by the adapters: numbered lines, class lists, and what to do with bad entries.

A malformed entry is a :class:`~samplerbench.core.errors.UserError` naming the file and entry (a silently
shrunken dataset makes accuracies incomparable); ``--lenient`` skips it and the run report lists it. Files
are read through :func:`read_text` (drops a UTF-8 BOM) and split with ``str.splitlines`` (CRLF, CR, LF)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from samplerbench.core.errors import UserError
from samplerbench.datasets.base import VideoRecord

MAX_LISTED = 5  # malformed entries quoted in one error message

T = TypeVar("T")


class BadEntry(Exception):
    """What is wrong with one entry (caught and turned into a UserError or a skip)."""


def check_entries(source: str, bad: Sequence[tuple[str, str]], *, lenient: bool, entry_format: str = "{}") -> None:
    """Raise one :class:`UserError` listing the first malformed ``(entry, reason)`` pairs, unless ``lenient``;
    ``entry_format`` names an entry in the message (``"video {!r}"``)."""
    if not bad or lenient:
        return
    listed = "; ".join(f"{entry_format.format(entry)}: {reason}" for entry, reason in bad[:MAX_LISTED])
    more = f" (and {len(bad) - MAX_LISTED} more)" if len(bad) > MAX_LISTED else ""
    raise UserError(
        f"{source}: {len(bad)} malformed entr{'y' if len(bad) == 1 else 'ies'}: {listed}{more}. "
        "Fix the file, or pass --lenient to skip such entries."
    )


def read_text(path: Path, *, what: str = "file") -> str:
    """A UTF-8 annotation file's text, without a byte-order mark; a missing or unreadable one is a
    :class:`UserError` naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {what} {path}: {e}") from None


def read_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, text)`` of the non-blank lines of a UTF-8 text file, stripped; ``#`` starts a comment
    line. A missing or unreadable file is a :class:`UserError` naming it."""
    text = read_text(path)
    lines = ((n, line.strip()) for n, line in enumerate(text.splitlines(), start=1))
    return [(n, line) for n, line in lines if line and not line.startswith("#")]


def parse_lines(path: Path, parse: Callable[[str], T]) -> tuple[list[tuple[str, T]], list[tuple[str, str]]]:
    """``parse`` applied to every line of ``path`` (stripped; see :func:`read_lines`): the parsed values and
    the ``(file:line, reason)`` of the lines it rejected with :class:`BadEntry`, both keyed ``file:line``."""
    parsed: list[tuple[str, T]] = []
    bad: list[tuple[str, str]] = []
    for n, line in read_lines(path):
        entry = f"{path}:{n}"
        try:
            parsed.append((entry, parse(line)))
        except BadEntry as e:
            bad.append((entry, str(e)))
    return parsed, bad


_INTEGER = re.compile(r"-?[0-9]+")


def split_labels(line: str, *, max_labels: int | None = None) -> tuple[str, list[int]]:
    """``(path, labels)`` of a ``path label [label ...]`` line whose path may contain spaces.

    Read from the end: up to ``max_labels`` trailing integers are labels, the rest the path, so ``my clip 2 5``
    is ``my clip`` with labels 2 and 5. A line with no path is a :class:`BadEntry`."""
    words = list(re.finditer(r"\S+", line))
    count = 0
    while count < len(words) and (max_labels is None or count < max_labels) \
            and _INTEGER.fullmatch(words[-1 - count].group()):
        count += 1
    if count == len(words):
        raise BadEntry(f"no path before the label(s) in {line!r}")
    path = line[: words[-count].start()].rstrip() if count else line
    return path, [int(w.group()) for w in words[len(words) - count:]]


def parse_class_list(path: Path) -> tuple[str, ...]:
    """Class names in label-index order from a file with one ``name`` or ``<number> name`` per line.

    Numbers must count up by one from 0 or 1, so a reordered list is caught; any problem is an error, even with
    ``--lenient``."""
    lines = read_lines(path)
    if not lines:
        raise UserError(f"{path}: the class list is empty")
    numbered = all(line.split(maxsplit=1)[0].isdigit() and len(line.split(maxsplit=1)) == 2 for _, line in lines)
    names: list[str] = []
    first = int(lines[0][1].split()[0]) if numbered else 0
    for i, (n, line) in enumerate(lines):
        name = line
        if numbered:
            number, name = line.split(maxsplit=1)
            if int(number) != first + i or first not in (0, 1):
                raise UserError(f"{path}:{n}: class number {number} out of sequence (expected {first + i}, "
                                "numbering from 0 or 1)")
        if name in names:
            raise UserError(f"{path}:{n}: class {name!r} listed twice")
        names.append(name)
    return tuple(names)


def drop_duplicates(entries: Iterable[tuple[str, VideoRecord]]) -> tuple[list[VideoRecord], list[tuple[str, str]]]:
    """The records with distinct video ids and distinct files, and ``(entry, reason)`` for every later repeat
    (a video listed twice, or in both splits, would be counted twice or leak from training into evaluation).
    A file is known by its resolved path (:func:`resolved`), so ``v/x.mp4`` and ``./v/x.mp4`` are one video."""
    first: dict[str, str] = {}
    files: dict[str, str] = {}
    records: list[VideoRecord] = []
    bad: list[tuple[str, str]] = []
    for entry, record in entries:
        where = resolved(record.path)
        if record.video_id in first:
            bad.append((entry, f"duplicate video {record.video_id!r} (first at {first[record.video_id]})"))
            continue
        if where in files:
            bad.append((entry, f"{record.path} is the file of {files[where]} too ({where}): one video listed twice"))
            continue
        first[record.video_id] = files[where] = entry
        records.append(record)
    return records, bad


def resolved(path: Path) -> str:
    """The file ``path`` names, whatever its spelling: absolute, ``.``, ``..`` and symbolic links resolved."""
    return os.path.realpath(path)


def records_from_lists(
    lists: Mapping[str, Path], parse: Callable[[str, str], VideoRecord], *, lenient: bool
) -> tuple[list[VideoRecord], list[tuple[str, str]]]:
    """One record per line of each subset's list file (``{"train": path, "val": path}``), built by ``parse(line,
    subset)``, repeated ids dropped; returns the records and the ``(file:line, reason)`` skipped when ``lenient``."""
    entries: list[tuple[str, VideoRecord]] = []
    bad: list[tuple[str, str]] = []
    empty: list[str] = []
    for subset, path in lists.items():
        parsed, rejected = parse_lines(path, lambda line, subset=subset: parse(line, subset))
        if not parsed and not rejected:
            empty.append(f"{path}: the {subset} list is empty (no line but blank lines and # comments)")
        entries += parsed
        bad += rejected
    records, duplicates = drop_duplicates(entries)
    bad += duplicates
    check_entries(" and ".join(str(p) for p in lists.values()), bad, lenient=lenient)
    if empty:
        raise UserError(empty[0])
    return records, bad
