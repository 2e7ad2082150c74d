"""Run configuration and presets.

One frozen dataclass holds every knob; a preset is a named set of overrides, and every field can be
overridden again from the command line. The stage cache hashes the fields a stage reads, so changing a knob
recomputes exactly the stages downstream of it.
"""

from __future__ import annotations

import dataclasses
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Every knob of a run. Field names are the CLI's flag names with dashes for underscores."""

    preset: str = "default"
    dataset: str = "synthetic"
    data_root: str | None = None
    samplers: tuple[str, ...] = ()  # empty = every registered sampler
    seed: int = 0
    device: str = "cpu"
    # frames
    frames: int = 16  # T, uniformly pre-sampled frames per video
    budgets: tuple[int, ...] = (1, 2, 4, 8)  # K values swept
    main_budget: int = 4  # the K of the headline comparison and the ablation tables
    short_side: int = 72  # recognizer frames: shorter side resized to this ...
    rec_res: int = 64  # ... then centre-cropped to rec_res x rec_res
    fem_res: int = 64  # FEM frames: the recognizer crop resized to this
    train_views: int = 2  # temporal-random-shift draws decoded per training video
    # recognizer
    rec_arch: str = "resnet18"
    rec_tsn: bool = False  # train "w/ TSN" (K segments, averaged logits) instead of one frame per step
    rec_epochs: int = 12
    rec_lr: float = 0.05
    rec_batch: int = 32
    # FEM
    fem_arch: str = "mobilenet_v2"
    fem_epochs: int = 10
    fem_lr: float = 0.05
    fem_batch: int = 64
    # samplers
    sampler_epochs: int = 120
    sampler_batch: int = 64
    sampler_lr: float = 1e-2
    # tables
    tables: tuple[str, ...] = ("main", "guiding", "fusion", "fem", "recognizer", "saliency")
    table_fem_archs: tuple[str, ...] = ("shufflenet_v2_x1_0", "mobilenet_v2", "efficientnet_b0")
    table_rec_variants: tuple[tuple[str, bool], ...] = (("resnet18", False), ("resnet18", True), ("resnet34", True))
    # cost
    throughput_batch: int = 16
    throughput_iters: int = 5
    compile: bool = False
    bootstrap: int = 1000
    synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise UserError(f"--frames T={self.frames} must be at least 1")
        for k in self.budgets:
            if k < 1:
                raise UserError(f"--budget K={k} must be at least 1")
            if k > self.frames:
                raise UserError(f"--budget K={k} exceeds --frames T={self.frames}: a sampler keeps K of T frames")
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
        fem_epochs=3,
        sampler_epochs=30,
        table_fem_archs=("mobilenet_v2",),
        table_rec_variants=(("resnet18", False),),
        throughput_iters=2,
        bootstrap=200,
        synthetic=SyntheticConfig(num_classes=4, train_per_class=10, val_per_class=6, min_frames=6, max_frames=40,
                                  width=48, height=40),
    ),
    # the embedded default: minutes on 2 CPU cores
    "default": {},
    # the paper's settings (ActivityNet, ResNet-101, MobileNetV2 at 224 px): for a GPU
    "paper": dict(
        frames=16,
        budgets=(1, 2, 4, 5, 8, 10),
        main_budget=5,
        short_side=256,
        rec_res=224,
        fem_res=224,
        train_views=4,
        rec_arch="resnet101",
        rec_epochs=30,
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


def build_config(preset: str = "default", **overrides: Any) -> RunConfig:
    """The preset's values, then the explicit overrides (``None`` means "not given")."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return RunConfig(preset=preset, **values)
