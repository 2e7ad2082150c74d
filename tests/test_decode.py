"""Decode stage: index choice, salient masks, resizing, decoding real MP4s, and skipping unreadable files."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from samplerbench.core.timeline import frame_times, presample_indices, salient_mask
from samplerbench.datasets.base import VideoRecord
from samplerbench.stages.decode import (
    CRASHED,
    DecodeError,
    _run_isolated,
    _stream_loader,
    decode_clip,
    decode_records,
    decode_stream,
    probe_many,
    resize_crop,
)

RED, BLUE = (220, 30, 30), (30, 30, 220)
FPS = 4


def write_video(path: Path, colours: list[tuple[int, int, int]], *, width: int = 48, height: int = 32) -> Path:
    """One solid-colour frame per entry of ``colours``, H.264 at FPS."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "10", "preset": "ultrafast"}
        for colour in colours:
            frame = np.empty((height, width, 3), np.uint8)
            frame[:] = colour
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    good = write_video(d / "good.mp4", [RED] * 6 + [BLUE] * 6)
    short = write_video(d / "short.mp4", [RED, BLUE, RED])
    (d / "empty.mp4").touch()
    data = good.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) * 3 // 10])
    return {"good": good, "short": short, "empty": d / "empty.mp4", "truncated": d / "truncated.mp4",
            "missing": d / "missing.mp4"}  # fmt: skip


# ---------------------------------------------------------------------------------------------- indices


def test_presample_test_takes_segment_centres() -> None:
    assert presample_indices(100, 4).tolist() == [12, 37, 62, 87]
    assert presample_indices(16, 16).tolist() == list(range(16))
    assert presample_indices(1, 5).tolist() == [0] * 5


def test_presample_shorter_than_t_repeats_adjacent_frames() -> None:
    idx = presample_indices(3, 8)
    assert idx.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert idx.dtype == np.int64


def test_presample_train_is_a_random_point_in_each_segment() -> None:
    rng = np.random.default_rng(0)
    draws = np.stack([presample_indices(100, 4, rng=rng) for _ in range(200)])
    assert ((draws >= np.arange(4) * 25) & (draws < np.arange(1, 5) * 25)).all()
    assert len(np.unique(draws[:, 0])) > 10  # really shifted
    for n, t in [(3, 8), (16, 16), (1, 4), (7, 7), (1000, 3)]:
        idx = presample_indices(n, t, rng=rng)
        assert len(idx) == t and idx.min() >= 0 and idx.max() < n and (np.diff(idx) >= 0).all()


def test_salient_mask_half_open_segments() -> None:
    times = frame_times(np.arange(8), fps=2.0)  # 0.25, 0.75, ..., 3.75
    mask = salient_mask([(1.0, 2.0), (3.5, 4.0)], times)
    assert mask.tolist() == [False, False, True, True, False, False, False, True]
    assert not salient_mask([], times).any()
    assert salient_mask([(0.0, 1.0)], np.array([[0.5, 1.0]])).tolist() == [[True, False]]


def test_resize_crop_accepts_both_layouts() -> None:
    frames = torch.randint(0, 255, (2, 30, 40, 3), dtype=torch.uint8)
    a = resize_crop(frames, short_side=24, crop=20)
    b = resize_crop(frames.permute(0, 3, 1, 2), short_side=24, crop=20)
    assert a.shape == (2, 3, 20, 20) and a.dtype == torch.uint8 and torch.equal(a, b)


# ---------------------------------------------------------------------------------------------- decoding


def test_decode_clip_shape_order_and_colour(videos: dict[str, Path]) -> None:
    clip = decode_clip(videos["good"], np.array([9, 0, 9, 3]), short_side=32, crop=24)
    assert clip.shape == (4, 3, 24, 24) and clip.dtype == torch.uint8
    assert torch.equal(clip[0], clip[2])
    mean = clip.float().mean(dim=(2, 3))
    assert torch.allclose(mean[1], torch.tensor(RED, dtype=torch.float), atol=12), mean[1]
    assert torch.allclose(mean[0], torch.tensor(BLUE, dtype=torch.float), atol=12), mean[0]


def test_decode_clip_raises_decode_error(videos: dict[str, Path]) -> None:
    with pytest.raises(DecodeError, match="corrupt or unreadable"):
        decode_clip(videos["truncated"], np.array([0]), short_side=32, crop=24)


def test_probe_many_reasons(videos: dict[str, Path]) -> None:
    result = probe_many(videos.values(), workers=2)
    assert result[videos["good"]] == (12, FPS)
    assert result[videos["short"]] == (3, FPS)
    assert result[videos["empty"]] == "zero-byte file"
    assert result[videos["missing"]] == "missing file"
    assert result[videos["truncated"]].startswith("corrupt or unreadable: ")


def record(video_id: str, path: Path, segments=((1.0, 2.0),)) -> VideoRecord:
    return VideoRecord(video_id=video_id, path=path, labels=(1,), subset="val", segments=segments)


def decoded_times(records: list[VideoRecord], **kwargs) -> torch.Tensor:
    """The timestamps ``[rows, T]`` of the rows :func:`decode_records` gives for ``records``, as
    :func:`decode_stream` reports them with each video."""
    rows = [result.times_s for _, result in decode_stream(records, **kwargs) if not isinstance(result, str)]
    return torch.from_numpy(np.concatenate([np.zeros((0, kwargs["t"])), *rows])).float()


def test_decode_records_skips_unreadable_with_reasons(videos: dict[str, Path]) -> None:
    records = [record(name, path) for name, path in videos.items()]
    split = decode_records(records, t=8, short_side=32, crop=24, workers=2)
    assert split.video_ids == ["good", "short"]
    assert split.frames.shape == (2, 8, 3, 24, 24) and split.frames.dtype == torch.uint8
    assert split.labels == [(1,), (1,)]
    assert [(vid, reason.split(":")[0]) for vid, _, reason in split.skipped] == [
        ("empty", "zero-byte file"),
        ("truncated", "corrupt or unreadable"),
        ("missing", "missing file"),
    ]
    # good: 12 frames at 4 fps; T=8 centres are frames 0 2 3 5 6 8 9 11; salient inside [1 s, 2 s)
    expected = (np.array([0, 2, 3, 5, 6, 8, 9, 11]) + 0.5) / FPS
    times = decoded_times(records, t=8, short_side=32, crop=24, workers=2)
    assert times[0].tolist() == pytest.approx(expected.tolist())
    assert split.salient[0].tolist() == [False, False, False, True, True, False, False, False]
    # short: 3 frames spliced to 8, still valid timestamps in order
    assert (times[1] < 3 / FPS).all() and (times[1].diff() >= 0).all()


def test_decode_records_train_views_are_deterministic(videos: dict[str, Path]) -> None:
    records = [record("good", videos["good"]), record("short", videos["short"])]
    kwargs = dict(t=4, short_side=32, crop=24, views=3, seed=7, train=True)
    a = decode_records(records, **kwargs, workers=2)
    b = decode_records(records[:1], **kwargs, workers=1)
    assert a.video_ids == ["good"] * 3 + ["short"] * 3 and torch.equal(a.frames[:3], b.frames)
    times_a, times_b = decoded_times(records, **kwargs, workers=2), decoded_times(records[:1], **kwargs, workers=1)
    assert torch.equal(times_a[:3], times_b)
    assert len({tuple(row.tolist()) for row in times_a[:3]}) > 1  # the views differ
    assert not torch.equal(decoded_times(records[:1], **{**kwargs, "seed": 8}, workers=1), times_b)


def test_all_unreadable_gives_an_empty_split(videos: dict[str, Path]) -> None:
    split = decode_records([record("missing", videos["missing"])], t=4, short_side=32, crop=24, workers=2)
    assert split.frames.shape == (0, 4, 3, 24, 24) and split.salient.shape == (0, 4) and len(split.skipped) == 1


def crash_on_boom(word: str) -> str:
    """Stands in for a decoder that aborts the process on one file."""
    if word == "boom":
        os._exit(134)
    return word.upper()


def test_a_crashing_worker_costs_only_its_own_file() -> None:
    jobs = [("a",), ("boom",), ("b",), ("c",), ("d",)]
    assert _run_isolated(crash_on_boom, jobs, workers=2, desc="test") == ["A", CRASHED, "B", "C", "D"]


def test_a_crashing_loader_worker_hands_the_rest_to_the_isolated_pool() -> None:
    """A DataLoader worker that dies ends the loader; what it had not delivered is decoded in isolation."""
    jobs = [("a",), ("b",), ("boom",), ("c",), ("d",)]
    assert list(_stream_loader(crash_on_boom, jobs, workers=2, desc="test")) == ["A", "B", CRASHED, "C", "D"]


def test_decoded_shards_concatenate_in_record_order(videos: dict[str, Path]) -> None:
    """What two ranks decode of the first and second half equals one process decoding everything."""
    records = [record(name, videos[name]) for name in ("good", "missing", "short")]
    kwargs = dict(t=4, short_side=32, crop=24, train=True, views=2, seed=3, workers=1)
    whole = decode_records(records, **kwargs)
    halves = [decode_records(records[:2], **kwargs), decode_records(records[2:], **kwargs)]
    assert torch.equal(torch.cat([h.frames for h in halves]), whole.frames)
    assert [v for h in halves for v in h.video_ids] == whole.video_ids == ["good", "good", "short", "short"]
    assert [s for h in halves for s in h.skipped] == whole.skipped and [s[0] for s in whole.skipped] == ["missing"]
