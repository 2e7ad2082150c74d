"""Frame banks on disk: what the samplers train and are scored on, in an open, memory-mappable format.

A bank is a folder::

    <bank>/index.json                      format, version, classes, T, widths, per split its rows and files
    <bank>/<split>/fem_features.npy        [N, T, D_fem]  float16 | float32 | float64   FEM features
    <bank>/<split>/rec_logits.npy          [N, T, C]      float16 | float32 | float64   recognizer logits
    <bank>/<split>/rec_features.npy        [N, T, D_rec]  float16 | float32 | float64   recognizer pooled features
    <bank>/<split>/labels.npy              [N, C]         uint8 | bool                  multi-hot labels (0/1)
    <bank>/<split>/salient.npy             [N, T]         bool                          frame in an annotated segment
    <bank>/<split>/video_ids.json          [N] strings                                  one id per row
    <bank>/<split>/motion.npy              [N, T]         float16 | float32 | float64   per-frame motion (optional)

for ``train`` and ``val`` (a training video may fill several rows: its views). ``motion`` (MGSampler's, between
each pre-sampled frame and its successor) is optional: a bank without it serves every sampler but those that read
motion. The reader checks every float
array for NaN/inf, reading the bank once; a bad row is an error naming file and row (skipped if ``lenient``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samplerbench.core.errors import UserError

FORMAT = "samplerbench-bank"
VERSION = 1
INDEX = "index.json"
SPLITS = ("train", "val")
FLOAT_DTYPES = ("float16", "float32", "float64")
# array -> (the index dimensions of its shape, after the row count N; the dtypes it may have)
ARRAYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fem_features": (("frames", "fem_dim"), FLOAT_DTYPES),
    "rec_logits": (("frames", "classes"), FLOAT_DTYPES),
    "rec_features": (("frames", "rec_dim"), FLOAT_DTYPES),
    "labels": (("classes",), ("uint8", "bool")),
    "salient": (("frames",), ("bool",)),
}
OPTIONAL_ARRAYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {"motion": (("frames",), FLOAT_DTYPES)}
ROW_CHUNK = 1024  # rows checked for NaN / inf at a time: bounds the check's memory, not a loop over videos


@dataclasses.dataclass(frozen=True, kw_only=True)
class BankSplit:
    """One split of a bank: arrays indexed by row (see the module note for shapes), memory-mapped when read."""

    fem_features: np.ndarray
    rec_logits: np.ndarray
    rec_features: np.ndarray
    labels: np.ndarray
    salient: np.ndarray
    video_ids: tuple[str, ...]
    motion: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.video_ids)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Bank:
    """A bank as read: its classes, T, splits, what produced it, and (``lenient``) the rows left out."""

    root: Path
    classes: tuple[str, ...]
    frames: int
    splits: dict[str, BankSplit]
    producer: dict[str, Any]
    fingerprint: str  # changes whenever index.json or any array file changes: for cache keys
    skipped: tuple[tuple[str, str], ...] = ()  # (entry, reason), lenient mode

    @property
    def has_motion(self) -> bool:
        """Whether every split holds per-frame motion."""
        return all(split.motion is not None for split in self.splits.values())


def _file(split: str, name: str) -> str:
    return f"{split}/{name}.npy"


def write_index(folder: Path, *, classes: Sequence[str], video_ids: Mapping[str, Sequence[str]],
                producer: Mapping[str, Any]) -> Path:
    """Write ``<folder>/index.json`` for the ``.npy`` files already in ``folder`` (at :func:`_file`'s paths) and
    the ``video_ids`` of each split (written beside them); their shapes and dtypes are read from the files'
    headers, so a bank written array by array (e.g. with ``numpy.lib.format.open_memmap``) needs only this call."""
    folder = Path(folder)
    splits, dims = {}, {}
    for split in SPLITS:
        files = {}
        optional = [name for name in OPTIONAL_ARRAYS if (folder / _file(split, name)).exists()]
        for name in [*ARRAYS, *optional]:
            array = np.load(folder / _file(split, name), mmap_mode="r")
            files[name] = {"path": _file(split, name), "dtype": str(array.dtype), "shape": list(array.shape)}
        dims.update(frames=files["salient"]["shape"][1], fem_dim=files["fem_features"]["shape"][2],
                    rec_dim=files["rec_features"]["shape"][2])
        ids = f"{split}/video_ids.json"
        (folder / ids).write_text(json.dumps(list(video_ids[split])) + "\n", encoding="utf-8")
        splits[split] = {"rows": len(video_ids[split]), "files": files, "video_ids": ids}
    index = {"format": FORMAT, "version": VERSION, "classes": list(classes), **dims, "producer": dict(producer),
             "splits": splits}
    path = folder / INDEX
    path.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return path


def write_bank(folder: Path, *, classes: Sequence[str], splits: Mapping[str, BankSplit],
               producer: Mapping[str, Any]) -> Path:
    """Write a bank of ``splits`` (``train`` and ``val``) into ``folder``; returns its index.json."""
    folder = Path(folder)
    for split in SPLITS:
        (folder / split).mkdir(parents=True, exist_ok=True)
        for name in [*ARRAYS, *OPTIONAL_ARRAYS]:
            array = getattr(splits[split], name)
            if array is not None:
                np.save(folder / _file(split, name), np.ascontiguousarray(array))
    return write_index(folder, classes=classes, video_ids={s: splits[s].video_ids for s in SPLITS}, producer=producer)


def _read_json(path: Path, *, missing: str) -> Any:
    """The JSON value in ``path``; a one-line error when it is absent (``missing`` says what it should hold) or
    not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing{missing}") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not readable JSON ({exc})") from None


def _index(root: Path) -> dict[str, Any]:
    path = root / INDEX
    if not root.is_dir():
        raise UserError(f"--data-root {root}: no such folder (a bank is a folder with {INDEX}; see docs/datasets.md, "
                        "Frame banks)")
    index = _read_json(path, missing=f"; a bank folder holds {INDEX} (see docs/datasets.md, Frame banks)")
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise UserError(f"{path}: not a frame bank index (expected \"format\": \"{FORMAT}\")")
    if index.get("version") != VERSION:
        raise UserError(f"{path}: bank format version {index.get('version')!r}; this samplerbench reads {VERSION}")
    for key in ("frames", "fem_dim", "rec_dim"):
        if not isinstance(index.get(key), int) or index[key] < 1:
            raise UserError(f"{path}: {key!r} must be a positive integer, got {index.get(key)!r}")
    classes = index.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise UserError(f"{path}: 'classes' must be a non-empty list of class names")
    twice = sorted({c for c in classes if classes.count(c) > 1})
    if twice:
        raise UserError(f"{path}: class {twice[0]!r} is listed twice in 'classes' (at {classes.index(twice[0])} and "
                        f"{classes.index(twice[0], classes.index(twice[0]) + 1)}); class names must be unique")
    for split in SPLITS:
        entry = (index.get("splits") or {}).get(split)
        if not isinstance(entry, dict) or not isinstance(entry.get("rows"), int) \
                or not isinstance(entry.get("files"), dict):
            raise UserError(f"{path}: splits.{split} must give 'rows' and 'files'")
    return index


def _load_array(root: Path, index: dict[str, Any], split: str, name: str) -> np.ndarray:
    """The memory-mapped array ``name`` of ``split``, its dtype and shape checked against the index."""
    entry = index["splits"][split]["files"].get(name)
    where = f"index.json splits.{split}.files.{name}"
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise UserError(f"{root / INDEX}: {where} is missing (it needs 'path' and 'dtype')")
    path = root / entry["path"]
    try:
        array = np.load(path, mmap_mode="c")  # copy-on-write: writable for torch, never written back
    except FileNotFoundError:
        raise UserError(f"{path}: missing (listed as {where})") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a .npy array ({exc})") from None
    dims, dtypes = (ARRAYS | OPTIONAL_ARRAYS)[name]
    expected = (index["splits"][split]["rows"], *(len(index["classes"]) if d == "classes" else index[d] for d in dims))
    if tuple(array.shape) != expected:
        named = " × ".join(["rows", *dims])
        raise UserError(f"{path}: shape {tuple(array.shape)} disagrees with index.json, which gives {named} = "
                        f"{expected}")
    if str(array.dtype) not in dtypes or entry.get("dtype", str(array.dtype)) != str(array.dtype):
        raise UserError(f"{path}: dtype {array.dtype} (index.json says {entry.get('dtype')}); valid: "
                        f"{', '.join(dtypes)}")
    return array


def _bad_rows(path: Path) -> tuple[np.ndarray, str]:
    """Rows of the array in ``path`` holding NaN or inf (float arrays) or a value other than 0 and 1 (labels),
    and why. The file is mapped anew and unmapped on return, so the pages it reads leave this process's
    resident memory with it (they stay in the page cache)."""
    array = np.load(path, mmap_mode="r")
    if array.dtype.kind == "f":
        bad = [np.flatnonzero(~np.isfinite(array[i:i + ROW_CHUNK]).reshape(len(array[i:i + ROW_CHUNK]), -1).all(1)) + i
               for i in range(0, len(array), ROW_CHUNK)]
        return np.concatenate(bad) if bad else np.zeros(0, dtype=np.int64), "NaN or inf"
    if array.dtype == np.uint8:
        return np.flatnonzero((array > 1).any(axis=1)), "a label other than 0 or 1"
    return np.zeros(0, dtype=np.int64), ""


def _video_ids(root: Path, index: dict[str, Any], split: str) -> tuple[str, ...]:
    entry = index["splits"][split]
    path = root / str(entry.get("video_ids", f"{split}/video_ids.json"))
    ids = _read_json(path, missing=f" (the video ids of splits.{split})")
    if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids) or len(ids) != entry["rows"]:
        count = len(ids) if isinstance(ids, list) else "no list of"
        raise UserError(f"{path}: expected a list of {entry['rows']} video id strings (index.json rows), got {count}")
    first: dict[str, int] = {}
    for row, video_id in enumerate(ids):
        # a training video's views are consecutive rows of one id; any other repeat is a video counted twice
        if video_id in first and (split == "val" or ids[row - 1] != video_id):
            raise UserError(f"{path}: video {video_id!r} is at rows {first[video_id]} and {row}; "
                            + ("a validation video has one row" if split == "val" else
                               "a training video's rows (its views) must be consecutive"))
        first.setdefault(video_id, row)
    return tuple(ids)


def _fingerprint(root: Path, index: dict[str, Any]) -> str:
    stats = []
    for split in SPLITS:
        files = index["splits"][split]["files"]
        for name in (*ARRAYS, *(n for n in OPTIONAL_ARRAYS if n in files), "video_ids"):
            rel = files[name]["path"] if name != "video_ids" else \
                index["splits"][split].get("video_ids", f"{split}/video_ids.json")
            st = os.stat(root / rel)
            stats.append((rel, st.st_size, st.st_mtime_ns))
    return json.dumps([index, stats], sort_keys=True)


def read_bank(root: Path | str, *, lenient: bool = False) -> Bank:
    """The bank in folder ``root``, memory-mapped and checked: the index, every array's shape and dtype against
    it, and every row's values. A mismatch or a bad row is a one-line :class:`UserError` naming the file (and
    the row and its video); with ``lenient``, bad rows are left out instead and listed in :attr:`Bank.skipped`
    (their splits are then copied into memory without them)."""
    root = Path(root)
    index = _index(root)
    splits, skipped = {}, []
    for split in SPLITS:
        listed = [name for name in OPTIONAL_ARRAYS if name in index["splits"][split]["files"]]
        arrays = {name: _load_array(root, index, split, name) for name in [*ARRAYS, *listed]}
        ids = _video_ids(root, index, split)
        drop: set[int] = set()
        files = {name: root / index["splits"][split]["files"][name]["path"] for name in arrays}
        faults = [(files[name], *_bad_rows(files[name])) for name in arrays]
        if split == "val":  # a video without a label has no place in any AP: it would be scored as a negative
            faults.append((files["labels"], np.flatnonzero(~np.asarray(arrays["labels"]).any(axis=1)), "no label"))
        for path, rows, why in faults:
            if len(rows) and not lenient:
                raise UserError(f"{path}: row {rows[0]} (video {ids[rows[0]]!r}) holds {why}; fix the bank, or pass "
                                f"--lenient to skip such rows")
            skipped += [(f"{path} row {r} (video {ids[r]!r})", why) for r in rows.tolist() if r not in drop]
            drop.update(rows.tolist())
        if drop:
            keep = np.setdiff1d(np.arange(len(ids)), np.fromiter(drop, dtype=np.int64))
            arrays = {name: np.ascontiguousarray(a[keep]) for name, a in arrays.items()}
            ids = tuple(ids[i] for i in keep.tolist())
        if not ids:
            raise UserError(f"{root / INDEX}: splits.{split} has no usable row")
        splits[split] = BankSplit(video_ids=ids, **arrays)
    both = sorted(set(splits["train"].video_ids) & set(splits["val"].video_ids))
    if both:
        raise UserError(f"{root}: video {both[0]!r} is in both splits ({len(both)} such video(s)): a video trained on "
                        "and scored leaks into the results; fix the bank's video_ids.json")
    return Bank(root=root, classes=tuple(index["classes"]), frames=index["frames"], splits=splits,
                producer=dict(index.get("producer") or {}), fingerprint=_fingerprint(root, index),
                skipped=tuple(skipped))
