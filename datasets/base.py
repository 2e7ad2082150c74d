"""What a dataset adapter yields (:class:`VideoRecord` rows, all later stages see), and the registry of adapters."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from samplerbench.core.errors import UserError
from samplerbench.core.fields import check_fields, option_fields
from samplerbench.core.registry import Registry

MISSING = "missing file"  # the skip reason of a record whose video file or frame folder is absent

# mmaction2's rawframe defaults: ``filename_tmpl`` and ``start_index`` of its RawFrameDecode / RawframeDataset.
FILENAME_TMPL = "img_{:05d}.jpg"
START_INDEX = 1
# Frame folders carry no frame rate; timestamps (and so the salient-hit rate) assume this one unless the
# adapter knows the duration (ActivityNet: the folder's frames span the annotated duration).
FRAME_FOLDER_FPS = 30.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class FrameFolder:
    """A video stored as a folder of JPEG frames (mmaction2's rawframes): frame ``i`` (0-based) is the file
    ``template.format(start_index + i)`` in ``path``."""

    path: Path
    total_frames: int
    template: str = FILENAME_TMPL
    start_index: int = START_INDEX
    fps: float = FRAME_FOLDER_FPS

    def frame_path(self, i: int) -> Path:
        return self.path / self.template.format(self.start_index + i)


@dataclasses.dataclass(frozen=True, kw_only=True)
class VideoRecord:
    """One video: a video file, or a folder of frames (``frames`` set, and ``path`` is its folder).

    Attributes:
        video_id: unique within the dataset.
        path: the video file, or the frame folder.
        labels: class indices (more than one for multi-label datasets).
        segments: annotated salient ``(start_s, end_s)`` intervals in seconds; empty when none.
        subset: ``"train"`` or ``"val"``.
        frames: how to read the frame folder at ``path``; ``None`` for a video file.
    """

    video_id: str
    path: Path
    labels: tuple[int, ...]
    subset: str
    segments: tuple[tuple[float, float], ...] = ()
    frames: FrameFolder | None = None

    @property
    def source(self) -> Path | FrameFolder:
        """What the decoder reads: the video file, or the frame folder."""
        return self.frames or Path(self.path)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetIndex:
    """The parsed dataset: records plus the class names, in label-index order."""

    name: str
    classes: tuple[str, ...]
    records: tuple[VideoRecord, ...]
    metric: str = "mAP"  # the headline metric of the dataset's literature: "mAP" or "top1"
    skipped: tuple[tuple[str, str], ...] = ()  # (entry, reason) dropped while indexing (lenient mode)

    def split(self, subset: str) -> tuple[VideoRecord, ...]:
        return tuple(r for r in self.records if r.subset == subset)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetOptions:
    """An adapter's own settings (``[data.options.<dataset>]`` in a config file), checked when built: types
    and ranges (the class's ``RANGES``) by :func:`~samplerbench.core.fields.check_fields`, the rest by a subclass's
    ``__post_init__``. The base class holds none."""

    def __post_init__(self) -> None:
        check_fields(self)


class DatasetBuilder(Protocol):
    """``builder(cfg, cache_dir, options) -> DatasetIndex``: cfg is the run's
    :class:`~samplerbench.config.RunConfig`, ``options`` the adapter's :class:`DatasetOptions` from it."""

    def __call__(self, cfg, cache_dir: Path, options: Any) -> DatasetIndex: ...


# The paper's FEM resolution (supplementary A.1): 224 px for ActivityNet, FCVID and UCF101, 112 px for
# Mini-Kinetics. The ``paper`` preset takes it from the dataset, so ``--preset paper --dataset minikinetics``
# needs no extra flag.
PAPER_FEM_RES = 224


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """A registered adapter and what the ``paper`` preset needs to know about its dataset before indexing it."""

    build: DatasetBuilder
    options: type[DatasetOptions] = DatasetOptions
    paper_fem_res: int = PAPER_FEM_RES
    # what a run reads the records' features from: "videos" (decoded, backbones trained) or "bank" (a frame
    # bank's rows); the stages' feature source of that kind serves them
    features: str = "videos"


DATASETS: Registry[DatasetSpec] = Registry("dataset", sort=True)  # every adapter by name, sorted


def register_dataset(name: str, *, options: type[DatasetOptions] = DatasetOptions,
                     paper_fem_res: int = PAPER_FEM_RES,
                     features: str = "videos") -> Callable[[DatasetBuilder], DatasetBuilder]:
    """Function decorator: ``@register_dataset("ucf101", options=UCF101Options)``; the adapter is called with
    its checked ``options`` (:func:`dataset_options`). A name can be registered once."""

    def wrap(fn: DatasetBuilder) -> DatasetBuilder:
        DATASETS.register(name, DatasetSpec(build=fn, options=options, paper_fem_res=paper_fem_res,
                                            features=features))
        return fn

    return wrap


def list_datasets() -> list[str]:
    """Every registered adapter's name, sorted."""
    return DATASETS.names()


def dataset_spec(name: str) -> DatasetSpec:
    """The adapter registered as ``name``, else a one-line :class:`UserError` (did you mean)."""
    return DATASETS.get(name)


def dataset_options(name: str, values: Mapping[str, Any]) -> DatasetOptions:
    """Adapter ``name``'s options from ``values`` (``cfg.data.options[name]``), checked: an unknown key, a
    value of the wrong type or one the adapter refuses is one :class:`UserError` naming
    ``data.options.<name>``."""
    cls, where = dataset_spec(name).options, f"data.options.{name}"
    fields = option_fields(cls, values, where=where)
    try:
        return cls(**fields)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def run_options(cfg) -> DatasetOptions:
    """The options of the run's own dataset (``cfg.data.dataset``)."""
    return dataset_options(cfg.data.dataset, cfg.data.options.get(cfg.data.dataset, {}))


def get_dataset(name: str) -> Callable[[Any, Path], DatasetIndex]:
    """``index(cfg, cache_dir)``: adapter ``name`` run with its options from ``cfg`` (:func:`run_options`), its
    records checked by :func:`check_one_file_per_video`."""
    spec = dataset_spec(name)
    return lambda cfg, cache_dir: check_one_file_per_video(
        spec.build(cfg, cache_dir, dataset_options(name, cfg.data.options.get(name, {}))))


def check_one_file_per_video(index: DatasetIndex) -> DatasetIndex:
    """``index``, or a :class:`UserError` naming two of its videos that are one file or frame folder (its
    resolved path: spelling, ``..`` and symbolic links aside), in one split or in both (a leak from training
    into evaluation). Records of a frame bank, whose path is the bank's folder, are not files and pass."""
    seen: dict[str, VideoRecord] = {}
    for record in index.records:
        if record.frames is None and Path(record.path).is_dir():
            continue
        where = os.path.realpath(record.path)
        if where in seen:
            first = seen[where]
            raise UserError(f"videos {first.video_id!r} ({first.subset}) and {record.video_id!r} ({record.subset}) "
                            f"of dataset {index.name} are one file, {where}: each video must be listed once")
        seen[where] = record
    return index


def preset_layer(preset: str, dataset: str) -> dict[str, Any]:
    """What preset ``preset`` takes from ``dataset``'s adapter, as a layer of settings
    (:func:`samplerbench.config.build_config`'s ``dataset_layer``): the ``paper`` preset's FEM resolution."""
    return {"fem": {"res": dataset_spec(dataset).paper_fem_res}} if preset == "paper" else {}
