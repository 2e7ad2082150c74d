"""The frame store: a split's decoded frames on disk, in shards, read row by row and never held whole.

A split's folder (``<cache>/frames/<decode key>/``) holds, per shard of :data:`SHARD_VIDEOS` videos::

    shard-00000.u8     raw uint8 frames, C order, [rows, T, 3, H, W]: one row per video and training view
    shard-00000.json   rows, frame shape, byte count, crc32, and per row: video id, labels, salient mask;
                       plus the shard's unreadable videos with their reasons

and, once every shard is there, ``index.json``. Raw rows keep the frames bit-identical to the decoder's
and let a step read a frame with one ``pread`` (not ``mmap``, so the pages stay reclaimable page cache).
A shard is complete when its ``.json`` exists (written after the ``.u8`` was fsynced and renamed) and the
``.u8`` has the recorded size; a re-run decodes only incomplete shards.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from samplerbench.core.errors import UserError
from samplerbench.core.files import atomic_write, new_file_mode

SHARD_VIDEOS = 16  # resume granularity; 150 MB of 224-px frames at 4 training views
INDEX = "index.json"
_CHUNK = 1 << 24  # bytes per read when checksumming


class FrameSource(abc.ABC):
    """Rows of uint8 frames ``[N, T, 3, H, W]`` that are read on demand."""

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, int, int, int, int]:
        """``(N, T, 3, H, W)``."""

    @abc.abstractmethod
    def take(self, rows: Tensor, picks: Tensor | None = None) -> Tensor:
        """uint8 ``[b, s, 3, H, W]``: frames ``picks[i]`` (``[b, s]``; all T when ``None``) of row ``rows[i]``."""

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int | slice | Tensor) -> Tensor:
        """Whole rows, as a tensor indexes them: ``store[:8]`` is ``[8, T, 3, H, W]``."""
        rows = torch.arange(len(self))[index]
        return self.take(rows.view(-1)).view(*rows.shape, *self.shape[1:])

    def rows(self, rows: range) -> FrameSource:
        """The rows ``rows`` (a step-1 range) as a source of their own: one rank's part of a split."""
        return _RowRange(self, rows)


class _RowRange(FrameSource):
    def __init__(self, source: FrameSource, rows: range) -> None:
        self.source = source
        self.range = rows

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return (len(self.range), *self.source.shape[1:])

    def take(self, rows: Tensor, picks: Tensor | None = None) -> Tensor:
        return self.source.take(torch.as_tensor(rows, dtype=torch.long) + self.range.start, picks)


class TensorFrames(FrameSource):
    """Frames already in memory (a few new videos in ``select``, tests) behind the same interface."""

    def __init__(self, frames: Tensor) -> None:
        self.frames = frames

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return tuple(self.frames.shape)

    def take(self, rows: Tensor, picks: Tensor | None = None) -> Tensor:
        rows = torch.as_tensor(rows, dtype=torch.long).view(-1)
        return self.frames[rows] if picks is None else self.frames[rows.unsqueeze(1), picks]


def _paths(root: Path, index: int) -> tuple[Path, Path]:
    stem = root / f"shard-{index:05d}"
    return stem.with_suffix(".u8"), stem.with_suffix(".json")


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def shard_done(root: Path, index: int) -> bool:
    """Whether shard ``index`` was completely written (its data has the size its metadata records)."""
    data, meta_path = _paths(root, index)
    meta = _read_meta(meta_path)
    return meta is not None and data.exists() and data.stat().st_size == meta["nbytes"]


class ShardWriter:
    """Writes one shard as its videos arrive; nothing is visible under the shard's name before :meth:`close`,
    and an exception inside the ``with`` block leaves no shard."""

    def __init__(self, root: Path, index: int, *, frame_shape: tuple[int, int, int, int]) -> None:
        self.root = Path(root)
        self.index = index
        self.frame_shape = tuple(frame_shape)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".shard-{index:05d}.", suffix=".tmp")
        self.tmp = Path(tmp)
        self.file = os.fdopen(fd, "wb")
        self.crc = 0
        self.nbytes = 0
        self.meta: dict[str, list] = {"video_ids": [], "labels": [], "salient": [], "skipped": []}

    def add(self, video_id: str, labels: Sequence[int], frames: np.ndarray, salient: np.ndarray) -> None:
        """One video's rows: ``frames`` uint8 ``[views, T, 3, H, W]``, ``salient`` bool ``[views, T]``."""
        if tuple(frames.shape[1:]) != self.frame_shape or frames.dtype != np.uint8:
            raise ValueError(f"{video_id}: frames {frames.dtype}{list(frames.shape)} do not fit the store's "
                             f"uint8 [views, {', '.join(map(str, self.frame_shape))}]")
        blob = np.ascontiguousarray(frames).data
        self.file.write(blob)
        self.crc = zlib.crc32(blob, self.crc)
        self.nbytes += frames.nbytes
        for view in range(frames.shape[0]):
            self.meta["video_ids"].append(video_id)
            self.meta["labels"].append(list(labels))
            self.meta["salient"].append(np.asarray(salient[view], dtype=bool).tolist())

    def skip(self, video_id: str, path: str, reason: str) -> None:
        self.meta["skipped"].append([video_id, str(path), reason])

    def close(self) -> None:
        """fsync and rename the frames into place, then write the metadata that marks the shard complete."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        data, meta = _paths(self.root, self.index)
        os.chmod(self.tmp, new_file_mode())
        os.replace(self.tmp, data)
        record = {"rows": len(self.meta["video_ids"]), "frame_shape": list(self.frame_shape),
                  "nbytes": self.nbytes, "crc32": self.crc, **self.meta}
        atomic_write(meta, lambda tmp: tmp.write_text(json.dumps(record), encoding="utf-8"))

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        if exc_type is None:
            self.close()
            return
        self.file.close()
        self.tmp.unlink(missing_ok=True)


def is_complete(root: Path) -> bool:
    return (Path(root) / INDEX).exists()


def check_space(root: Path, nbytes: int) -> None:
    """A :class:`UserError` before decoding when the disk under ``root`` has less than ``nbytes`` free (the
    frames still to be written; unreadable videos will take less)."""
    folder = Path(root)
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise UserError(f"{root}: the frame store needs {nbytes / 2**30:.1f} GiB more for the frames still to decode "
                        f"but {free / 2**30:.1f} GiB is free; free some space or choose --cache-dir on a larger "
                        f"disk, then run again: finished shards are kept")


def sweep(root: Path, *, older_than_s: float = 3600.0) -> None:
    """Remove the temporary files of shards whose writer was killed: one not written to for
    ``older_than_s`` belongs to no live run (a live writer appends a video every few seconds)."""
    now = time.time()
    for tmp in Path(root).glob(".shard-*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()


def finish(root: Path, num_shards: int, *, frame_shape: tuple[int, int, int, int]) -> None:
    """Mark the split complete once all ``num_shards`` shards are; an empty split still gets its folder."""
    root = Path(root)
    missing = [i for i in range(num_shards) if not shard_done(root, i)]
    if missing:
        raise RuntimeError(f"{root}: shards {missing} are not complete; the ranks that owned them failed")
    record = {"shards": num_shards, "frame_shape": list(frame_shape)}
    atomic_write(root / INDEX, lambda tmp: tmp.write_text(json.dumps(record), encoding="utf-8"))


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def verify(root: Path) -> list[Path]:
    """Check every shard of a complete split against its size and crc32; a shard that fails is moved aside
    (``<name>.corrupt-<unix time>``) together with its metadata, and the split is marked incomplete again so
    that the decode stage re-decodes exactly those shards. Returns the data files that failed."""
    root = Path(root)
    bad = []
    for i in range(json.loads((root / INDEX).read_text())["shards"]):
        data, meta_path = _paths(root, i)
        if not (shard_done(root, i) and _crc32(data) == _read_meta(meta_path)["crc32"]):
            bad.append(data)
            stamp = f".corrupt-{int(time.time())}"
            for p in (data, meta_path):
                if p.exists():
                    os.replace(p, p.with_name(p.name + stamp))
    if bad:
        (root / INDEX).unlink()
    return bad


class FrameStore(FrameSource):
    """The read side of a complete split folder (see the module note); picklable into DataLoader workers,
    each of which opens its own file descriptors."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        index = json.loads((self.root / INDEX).read_text())
        self.frame_shape = tuple(index["frame_shape"])
        self.metas = [json.loads(_paths(self.root, i)[1].read_text()) for i in range(index["shards"])]
        self.offsets = np.cumsum([0] + [m["rows"] for m in self.metas])
        self.frame_bytes = int(np.prod(self.frame_shape[1:]))
        self._fds: dict[int, int] = {}

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return (int(self.offsets[-1]), *self.frame_shape)

    @property
    def num_shards(self) -> int:
        return len(self.metas)

    def shard_rows(self, shards: slice) -> range:
        """The rows held by ``shards`` (a slice of shard indices)."""
        first, stop, _ = shards.indices(self.num_shards)
        return range(int(self.offsets[first]), int(self.offsets[max(first, stop)]))

    def column(self, name: str) -> list:
        """A per-row metadata field over all shards: ``video_ids``, ``labels`` or ``salient``."""
        return [v for m in self.metas for v in m[name]]

    def skipped(self) -> list[tuple[str, str, str]]:
        return [(s[0], s[1], s[2]) for m in self.metas for s in m["skipped"]]

    def _fd(self, shard: int) -> int:
        if shard not in self._fds:
            self._fds[shard] = os.open(_paths(self.root, shard)[0], os.O_RDONLY)
        return self._fds[shard]

    def _read(self, shard: int, offset: int, out: np.ndarray) -> None:
        got = os.preadv(self._fd(shard), [out.reshape(-1).data], offset)
        if got != out.nbytes:
            path = _paths(self.root, shard)[0]
            raise UserError(f"{path}: frame store shard is shorter than its metadata says (truncated after it "
                            f"was written?); delete {self.root / INDEX} and run again to re-check and re-decode it")

    def take(self, rows: Tensor, picks: Tensor | None = None) -> Tensor:
        rows = torch.as_tensor(rows, dtype=torch.long).view(-1)
        t = self.frame_shape[0]
        count = t if picks is None else picks.shape[1]
        out = torch.empty(len(rows), count, *self.frame_shape[1:], dtype=torch.uint8)
        buf = out.numpy()
        shards = np.searchsorted(self.offsets, rows.numpy(), side="right") - 1
        row_bytes = t * self.frame_bytes
        for i, (row, shard) in enumerate(zip(rows.tolist(), shards.tolist(), strict=True)):
            base = (row - int(self.offsets[shard])) * row_bytes
            if picks is None:
                self._read(shard, base, buf[i])
                continue
            for j, pick in enumerate(picks[i].tolist()):
                self._read(shard, base + pick * self.frame_bytes, buf[i, j])
        return out

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fds": {}}

    def __del__(self) -> None:
        for fd in getattr(self, "_fds", {}).values():
            os.close(fd)
