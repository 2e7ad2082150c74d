"""The frame store: what is written is read back bit for bit, a shard is complete or absent, and damage is
found and named."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from samplerbench.core.errors import UserError, environment_faults
from samplerbench.formats import store
from samplerbench.formats.store import FrameStore, ShardWriter, TensorFrames

SHAPE = (4, 3, 6, 5)  # T, 3, H, W


def videos(n: int, views: int = 1, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (views, *SHAPE), dtype=np.uint8) for _ in range(n)]


def write(root: Path, shards: list[list[np.ndarray]]) -> FrameStore:
    """Shards of the given videos (video j of shard i is ``f"s{i}v{j}"``), then the index."""
    for i, clips in enumerate(shards):
        with ShardWriter(root, i, frame_shape=SHAPE) as w:
            for j, clip in enumerate(clips):
                w.add(f"s{i}v{j}", [i, j], clip, np.arange(clip.shape[0] * SHAPE[0]).reshape(-1, SHAPE[0]) % 2 == 0)
            w.skip(f"s{i}-bad", f"/videos/s{i}-bad.mp4", "zero-byte file")
    store.finish(root, len(shards), frame_shape=SHAPE)
    return FrameStore(root)


def test_rows_and_picks_read_back_exactly_across_shards(tmp_path: Path) -> None:
    shards = [videos(3, views=2), videos(2, views=2, seed=1)]
    fs = write(tmp_path, shards)
    everything = torch.from_numpy(np.concatenate([c for s in shards for c in s]))
    assert fs.shape == (10, *SHAPE) and len(fs) == 10 and fs.num_shards == 2
    assert torch.equal(fs[:], everything) and torch.equal(fs[7], everything[7])
    rows, picks = torch.tensor([9, 0, 6, 6]), torch.tensor([[3, 0], [1, 1], [2, 3], [0, 0]])
    assert torch.equal(fs.take(rows, picks), everything[rows.unsqueeze(1), picks])
    assert torch.equal(fs.take(rows, picks), TensorFrames(everything).take(rows, picks))
    assert fs.column("video_ids")[:3] == ["s0v0", "s0v0", "s0v1"] and fs.column("labels")[6] == [1, 0]
    assert fs.skipped() == [("s0-bad", "/videos/s0-bad.mp4", "zero-byte file"),
                            ("s1-bad", "/videos/s1-bad.mp4", "zero-byte file")]
    part = fs.rows(fs.shard_rows(slice(1, 2)))
    assert part.shape == (4, *SHAPE) and torch.equal(part[:], everything[6:])


def test_a_store_travels_to_worker_processes_without_its_file_descriptors(tmp_path: Path) -> None:
    fs = write(tmp_path, [videos(2)])
    first = fs[0]  # opens a descriptor
    again = pickle.loads(pickle.dumps(fs))
    assert again._fds == {} and torch.equal(again[0], first)


def test_an_interrupted_writer_leaves_no_shard(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), ShardWriter(tmp_path, 0, frame_shape=SHAPE) as w:
        w.add("a", [0], videos(1)[0], np.zeros((1, SHAPE[0]), bool))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == [] and not store.shard_done(tmp_path, 0)


def test_frames_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="do not fit"), ShardWriter(tmp_path, 0, frame_shape=SHAPE) as w:
        w.add("a", [0], np.zeros((1, 4, 3, 6, 6), np.uint8), np.zeros((1, 4), bool))


def test_a_truncated_shard_is_not_done_and_fails_verification(tmp_path: Path) -> None:
    write(tmp_path, [videos(2), videos(2)])
    data = tmp_path / "shard-00001.u8"
    data.write_bytes(data.read_bytes()[:-7])
    assert store.shard_done(tmp_path, 0) and not store.shard_done(tmp_path, 1)
    assert store.verify(tmp_path) == [data]
    assert not store.is_complete(tmp_path) and not data.exists()
    assert len(list(tmp_path.glob("shard-00001.*.corrupt-*"))) == 2  # data and metadata, moved aside
    assert store.shard_done(tmp_path, 0)  # the intact shard stays


def test_a_flipped_byte_fails_the_checksum(tmp_path: Path) -> None:
    write(tmp_path, [videos(2)])
    data = tmp_path / "shard-00000.u8"
    blob = bytearray(data.read_bytes())
    blob[5] ^= 0xFF
    data.write_bytes(bytes(blob))
    assert store.shard_done(tmp_path, 0)  # the size still fits: only the checksum tells
    assert store.verify(tmp_path) == [data]


def test_reading_a_shard_cut_short_after_opening_names_it(tmp_path: Path) -> None:
    fs = write(tmp_path, [videos(3)])
    data = tmp_path / "shard-00000.u8"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(UserError, match=r"shard-00000\.u8: frame store shard is shorter"):
        fs[2]


def test_finish_refuses_a_split_with_missing_shards(tmp_path: Path) -> None:
    write(tmp_path, [videos(1)])
    with pytest.raises(RuntimeError, match=r"shards \[1\]"):
        store.finish(tmp_path, 2, frame_shape=SHAPE)


def test_sweep_removes_only_stale_temporary_files(tmp_path: Path) -> None:
    stale, live = tmp_path / ".shard-00000.a.tmp", tmp_path / ".shard-00001.b.tmp"
    stale.write_bytes(b"x")
    live.write_bytes(b"y")
    old = stale.stat().st_mtime - 7200
    os.utime(stale, (old, old))
    store.sweep(tmp_path)
    assert not stale.exists() and live.exists()


def test_a_disk_too_small_for_the_frames_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    usage = shutil.disk_usage(tmp_path)._replace(free=2**30)
    monkeypatch.setattr(store.shutil, "disk_usage", lambda _: usage)
    store.check_space(tmp_path / "frames" / "key", 2**29)
    with pytest.raises(UserError, match=r"key: the frame store needs 2\.0 GiB more .* but 1\.0 GiB is free"):
        store.check_space(tmp_path / "frames" / "key", 2**31)


def test_a_full_disk_while_writing_a_shard_is_one_line_and_leaves_no_shard(tmp_path: Path) -> None:
    full = pytest.raises(UserError, match=r"cannot write .*: No space left on device; free some space")
    with full, environment_faults(tmp_path), ShardWriter(tmp_path, 0, frame_shape=SHAPE):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []
