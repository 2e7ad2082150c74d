"""Videos stored as frame folders (mmaction2's rawframes): rawframe list lines in every list-based adapter,
ActivityNet's ``rawframes/v_<id>/`` fallback, decoding through the video path's indices, resizing and skip
reasons, and the one error (or ``--lenient`` skip) for a folder with fewer frames than its line says."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from datasetfiles import FRAMES, MAKERS, make_activitynet, make_list, make_ucf101
from videofiles import write_frames

from samplerbench.cli import build_parser, config_from_args
from samplerbench.config import build_config
from samplerbench.core.errors import UserError
from samplerbench.core.timeline import presample_indices
from samplerbench.datasets import get_dataset
from samplerbench.datasets.base import FrameFolder, VideoRecord
from samplerbench.datasets.synthetic import write_mp4
from samplerbench.runs.benchmark import run
from samplerbench.stages.decode import decode_clip, decode_motion, decode_records, decode_stream, view_indices


def index(dataset: str, root: Path, **overrides):
    return get_dataset(dataset)(build_config(data={"dataset": dataset, "root": str(root)}, **overrides), root / "cache")


@pytest.mark.parametrize("dataset", list(MAKERS))
def test_every_adapter_indexes_frame_folders_with_the_videos_labels(dataset: str, tmp_path: Path) -> None:
    videos = index(dataset, MAKERS[dataset](tmp_path / "videos", videos=False))
    frames = index(dataset, MAKERS[dataset](tmp_path / "frames", frames=True))
    assert frames.classes == videos.classes and frames.skipped == ()
    assert [(r.labels, r.subset) for r in frames.records] == [(r.labels, r.subset) for r in videos.records]
    for record in frames.records:
        assert record.frames is not None and record.path.is_dir() and record.frames.path == record.path
        assert record.frames.total_frames == FRAMES and record.frames.template == "img_{:05d}.jpg"
        assert record.frames.start_index == 1 and record.source == record.frames
    if dataset == "activitynet":  # the folder's frames span the annotated duration (3 s in datasetfiles)
        assert frames.records[0].frames.fps == FRAMES / 3.0


def test_rawframe_line_needs_a_label_after_the_frame_count(tmp_path: Path) -> None:
    make_list(tmp_path, frames=True)
    val = tmp_path / "val_list.txt"
    val.write_text(val.read_text() + f"clips/va1 {FRAMES}\n")  # line 4: a folder, a count, no label
    with pytest.raises(UserError, match=rf"{val}:4: expected 'frame_dir total_frames label \[label \.\.\.\]'"):
        index("list", tmp_path)


def test_ucf101_rawframe_labels_are_mmaction2s_zero_based(tmp_path: Path) -> None:
    make_ucf101(tmp_path, frames=True)
    train = tmp_path / "ucfTrainTestlist" / "trainlist01.txt"
    train.write_text(train.read_text().replace(f"v_Archery_tr1 {FRAMES} 1", f"v_Archery_tr1 {FRAMES} 2"))
    with pytest.raises(UserError, match=r"trainlist01\.txt:2: class number 2 does not match the folder 'Archery' "
                                        r"\(class 1\)"):
        index("ucf101", tmp_path)


@pytest.mark.parametrize("dataset", ["list", "ucf101", "minikinetics"])
def test_fewer_frames_than_the_line_says_is_one_error_or_a_lenient_skip(dataset: str, tmp_path: Path) -> None:
    root = MAKERS[dataset](tmp_path, frames=True)
    folder = next(r.path for r in index(dataset, root).records if r.subset == "val")
    for i in (FRAMES - 1, FRAMES):
        (folder / f"img_{i:05d}.jpg").unlink()
    with pytest.raises(UserError) as err:
        index(dataset, root)
    message = str(err.value)
    assert "\n" not in message and ":1: frame folder" in message and str(folder) in message
    assert f"has {FRAMES - 2} frames named 'img_{{:05d}}.jpg', the line says {FRAMES}" in message
    lenient = index(dataset, root, lenient=True)
    assert len(lenient.skipped) == 1 and lenient.skipped[0][0].endswith(":1")
    assert folder not in {r.path for r in lenient.records}


def test_filename_template_and_start_index(tmp_path: Path) -> None:
    image = np.full((1, 8, 8, 3), 128, np.uint8)
    for clip in ("a", "b"):
        write_frames(tmp_path / "clips" / clip, np.repeat(image, 5, axis=0), template="{:06d}.jpg", start=0)
    (tmp_path / "train_list.txt").write_text("clips/a 5 0\n")
    (tmp_path / "val_list.txt").write_text("clips/b 5 0\n")
    record = index("list", tmp_path, filename_tmpl="{:06d}.jpg", start_index=0).records[0]
    assert record.frames == FrameFolder(path=tmp_path / "clips/a", total_frames=5, template="{:06d}.jpg",
                                        start_index=0)
    assert record.frames.frame_path(4).name == "000004.jpg"
    with pytest.raises(UserError, match=r"--filename-tmpl 'img\.jpg': expected one integer field"):
        index("list", tmp_path, filename_tmpl="img.jpg")


def test_cli_flags_set_the_template(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--filename-tmpl", "frame_{:04d}.jpg", "--start-index", "0",
                                      "--cache-dir", str(tmp_path)])
    cfg = config_from_args(args)
    assert cfg.data.filename_tmpl == "frame_{:04d}.jpg" and cfg.data.start_index == 0


def test_activitynet_prefers_the_video_and_falls_back_to_rawframes(tmp_path: Path) -> None:
    root = make_activitynet(tmp_path, frames=True)
    make_activitynet(tmp_path / "v")  # the same dataset as videos
    (root / "videos").mkdir()
    (tmp_path / "v" / "videos" / "v_tr0.mp4").rename(root / "videos" / "v_tr0.mp4")
    by_id = {r.video_id: r for r in index("activitynet", root).records}
    assert by_id["tr0"].frames is None and by_id["tr0"].path == root / "videos" / "v_tr0.mp4"
    assert by_id["tr1"].frames is not None and by_id["tr1"].path == root / "rawframes" / "v_tr1"


# ---------------------------------------------------------------------------------------------- decoding


def _ramp(n: int = 30, height: int = 48, width: int = 64) -> np.ndarray:
    """``n`` frames, each a distinct colour on top of a fixed gradient: a wrong index is off by a whole step."""
    frames = np.zeros((n, height, width, 3), np.uint8)
    frames[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)
    for i in range(n):
        frames[i, : height // 2, :, 1] = 20 + 7 * i
        frames[i, height // 2 :, : 8 + 2 * i, 2] = 200  # a bar that grows: motion between frames
    return frames


@pytest.fixture(scope="module")
def same_content(tmp_path_factory) -> tuple[Path, FrameFolder]:
    """The same 30 frames as an H.264 MP4 and as a frame folder."""
    root = tmp_path_factory.mktemp("same")
    frames = _ramp()
    write_mp4(root / "clip.mp4", iter(frames), fps=30, width=64, height=48)
    return root / "clip.mp4", FrameFolder(path=write_frames(root / "clip", frames), total_frames=len(frames))


@pytest.mark.parametrize("train", [False, True])
def test_frame_folder_decodes_the_frames_the_video_path_decodes(same_content, train: bool) -> None:
    video, folder = same_content
    indices = view_indices(30, t=8, views=2, seed=3, video_id="x", train=train).reshape(-1)
    from_video = decode_clip(video, indices, short_side=40, crop=32).float()
    from_folder = decode_clip(folder, indices, short_side=40, crop=32).float()
    assert from_folder.shape == from_video.shape == (len(indices), 3, 32, 32)
    assert (from_folder - from_video).abs().mean() < 3  # H.264 vs JPEG; one frame off moves green by 7
    green = from_folder[:, 1, :12].mean(dim=(1, 2))
    assert torch.allclose(green, torch.from_numpy(20 + 7 * indices).float(), atol=3)


def test_frame_folder_motion_matches_the_videos(same_content) -> None:
    video, folder = same_content
    indices = presample_indices(30, 8)
    motion = decode_motion(folder, indices, 30, short_side=40, crop=32)
    assert motion.shape == (8,) and (motion > 0).all()
    assert torch.allclose(motion, decode_motion(video, indices, 30, short_side=40, crop=32), atol=0.05)


def test_unreadable_frame_folders_are_skipped_with_a_reason(tmp_path: Path) -> None:
    frames = _ramp(6)

    def folder(name: str, *, total: int = 6) -> VideoRecord:
        path = write_frames(tmp_path / name, frames)
        return VideoRecord(video_id=name, path=path, labels=(0,), subset="val",
                           frames=FrameFolder(path=path, total_frames=total))

    good, gap, corrupt, empty = folder("good"), folder("gap"), folder("corrupt"), folder("empty")
    (gap.path / "img_00002.jpg").unlink()
    (corrupt.path / "img_00005.jpg").write_bytes(b"not a jpeg at all")
    for file in empty.path.iterdir():
        file.unlink()
    gone = VideoRecord(video_id="gone", path=tmp_path / "gone", labels=(0,), subset="val",
                       frames=FrameFolder(path=tmp_path / "gone", total_frames=6))
    out = decode_records([good, gap, corrupt, empty, gone], t=6, short_side=40, crop=32, workers=1)
    assert out.video_ids == ["good"] and out.frames.shape == (1, 6, 3, 32, 32)
    reasons = {video_id: reason for video_id, _, reason in out.skipped}
    assert reasons["gap"] == "missing frame img_00002.jpg"
    assert reasons["corrupt"].startswith("corrupt JPEG img_00005.jpg: ") and "\n" not in reasons["corrupt"]
    assert reasons["empty"] == "empty frame folder (no 'img_{:05d}.jpg' file)"
    assert reasons["gone"] == "missing frame folder"
    (_, decoded), = [(r, v) for r, v in decode_stream([good], t=6, short_side=40, crop=32, workers=2)
                     if not isinstance(v, str)]
    assert np.allclose(decoded.times_s[0], (np.arange(6) + 0.5) / 30.0)  # the documented default fps


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_decodes_what_the_cpu_decodes(same_content) -> None:
    _, folder = same_content
    indices = presample_indices(30, 8)
    on_gpu = decode_clip(folder, indices, short_side=40, crop=32, device="cuda")
    assert on_gpu.device.type == "cpu"
    assert (on_gpu.float() - decode_clip(folder, indices, short_side=40, crop=32).float()).abs().max() <= 8


@pytest.mark.slow
def test_a_list_of_frame_folders_runs_end_to_end(tmp_path: Path) -> None:
    root = make_list(tmp_path / "data", frames=True)
    for file in (root / "clips" / "va2").iterdir():
        file.unlink()
    cfg = build_config("tiny", data={"dataset": "list", "root": str(root), "frames": 4},
                       sampling={"samplers": ("uniform",), "budgets": (2,)},
                       report={"tables": ("main",), "bootstrap": 20}, recognizer={"epochs": 1}, fem={"epochs": 1},
                       cost={"iters": 1})
    folder = run(cfg, out=tmp_path / "out", cache_dir=tmp_path / "cache", quiet=True)
    skipped = pd.read_csv(folder / "skipped.csv")
    assert skipped["reason"].tolist() == ["empty frame folder (no 'img_{:05d}.jpg' file)"]
    meta = json.loads((folder / "run.json").read_text())
    assert meta["dataset"]["val_videos"] == 3 and len(meta["skipped_videos"]) == 1
    assert dataclasses.asdict(cfg)["data"]["filename_tmpl"] == meta["config"]["data"]["filename_tmpl"]
