"""The command line, the only module that parses arguments (and that nothing else imports):

- ``samplerbench [run] [flags]`` (== ``python bench.py [flags]``): a benchmark run (``--list`` lists names);
- ``samplerbench compare DIR...``: mean ± std of several runs (:mod:`samplerbench.report.compare`);
- ``samplerbench select --checkpoint PATH -k K VIDEO...``: frames of new videos chosen by a trained sampler.

User mistakes and environment faults end with one line on stderr and exit status 2; only bugs print a traceback."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import yaml

from samplerbench.config import (
    DECODERS,
    DTYPES,
    NO_WEIGHTS,
    OUTPUT_SETTINGS,
    PRESETS,
    WEIGHT_ROLES,
    DataConfig,
    RunConfig,
    build_config,
    load_config_file,
    put_weights,
)
from samplerbench.core import distributed
from samplerbench.core.errors import EnvironmentFault, UserError, environment_error
from samplerbench.core.fields import option_fields
from samplerbench.datasets import dataset_options, dataset_spec, list_datasets, preset_layer
from samplerbench.formats import runfolder
from samplerbench.measures.metrics import AGGREGATIONS, check_aggregation
from samplerbench.recognizers.backbones import FEM_ARCHS, RECOGNIZER_ARCHS
from samplerbench.samplers import get_sampler_class, list_samplers
from samplerbench.samplers.base import RUN_FIELDS, check_options
from samplerbench.stages.preflight import check_memory, check_writable, expected_rows
from samplerbench.tables import TABLES, chosen_tables, extra_networks


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


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


def _names(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _weights(text: str) -> dict[str, str] | str:
    """``recognizer=PATH,fem=PATH`` (PATH may be ``imagenet`` or ``none``), or ``none`` for every role."""
    if text.strip() == NO_WEIGHTS:
        return NO_WEIGHTS
    out = {}
    for part in _names(text):
        role, sep, path = part.partition("=")
        if not sep or role not in WEIGHT_ROLES:
            raise argparse.ArgumentTypeError(f"--weights takes recognizer=PATH,fem=PATH or none; got {part!r}")
        out[role] = path
    return out


def _sampler_option(text: str) -> tuple[str, str, object]:
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


COMPARE = "Mean ± std of several runs (seeds, machines) per sampler and budget."
SELECT = "Choose K frames of each video with a trained sampler; prints JSON."
PREVIEW = "Draw a few labelled frames (salient and not) of one synthetic video to a PNG."
DOCTOR = ("Check every kind of stage (generate, decode, store, train, extract, every sampler, select, throughput, "
          "bank, gather) on tiny generated data on this machine's device; exit 0 when all pass.")
SUBCOMMANDS = """subcommands:
  samplerbench [run] [flags]
      a benchmark run, with the flags above ("run" may be left out)
  samplerbench compare DIR... [--out FILE]
      mean ± std of several runs (seeds, machines) per sampler and budget
  samplerbench select --checkpoint PATH -k K VIDEO...
      choose K frames of new videos with a trained sampler; prints JSON
  samplerbench preview OUT.png [--preset P] [--seed S] [--index N] [--frames F]
      a few labelled frames (salient and not) of one synthetic video, as a PNG
  samplerbench doctor [--device D] [--compile] [--decoder X]
      check every kind of stage on this machine's device, on tiny generated data (run it first)
(each takes --help)"""


DESCRIPTION = "Train and compare frame samplers for efficient untrimmed-video recognition."


def build_parser() -> CommandLine:
    """Every subcommand's parser; ``parse_args`` gives a namespace whose ``command`` names the
    :data:`COMMANDS` entry that runs it. The flags of each subcommand are defined in its ``add_*_flags``."""
    top = CommandLine(prog="samplerbench", description=DESCRIPTION)
    commands = top.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    add_run_flags(commands.add_parser("run", prog="samplerbench", help="a benchmark run (the default)",
                                      description=DESCRIPTION, epilog=SUBCOMMANDS,
                                      formatter_class=argparse.RawDescriptionHelpFormatter))
    add_compare_flags(commands.add_parser("compare", prog="samplerbench compare", help=COMPARE, description=COMPARE))
    add_select_flags(commands.add_parser("select", prog="samplerbench select", help=SELECT, description=SELECT))
    add_preview_flags(commands.add_parser("preview", prog="samplerbench preview", help=PREVIEW, description=PREVIEW))
    add_doctor_flags(commands.add_parser("doctor", prog="samplerbench doctor", help=DOCTOR, description=DOCTOR))
    return top


def add_run_flags(p: ArgumentParser) -> None:
    """``samplerbench [run]``: the flags of a benchmark run (each has a config-file form, see
    :func:`config_from_args`), and ``--list``."""
    p.add_argument("--sampler", type=_names, default=None, metavar="A,B|all",
                   help="samplers to compare (default: all registered)")
    p.add_argument("--dataset", default=None, help=f"dataset adapter (default: synthetic); one of {list_datasets()}")
    p.add_argument("--data-root", default=None, help="folder of a real dataset (see docs/datasets.md for each layout)")
    p.add_argument("--annotations", default=None, help="annotation file (default: the dataset's own, in --data-root)")
    p.add_argument("--classes", default=None, metavar="FILE",
                   help="class list, one name per line (fcvid, list, ucf101)")
    p.add_argument("--train-list", default=None, metavar="FILE",
                   help="training list: 'path label...' lines (fcvid, list, ucf101) or YouTube ids (minikinetics)")
    p.add_argument("--val-list", default=None, metavar="FILE", help="validation list, same format as --train-list")
    p.add_argument("--split", type=int, default=None, choices=(1, 2, 3), help="UCF101's official split (default: 1)")
    p.add_argument("--filename-tmpl", default=None, metavar="TMPL",
                   help="file names in frame folders (default: img_{:05d}.jpg, as mmaction2's filename_tmpl)")
    p.add_argument("--start-index", type=int, default=None, metavar="N",
                   help="number of a frame folder's first file (default: 1, as mmaction2's start_index)")
    p.add_argument("--video-list", default=None, metavar="FILE",
                   help="video ids, one per line: each split with a listed video keeps only the listed ones (to "
                        "match the videos a paper used; a split with none listed stays whole)")
    p.add_argument("--lenient", action="store_true", default=None,
                   help="skip malformed annotation entries (or a bank's rows with NaN/inf) and list them, instead "
                        "of stopping at the first")
    p.add_argument("--budget", type=_ints, default=None, metavar="K[,K...]", help="frames kept per video")
    p.add_argument("--frames", type=int, default=None, metavar="T", help="frames pre-sampled per video")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS), help="tiny | default | paper (default: default)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="settings from a TOML/YAML/JSON file (or a run's run.json); flags given override it")
    p.add_argument("--sampler-option", type=_sampler_option, action="append", default=None,
                   metavar="SAMPLER.FIELD=VALUE",
                   help="a constructor field of one sampler, e.g. nsnet.d=256 (repeat the flag for several); "
                        "overrides [sampling.options.SAMPLER] of --config and the preset, field by field")
    p.add_argument("--aggregation", default=None, choices=AGGREGATIONS.names(),
                   help="how the K kept frames' recognizer outputs make the video score (default: mean_softmax)")
    p.add_argument("--tables", type=_names, default=None, metavar="main,...|all",
                   help=f"tables to write: {','.join(TABLES.names())} (default: all)")
    p.add_argument("--out", default=None,
                   help="results root; a run writes <out>/<dataset>/, or <out>/<dataset>-<preset>/ for a preset "
                        "other than default (default: results)")
    p.add_argument("--overwrite", action="store_true", default=None,
                   help="write into a run folder that holds another run's tables (another preset, dataset, T, "
                        "K set or seed), replacing them")
    p.add_argument("--cache-dir", default=None, help=f"stage cache (default: {default_cache_dir()})")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, or auto (the default: cuda when available)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--dtype", default=None, choices=DTYPES,
                   help="training and cached outputs (default: float32); float64 to check that runs which should "
                        "agree (e.g. 1 and N processes) do, beyond float32 rounding")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes that generate the synthetic videos and decode, per rank under torchrun (default: "
                        f"the cores this process may use / torchrun's local ones; {distributed.local_cores()} here)")
    p.add_argument("--weights", type=_weights, default=None, metavar="recognizer=PATH,fem=PATH|none",
                   help="where the recognizer / FEM start: a local checkpoint, imagenet (torchvision's file in "
                        "TORCH_HOME; nothing is downloaded) or none (from scratch); default: the preset's "
                        "(paper: imagenet, others: none)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile models for throughput")
    p.add_argument("--decoder", default=None, choices=DECODERS,
                   help="what decodes videos: cpu (decord, then PyAV; the default) or torchcodec (on --device: "
                        "NVDEC on CUDA; falls back to cpu for a video it cannot read)")
    p.add_argument("--remeasure", action="store_true", default=None,
                   help="time throughput and decoding again instead of reading this machine's cached figures")
    p.add_argument("--export-predictions", action="store_true", default=None,
                   help="write predictions/<sampler>_K<k>.json in the ActivityNet results format")
    p.add_argument("--export-selections", action="store_true", default=None,
                   help="write selections/<sampler>_K<k>.json: the frames each sampler keeps of every val video, as "
                        "samplerbench select prints them")
    p.add_argument("--export-bank", action="store_true", default=None,
                   help="write <run folder>/bank/: the per-frame features, logits, labels and salient masks of both "
                        "splits as a frame bank that --dataset bank --data-root reads (docs/datasets.md, Frame banks)")
    p.add_argument("--quiet", action="store_true", default=None, help="no per-stage lines or progress bars")
    p.add_argument("--list", action="store_true", help="list samplers, datasets, presets, backbones and exit")


def add_compare_flags(p: ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=Path, help="run folders (each with summary.csv)")
    p.add_argument("--out", type=Path, default=None, help="also write OUT.md and OUT.csv")
    p.add_argument("--separate", action="store_true",
                   help="tabulate runs of different settings apart instead of refusing them")


def _at_least(low: int) -> Callable[[str], int]:
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


def add_preview_flags(p: ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="the PNG to write")
    p.add_argument("--preset", default="default", choices=sorted(PRESETS),
                   help="whose synthetic dataset (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="the run seed (default: %(default)s)")
    p.add_argument("--index", type=_at_least(0), default=0, help="the video, syn_<index> (default: %(default)s)")
    p.add_argument("--frames", type=_at_least(1), default=8,
                   help="frames shown, evenly spaced (default: %(default)s)")


def add_doctor_flags(p: ArgumentParser) -> None:
    """``samplerbench doctor``: the device, compile mode and decoder to check, as a run takes them."""
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, or auto (the default: cuda when available)")
    p.add_argument("--compile", action="store_true", help="torch.compile the models, as a run with --compile does")
    p.add_argument("--decoder", default="cpu", choices=DECODERS, help="what decodes videos, as a run's --decoder")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="decoding processes (default: as a run)")


def add_select_flags(p: ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="a sampler checkpoint, e.g. results/synthetic/checkpoints/nsnet.pt")
    p.add_argument("-k", "--budget", type=int, required=True, metavar="K", help="frames to keep per video")
    p.add_argument("--top5", action="store_true", help="add the recognizer's top-5 classes on the kept frames")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--workers", type=_at_least(1), default=None, metavar="N",
                   help="processes that probe and decode the videos (default: as a run, the cores this process may "
                        f"use; {distributed.local_cores()} here)")
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="any file decord (or PyAV) reads")


def check_names(cfg: RunConfig) -> None:
    """Every registry name in ``cfg`` (dataset, samplers, tables, aggregation) is registered, every backbone is
    known, and every sampler and dataset option is a field of its sampler's or adapter's, of its type and accepted
    by it, whether they came from a flag, a file or a preset."""
    dataset_spec(cfg.data.dataset)
    for name in cfg.sampling.samplers:
        get_sampler_class(name)
    chosen_tables(cfg)
    backbones = RECOGNIZER_ARCHS + FEM_ARCHS
    for name in (cfg.recognizer.arch, cfg.fem.arch, *cfg.report.fem_archs,
                 *(a for a, _ in cfg.report.recognizer_variants)):
        if name not in backbones:
            raise UserError(f"unknown backbone {name!r}; valid: {', '.join(backbones)}")
    check_option_tables(dataclasses.asdict(cfg))
    check_aggregation(cfg.sampling.aggregation)


def check_option_tables(values: dict, *, whole: bool = True) -> None:
    """Every sampler's and dataset adapter's options in the nested settings ``values`` (a config's, a file's),
    checked by their owner: names and types, and with ``whole`` the sampler or option set built with them (a
    file's options alone are not whole: the preset's may complete them). An unknown sampler is an error;
    options of an adapter not installed here are left alone: they are not the run's."""
    for name, options in values.get("sampling", {}).get("options", {}).items():
        if whole:
            check_options(name, options)
        else:
            option_fields(get_sampler_class(name), options, where=f"sampling.options.{name}", exclude=RUN_FIELDS)
    for name, options in values.get("data", {}).get("options", {}).items():
        if name in list_datasets():
            if whole:
                dataset_options(name, options)
            else:
                option_fields(dataset_spec(name).options, options, where=f"data.options.{name}")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run's config; a config file's output settings fill the flags of ``args`` not given. Dataset flags
    (``--annotations``, ``--split``, ...) are options of the dataset adapter: one it does not take is an error."""
    file_values = load_config_file(args.config) if args.config else {}
    try:
        check_option_tables(file_values, whole=False)
    except UserError as exc:  # name the file, as its other mistakes do
        raise UserError(f"{args.config}: {exc}") from None
    for key in OUTPUT_SETTINGS:
        if getattr(args, key) is None:
            setattr(args, key, file_values.get(key))
    device = distributed.resolve_device(args.device or file_values.get("device") or "auto")
    samplers = () if args.sampler == ("all",) else args.sampler
    options: dict[str, dict[str, object]] = {}
    for name, field, value in args.sampler_option or ():
        options.setdefault(name, {})[field] = value
    tables = () if args.tables == ("all",) else args.tables
    if args.dataset is not None:  # before the paper preset looks it up
        dataset_spec(args.dataset)
    dataset = args.dataset or file_values.get("data", {}).get("dataset") or DataConfig.dataset
    dataset_flags = dict(annotations=args.annotations, classes=args.classes, train_list=args.train_list,
                         val_list=args.val_list, split=args.split)
    weights: dict[str, dict[str, str]] = {}
    if args.weights is not None:
        put_weights(args.weights, lambda role, source: weights.setdefault(role, {"weights": source}))
    cfg = build_config(
        args.preset, file_values=file_values, dataset_layer=preset_layer, seed=args.seed, device=device,
        workers=args.workers, dtype=args.dtype, compile=args.compile, remeasure=args.remeasure,
        data=dict(dataset=args.dataset, root=args.data_root, lenient=args.lenient, video_list=args.video_list,
                  filename_tmpl=args.filename_tmpl, start_index=args.start_index, frames=args.frames,
                  decoder=args.decoder,
                  options={dataset: dataset_flags}),
        recognizer=weights.get("recognizer"), fem=weights.get("fem"),
        sampling=dict(samplers=samplers, budgets=args.budget, options=options, aggregation=args.aggregation),
        report=dict(tables=tables, export_predictions=args.export_predictions,
                    export_selections=args.export_selections, export_bank=args.export_bank))
    check_names(cfg)
    return cfg


def print_listing() -> None:
    print("samplers:   " + ", ".join(list_samplers()))
    print("datasets:   " + ", ".join(list_datasets()))
    print("presets:    " + ", ".join(PRESETS))
    print("recognizer: " + ", ".join(RECOGNIZER_ARCHS))
    print("fem:        " + ", ".join(FEM_ARCHS))
    print("tables:     " + ", ".join(TABLES.names()))


def run_command(args: argparse.Namespace) -> int:
    """A benchmark run (or ``--list``); prints where its tables are."""
    if args.list:
        print_listing()
        return 0
    cfg = config_from_args(args)
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    out = Path(args.out or "results")
    overwrite = bool(args.overwrite)
    train_rows, val_rows, classes = expected_rows(cfg)
    check_memory(cfg, extra=extra_networks(cfg, chosen_tables(cfg)), train_rows=train_rows, val_rows=val_rows,
                 classes=classes)
    if os.environ.get("RANK", "0") == "0":  # the process that writes (torchrun's rank 0)
        folder = runfolder.run_folder(out, cfg)
        check_writable(folder, "--out")
        check_writable(cache_dir, "--cache-dir")
        runfolder.check(folder, cfg, overwrite=overwrite)
    from samplerbench.report.write import final_line  # heavy imports only when a run happens
    from samplerbench.runs.benchmark import run

    with distributed.session(cfg.device) as device:
        cfg = dataclasses.replace(cfg, device=device)
        folder = run(cfg, out=out, cache_dir=cache_dir, quiet=bool(args.quiet), overwrite=overwrite)
        if distributed.is_main():
            print(final_line(folder))
    return 0


def compare_command(args: argparse.Namespace) -> int:
    """Print the runs' mean ± std table (and write it, with ``--out``)."""
    from samplerbench.report.compare import compare  # pandas only when comparing

    print(compare(args.runs, separate=args.separate, out=args.out), end="")
    return 0


def select_command(args: argparse.Namespace) -> int:
    """Print a JSON list, one object per video and line (so that line tools work too); exit 1 when no video
    was readable."""
    from samplerbench.formats.selections import dumps
    from samplerbench.runs.select import load_sampler  # the models' imports only when selecting

    trained = load_sampler(args.checkpoint, device=distributed.resolve_device(args.device), workers=args.workers)
    results = trained.select_videos(args.videos, args.budget, top5=args.top5)
    print(dumps(results))
    return 0 if any("skipped" not in r for r in results) else 1


def preview_command(args: argparse.Namespace) -> int:
    """Write the PNG and print its path."""
    from samplerbench.datasets.synthetic import preview  # matplotlib only when previewing

    cfg = build_config(args.preset, seed=args.seed)
    synthetic = dataset_options("synthetic", cfg.data.options.get("synthetic", {}))
    print(preview(synthetic, seed=cfg.seed, index=args.index, path=args.out, frames=args.frames))
    return 0


def doctor_command(args: argparse.Namespace) -> int:
    """One line per check; exit status 0 when every check passed (or does not apply here), 1 otherwise."""
    from samplerbench.runs.doctor import doctor  # the models' imports only when checking

    return 0 if doctor(device=args.device, compile_model=args.compile, decoder=args.decoder,
                       workers=args.workers) else 1


# What to do after fixing an environment fault, by command: only a run has stages to keep.
AFTER_FAULT = {"run": " (--out, --cache-dir), then run again: completed stages are kept",
               "compare": " (--out), then compare again", "preview": ", then preview again"}
COMMANDS = {"run": run_command, "compare": compare_command, "select": select_command, "preview": preview_command,
            "doctor": doctor_command}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that a stopped run unwinds the same way: temporary
    files removed by the ``finally`` blocks that made them, finished stages kept."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _utf8_where_ascii() -> None:
    """Print UTF-8 where the locale says ASCII (``LC_ALL=C``, ``PYTHONUTF8=0``), as Python's own UTF-8 mode would:
    tables hold ± and names may hold any character, which ASCII cannot encode."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if encoding and codecs.lookup(encoding).name == "ascii" and hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _utf8_where_ascii()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return COMMANDS[command](args)
    except (UserError, OSError) as exc:  # an OSError: e.g. a video encoder's own write on a full disk
        error = exc if isinstance(exc, UserError) else environment_error(exc, action="use")
        if error is None:
            raise
        then = AFTER_FAULT.get(command, "") if isinstance(error, EnvironmentFault) else ""
        print(f"samplerbench: error: {error}{then}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        how, status = ("terminated (SIGTERM)", 128 + signal.SIGTERM) if isinstance(exc, Terminated) else \
            ("interrupted", 130)
        print(f"samplerbench: {how}; completed stages are cached and a re-run resumes from them", file=sys.stderr)
        return status
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
