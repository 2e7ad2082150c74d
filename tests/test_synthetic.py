"""The generated dataset: real MP4s, exact annotations, determinism, caching, saliency that shows."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import decord
import numpy as np
import pytest

from samplerbench.config import RunConfig, SyntheticConfig, build_config
from samplerbench.datasets.activitynet import ANNOTATION_FILE
from samplerbench.datasets.base import DatasetIndex, get_dataset
from samplerbench.datasets.synthetic import COLOURS, class_styles, dataset_root, generate, plan_segments
from samplerbench.errors import UserError
from samplerbench.timeline import frame_times, salient_mask

TINY = SyntheticConfig(
    num_classes=3, train_per_class=3, val_per_class=1, min_frames=4, max_frames=14, width=32, height=24, fps=4
)
T = 8


def cfg(seed: int = 0, synthetic: SyntheticConfig = TINY) -> RunConfig:
    return RunConfig(seed=seed, frames=T, budgets=(2, 4), main_budget=2, synthetic=synthetic)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[DatasetIndex, Path]:
    cache = tmp_path_factory.mktemp("cache")
    return get_dataset("synthetic")(cfg(), cache), cache


def durations(built: tuple[DatasetIndex, Path]) -> dict[str, float]:
    """Each video's duration in seconds, as the generated annotation file says."""
    annotations = dataset_root(TINY, seed=0, cache_dir=built[1]) / ANNOTATION_FILE
    return {vid: entry["duration"] for vid, entry in json.loads(annotations.read_text())["database"].items()}


def read_all(path: Path) -> np.ndarray:
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    return vr.get_batch(list(range(len(vr)))).asnumpy()


def test_index_matches_the_config(built: tuple[DatasetIndex, Path]) -> None:
    index, _ = built
    assert index.name == "synthetic" and index.metric == "mAP"
    assert sorted(index.classes) == sorted(s.name for s in class_styles(3))
    assert len(index.split("train")) == 9 and len(index.split("val")) == 3
    assert all(r.video_id.startswith("syn_") and len(r.labels) == 1 for r in index.records)
    assert any(seconds * TINY.fps < T for seconds in durations(built).values())  # some videos are shorter than T
    assert all(1 <= len(r.segments) <= 2 for r in index.records)


def test_videos_are_readable_and_as_long_as_annotated(built: tuple[DatasetIndex, Path]) -> None:
    index, _ = built
    duration = durations(built)
    for r in index.records:
        vr = decord.VideoReader(str(r.path), ctx=decord.cpu(0), num_threads=1)
        assert abs(len(vr) - duration[r.video_id] * TINY.fps) <= 1 and vr.get_avg_fps() == pytest.approx(TINY.fps)
        assert vr[0].shape == (TINY.height, TINY.width, 3)


def test_same_seed_same_annotations_and_frames(built: tuple[DatasetIndex, Path], tmp_path: Path) -> None:
    index, cache = built
    again = get_dataset("synthetic")(cfg(), tmp_path)
    first, second = (dataset_root(TINY, seed=0, cache_dir=c) / ANNOTATION_FILE for c in (cache, tmp_path))
    assert first.read_bytes() == second.read_bytes()
    assert np.array_equal(read_all(index.records[0].path), read_all(again.records[0].path))
    other = dataset_root(TINY, seed=1, cache_dir=tmp_path)
    assert other != dataset_root(TINY, seed=0, cache_dir=tmp_path)


def test_second_build_generates_nothing(built: tuple[DatasetIndex, Path]) -> None:
    index, cache = built
    files = [index.records[0].path, dataset_root(TINY, seed=0, cache_dir=cache) / ANNOTATION_FILE]
    before = [f.stat().st_mtime_ns for f in files]
    assert get_dataset("synthetic")(cfg(), cache) == index
    assert [f.stat().st_mtime_ns for f in files] == before


def test_interrupted_generation_resumes(built: tuple[DatasetIndex, Path], tmp_path: Path) -> None:
    index, _ = built
    root = dataset_root(TINY, seed=0, cache_dir=tmp_path)
    (root / "videos").mkdir(parents=True)
    kept = root / "videos" / index.records[1].path.name
    kept.write_bytes(index.records[1].path.read_bytes())
    mtime = kept.stat().st_mtime_ns
    get_dataset("synthetic")(cfg(), tmp_path)
    assert kept.stat().st_mtime_ns == mtime  # kept, not rewritten
    assert len(list((root / "videos").iterdir())) == len(index.records)  # the rest generated, no temp files


def class_colour_share(frames: np.ndarray, colour: str) -> np.ndarray:
    """Per frame: share of pixels close to the class colour (its bright stripes included)."""
    target = np.array(COLOURS[colour]) * 255
    return (np.abs(frames.astype(float) - target).max(axis=-1) < 60).mean(axis=(1, 2))


def test_the_class_shows_in_salient_frames_only(built: tuple[DatasetIndex, Path]) -> None:
    """A colour-template classifier (argmax over classes of the share of class-coloured pixels) is right on
    salient frames and wrong on non-salient ones, whose faint pattern belongs to another class."""
    index, _ = built
    colours = {i: next(c for c in COLOURS if name.startswith(c)) for i, name in enumerate(index.classes)}
    hits = {True: [], False: []}
    for r in index.records:
        frames = read_all(r.path)
        salient = salient_mask(r.segments, frame_times(np.arange(len(frames)), TINY.fps))
        scores = np.stack([class_colour_share(frames, colours[c]) for c in range(len(index.classes))], axis=1)
        for is_salient, correct in zip(salient, scores.argmax(axis=1) == r.labels[0], strict=True):
            hits[bool(is_salient)].append(correct)
    assert np.mean(hits[True]) > 0.9 and np.mean(hits[False]) < 0.5, {k: np.mean(v) for k, v in hits.items()}


@pytest.mark.parametrize("length", [2, 3, 10, 120])
def test_plan_segments(length: int) -> None:
    rng = np.random.default_rng(length)
    for fraction in (0.01, 0.2, 0.5, 0.99):
        segments = plan_segments(rng, length, fraction)
        covered = sum(b - a for a, b in segments)
        assert 1 <= covered <= length - 1 and 1 <= len(segments) <= 2
        assert all(0 <= a < b <= length for a, b in segments)
        if len(segments) == 2:
            assert segments[0][1] < segments[1][0]  # a gap: two segments, not one


def test_invalid_config_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="even"):
        get_dataset("synthetic")(cfg(synthetic=dataclasses.replace(TINY, width=33)), tmp_path)
    with pytest.raises(UserError, match="min_frames"):
        get_dataset("synthetic")(cfg(synthetic=dataclasses.replace(TINY, min_frames=20)), tmp_path)


def test_files_do_not_depend_on_the_worker_count(tmp_path: Path) -> None:
    """Every video is a function of the seed and its own index, whichever worker process renders it."""
    tiny = build_config("tiny").synthetic
    digests = []
    for workers in (1, 2):
        root = tmp_path / f"workers{workers}"
        generate(tiny, seed=0, root=root, workers=workers)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        digests.append({p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in files})
    assert digests[0] == digests[1]
    assert len(digests[0]) == 1 + tiny.num_classes * (tiny.train_per_class + tiny.val_per_class)
