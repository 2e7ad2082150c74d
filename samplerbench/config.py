"""Run configuration and presets.

One frozen dataclass holds every knob; a preset is a named set of overrides, and every field can be
overridden again from the command line. The stage cache hashes the fields a stage reads, so changing a knob
recomputes exactly the stages downstream of it.

Every value is checked where a config is built, whatever its source (flag, file, preset, code): its type
against the field's type hint (:func:`check_fields`; a new field is checked without a line of its own) and
its range (:data:`RANGES`), so a mistake is one line before any work, never a traceback minutes later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import tomllib
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from samplerbench.distributed import local_cores
from samplerbench.errors import UserError


@dataclasses.dataclass(frozen=True, kw_only=True)
class SyntheticConfig:
    """The generated dataset (see :mod:`samplerbench.datasets.synthetic` for what the videos contain)."""

    num_classes: int = 10
    train_per_class: int = 30
    val_per_class: int = 40
    min_frames: int = 12  # some videos are shorter than T on purpose
    max_frames: int = 120
    width: int = 96
    height: int = 72
    fps: int = 8
    salient_fraction: tuple[float, float] = (0.15, 0.35)  # share of each video inside salient segments
    shot_frames: int = 24  # mean shot length: a video cuts to a new scene every this many frames (± 50%)
    context: float = 0.5  # share of a class's shots filmed in one of its two home scenes (else any scene)
    camera_pan: float = 0.05  # how far the camera wanders, as a fraction of the shorter side (at most)
    camera_zoom: float = 0.08  # the camera's zoom factor stays within 1 ± this (at most)

    def __post_init__(self) -> None:
        check_fields(self)


TABLE_NAMES = ("main", "guiding", "fusion", "fem", "recognizer", "saliency")
WEIGHT_ROLES = ("recognizer", "fem")
NO_WEIGHTS = "none"  # a weights value: train from scratch
DTYPES = ("float32", "float64")
# Flags that say where a run writes and how loudly, not what it computes, with their types: a config file may
# set them, but they are not RunConfig fields (nor in run.json's config), so moving a run's output never
# changes a key.
OUTPUT_SETTINGS: dict[str, type] = {"out": str, "cache_dir": str, "quiet": bool, "overwrite": bool}
# What a sampler option may hold in a config file: a scalar, or a list of scalars (a tuple once conformed). Its
# exact type is the sampler constructor's own hint, checked by samplers.base.check_options.
Scalar = int | float | str | bool
OptionValue = Scalar | None | tuple[Scalar, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Every knob of a run. Field names are the CLI's flag names with dashes for underscores."""

    preset: str = "default"
    dataset: str = "synthetic"
    data_root: str | None = None
    annotations: str | None = None  # annotation file; None = the adapter's default inside data_root
    lenient: bool = False  # skip malformed annotation entries (listed in run.json) instead of stopping
    # list-based datasets (fcvid, ucf101, minikinetics, list); None = the adapter's default inside data_root
    classes: str | None = None  # class list, one name per line
    train_list: str | None = None  # training list file (`path label...` lines; Mini-Kinetics: its id list)
    val_list: str | None = None  # validation list file
    split: int = 1  # UCF101's official train/test split, 1, 2 or 3
    # frame folders (mmaction2's rawframes): frame i of a folder is filename_tmpl.format(start_index + i)
    filename_tmpl: str = "img_{:05d}.jpg"
    start_index: int = 1
    # file of video ids (one a line): each split with a listed video keeps only the listed ones (datasets.videolist)
    video_list: str | None = None
    samplers: tuple[str, ...] = ()  # empty = every registered sampler
    seed: int = 0
    device: str = "cpu"
    # Floating-point type of training and of the cached per-frame outputs. Training from scratch amplifies
    # rounding: in the tiny preset, summing the same gradient in another order (2 threads instead of 1, or 2
    # processes instead of 1) moves the float32 weights by ~1% within 8 steps, so runs that should agree
    # (any number of processes) agree only to that. "float64" shrinks the seed of that difference by 1e9,
    # which makes such runs agree to many digits; it is for checking, at several times the run time.
    dtype: str = "float32"
    # role ("recognizer" / "fem") -> where its networks start: a local checkpoint, or "imagenet" = each
    # architecture's own torchvision ImageNet file in TORCH_HOME (Table 3's and 4's variants included). A role
    # left out starts from scratch; "none" (for the whole mapping or for a role) says so explicitly and is
    # stored as left out. Part of the config (and of run.json and the training keys): it changes every number.
    weights: dict[str, str] | str = dataclasses.field(default_factory=dict)  # a dict once built
    # frames
    frames: int = 16  # T, uniformly pre-sampled frames per video
    budgets: tuple[int, ...] = (1, 2, 4, 8)  # K values swept
    main_budget: int = 4  # the K of the headline comparison and the ablation tables
    short_side: int = 56  # recognizer frames: shorter side resized to this ...
    rec_res: int = 48  # ... then centre-cropped to rec_res x rec_res
    fem_res: int = 48  # FEM frames: the recognizer crop resized to this
    train_views: int = 2  # temporal-random-shift draws decoded per training video
    # processes per rank that generate the synthetic videos and decode (DataLoader workers); not part of any
    # cache key. Default: the cores this process may use, divided among torchrun's processes on the node.
    workers: int = dataclasses.field(default_factory=local_cores)
    # training: every trained model (recognizer, FEM, sampler) holds out this share of the training videos and
    # stops when its loss on them has not improved for `patience` epochs; the *_epochs fields are caps
    holdout_fraction: float = 0.15
    patience: int = 3
    # recognizer
    rec_arch: str = "resnet18"
    rec_tsn: bool = False  # train "w/ TSN" (K segments, averaged logits) instead of one frame per step
    rec_epochs: int = 7  # at most, passes over the training rows (train_views per video)
    rec_lr: float = 0.005
    rec_batch: int = 32
    # FEM
    fem_arch: str = "mobilenet_v2"
    fem_epochs: int = 14  # at most
    fem_lr: float = 0.02
    fem_batch: int = 64
    # samplers
    sampler_epochs: int = 40  # at most
    sampler_batch: int = 64
    sampler_lr: float = 1e-2
    # Constructor fields of individual samplers, {sampler: {field: value}} (`[sampler_options.nsnet]` in a file,
    # `--sampler-option nsnet.d=256` as a flag): part of that sampler's cache key, run.json and checkpoint. Merged
    # field by field over the preset's, so setting one option keeps the preset's others.
    sampler_options: dict[str, dict[str, OptionValue]] = dataclasses.field(default_factory=dict)
    # How the K selected frames' outputs become a video's score (metrics.AGGREGATIONS; see metrics.video_scores):
    # mean_softmax (default), mean_logits (AR-Net), max_features (OCSampler / FrameExit heads).
    aggregation: str = "mean_softmax"
    # tables
    tables: tuple[str, ...] = TABLE_NAMES
    table_fem_archs: tuple[str, ...] = ("shufflenet_v2_x1_0", "mobilenet_v2", "efficientnet_b0")
    table_rec_variants: tuple[tuple[str, bool], ...] = (("resnet18", False), ("resnet18", True), ("resnet34", True))
    # cost
    throughput_batch: int = 8
    throughput_iters: int = 3
    compile: bool = False
    remeasure: bool = False  # time throughput and decoding again instead of reading the cache; in no cache key
    bootstrap: int = 1000
    export_predictions: bool = False  # write <run folder>/predictions/<sampler>_K<k>.json (ActivityNet format)
    export_selections: bool = False  # write <run folder>/selections/<sampler>_K<k>.json (samplerbench select's)
    export_bank: bool = False  # write <run folder>/bank/, the frame bank of the run's outputs (samplerbench.bank)
    synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)

    def __post_init__(self) -> None:
        check_fields(self)
        if isinstance(self.weights, str):
            if self.weights != NO_WEIGHTS:
                raise UserError(f"weights = {self.weights!r}: expected {NO_WEIGHTS!r} or a table of role = source "
                                f"(roles: {', '.join(WEIGHT_ROLES)}; source: a checkpoint file, imagenet or none)")
            object.__setattr__(self, "weights", {})
        if self.dtype not in DTYPES:
            raise UserError(f"--dtype {self.dtype}: valid: {', '.join(DTYPES)}")
        if not self.budgets:
            raise UserError("--budget: give at least one K")
        object.__setattr__(self, "weights", {role: src for role, src in self.weights.items() if src != NO_WEIGHTS})
        for k in self.budgets:
            if k > self.frames:
                raise UserError(f"--budget K={k} exceeds --frames T={self.frames}: a sampler keeps K of T frames")
        if self.rec_res > self.short_side:
            raise UserError(f"rec_res = {self.rec_res}: the centre crop cannot exceed the resized shorter side "
                            f"(short_side = {self.short_side})")
        roles = sorted(set(self.weights) - set(WEIGHT_ROLES))
        if roles:
            raise UserError(f"weights for unknown role(s) {roles}; valid: {', '.join(WEIGHT_ROLES)}")
        unknown = sorted(set(self.tables) - set(TABLE_NAMES))
        if unknown:
            raise UserError(f"unknown table(s) {unknown}; valid: {', '.join(TABLE_NAMES)}, all")
        if self.main_budget not in self.budgets:
            object.__setattr__(self, "main_budget", min(self.budgets, key=lambda k: abs(k - self.main_budget)))


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
# Fields whose numbers do not follow INT_RANGE / FLOAT_RANGE (for a tuple field, each of its numbers).
RANGES: dict[str, Range] = {
    "seed": Range(0, 2**32 - 1),  # what numpy accepts as a seed
    "split": Range(1, 3),  # UCF101's official splits
    "start_index": Range(0),  # a frame folder's first file number
    "context": Range(0.0, 1.0),
    "camera_pan": Range(0.0, 0.08),  # the largest pan and zoom that keep the pattern inside the centre crop
    "camera_zoom": Range(0.0, 0.2),
    "holdout_fraction": Range(0.0, 0.5, open_low=True),  # a share of the training videos
}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


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
    """Check every field of the dataclass ``obj`` against its type hint (:func:`conform`) and its range
    (:data:`RANGES`, else :data:`INT_RANGE` / :data:`FLOAT_RANGE`), and store the conformed value.

    A field added later is checked by its type hint alone; it needs an entry in :data:`RANGES` only when its
    numbers may be zero or negative.
    """
    for field in dataclasses.fields(obj):
        value, hint = getattr(obj, field.name), _hints(type(obj))[field.name]
        try:
            conformed = conform(value, hint)
        except ValueError:
            raise UserError(f"{field.name} = {value!r}: expected {describe(hint)}") from None
        for number in _numbers(conformed):
            problem = RANGES.get(field.name, FLOAT_RANGE if isinstance(number, float) else INT_RANGE).problem(number)
            if problem:
                each = "each value " if isinstance(conformed, tuple) else ""
                raise UserError(f"{field.name} = {value!r}: {each}{problem}")
        object.__setattr__(obj, field.name, conformed)


# Presets that check that the suite runs end to end, whose numbers measure nothing: their tables open with
# SMOKE_TEST_NOTE and print no paper figures beside them.
SMOKE_TEST_PRESETS = frozenset({"tiny"})
SMOKE_TEST_NOTE = ("**Smoke test** (preset `{preset}`): a few tiny videos and training epochs, to check that the "
                   "suite runs end to end. These numbers say nothing about the samplers, and no paper figures are "
                   "printed beside them; run the default preset for results.")
PRESETS: dict[str, dict[str, Any]] = {
    # tests: seconds on 2 CPU cores
    "tiny": dict(
        frames=8,
        budgets=(2, 4),
        main_budget=2,
        short_side=40,
        rec_res=32,
        fem_res=32,
        train_views=1,
        rec_epochs=4,
        fem_epochs=3,
        # 8 of the 40 training videos: the other 32 are one batch of rec_batch, where 34 left a last batch of
        # 2 rows whose BatchNorm variance turns rounding into chaos (1 vs 2 processes disagreed by 50%)
        holdout_fraction=0.2,
        sampler_epochs=30,
        table_fem_archs=("mobilenet_v2",),
        table_rec_variants=(("resnet18", False),),
        throughput_iters=2,
        bootstrap=200,
        synthetic=SyntheticConfig(num_classes=4, train_per_class=10, val_per_class=6, min_frames=6, max_frames=40,
                                  # 64 px wide, not 48: decord rejects 48-px-wide H.264 ("from_size ==
                                  # to_size") and every tiny video would silently take the PyAV fallback
                                  width=64, height=48),
    ),
    # the embedded default: minutes on 2 CPU cores
    "default": {},
    # the paper's settings (ResNet-101 at 224 px, MobileNetV2 at the dataset's FEM resolution, both starting
    # from ImageNet like every peer's): for a GPU
    "paper": dict(
        weights={"recognizer": "imagenet", "fem": "imagenet"},
        frames=16,
        budgets=(1, 2, 4, 5, 8, 10),
        main_budget=5,
        short_side=256,
        rec_res=224,
        train_views=4,
        rec_arch="resnet101",
        rec_epochs=30,
        rec_lr=0.01,
        fem_epochs=30,
        fem_lr=0.01,
        sampler_epochs=120,
        # NSNet's transformer at the FEM's own width (supplementary A.1), not after a projection to 128
        sampler_options={"nsnet": {"d": "fem"}},
        table_rec_variants=(("resnet101", False), ("resnet101", True), ("resnet152", True)),
        throughput_batch=64,
        throughput_iters=20,
        synthetic=SyntheticConfig(width=340, height=256, max_frames=300),
    ),
}


def build_config(preset: str | None = None, *, file_values: dict[str, Any] | None = None,
                 **overrides: Any) -> RunConfig:
    """The preset's values, then a config file's, then the explicit overrides (``None`` = "not given").

    The preset is the argument, else the file's ``preset``, else ``default``. The ``paper`` preset's FEM
    resolution is the dataset's own (224 px, or 112 px for Mini-Kinetics; supplementary A.1), so it sits
    between the preset and the file: any explicit ``fem_res`` still wins. ``sampler_options`` are merged
    field by field (:func:`merge_options`). A file's output settings (:data:`OUTPUT_SETTINGS`) are the command
    line's business and are ignored here.
    """
    file_values = {k: v for k, v in (file_values or {}).items() if k not in OUTPUT_SETTINGS}
    preset = preset or file_values.pop("preset", None) or "default"
    file_values.pop("preset", None)
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    values = {**PRESETS[preset], **file_values, **overrides}
    layers = [layer.get("sampler_options") or {} for layer in (PRESETS[preset], file_values, overrides)]
    if all(isinstance(layer, dict) for layer in layers):  # else RunConfig names the malformed value
        values["sampler_options"] = merge_options(*layers)
    if preset == "paper":
        from samplerbench.datasets import dataset_spec  # adapters import this module

        values = {"fem_res": dataset_spec(values.get("dataset", "synthetic")).paper_fem_res, **values}
    return RunConfig(preset=preset, **values)


def merge_options(*layers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Sampler options of several sources, later ones winning field by field (not sampler by sampler); a field
    written with dashes (``no-ns``) is the field with underscores."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for sampler, fields in layer.items():
            if not isinstance(fields, dict):  # malformed: RunConfig names it
                merged[sampler] = fields
                continue
            earlier = merged.get(sampler) if isinstance(merged.get(sampler), dict) else {}
            merged[sampler] = {**earlier, **{str(k).replace("-", "_"): v for k, v in fields.items()}}
    return merged


def _coerce(cls: type, values: dict[Any, Any], *, source: str) -> dict[str, Any]:
    """A config file's mapping for ``cls``: keys checked against its fields (plus, for RunConfig, the output
    settings), values against their type hints (:func:`conform`); a nested table becomes the dataclass its
    field holds (``[synthetic]``). Errors name ``source``, the file."""
    hints = {**_hints(cls), **(OUTPUT_SETTINGS if cls is RunConfig else {})}
    out = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in hints:
            raise UserError(f"{source}: unknown setting {raw_key!r}; valid: {', '.join(hints)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = hint(**_coerce(hint, value, source=f"{source} [{raw_key}]"))
        try:
            out[key] = conform(value, hint)
        except ValueError:
            raise UserError(f"{source}: {raw_key} = {value!r}: expected {describe(hint)}") from None
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML, YAML or JSON file, keyed by RunConfig field (dashes or underscores).

    A run's ``run.json`` is accepted as is (its ``config`` entry is used), so any run can be repeated
    exactly with ``--config results/<dataset>/run.json``. Besides the fields, a file may set the output
    settings ``out``, ``cache_dir``, ``quiet`` and ``overwrite``, so that every flag has a config-file form.
    Every value's type is checked here, so that a mistake names the file; a byte-order mark is ignored.
    """
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
    return _coerce(RunConfig, values, source=str(path))
