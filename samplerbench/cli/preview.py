"""``samplerbench preview OUT.png``: a few labelled frames of one synthetic video, as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from samplerbench.cli.parsing import ArgumentParser, at_least
from samplerbench.config import PRESETS, build_config
from samplerbench.datasets import dataset_options

HELP = "Draw a few labelled frames (salient and not) of one synthetic video to a PNG."
AFTER_FAULT = ", then preview again"


def add_flags(p: ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="the PNG to write")
    p.add_argument("--preset", default="default", choices=sorted(PRESETS),
                   help="whose synthetic dataset (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="the run seed (default: %(default)s)")
    p.add_argument("--index", type=at_least(0), default=0, help="the video, syn_<index> (default: %(default)s)")
    p.add_argument("--frames", type=at_least(1), default=8,
                   help="frames shown, evenly spaced (default: %(default)s)")


def command(args: argparse.Namespace) -> int:
    """Write the PNG and print its path."""
    from samplerbench.datasets.synthetic import preview  # matplotlib only when previewing

    cfg = build_config(args.preset, seed=args.seed)
    synthetic = dataset_options("synthetic", cfg.data.options.get("synthetic", {}))
    print(preview(synthetic, seed=cfg.seed, index=args.index, path=args.out, frames=args.frames))
    return 0
