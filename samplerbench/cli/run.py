"""``samplerbench [run] [flags]`` (== ``python bench.py [flags]``): a benchmark run; ``--list`` lists the names there
are. The flags become a :class:`~samplerbench.config.RunConfig` (:func:`config_from_args`), checked before any
work."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from samplerbench.cli.parsing import ArgumentParser, default_cache_dir, ints, names, sampler_option, weights
from samplerbench.config import (
    DECODERS,
    DTYPES,
    OUTPUT_SETTINGS,
    PRESETS,
    DataConfig,
    RunConfig,
    build_config,
    load_config_file,
    put_weights,
)
from samplerbench.core import distributed
from samplerbench.core.errors import UserError
from samplerbench.core.fields import option_fields
from samplerbench.datasets import dataset_options, dataset_spec, list_datasets, preset_layer
from samplerbench.formats import runfolder
from samplerbench.measures.metrics import AGGREGATIONS, check_aggregation
from samplerbench.recognizers.backbones import FEM_ARCHS, RECOGNIZER_ARCHS
from samplerbench.samplers import get_sampler_class, list_samplers
from samplerbench.samplers.base import RUN_FIELDS, check_options
from samplerbench.stages.preflight import check_memory, check_writable, expected_rows
from samplerbench.tables import TABLES, chosen_tables, extra_networks

HELP = "a benchmark run (the default)"
AFTER_FAULT = " (--out, --cache-dir), then run again: completed stages are kept"


def add_flags(p: ArgumentParser) -> None:
    """``samplerbench [run]``: the flags of a benchmark run (each has a config-file form, see
    :func:`config_from_args`), and ``--list``."""
    p.add_argument("--sampler", type=names, default=None, metavar="A,B|all",
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
    p.add_argument("--budget", type=ints, default=None, metavar="K[,K...]", help="frames kept per video")
    p.add_argument("--frames", type=int, default=None, metavar="T", help="frames pre-sampled per video")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS), help="tiny | default | paper (default: default)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="settings from a TOML/YAML/JSON file (or a run's run.json); flags given override it")
    p.add_argument("--sampler-option", type=sampler_option, action="append", default=None,
                   metavar="SAMPLER.FIELD=VALUE",
                   help="a constructor field of one sampler, e.g. nsnet.d=256 (repeat the flag for several); "
                        "overrides [sampling.options.SAMPLER] of --config and the preset, field by field")
    p.add_argument("--aggregation", default=None, choices=AGGREGATIONS.names(),
                   help="how the K kept frames' recognizer outputs make the video score (default: mean_softmax)")
    p.add_argument("--tables", type=names, default=None, metavar="main,...|all",
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
    p.add_argument("--weights", type=weights, default=None, metavar="recognizer=PATH,fem=PATH|none",
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


def command(args: argparse.Namespace) -> int:
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
