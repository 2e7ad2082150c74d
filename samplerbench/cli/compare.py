"""``samplerbench compare DIR...``: mean ± std of several runs per sampler and budget
(:mod:`samplerbench.report.compare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from samplerbench.cli.parsing import ArgumentParser

HELP = "Mean ± std of several runs (seeds, machines) per sampler and budget."
AFTER_FAULT = " (--out), then compare again"


def add_flags(p: ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=Path, help="run folders (each with summary.csv)")
    p.add_argument("--out", type=Path, default=None, help="also write OUT.md and OUT.csv")
    p.add_argument("--separate", action="store_true",
                   help="tabulate runs of different settings apart instead of refusing them")


def command(args: argparse.Namespace) -> int:
    """Print the runs' mean ± std table (and write it, with ``--out``)."""
    from samplerbench.report.compare import compare  # pandas only when comparing

    print(compare(args.runs, separate=args.separate, out=args.out), end="")
    return 0
