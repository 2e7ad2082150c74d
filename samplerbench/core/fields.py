"""Checking values against dataclass type hints: the machinery behind every config part and every sampler's and
dataset adapter's options. Nothing is converted silently: ``"3"`` is not an integer, ``true`` is not 1."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from samplerbench.core.errors import UserError

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


@functools.cache
def field_hints(cls: type) -> dict[str, Any]:
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
        value, hint = getattr(obj, field.name), field_hints(type(obj))[field.name]
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
        hint = field_hints(cls)[key]
        try:
            out[key] = conform(value, hint)
        except ValueError:
            raise UserError(f"{where}.{key} = {value!r}: expected {describe(hint)}") from None
    return out


