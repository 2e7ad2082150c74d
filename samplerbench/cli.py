"""Command line: ``samplerbench [flags]`` (== ``python bench.py [flags]``) runs a benchmark;
``samplerbench compare DIR...`` aggregates several runs; ``samplerbench select --checkpoint PATH -k K VIDEO...``
chooses frames of new videos with a trained sampler.

User mistakes (an unknown name, K > T, a missing data root) end with one line on stderr and exit status 2;
only bugs print a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import torch

from samplerbench import distributed
from samplerbench.config import (
    DTYPES,
    OUTPUT_SETTINGS,
    PRESETS,
    TABLE_NAMES,
    RunConfig,
    build_config,
    load_config_file,
)
from samplerbench.datasets import list_datasets
from samplerbench.errors import UserError
from samplerbench.recognizers.backbones import FEM_ARCHS, RECOGNIZER_ARCHS
from samplerbench.samplers import list_samplers


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "samplerbench"


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _weights(text: str) -> dict[str, str]:
    """``recognizer=PATH,fem=PATH`` (PATH may be ``imagenet`` for torchvision's weights in TORCH_HOME)."""
    out = {}
    for part in _names(text):
        role, sep, path = part.partition("=")
        if not sep or role not in ("recognizer", "fem"):
            raise argparse.ArgumentTypeError(f"--weights takes recognizer=PATH,fem=PATH; got {part!r}")
        out[role] = path
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="samplerbench",
        description="Train and compare frame samplers for efficient untrimmed-video recognition.",
    )
    p.add_argument("--sampler", type=_names, default=None, metavar="A,B|all",
                   help="samplers to compare (default: all registered)")
    p.add_argument("--dataset", default=None, help=f"dataset adapter (default: synthetic); one of {list_datasets()}")
    p.add_argument("--data-root", default=None, help="folder of a real dataset (see README for each layout)")
    p.add_argument("--annotations", default=None, help="annotation file (default: the dataset's own, in --data-root)")
    p.add_argument("--classes", default=None, metavar="FILE",
                   help="class list, one name per line (fcvid, list, ucf101)")
    p.add_argument("--train-list", default=None, metavar="FILE",
                   help="training list: 'path label...' lines (fcvid, list, ucf101) or YouTube ids (minikinetics)")
    p.add_argument("--val-list", default=None, metavar="FILE", help="validation list, same format as --train-list")
    p.add_argument("--split", type=int, default=None, choices=(1, 2, 3), help="UCF101's official split (default: 1)")
    p.add_argument("--lenient", action="store_true", default=None,
                   help="skip malformed annotation entries and list them, instead of stopping at the first")
    p.add_argument("--budget", type=_ints, default=None, metavar="K[,K...]", help="frames kept per video")
    p.add_argument("--frames", type=int, default=None, metavar="T", help="frames pre-sampled per video")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS), help="tiny | default | paper (default: default)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="settings from a TOML/YAML/JSON file (or a run's run.json); flags given override it")
    p.add_argument("--tables", type=_names, default=None, metavar="main,...|all",
                   help=f"tables to write: {','.join(TABLE_NAMES)} (default: all)")
    p.add_argument("--out", default=None, help="results root; a run writes <out>/<dataset>/ (default: results)")
    p.add_argument("--cache-dir", default=None, help=f"stage cache (default: {default_cache_dir()})")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, or auto (the default: cuda when available)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--dtype", default=None, choices=DTYPES,
                   help="training and cached outputs (default: float32); float64 to check that runs which should "
                        "agree (e.g. 1 and N processes) do, beyond float32 rounding")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="decoding worker processes (per rank under torchrun; default 2)")
    p.add_argument("--weights", type=_weights, default=None, metavar="recognizer=PATH,fem=PATH",
                   help="initialise the recognizer / FEM from local checkpoints (no download)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile models for throughput")
    p.add_argument("--remeasure", action="store_true", default=None,
                   help="time throughput and decoding again instead of reading this machine's cached figures")
    p.add_argument("--export-predictions", action="store_true", default=None,
                   help="write predictions/<sampler>_K<k>.json in the ActivityNet results format")
    p.add_argument("--quiet", action="store_true", default=None, help="no per-stage lines or progress bars")
    p.add_argument("--list", action="store_true", help="list samplers, datasets, presets, backbones and exit")
    return p


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; a CUDA device on a machine without CUDA is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    return device


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run's config; a config file's output settings (``out``, ``cache_dir``, ``quiet``) fill the flags
    of ``args`` that were not given."""
    file_values = load_config_file(args.config) if args.config else {}
    for key in OUTPUT_SETTINGS:
        if getattr(args, key) is None:
            setattr(args, key, file_values.get(key))
    device = resolve_device(args.device or file_values.get("device") or "auto")
    samplers = args.sampler
    if samplers is not None:
        samplers = () if samplers == ("all",) else samplers
        valid = list_samplers()
        for name in samplers:
            if name not in valid:
                raise UserError(f"unknown sampler {name!r}; valid: {', '.join(valid)}")
    tables = TABLE_NAMES if args.tables == ("all",) else args.tables
    if args.dataset is not None and args.dataset not in list_datasets():
        raise UserError(f"unknown dataset {args.dataset!r}; valid: {', '.join(list_datasets())}")
    return build_config(args.preset, file_values=file_values, dataset=args.dataset, data_root=args.data_root,
                        samplers=samplers, annotations=args.annotations, lenient=args.lenient, classes=args.classes,
                        train_list=args.train_list, val_list=args.val_list, split=args.split, budgets=args.budget,
                        frames=args.frames, tables=tables, seed=args.seed, device=device, weights=args.weights,
                        workers=args.workers, dtype=args.dtype, compile=args.compile, remeasure=args.remeasure,
                        export_predictions=args.export_predictions)


def print_listing() -> None:
    print("samplers:   " + ", ".join(list_samplers()))
    print("datasets:   " + ", ".join(list_datasets()))
    print("presets:    " + ", ".join(PRESETS))
    print("recognizer: " + ", ".join(RECOGNIZER_ARCHS))
    print("fem:        " + ", ".join(FEM_ARCHS))
    print("tables:     " + ", ".join(TABLE_NAMES))


def bench(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        print_listing()
        return 0
    cfg = config_from_args(args)
    from samplerbench.run import run  # heavy imports only when a run happens

    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    out = Path(args.out or "results")
    with distributed.session(cfg.device) as device:
        cfg = dataclasses.replace(cfg, device=device)
        folder = run(cfg, out=out, cache_dir=cache_dir, quiet=bool(args.quiet))
        if distributed.is_main():
            print(f"results written to {folder}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["compare"]:
            from samplerbench.compare import main as compare

            return compare(argv[1:])
        if argv[:1] == ["select"]:
            from samplerbench.select import main as select

            return select(argv[1:])
        return bench(argv)
    except UserError as err:
        print(f"samplerbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("samplerbench: interrupted; completed stages are cached and a re-run resumes from them",
              file=sys.stderr)
        return 130
