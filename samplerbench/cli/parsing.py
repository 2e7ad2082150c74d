"""What every subcommand's parser shares: argparse whose mistakes are one-line errors, the top parser that makes
``run`` the default subcommand, and the argument types."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import yaml

from samplerbench.config import NO_WEIGHTS, WEIGHT_ROLES
from samplerbench.core.errors import UserError


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "samplerbench"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose mistakes are :class:`UserError` (one line, exit status 2) rather than a usage
    block and a SystemExit, so that a bad flag reads like every other bad input."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see {self.prog} --help)")


class CommandLine(ArgumentParser):
    """The top parser, whose first argument names a subcommand; a first argument that is a flag, or none at
    all, means ``run``, so ``samplerbench [flags]`` works as it did before there were subcommands (and
    ``--help`` shows the run's flags, whose epilog lists the other subcommands)."""

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        args = sys.argv[1:] if args is None else list(args)
        if not args or args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_known_args(args, namespace)


def ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


def names(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def weights(text: str) -> dict[str, str] | str:
    """``recognizer=PATH,fem=PATH`` (PATH may be ``imagenet`` or ``none``), or ``none`` for every role."""
    if text.strip() == NO_WEIGHTS:
        return NO_WEIGHTS
    out = {}
    for part in names(text):
        role, sep, path = part.partition("=")
        if not sep or role not in WEIGHT_ROLES:
            raise argparse.ArgumentTypeError(f"--weights takes recognizer=PATH,fem=PATH or none; got {part!r}")
        out[role] = path
    return out


def sampler_option(text: str) -> tuple[str, str, object]:
    """``SAMPLER.FIELD=VALUE``; VALUE is read as YAML (``256``, ``0.5``, ``1e-3``, ``true``, ``null``, ``union``,
    ``[112, 112]``), so it has the type a config file would give it."""
    target, sep, raw = text.partition("=")
    name, dot, field = target.strip().partition(".")
    if not (sep and dot and name and field):
        raise argparse.ArgumentTypeError(f"expected SAMPLER.FIELD=VALUE (e.g. nsnet.d=256), got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        with contextlib.suppress(ValueError):
            value = float(value)
    return name, field.strip(), value


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value}: must be at least {low}")
        return value

    return parse
