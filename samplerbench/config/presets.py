"""Presets (named sets of overrides of :class:`~samplerbench.config.schema.RunConfig`'s shape) and how a config is
built from a preset, a dataset's layer, a config file and flags, later ones winning leaf by leaf."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from samplerbench.config.legacy import nest_legacy
from samplerbench.config.schema import OUTPUT_SETTINGS, DataConfig, RunConfig
from samplerbench.core.errors import UserError
from samplerbench.core.fields import field_hints

# Presets that check that the suite runs end to end, whose numbers measure nothing: their tables open with
# the report's smoke-test note and print no paper figures beside them.
SMOKE_TEST_PRESETS = frozenset({"tiny"})
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
    hints, kwargs = field_hints(cls), {}
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


