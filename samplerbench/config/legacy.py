"""Flat keys of the config before it was nested (and of old run.json files), moved to their nested places."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from samplerbench.config.schema import NO_WEIGHTS, OUTPUT_SETTINGS, WEIGHT_ROLES, DataConfig, RunConfig
from samplerbench.core.errors import UserError

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


