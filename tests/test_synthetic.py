"""The generated dataset: real MP4s, exact annotations, determinism, caching, saliency that shows."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import decord
import numpy as np
import pytest

from samplerbench.cli import main
from samplerbench.config import RunConfig, build_config
from samplerbench.core.errors import UserError
from samplerbench.core.timeline import frame_times, salient_mask
from samplerbench.datasets.activitynet import ANNOTATION_FILE
from samplerbench.datasets.base import DatasetIndex, get_dataset, run_options
from samplerbench.datasets.synthetic import (
    COLOURS,
    HABIT_PLACES,
    SyntheticConfig,
    VideoPlan,
    class_habits,
    class_styles,
    dataset_root,
    generate,
    make_assets,
    plan_dataset,
    plan_segments,
    salient_frames,
    video_frames,
)

TINY = SyntheticConfig(
    num_classes=3, train_per_class=3, val_per_class=1, min_frames=4, max_frames=14, width=32, height=24, fps=4
)
T = 8


def cfg(seed: int = 0, synthetic: SyntheticConfig = TINY) -> RunConfig:
    return build_config(seed=seed, data={"frames": T, "options": {"synthetic": dataclasses.asdict(synthetic)}},
                        sampling={"budgets": (2, 4), "main_budget": 2})


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
    salient frames; non-salient frames hold no class pattern, so no class colour covers a visible share."""
    index, _ = built
    colours = {i: next(c for c in COLOURS if name.startswith(c)) for i, name in enumerate(index.classes)}
    hits, shares = [], []
    for r in index.records:
        frames = read_all(r.path)
        salient = salient_mask(r.segments, frame_times(np.arange(len(frames)), TINY.fps))
        scores = np.stack([class_colour_share(frames, colours[c]) for c in range(len(index.classes))], axis=1)
        hits += list(scores[salient].argmax(axis=1) == r.labels[0])
        shares += list(scores[~salient].max(axis=1))
    assert np.mean(hits) > 0.9 and np.mean(shares) < 0.01, (np.mean(hits), np.mean(shares))


SCENES = SyntheticConfig(num_classes=4, train_per_class=25, val_per_class=25, min_frames=6, max_frames=10, width=32,
                         height=24)


def scene_colour_accuracy(synthetic: SyntheticConfig) -> float:
    """Validation accuracy of a nearest-class-centroid classifier on the mean colour of each video's
    non-salient frames, the centroids fitted on the training videos."""
    assets = make_assets(synthetic, seed=0)
    plans = plan_dataset(synthetic, seed=0)
    colour = {}
    for plan in plans:
        frames = np.stack(list(video_frames(plan, assets=assets, cfg=synthetic)))
        colour[plan.video_id] = frames[~salient_frames(plan, np.arange(plan.length))].mean(axis=(0, 1, 2))
    train = [p for p in plans if p.subset == "training"]
    centroids = np.stack([np.mean([colour[p.video_id] for p in train if p.label == c], axis=0)
                          for c in range(synthetic.num_classes)])
    val = [p for p in plans if p.subset == "validation"]
    guesses = [np.linalg.norm(centroids - colour[p.video_id], axis=1).argmin() for p in val]
    return float(np.mean([g == p.label for g, p in zip(guesses, val, strict=True)]))


def test_the_scene_is_weak_but_correct_evidence() -> None:
    """Non-salient frames tell the class through the scene, above chance (1/4) but far from certain, since
    each scene is home to two classes; with ``context = 0`` the scene says nothing."""
    with_context = scene_colour_accuracy(dataclasses.replace(SCENES, context=1.0))
    without = scene_colour_accuracy(dataclasses.replace(SCENES, context=0.0))
    assert 0.4 < with_context < 0.8 and without < 0.35, (with_context, without)


def render(plan: VideoPlan, synthetic: SyntheticConfig, *, noise: bool = True) -> np.ndarray:
    assets = make_assets(synthetic, seed=0)
    assets = assets if noise else dataclasses.replace(assets, noise=np.zeros_like(assets.noise))
    return np.stack(list(video_frames(plan, assets=assets, cfg=synthetic))).astype(float)


def test_the_pattern_stays_in_the_centre_crop_whatever_the_camera_does() -> None:
    """At the largest camera pan and zoom the config allows, every pixel the pattern changes lies inside the
    central square of 0.85 of the shorter side (the default recognizer crop: 48 of 56 px)."""
    wild = dataclasses.replace(SCENES, train_per_class=4, val_per_class=1, camera_pan=0.08, camera_zoom=0.2)
    side = 0.85 * min(wild.width, wild.height)
    x0, y0 = (wild.width - side) / 2, (wild.height - side) / 2
    for plan in plan_dataset(wild, seed=0):
        changed = np.abs(render(plan, wild) - render(dataclasses.replace(plan, segments=()), wild)).max(axis=-1) > 0
        _, ys, xs = np.nonzero(changed)
        assert xs.size and x0 - 1 <= xs.min() and xs.max() <= x0 + side and y0 - 1 <= ys.min() and ys.max() <= y0 + side


def test_the_camera_moves_the_picture() -> None:
    """Consecutive frames (pixel noise left out, one shot per video) differ more with a moving camera than
    with a steady one, the videos otherwise the same."""
    moving = dataclasses.replace(SCENES, width=96, height=72, min_frames=30, max_frames=40, shot_frames=1000,
                                 camera_pan=0.08, camera_zoom=0.2)
    steady = dataclasses.replace(moving, camera_pan=0.0, camera_zoom=0.0)
    motion = [np.mean([np.abs(np.diff(render(plan, c, noise=False), axis=0)).mean()
                       for plan in plan_dataset(c, seed=0)[:8]]) for c in (moving, steady)]
    assert motion[0] > 1.3 * motion[1], motion


@pytest.mark.parametrize("length", [2, 3, 10, 120])
@pytest.mark.parametrize("place", [None, 0.0, 0.5, 1.0])
def test_plan_segments(length: int, place: float | None) -> None:
    rng = np.random.default_rng(length)
    for fraction in (0.01, 0.2, 0.5, 0.99):
        for _ in range(20):
            segments = plan_segments(rng, length, fraction, place=place, spread=0.3)
            covered = sum(b - a for a, b in segments)
            assert covered == int(np.clip(round(fraction * length), 1, length - 1)) and 1 <= len(segments) <= 2
            assert all(0 <= a < b <= length for a, b in segments)
            if len(segments) == 2:
                assert segments[0][1] < segments[1][0]  # a gap: two segments, not one


def class_curves(plans: list[VideoPlan], classes: int, bins: int = 10) -> np.ndarray:
    """``[classes, bins]``: the share of salient frames in each tenth of the videos' length, per class."""
    curves = np.zeros((classes, bins))
    counts = np.zeros(classes)
    for plan in plans:
        frames = np.arange(plan.length)
        where = frames * bins // plan.length
        salient = salient_frames(plan, frames)
        curves[plan.label] += [salient[where == b].mean() if (where == b).any() else 0 for b in range(bins)]
        counts[plan.label] += 1
    return curves / counts[:, None]


def test_classes_have_temporal_habits_and_shares() -> None:
    """The default dataset's classes (Fig. 1 of the supplementary averages saliency over a class): an early class's
    salient frames sit in the first half, a late one's in the second, an "anywhere" one's spread across the video;
    and each class's share of salient frames is its own, spread over the configured range."""
    config = SyntheticConfig()
    habits = class_habits(config)
    assert {h.kind for h in habits} == {"early", "late", "anywhere"}
    assert habits == class_habits(config)  # a fixed draw, whatever the seed
    curves = class_curves(plan_dataset(config, seed=0), config.num_classes)
    for habit, curve in zip(habits, curves, strict=True):
        first, second = curve[:5].sum(), curve[5:].sum()
        if habit.kind == "early":
            assert first > 4 * second and HABIT_PLACES["early"][0] <= habit.place <= HABIT_PLACES["early"][1]
        elif habit.kind == "late":
            assert second > 4 * first
        else:
            assert 0.5 < first / second < 2 and curve[2:8].min() > 0.25 * curve.max()
        assert abs(curve.mean() - habit.share) < 0.25 * habit.share  # the share shows in the videos
    shares = sorted(h.share for h in habits)
    lo, hi = config.salient_fraction
    assert lo <= shares[0] < lo + (hi - lo) / config.num_classes and shares[-1] > hi - (hi - lo) / config.num_classes


def test_annotations_name_each_class_habit(built: tuple[DatasetIndex, Path]) -> None:
    annotations = dataset_root(TINY, seed=0, cache_dir=built[1]) / ANNOTATION_FILE
    habits = json.loads(annotations.read_text())["generator"]["habits"]
    assert list(habits) == [s.name for s in class_styles(TINY.num_classes)]
    assert [h["kind"] for h in habits.values()] == [h.kind for h in class_habits(TINY)]


def test_invalid_config_is_a_user_error(tmp_path: Path) -> None:
    """The adapter checks its options before it generates anything."""
    for options, message in (({"width": 33}, "even"), ({"min_frames": 200}, "min_frames")):
        with pytest.raises(UserError, match=f"data.options.synthetic: synthetic dataset: .*{message}"):
            get_dataset("synthetic")(build_config(data={"options": {"synthetic": options}}), tmp_path)
    with pytest.raises(UserError, match="min_frames"):
        dataclasses.replace(TINY, min_frames=20)
    for field, value in (("context", 1.5), ("camera_pan", -0.1), ("camera_zoom", 0.3), ("habit_spread", -0.1)):
        with pytest.raises(UserError, match=field):
            dataclasses.replace(TINY, **{field: value})


def test_preview_writes_a_png_and_names_a_bad_index(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "frames.png"
    assert main(["preview", str(out), "--preset", "tiny", "--index", "3", "--frames", "4"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["preview", str(out), "--preset", "tiny", "--index", "999"]) == 2
    assert "--index 999" in capsys.readouterr().err


def test_files_do_not_depend_on_the_worker_count(tmp_path: Path) -> None:
    """Every video is a function of the seed and its own index, whichever worker process renders it."""
    tiny = run_options(build_config("tiny"))
    digests = []
    for workers in (1, 2):
        root = tmp_path / f"workers{workers}"
        generate(tiny, seed=0, root=root, workers=workers)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        digests.append({p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in files})
    assert digests[0] == digests[1]
    assert len(digests[0]) == 1 + tiny.num_classes * (tiny.train_per_class + tiny.val_per_class)
