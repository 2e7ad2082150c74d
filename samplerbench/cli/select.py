"""``samplerbench select --checkpoint PATH -k K VIDEO...``: frames of new videos chosen by a trained sampler
(:mod:`samplerbench.runs.select`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from samplerbench.cli.parsing import ArgumentParser, at_least
from samplerbench.core import distributed

HELP = "Choose K frames of each video with a trained sampler; prints JSON."


def add_flags(p: ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="a sampler checkpoint, e.g. results/synthetic/checkpoints/nsnet.pt")
    p.add_argument("-k", "--budget", type=int, required=True, metavar="K", help="frames to keep per video")
    p.add_argument("--top5", action="store_true", help="add the recognizer's top-5 classes on the kept frames")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--workers", type=at_least(1), default=None, metavar="N",
                   help="processes that probe and decode the videos (default: as a run, the cores this process may "
                        f"use; {distributed.local_cores()} here)")
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="any file decord (or PyAV) reads")


def command(args: argparse.Namespace) -> int:
    """Print a JSON list, one object per video and line (so that line tools work too); exit 1 when no video
    was readable."""
    from samplerbench.formats.selections import dumps
    from samplerbench.runs.select import load_sampler  # the models' imports only when selecting

    trained = load_sampler(args.checkpoint, device=distributed.resolve_device(args.device), workers=args.workers)
    results = trained.select_videos(args.videos, args.budget, top5=args.top5)
    print(dumps(results))
    return 0 if any("skipped" not in r for r in results) else 1
