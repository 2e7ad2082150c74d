"""``samplerbench doctor``: every kind of stage, checked on this machine's device (:mod:`samplerbench.runs.doctor`)."""

from __future__ import annotations

import argparse

from samplerbench.cli.parsing import ArgumentParser
from samplerbench.config import DECODERS

HELP = ("Check every kind of stage (generate, decode, store, train, extract, every sampler, select, throughput, "
        "bank, gather) on tiny generated data on this machine's device; exit 0 when all pass.")


def add_flags(p: ArgumentParser) -> None:
    """``samplerbench doctor``: the device, compile mode and decoder to check, as a run takes them."""
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, or auto (the default: cuda when available)")
    p.add_argument("--compile", action="store_true", help="torch.compile the models, as a run with --compile does")
    p.add_argument("--decoder", default="cpu", choices=DECODERS, help="what decodes videos, as a run's --decoder")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="decoding processes (default: as a run)")


def command(args: argparse.Namespace) -> int:
    """One line per check; exit status 0 when every check passed (or does not apply here), 1 otherwise."""
    from samplerbench.runs.doctor import doctor  # the models' imports only when checking

    return 0 if doctor(device=args.device, compile_model=args.compile, decoder=args.decoder,
                       workers=args.workers) else 1
