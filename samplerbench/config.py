"""Run configuration and presets.

One frozen dataclass per part of a run (:class:`DataConfig`, :class:`BackboneConfig` for recognizer and
FEM, :class:`SamplingConfig`, :class:`ReportConfig`, :class:`CostConfig`) nested in :class:`RunConfig`. A
preset is a named set of overrides of the same shape; a config file or flag can override any field.
Adapter and sampler options are tables keyed by name (``[sampling.options.nsnet]``), checked by their owners.

Every value is checked where a config is built, whatever its source: type (:func:`check_fields`), range (a
class's ``RANGES``) and combinations (``__post_init__``); nothing is silently rewritten. Flat pre-nesting
keys still load through :data:`LEGACY_KEYS` (:func:`nest_legacy`)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import yaml

from samplerbench.distributed import local_cores
from samplerbench.errors import UserError

TABLE_NAMES = ("main", "guiding", "fusion", "fem", "recognizer", "saliency")
WEIGHT_ROLES = ("recognizer", "fem")  # the RunConfig fields that are a BackboneConfig
NO_WEIGHTS = "none"  # a weights value: train from scratch (stored as None)
DTYPES = ("float32", "float64")
# What reads a video's frames: "cpu" (decord, PyAV where decord fails) or "torchcodec" (on the run's device, NVDEC
# on CUDA; the CPU decoders where it fails). Frame folders' JPEGs are decoded on the run's device either way.
DECODERS = ("cpu", "torchcodec")
# Flags that say where a run writes and how loudly, not what it computes, with their types: a config file may
# set them, but they are not RunConfig fields (nor in run.json's config), so moving a run's output never
# changes a key.
OUTPUT_SETTINGS: dict[str, type] = {"out": str, "cache_dir": str, "quiet": bool, "overwrite": bool}
# What a dataset or sampler option may hold in a config file: a scalar, or a list of scalars (a tuple once
# conformed). Its exact type is the option dataclass's own hint, checked by its adapter or sampler.
Scalar = int | float | str | bool
OptionValue = Scalar | None | tuple[Scalar, ...]
Options = dict[str, dict[str, OptionValue]]  # name -> {field: value}


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a number may take: ``low <= value <= high`` (``low < value`` when ``open_low``), finite."""

    low: float
    high: float = math.inf
    open_low: bool = False

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range, or ``None``."""
        below = value <= self.low if self.open_low else value < self.low
        if math.isfinite(value) and not below and value <= self.high:
            return None
        low = f"above {self.low}" if self.open_low else f"at least {self.low}"
        return f"must be {'a finite number ' if not math.isfinite(value) else ''}{low}" + (
            f" and at most {self.high}" if math.isfinite(self.high) else "")


INT_RANGE = Range(1)  # a count, size, number of epochs or batch
FLOAT_RANGE = Range(0.0, open_low=True)  # a learning rate or a fraction


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataConfig:
    """The videos and how they are decoded."""

    RANGES: ClassVar[dict[str, Range]] = {"start_index": Range(0)}  # a frame folder's first file number

    dataset: str = "synthetic"
    root: str | None = None  # folder of a real dataset (--data-root)
    lenient: bool = False  # skip malformed annotation entries (listed in run.json) instead of stopping
    # file of video ids (one a line): each split with a listed video keeps only the listed ones (datasets.videolist)
    video_list: str | None = None
    # frame folders (mmaction2's rawframes): frame i of a folder is filename_tmpl.format(start_index + i)
    filename_tmpl: str = "img_{:05d}.jpg"
    start_index: int = 1
    frames: int = 16  # T, uniformly pre-sampled frames per video
    short_side: int = 56  # frames: shorter side resized to this, then centre-cropped to the recognizer's res
    train_views: int = 2  # temporal-random-shift draws decoded per training video
    decoder: str = "cpu"  # one of DECODERS; in the decode key when not "cpu" (pixels: decode.PIXEL_TOLERANCE)
    # dataset adapter -> its options ({"ucf101": {"split": 2}}, {"synthetic": {"num_classes": 4}}), checked by
    # the adapter (samplerbench.datasets.base.dataset_options); merged field by field over the preset's.
    options: Options = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.decoder not in DECODERS:
            raise UserError(f"--decoder {self.decoder}: valid: {', '.join(DECODERS)}")
        object.__setattr__(self, "options", underscored(self.options))


@dataclasses.dataclass(frozen=True, kw_only=True)
class BackboneConfig:
    """A frame classifier the run trains: the recognizer, or the FEM (feature extraction module)."""

    arch: str
    res: int = 48  # input resolution (the recognizer's is the decoded crop; the FEM's, that crop resized)
    epochs: int  # at most, passes over the training rows (train_views per video)
    tsn: bool = False  # train "w/ TSN" (main-budget segments, averaged logits) instead of one frame per step
    lr: float
    batch: int
    # Where the network starts: a local checkpoint, or "imagenet" = each architecture's own torchvision
    # ImageNet file in TORCH_HOME (Table 3's and 4's variants included); None (written "none") = from scratch.
    # Part of run.json and of the training keys: it changes every number.
    weights: str | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        if self.weights == NO_WEIGHTS:
            object.__setattr__(self, "weights", None)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """The samplers compared, the budgets, how trainable samplers are trained and how frames are scored."""

    samplers: tuple[str, ...] = ()  # empty = every registered sampler
    budgets: tuple[int, ...] = (1, 2, 4, 8)  # K values swept
    main_budget: int = 4  # the K of the headline comparison and the ablation tables: one of the budgets
    # Each trainable sampler trains by its own paper's schedule (its constructor's defaults: README, "Samplers");
    # these override that schedule's epochs, batch and lr for every trainable sampler (None: each its own).
    epochs: int | None = None
    batch: int | None = None
    lr: float | None = None
    # The suite's held-out rule for every trainable sampler instead of its paper's schedule (ours, an option): hold
    # out holdout_fraction of the training videos, stop after patience epochs without improvement, keep the best.
    early_stop: bool = False
    # fits of each sampler trained by SGD on the same cached features, seeds apart: every table reports their mean
    # and std, and its intervals cover one fit's training randomness beside the choice of val videos
    fits: int = 3
    # Constructor fields of individual samplers, {sampler: {field: value}} (`[sampling.options.nsnet]` in a file,
    # `--sampler-option nsnet.d=256` as a flag): part of that sampler's cache key, run.json and checkpoint. Merged
    # field by field over the preset's, so setting one option keeps the preset's others.
    options: Options = dataclasses.field(default_factory=dict)
    # How the K selected frames' outputs become a video's score (metrics.AGGREGATIONS; see metrics.video_scores):
    # mean_softmax (default), mean_logits (AR-Net), max_features (OCSampler / FrameExit heads).
    aggregation: str = "mean_softmax"

    def __post_init__(self) -> None:
        check_fields(self)
        object.__setattr__(self, "options", underscored(self.options))
        if not self.budgets:
            raise UserError("--budget: give at least one K")
        if self.main_budget not in self.budgets:
            raise UserError(f"main_budget = {self.main_budget} is not one of the budgets "
                            f"{','.join(map(str, self.budgets))}: add it to --budget, or set sampling.main_budget "
                            "to one of them in a --config file")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReportConfig:
    """What a run reports: the tables it writes besides the main one, what their ablations vary, the main
    table's confidence intervals, and its per-video predictions."""

    tables: tuple[str, ...] = TABLE_NAMES
    fem_archs: tuple[str, ...] = ("shufflenet_v2_x1_0", "mobilenet_v2", "efficientnet_b0")  # Table 3's FEMs
    recognizer_variants: tuple[tuple[str, bool], ...] = (  # Table 4's (arch, w/ TSN) rows
        ("resnet18", False), ("resnet18", True), ("resnet34", True))
    bootstrap: int = 1000  # paired-bootstrap resamples of the main table's confidence intervals
    export_predictions: bool = False  # write <run folder>/predictions/<sampler>_K<k>.json (ActivityNet format)
    export_selections: bool = False  # write <run folder>/selections/<sampler>_K<k>.json (samplerbench select's)
    export_bank: bool = False  # write <run folder>/bank/, the frame bank of the run's outputs (samplerbench.bank)

    def __post_init__(self) -> None:
        check_fields(self)
        unknown = sorted(set(self.tables) - set(TABLE_NAMES))
        if unknown:
            raise UserError(f"unknown table(s) {unknown}; valid: {', '.join(TABLE_NAMES)}, all")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CostConfig:
    """How throughput is timed: ``batch`` videos per timed call, at least ``iters`` rounds of one call per pipeline
    (:func:`~samplerbench.cost.measure_interleaved`: the median of fewer per-round ratios is mostly noise)."""

    batch: int = 8
    iters: int = 8

    def __post_init__(self) -> None:
        check_fields(self)


def _recognizer() -> BackboneConfig:
    return BackboneConfig(arch="resnet18", epochs=7, lr=0.005, batch=32)


def _fem() -> BackboneConfig:
    """At half the recognizer's resolution, as the paper's Mini-Kinetics FEM (112 px beside 224 px): per frame
    0.0065 GFLOPs against ResNet-18's 0.099 at 48 px (1/15; the paper's 1/25 at 224 px, 1/91 at 112 px)."""
    return BackboneConfig(arch="mobilenet_v2", res=24, epochs=14, lr=0.02, batch=64)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Every knob of a run, one nested dataclass per part of it."""

    RANGES: ClassVar[dict[str, Range]] = {
        "seed": Range(0, 2**32 - 1),  # what numpy accepts as a seed
        "holdout_fraction": Range(0.0, 0.5, open_low=True),  # a share of the training videos
    }

    preset: str = "default"
    seed: int = 0
    device: str = "cpu"
    # Floating-point type of training and of the cached per-frame outputs. Training from scratch amplifies
    # rounding: in the tiny preset, summing the same gradient in another order (2 threads instead of 1, or 2
    # processes instead of 1) moves the float32 weights by ~1% within 8 steps, so runs that should agree
    # (any number of processes) agree only to that. "float64" shrinks the seed of that difference by 1e9,
    # which makes such runs agree to many digits; it is for checking, at several times the run time.
    dtype: str = "float32"
    # processes per rank that generate the synthetic videos and decode (DataLoader workers); not part of any
    # cache key. Default: the cores this process may use, divided among torchrun's processes on the node.
    workers: int = dataclasses.field(default_factory=local_cores)
    # training: every trained model (recognizer, FEM, sampler) holds out this share of the training videos and
    # stops when its loss on them has not improved for `patience` epochs; the epochs fields are caps
    holdout_fraction: float = 0.15
    patience: int = 3
    compile: bool = False  # torch.compile the models (part of the training keys: compiled kernels round differently)
    remeasure: bool = False  # time throughput and decoding again instead of reading the cache; in no cache key
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    recognizer: BackboneConfig = dataclasses.field(default_factory=_recognizer)
    fem: BackboneConfig = dataclasses.field(default_factory=_fem)
    sampling: SamplingConfig = dataclasses.field(default_factory=SamplingConfig)
    report: ReportConfig = dataclasses.field(default_factory=ReportConfig)
    cost: CostConfig = dataclasses.field(default_factory=CostConfig)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.dtype not in DTYPES:
            raise UserError(f"--dtype {self.dtype}: valid: {', '.join(DTYPES)}")
        for k in self.sampling.budgets:
            if k > self.data.frames:
                raise UserError(f"--budget K={k} exceeds --frames T={self.data.frames}: a sampler keeps K of T frames")
        if self.recognizer.res > self.data.short_side:
            raise UserError(f"recognizer.res = {self.recognizer.res}: the centre crop cannot exceed the resized "
                            f"shorter side (data.short_side = {self.data.short_side})")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The type hints of ``cls``'s fields (not of its class variables)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def describe(hint: Any) -> str:
    """A type hint in words, for error messages: ``tuple[int, ...]`` -> "a list, each an integer"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join("null" if a is type(None) else describe(a) for a in args)
    if origin is tuple:
        if args[1:] == (Ellipsis,):
            return f"a list, each {describe(args[0])}"
        return f"a list of {len(args)}: [{', '.join(describe(a) for a in args)}]"
    if origin is dict:
        return f"a table of name = value pairs, each value {describe(args[1])}"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return names.get(hint, f"a [{getattr(hint, '__name__', hint)}] table")


def conform(value: Any, hint: Any) -> Any:
    """``value`` as the type hint ``hint`` says, else ValueError. Lists become tuples and integers floats
    where a float is expected; nothing else is converted: ``"3"`` is not an integer, and a bool is not one
    either (``seed = true`` is a mistake, although Python counts True as 1)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            with contextlib.suppress(ValueError):
                return conform(value, arg)
        raise ValueError(value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(value)
        kinds = (args[0],) * len(value) if args[1:] == (Ellipsis,) else args
        if len(kinds) != len(value):
            raise ValueError(value)
        return tuple(conform(v, kind) for v, kind in zip(value, kinds, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(value)
        return {conform(k, args[0]): conform(v, args[1]) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ValueError(value)


def _numbers(value: Any) -> Iterator[int | float]:
    """The ints and floats in ``value`` and in the tuples it nests (bools are not numbers here)."""
    if isinstance(value, tuple):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def check_fields(obj: Any) -> None:
    """Check every field of the dataclass ``obj`` against its type hint (:func:`conform`) and its range (the
    class's ``RANGES``, else :data:`INT_RANGE` / :data:`FLOAT_RANGE`), and store the conformed value. Nested
    dataclasses were checked when built; option tables (:data:`Options`) are their owners' to range-check."""
    ranges: dict[str, Range] = getattr(type(obj), "RANGES", {})
    for field in dataclasses.fields(obj):
        value, hint = getattr(obj, field.name), _hints(type(obj))[field.name]
        try:
            conformed = conform(value, hint)
        except ValueError:
            raise UserError(f"{field.name} = {value!r}: expected {describe(hint)}") from None
        for number in _numbers(conformed):
            problem = ranges.get(field.name, FLOAT_RANGE if isinstance(number, float) else INT_RANGE).problem(number)
            if problem:
                each = "each value " if isinstance(conformed, tuple) else ""
                raise UserError(f"{field.name} = {value!r}: {each}{problem}")
        object.__setattr__(obj, field.name, conformed)


def underscored(options: Options) -> Options:
    """Option tables with each field name's dashes read as underscores (``no-ns`` is the field ``no_ns``)."""
    return {name: {str(k).replace("-", "_"): v for k, v in fields.items()} for name, fields in options.items()}


def option_fields(cls: type, values: Mapping[str, Any], *, where: str, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """``values`` for the option dataclass ``cls``, checked against its init fields and types (:func:`conform`);
    a :class:`UserError` naming ``where`` otherwise. ``exclude``: init fields that are no option."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in exclude}
    out = {}
    for raw, value in values.items():
        key = str(raw).replace("-", "_")
        if key not in fields:
            valid = ", ".join(fields) or "none (it takes no options)"
            raise UserError(f"{where}: unknown option {raw!r}; valid: {valid}")
        hint = _hints(cls)[key]
        try:
            out[key] = conform(value, hint)
        except ValueError:
            raise UserError(f"{where}.{key} = {value!r}: expected {describe(hint)}") from None
    return out


# Presets that check that the suite runs end to end, whose numbers measure nothing: their tables open with
# SMOKE_TEST_NOTE and print no paper figures beside them.
SMOKE_TEST_PRESETS = frozenset({"tiny"})
SMOKE_TEST_NOTE = ("**Smoke test** (preset `{preset}`): a few tiny videos and training epochs, to check that the "
                   "suite runs end to end. These numbers say nothing about the samplers, and no paper figures are "
                   "printed beside them; run the default preset for results.")
PRESETS: dict[str, dict[str, Any]] = {
    # tests: seconds on 2 CPU cores
    "tiny": {
        "data": {"frames": 8, "short_side": 40, "train_views": 1, "options": {"synthetic": dict(
            num_classes=4, train_per_class=10, val_per_class=6, min_frames=6, max_frames=40,
            # 64 px wide, not 48: decord rejects 48-px-wide H.264 ("from_size == to_size") and every tiny
            # video would silently take the PyAV fallback
            width=64, height=48)}},
        "recognizer": {"res": 32, "epochs": 4},
        "fem": {"res": 32, "epochs": 3},
        # 8 of the 40 training videos: the other 32 are one batch of rec_batch, where 34 left a last batch of
        # 2 rows whose BatchNorm variance turns rounding into chaos (1 vs 2 processes disagreed by 50%)
        "holdout_fraction": 0.2,
        "sampling": {"budgets": (2, 4), "main_budget": 2, "epochs": 30, "fits": 2},
        "report": {"fem_archs": ("mobilenet_v2",), "recognizer_variants": (("resnet18", False),), "bootstrap": 200},
        "cost": {"iters": 2},
    },
    # the embedded default: minutes on 2 CPU cores
    "default": {},
    # the paper's settings (ResNet-101 at 224 px, MobileNetV2 at the dataset's FEM resolution, both starting
    # from ImageNet like every peer's): for a GPU
    "paper": {
        "data": {"frames": 16, "short_side": 256, "train_views": 4,
                 "options": {"synthetic": {"width": 340, "height": 256, "max_frames": 300}}},
        "recognizer": {"arch": "resnet101", "res": 224, "epochs": 30, "lr": 0.01, "weights": "imagenet"},
        "fem": {"epochs": 30, "lr": 0.01, "weights": "imagenet"},
        # NSNet's transformer at the FEM's own width (supplementary A.1), not after a projection to 128
        "sampling": {"budgets": (1, 2, 4, 5, 8, 10), "main_budget": 5, "epochs": 120,
                     "options": {"nsnet": {"d": "fem"}}},
        "report": {"recognizer_variants": (("resnet101", False), ("resnet101", True), ("resnet152", True))},
        "cost": {"batch": 64, "iters": 20},
    },
}


def merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Nested settings of several sources, later ones winning leaf by leaf: ``[recognizer]`` with ``epochs`` keeps
    the other recognizer fields of earlier layers, and an option table keeps their other options. A value
    that is not a table (a dataclass, a list) replaces what it meets whole."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = merge(out[key], value)
            else:
                out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def _given(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the ``None`` leaves, which mean "not given" in overrides (a flag left out), and
    without the tables this leaves empty."""
    out = {}
    for key, value in values.items():
        value = _given(value) if isinstance(value, Mapping) else value
        if value is not None and value != {}:
            out[key] = value
    return out


def _build(cls: type, values: Mapping[str, Any], base: Any, path: str) -> Any:
    """``base`` (an instance of ``cls``) with ``values`` replacing its fields; a table for a nested part
    replaces that part's fields one by one. Errors name the field's path (``recognizer.epochs = 0: ...``)."""
    hints, kwargs = _hints(cls), {}
    for raw, value in values.items():
        key = str(raw).replace("-", "_")
        if key not in hints:
            raise UserError(f"unknown setting {path}{raw}; valid: {', '.join(path + h for h in hints)}")
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, Mapping):
            value = _build(hints[key], value, getattr(base, key), f"{path}{key}.")
        kwargs[key] = value
    try:
        return dataclasses.replace(base, **kwargs)
    except UserError as exc:
        raise UserError(f"{path}{exc}") from None


def build_config(preset: str | None = None, *, file_values: Mapping[str, Any] | None = None,
                 dataset_layer: Callable[[str, str], Mapping[str, Any]] | None = None,
                 **overrides: Any) -> RunConfig:
    """The preset's values, then ``dataset_layer(preset, dataset)``'s, then a config file's (nested), then
    ``overrides`` (fields, part tables, or :data:`LEGACY_KEYS`); ``None`` anywhere = "not given". The preset
    is the argument, else the file's, else ``default``; a file's :data:`OUTPUT_SETTINGS` are ignored here."""
    file_values = {k: v for k, v in (file_values or {}).items() if k not in OUTPUT_SETTINGS}
    preset = preset or file_values.pop("preset", None) or "default"
    file_values.pop("preset", None)
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    overrides = _given(nest_legacy({k: v for k, v in overrides.items() if v is not None}, source="build_config"))
    values = merge(PRESETS[preset], file_values, overrides)
    if dataset_layer is not None:
        data = values.get("data", {})
        dataset = data.dataset if isinstance(data, DataConfig) else data.get("dataset", DataConfig.dataset)
        values = merge(PRESETS[preset], dataset_layer(preset, dataset), file_values, overrides)
    return _build(RunConfig, {**values, "preset": preset}, RunConfig(), "")


# Every flat key of the config before it was nested (and of run.json's "config" then) -> its nested path.
# `weights` is read by nest_legacy (a table of role = source, or "none", became recognizer.weights and
# fem.weights), and so are DATASET_LEGACY_KEYS.
LEGACY_KEYS: dict[str, str] = {
    "dataset": "data.dataset",
    "data_root": "data.root",
    "lenient": "data.lenient",
    "video_list": "data.video_list",
    "filename_tmpl": "data.filename_tmpl",
    "start_index": "data.start_index",
    "frames": "data.frames",
    "short_side": "data.short_side",
    "train_views": "data.train_views",
    "synthetic": "data.options.synthetic",
    "rec_arch": "recognizer.arch",
    "rec_res": "recognizer.res",
    "rec_tsn": "recognizer.tsn",
    "rec_epochs": "recognizer.epochs",
    "rec_lr": "recognizer.lr",
    "rec_batch": "recognizer.batch",
    "fem_arch": "fem.arch",
    "fem_res": "fem.res",
    "fem_epochs": "fem.epochs",
    "fem_lr": "fem.lr",
    "fem_batch": "fem.batch",
    "samplers": "sampling.samplers",
    "budgets": "sampling.budgets",
    "main_budget": "sampling.main_budget",
    "sampler_epochs": "sampling.epochs",
    "sampler_batch": "sampling.batch",
    "sampler_lr": "sampling.lr",
    "sampler_options": "sampling.options",
    "aggregation": "sampling.aggregation",
    "tables": "report.tables",
    "table_fem_archs": "report.fem_archs",
    "table_rec_variants": "report.recognizer_variants",
    "bootstrap": "report.bootstrap",
    "export_predictions": "report.export_predictions",
    "export_selections": "report.export_selections",
    "export_bank": "report.export_bank",
    "throughput_batch": "cost.batch",
    "throughput_iters": "cost.iters",
}
# Flat keys of the old config that no longer exist, with why: a file that sets one is refused, naming it.
REMOVED_KEYS: dict[str, str] = {
    "rec_tsn_epochs": "'w/ TSN' training stops early like every other, recognizer.epochs being its cap",
}
# Flat keys that became options of the file's dataset adapter (data.options.<dataset>.<key>; split:
# data.options.ucf101.split), with the value that meant "not set" (then dropped: every run.json held them,
# whatever its dataset).
DATASET_LEGACY_KEYS: dict[str, Any] = {"annotations": None, "classes": None, "train_list": None, "val_list": None,
                                       "split": 1}


def nest_legacy(values: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """A config file's settings with every flat key of the old config (:data:`LEGACY_KEYS`, ``weights`` and
    :data:`DATASET_LEGACY_KEYS`) moved to its nested place; nested and output settings are kept, and a key
    that is neither is left for the check to name. A place set twice (``rec_epochs`` beside
    ``[recognizer] epochs``) is an error naming ``source``."""
    fields = {f.name for f in dataclasses.fields(RunConfig)} | set(OUTPUT_SETTINGS)
    keys = {str(k).replace("-", "_"): v for k, v in values.items()}
    data = keys.get("data")
    dataset = keys.get("dataset", data.get("dataset") if isinstance(data, Mapping) else None) or DataConfig.dataset
    out: dict[str, Any] = {}
    placed: dict[tuple[str, ...], str] = {}

    def put(path: str, value: Any, key: str) -> None:
        parts = tuple(path.split("."))
        # the same place, or one inside or around it, set twice
        clash = next((k for p, k in placed.items() if p == parts[:len(p)] or p[:len(parts)] == parts), None)
        if clash:
            raise UserError(f"{source}: {clash} and {key} both set {path}")
        placed[parts] = key
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    for key, value in keys.items():
        if key in REMOVED_KEYS:
            raise UserError(f"{source}: {key} is no longer a setting ({REMOVED_KEYS[key]}): remove it")
        if key == "weights":
            put_weights(value, lambda role, src: put(f"{role}.weights", src, "weights"))
        elif key in DATASET_LEGACY_KEYS:
            if value != DATASET_LEGACY_KEYS[key]:  # split: only UCF101 ever had one
                put(f"data.options.{'ucf101' if key == 'split' else dataset}.{key}", value, key)
        elif key in LEGACY_KEYS:
            put(LEGACY_KEYS[key], value, key)
        elif key in fields and isinstance(value, Mapping):
            for inner, v in value.items():
                put(f"{key}.{str(inner).replace('-', '_')}", v, f"[{key}] {inner}")
        else:
            put(key, value, key)
    return out


def put_weights(value: Any, put: Callable[[str, Any], None]) -> None:
    """The old ``weights`` (a table of role = source replacing the whole mapping, a role left out starting from
    scratch; or ``"none"``) as one ``put(role, source)`` per role."""
    if isinstance(value, str) and value == NO_WEIGHTS:
        value = {}
    if not isinstance(value, Mapping):
        raise UserError(f"weights = {value!r}: expected {NO_WEIGHTS!r} or a table of role = source "
                        f"(roles: {', '.join(WEIGHT_ROLES)}; source: a checkpoint file, imagenet or none)")
    roles = sorted(set(value) - set(WEIGHT_ROLES))
    if roles:
        raise UserError(f"weights for unknown role(s) {roles}; valid: {', '.join(WEIGHT_ROLES)}")
    for role in WEIGHT_ROLES:
        put(role, value.get(role, NO_WEIGHTS))


def _check_layer(cls: type, values: Mapping[str, Any], *, source: str, path: str = "") -> dict[str, Any]:
    """A config file's (nested) settings for ``cls``: keys checked against its fields (plus, for RunConfig,
    the output settings), values against their type hints (:func:`conform`), nested tables recursively.
    Errors name ``source``, the file."""
    hints = {**_hints(cls), **(OUTPUT_SETTINGS if cls is RunConfig else {})}
    out: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in hints:
            raise UserError(f"{source}: unknown setting {path}{raw_key!r}; valid: {', '.join(hints)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            out[key] = _check_layer(hint, value, source=source, path=f"{path}{key}.")
            continue
        try:
            out[key] = conform(value, hint)
        except ValueError:
            raise UserError(f"{source}: {path}{key} = {value!r}: expected {describe(hint)}") from None
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML, YAML or JSON file (or a ``run.json``'s ``config``), nested as RunConfig is, types
    checked so a mistake names the file. May also set ``out``, ``cache_dir``, ``quiet`` and ``overwrite``."""
    path = Path(path)
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise UserError(f"--config {path}: expected a .toml, .yaml, .yml or .json file")
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix == ".toml":
            values = tomllib.loads(text)
        elif path.suffix == ".json":
            values = json.loads(text)
            if isinstance(values, dict) and isinstance(values.get("config"), dict):
                values = values["config"]
        else:
            values = yaml.safe_load(text) or {}
    except OSError as exc:
        raise UserError(f"--config {path}: {exc.strerror}") from None
    except (ValueError, yaml.YAMLError) as exc:  # the TOML and JSON errors and UnicodeDecodeError are ValueErrors
        raise UserError(f"--config {path}: not valid {path.suffix[1:].upper()}: {' '.join(str(exc).split())}") from None
    if not isinstance(values, dict):
        raise UserError(f"--config {path}: expected a table of settings at the top level")
    try:
        nested = nest_legacy(values, source=str(path))
    except UserError as exc:
        raise UserError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    return _check_layer(RunConfig, nested, source=str(path))


def run_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run.json's ``config`` (of either shape) nested as RunConfig is, unchecked; ``{}`` where it cannot be
    read: for code that reads a few fields of other runs' files (``sampling.budgets``)."""
    try:  # a removed key says nothing about the fields read here
        return nest_legacy({k: v for k, v in config.items() if k not in REMOVED_KEYS}, source="run.json")
    except UserError:
        return {}
