"""The run configuration: one frozen dataclass per part of a run (:class:`DataConfig`, :class:`BackboneConfig` for
recognizer and FEM, :class:`SamplingConfig`, :class:`ReportConfig`, :class:`CostConfig`) nested in :class:`RunConfig`.

Every value is checked where a config is built, whatever its source: type
(:func:`~samplerbench.core.fields.check_fields`),
range (a class's ``RANGES``) and combinations (``__post_init__``); nothing is silently rewritten. Adapter and sampler
options are tables keyed by name (``[sampling.options.nsnet]``), checked by their owners."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from samplerbench.core.distributed import local_cores
from samplerbench.core.errors import UserError
from samplerbench.core.fields import Options, Range, check_fields, underscored

WEIGHT_ROLES = ("recognizer", "fem")  # the RunConfig fields that are a BackboneConfig
Network = tuple[str, str, bool]  # a recognizer or FEM a run trains: (role of WEIGHT_ROLES, architecture, w/ TSN)
NO_WEIGHTS = "none"  # a weights value: train from scratch (stored as None)
DTYPES = ("float32", "float64")
# What reads a video's frames: "cpu" (decord, PyAV where decord fails) or "torchcodec" (on the run's device, NVDEC
# on CUDA; the CPU decoders where it fails). Frame folders' JPEGs are decoded on the run's device either way.
DECODERS = ("cpu", "torchcodec")
# Flags that say where a run writes and how loudly, not what it computes, with their types: a config file may
# set them, but they are not RunConfig fields (nor in run.json's config), so moving a run's output never
# changes a key.
OUTPUT_SETTINGS: dict[str, type] = {"out": str, "cache_dir": str, "quiet": bool, "overwrite": bool}
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
    # Each trainable sampler trains by its own paper's schedule (its constructor's defaults: docs/results.md,
    # "Training"); these override that schedule's epochs, batch and lr for every trainable sampler (None: each its own).
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

    # Registered table names (samplerbench.tables.TABLES, which checks them where a run or the command line starts);
    # empty = every registered table
    tables: tuple[str, ...] = ()
    fem_archs: tuple[str, ...] = ("shufflenet_v2_x1_0", "mobilenet_v2", "efficientnet_b0")  # Table 3's FEMs
    recognizer_variants: tuple[tuple[str, bool], ...] = (  # Table 4's (arch, w/ TSN) rows
        ("resnet18", False), ("resnet18", True), ("resnet34", True))
    bootstrap: int = 1000  # paired-bootstrap resamples of the main table's confidence intervals
    export_predictions: bool = False  # write <run folder>/predictions/<sampler>_K<k>.json (ActivityNet format)
    export_selections: bool = False  # write <run folder>/selections/<sampler>_K<k>.json (samplerbench select's)
    export_bank: bool = False  # write <run folder>/bank/, the frame bank of the run's outputs (formats.bank)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CostConfig:
    """How throughput is timed: ``batch`` videos per timed call, at least ``iters`` rounds of one call per pipeline
    (:func:`~samplerbench.measures.cost.measure_interleaved`: the median of fewer per-round ratios is mostly noise)."""

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


