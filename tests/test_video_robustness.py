"""Real-world video files: odd containers and codecs, rotation flags, very short, audio-only, broken.

Each file is written here with PyAV; every one is either decoded (upright, T frames) or skipped with a reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from videofiles import BLUE, FPS, write_audio_only, write_clip, write_truncated

from samplerbench.datasets.base import VideoRecord
from samplerbench.stages.decode import _decode_av, decode_clip, decode_records, decode_stream, probe_many

READABLE = {  # name: (file, codec)
    "mkv": ("clip.mkv", "libx264"),
    "webm_vp8": ("vp8.webm", "libvpx"),
    "webm_vp9": ("vp9.webm", "libvpx-vp9"),
    "avi_mpeg4": ("clip.avi", "mpeg4"),
    "mov": ("clip.mov", "libx264"),
    "mp4_mpeg4": ("mpeg4.mp4", "mpeg4"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("robust")
    out = {name: write_clip(d / file, codec=codec) for name, (file, codec) in READABLE.items()}
    out["three_frames"] = write_clip(d / "three.mp4", frames=3, colour=BLUE)
    out["rotated"] = write_clip(d / "rotated.mp4", rotation=90)
    out["audio_only"] = write_audio_only(d / "audio.m4a")
    out["truncated"] = write_truncated(d / "truncated.mp4", out["mov"])
    out["zero_byte"] = d / "empty.mp4"
    out["zero_byte"].touch()
    out["not_a_video"] = d / "notes.mp4"
    out["not_a_video"].write_text("this is not a video\n" * 50)
    out["missing"] = d / "missing.mp4"
    out["fifo"] = d / "pipe.mp4"
    os.mkfifo(out["fifo"])
    out["link_loop"] = d / "loop.mp4"
    os.symlink(out["link_loop"], out["link_loop"])
    out["dangling"] = d / "dangling.mp4"
    os.symlink(d / "gone.mp4", out["dangling"])
    out["folder"] = d / "folder.mp4"
    out["folder"].mkdir()
    return out


def test_probe_reports_frames_or_a_reason(files: dict[str, Path]) -> None:
    result = probe_many(files.values(), workers=2)
    for name in READABLE:
        assert result[files[name]] == (12, FPS), name
    assert result[files["three_frames"]] == (3, FPS)
    assert result[files["rotated"]] == (12, FPS)
    assert result[files["audio_only"]] == "no video stream"
    assert result[files["zero_byte"]] == "zero-byte file"
    assert result[files["missing"]] == "missing file"
    # each said truly: not a regular file, a link that leads nowhere, a folder
    assert result[files["fifo"]] == "not a regular file (a FIFO, socket or device)"
    assert result[files["link_loop"]] == "symbolic-link loop"
    assert result[files["dangling"]] == "symbolic link to a missing file"
    assert result[files["folder"]] == "a folder, not a video file"
    assert result[files["truncated"]].startswith("corrupt or unreadable: ")
    assert result[files["not_a_video"]].startswith("corrupt or unreadable: ")


@pytest.mark.parametrize("name", list(READABLE))
def test_odd_containers_decode_top_half_red(files: dict[str, Path], name: str) -> None:
    clip = decode_clip(files[name], np.array([0, 11]), short_side=48, crop=48)
    rows = clip[:, 0].float().mean(dim=2)  # red channel, mean of each row
    assert clip.shape == (2, 3, 48, 48)
    assert (rows[:, :20] > 180).all() and (rows[:, 28:] < 40).all(), name


def test_rotated_video_comes_out_upright_on_both_decoders(files: dict[str, Path]) -> None:
    """Stored 64x48 with the red half on top and a 90° counter-clockwise display rotation: shown upright it
    is 48 wide and 64 high with the red half on the left. decord applies the flag; the PyAV fallback must
    turn its frames the same way, or a video would change orientation depending on which decoder read it."""
    fallback = torch.from_numpy(_decode_av(files["rotated"], np.array([0, 5])))
    assert fallback.shape == (2, 64, 48, 3)
    columns = fallback[..., 0].float().mean(dim=1)  # red channel, mean of each column
    assert (columns[:, :20] > 180).all() and (columns[:, 28:] < 40).all()
    clip = decode_clip(files["rotated"], np.array([0, 5]), short_side=48, crop=48)
    assert (clip[:, 0].float().mean(dim=1)[:, :20] > 180).all()  # decord: red on the left too


def test_decode_records_keeps_readable_and_lists_the_rest(files: dict[str, Path]) -> None:
    records = [VideoRecord(video_id=name, path=path, labels=(0,), subset="val") for name, path in files.items()]
    split = decode_records(records, t=8, short_side=48, crop=48, workers=2)
    readable = [*READABLE, "three_frames", "rotated"]
    assert split.video_ids == readable
    assert split.frames.shape == (len(readable), 8, 3, 48, 48)
    # 3 frames spliced to T=8: indices 0 0 0 1 1 2 2 2, so timestamps (i + 0.5) / FPS
    expected = (np.array([0, 0, 0, 1, 1, 2, 2, 2]) + 0.5) / FPS
    three = next(r for r in records if r.video_id == "three_frames")
    [(_, decoded)] = decode_stream([three], t=8, short_side=48, crop=48, workers=2)
    assert decoded.times_s[0].tolist() == pytest.approx(expected.tolist())
    assert not split.salient.any()  # no segments, no salient frame
    reasons = {vid: reason for vid, _, reason in split.skipped}
    assert set(reasons) == {"audio_only", "truncated", "zero_byte", "not_a_video", "missing", "fifo", "link_loop",
                            "dangling", "folder"}
    assert reasons["audio_only"] == "no video stream" and reasons["zero_byte"] == "zero-byte file"
