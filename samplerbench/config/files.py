"""Config files (TOML, YAML, JSON, or a run's run.json), read and checked so that a mistake names the file."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from samplerbench.config.legacy import REMOVED_KEYS, nest_legacy
from samplerbench.config.schema import OUTPUT_SETTINGS, RunConfig
from samplerbench.core.errors import UserError
from samplerbench.core.fields import conform, describe, field_hints


def _check_layer(cls: type, values: Mapping[str, Any], *, source: str, path: str = "") -> dict[str, Any]:
    """A config file's (nested) settings for ``cls``: keys checked against its fields (plus, for RunConfig,
    the output settings), values against their type hints (:func:`conform`), nested tables recursively.
    Errors name ``source``, the file."""
    hints = {**field_hints(cls), **(OUTPUT_SETTINGS if cls is RunConfig else {})}
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
