"""Run configuration and presets.

One frozen dataclass holds every knob; a preset is a named set of overrides, and every field can be
overridden again from the command line. The stage cache hashes the fields a stage reads, so changing a knob
recomputes exactly the stages downstream of it.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from pathlib import Path
from typing import Any

from samplerbench.errors import UserError


@dataclasses.dataclass(frozen=True, kw_only=True)
class SyntheticConfig:
    """The generated dataset (see :mod:`samplerbench.datasets.synthetic` for what the videos contain)."""

    num_classes: int = 10
    train_per_class: int = 24
    val_per_class: int = 12
    min_frames: int = 12  # some videos are shorter than T on purpose
    max_frames: int = 120
    width: int = 96
    height: int = 72
    fps: int = 8
    salient_fraction: tuple[float, float] = (0.15, 0.35)  # share of each video inside salient segments
    confuser_strength: float = 0.35  # opacity of other classes' faint patterns in non-salient frames


TABLE_NAMES = ("main", "guiding", "fusion", "fem", "recognizer", "saliency")
WEIGHT_ROLES = ("recognizer", "fem")
DTYPES = ("float32", "float64")
# Flags that say where a run writes and how loudly, not what it computes: a config file may set them, but
# they are not RunConfig fields (nor in run.json's config), so moving a run's output never changes a key.
OUTPUT_SETTINGS = ("out", "cache_dir", "quiet")


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
    samplers: tuple[str, ...] = ()  # empty = every registered sampler
    seed: int = 0
    device: str = "cpu"
    # Floating-point type of training and of the cached per-frame outputs. Training from scratch amplifies
    # rounding: in the tiny preset, summing the same gradient in another order (2 threads instead of 1, or 2
    # processes instead of 1) moves the float32 weights by ~1% within 8 steps, so runs that should agree
    # (any number of processes) agree only to that. "float64" shrinks the seed of that difference by 1e9,
    # which makes such runs agree to many digits; it is for checking, at several times the run time.
    dtype: str = "float32"
    # role ("recognizer" / "fem") -> a local checkpoint to start training from; "imagenet" = torchvision's file
    # already in TORCH_HOME. Part of the config (and of run.json) because it changes every number downstream.
    weights: dict[str, str] = dataclasses.field(default_factory=dict)
    # frames
    frames: int = 16  # T, uniformly pre-sampled frames per video
    budgets: tuple[int, ...] = (1, 2, 4, 8)  # K values swept
    main_budget: int = 4  # the K of the headline comparison and the ablation tables
    short_side: int = 56  # recognizer frames: shorter side resized to this ...
    rec_res: int = 48  # ... then centre-cropped to rec_res x rec_res
    fem_res: int = 48  # FEM frames: the recognizer crop resized to this
    train_views: int = 2  # temporal-random-shift draws decoded per training video
    workers: int = 2  # decoding processes (DataLoader workers) per rank; not part of any cache key
    # recognizer
    rec_arch: str = "resnet18"
    rec_tsn: bool = False  # train "w/ TSN" (K segments, averaged logits) instead of one frame per step
    rec_epochs: int = 7  # passes over the training rows (train_views per video)
    # "w/ TSN" sees K frames per video per step; None trains it for rec_epochs too. The default preset gives it
    # fewer epochs so that both variants see about as many frames (and fit the CPU budget).
    rec_tsn_epochs: int | None = 2
    rec_lr: float = 0.01  # 0.05 diverged in the first epochs from scratch (loss above ln C), then stalled
    rec_batch: int = 32
    # FEM
    fem_arch: str = "mobilenet_v2"
    # From scratch the FEM needs far more steps than its size suggests: at 6 epochs / lr 0.02 (48 SGD steps)
    # MobileNetV2 stayed at chance on salient val frames (9.8% for 10 classes) and every FEM-based sampler
    # read near-uninformative features; at lr 0.05, 12 epochs reached 49% and 18 epochs 55% (the ResNet-18
    # recognizer: 53%). 14 is what the 15-minute CPU budget allows; Table 3 reports each run's figure.
    fem_epochs: int = 14
    fem_lr: float = 0.05
    fem_batch: int = 64
    # samplers
    # The paper trains 120 epochs over ~10k videos; a few hundred need fewer. With the lr decays at 50/120 and
    # 75/120 of the epochs, 50 epochs left NSNet's loss flat after the second decay (0.967 at epoch 31, 0.973
    # at epoch 41), so 40 lose nothing and save the CPU budget a minute.
    sampler_epochs: int = 40
    sampler_batch: int = 64
    sampler_lr: float = 1e-2
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
    export_predictions: bool = False  # write <out>/<dataset>/predictions/<sampler>_K<k>.json (ActivityNet format)
    synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise UserError(f"--dtype {self.dtype}: valid: {', '.join(DTYPES)}")
        if self.workers < 1:
            raise UserError(f"--workers {self.workers}: decoding needs at least one worker process")
        if self.frames < 1:
            raise UserError(f"--frames T={self.frames} must be at least 1")
        for k in self.budgets:
            if k < 1:
                raise UserError(f"--budget K={k} must be at least 1")
            if k > self.frames:
                raise UserError(f"--budget K={k} exceeds --frames T={self.frames}: a sampler keeps K of T frames")
        roles = sorted(set(self.weights) - set(WEIGHT_ROLES))
        if roles:
            raise UserError(f"weights for unknown role(s) {roles}; valid: {', '.join(WEIGHT_ROLES)}")
        unknown = sorted(set(self.tables) - set(TABLE_NAMES))
        if unknown:
            raise UserError(f"unknown table(s) {unknown}; valid: {', '.join(TABLE_NAMES)}, all")
        if self.split not in (1, 2, 3):
            raise UserError(f"--split {self.split}: UCF101 has splits 1, 2 and 3")
        if self.main_budget not in self.budgets:
            object.__setattr__(self, "main_budget", min(self.budgets, key=lambda k: abs(k - self.main_budget)))


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
        rec_tsn_epochs=2,
        fem_epochs=3,
        fem_lr=0.02,
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
    # the paper's settings (ResNet-101 at 224 px, MobileNetV2 at the dataset's FEM resolution): for a GPU
    "paper": dict(
        frames=16,
        budgets=(1, 2, 4, 5, 8, 10),
        main_budget=5,
        short_side=256,
        rec_res=224,
        train_views=4,
        rec_arch="resnet101",
        rec_epochs=30,
        rec_tsn_epochs=None,
        rec_lr=0.01,
        fem_epochs=30,
        fem_lr=0.01,
        sampler_epochs=120,
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
    between the preset and the file: any explicit ``fem_res`` still wins. A file's output settings
    (:data:`OUTPUT_SETTINGS`) are the command line's business and are ignored here.
    """
    file_values = {k: v for k, v in (file_values or {}).items() if k not in OUTPUT_SETTINGS}
    preset = preset or file_values.pop("preset", None) or "default"
    file_values.pop("preset", None)
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    values = {**PRESETS[preset], **file_values, **overrides}
    if preset == "paper":
        from samplerbench.datasets import dataset_spec  # adapters import this module

        values = {"fem_res": dataset_spec(values.get("dataset", "synthetic")).paper_fem_res, **values}
    return RunConfig(preset=preset, **values)


def _coerce(cls: type, values: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Check the keys of a config mapping against ``cls``'s fields and turn lists back into tuples."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    out = {}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        if cls is RunConfig and key in OUTPUT_SETTINGS:
            out[key] = value
            continue
        if key not in fields:
            raise UserError(f"{source}: unknown setting {raw_key!r}; valid: {', '.join([*fields, *OUTPUT_SETTINGS])}")
        if key == "synthetic" and isinstance(value, dict):
            value = SyntheticConfig(**_coerce(SyntheticConfig, value, source=f"{source} [synthetic]"))
        elif isinstance(value, list) and typing.get_origin(hints[key]) is tuple:
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        out[key] = value
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML, YAML or JSON file, keyed by RunConfig field (dashes or underscores).

    A run's ``run.json`` is accepted as is (its ``config`` entry is used), so any run can be repeated
    exactly with ``--config results/<dataset>/run.json``. Besides the fields, a file may set the output
    settings ``out``, ``cache_dir`` and ``quiet``, so that every flag has a config-file form.
    """
    path = Path(path)
    try:
        text = path.read_text()
        if path.suffix == ".toml":
            values = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            values = json.loads(text)
            values = values.get("config", values)
        else:
            raise UserError(f"--config {path}: expected a .toml, .yaml, .yml or .json file")
    except OSError as exc:
        raise UserError(f"--config {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise UserError(f"--config {path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(values, dict):
        raise UserError(f"--config {path}: expected a table of settings at the top level")
    return _coerce(RunConfig, values, source=str(path))
