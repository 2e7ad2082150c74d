"""A whole benchmark run, top to bottom: data, models, every sampler at every budget, the ablation tables.

Read this file to know what a number in ``results/`` means; every stage it calls is cached (see
:mod:`samplerbench.stages.pipeline`), so an identical re-run only re-reads the cache and rewrites the tables."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from samplerbench.config import WEIGHT_ROLES, RunConfig
from samplerbench.core import distributed
from samplerbench.core.files import file_digest
from samplerbench.core.stagelog import StageLog, progress_bars, warn
from samplerbench.evaluation.evaluator import Evaluator, dataset_warnings, machine_name, skip_notices
from samplerbench.evaluation.protocol import protocol_card
from samplerbench.evaluation.result import RunResult
from samplerbench.formats.cache import code_digest
from samplerbench.formats.runfolder import run_folder, staged
from samplerbench.measures.evaluate import first_fits
from samplerbench.measures.metrics import check_aggregation
from samplerbench.recognizers.backbones import IMAGENET, require_weights
from samplerbench.report import write as report
from samplerbench.samplers import list_samplers
from samplerbench.stages.banks import export_bank
from samplerbench.stages.checkpoint import write_checkpoints
from samplerbench.stages.estimate import estimate, minutes, record, source_fingerprint
from samplerbench.stages.pipeline import Pipeline, sampler_batches
from samplerbench.tables import (
    build_tables,
    chosen_tables,
    extra_networks,
    frameless_notes,
    paper,
    run_tables,
    trained_backbones,
)
from samplerbench.tables.main import add_confidence_intervals, add_pareto_flags, main_comparison, main_entries


def run(cfg: RunConfig, *, out: Path, cache_dir: Path, quiet: bool = False, overwrite: bool = False) -> Path:
    """Run the benchmark described by ``cfg``; returns its run folder under ``out``
    (:func:`samplerbench.formats.runfolder.run_folder`, subject to :func:`samplerbench.formats.runfolder.check`
    unless ``overwrite``).
    ``quiet``: no stage lines or progress bars (ranks other than 0 are always quiet)."""
    quiet = quiet or not distributed.is_main()
    machine, source = machine_name(cfg.device), source_fingerprint()
    guess = estimate(cfg, cache_dir=Path(cache_dir), machine=machine, source=source)
    if not quiet:
        tqdm.write(f"expected run time: about {minutes(guess.total)}, from {guess.source}" if guess else
                   "expected run time: unknown, this machine has not run this setting yet (it will know next time)")
    log = StageLog(quiet=quiet, expected=dict(guess.stages) if guess else None)
    with progress_bars(not quiet):
        folder = _run(cfg, out=Path(out), cache_dir=Path(cache_dir), log=log, overwrite=overwrite)
    if distributed.is_main():
        record(cfg, cache_dir=Path(cache_dir), machine=machine, source=source, stages=log.records)
    return folder


def weight_digests(cfg: RunConfig) -> dict[str, str]:
    """Where each backbone role started, by content: ``imagenet``, or the digest of its checkpoint file."""
    sources = {role: getattr(cfg, role).weights for role in WEIGHT_ROLES}
    return {role: source if source == IMAGENET else file_digest(Path(source))
            for role, source in sources.items() if source}


def _run(cfg: RunConfig, *, out: Path, cache_dir: Path, log: StageLog, overwrite: bool) -> Path:
    # fail before any work: the ranks cannot share a batch evenly, or a weights file is missing
    check_aggregation(cfg.sampling.aggregation)
    names = list(cfg.sampling.samplers) or list_samplers()
    for batch in (cfg.recognizer.batch, cfg.fem.batch, *sampler_batches(cfg, names)):
        distributed.local_batch(batch)
    pipe = Pipeline(cfg, cache_dir=cache_dir, log=log)
    source = pipe.source
    written = run_tables(cfg, names, frames=source.decodes)
    require_weights((arch, getattr(cfg, role).weights)
                    for role, archs in trained_backbones(cfg, written).items()
                    if getattr(cfg, role).weights and source.decodes for arch in archs)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    data = source.index()
    # what this source cannot serve (and the memory the run will need), then the tables it leaves out
    left_out = source.check(names, extra=extra_networks(cfg, chosen_tables(cfg))) + frameless_notes(
        cfg, frames=source.decodes)
    for subset in ("train", "val"):  # decode first, so that a dataset with no readable video fails early
        source.split(subset)
    folder = run_folder(out, cfg)
    skipped = source.split("train").skipped + source.split("val").skipped
    for line in skip_notices(len(skipped), len(data.skipped), folder) if distributed.is_main() else ():
        tqdm.write(line)
    notes = left_out + dataset_warnings(data.classes, train=source.split("train").targets,
                                        val=source.split("val").targets)
    for line in notes if distributed.is_main() else ():
        warn(line)
    rec, fem = (source.outputs(role, getattr(cfg, role).arch, tsn=getattr(cfg, role).tsn) for role in WEIGHT_ROLES)
    evaluator = Evaluator(cfg=cfg, pipe=pipe, rec=rec, fem=fem, machine=machine_name(cfg.device))

    comparison = main_comparison(evaluator, main_entries(names))
    rows, scores = comparison.rows, comparison.scores
    add_confidence_intervals(evaluator, rows, scores, comparison.sweeps, comparison.sweep_scores)
    add_pareto_flags(rows, data.metric, comparison.sweeps)
    tables = build_tables(evaluator, written)
    curves = paper.saliency_curves(evaluator) if "saliency" in {spec.name for spec in written} else None
    reading = paper.nsnet_reading(paper.nsnet(evaluator)[0]) if "nsnet" in names else None

    val = source.split("val")
    exported = None
    if cfg.report.export_selections:  # before rank 0 goes on alone: every rank takes part in the frame-count stage
        reasons = {vid: reason for vid, _, reason in val.skipped}
        exported = dict(selections=comparison.selected, order=[r.video_id for r in data.split("val")],
                        video_ids=val.video_ids, probed=source.probes("val") | reasons, t=cfg.data.frames)
    if not distributed.is_main():
        return folder
    card = protocol_card(cfg, data=data, video_list=source.video_list(),
                         read={s: len(set(source.split(s).video_ids)) for s in ("train", "val")},
                         skipped={s: source.split(s).skipped for s in ("train", "val")})
    with staged(folder, cfg, overwrite=overwrite) as staging:
        checkpoints = []  # a checkpoint names the backbones (select runs the FEM): features not from videos lack them
        if source.decodes:
            with log.stage("checkpoints") as st:
                checkpoints, written = write_checkpoints(staging / "checkpoints", pipe.fitted,
                                                         previous=folder / "checkpoints", cfg=cfg,
                                                         classes=data.classes, fem=evaluator.fem, rec=evaluator.rec)
                st["cached"] = written == 0
        if cfg.report.export_bank:
            with log.stage("export bank"):
                export_bank(source, staging / "bank", fem=evaluator.fem, rec=evaluator.rec)
        result = RunResult(cfg=cfg, data=data, machine=evaluator.machine, features=source.describe(),
                           decodes=source.decodes, main=rows, decode=comparison.decode, sweeps=comparison.sweeps,
                           adaptive_match=comparison.matched_by, tables=tables,
                           curves=curves, reading=reading, paper_oracle=paper.PAPER_ORACLE, stages=log.records,
                           skipped=skipped, warnings=notes, protocol=card,
                           predictions=first_fits(scores) if cfg.report.export_predictions else None,
                           video_ids=val.video_ids, selections=exported, checkpoints=checkpoints,
                           code=code_digest(sys.modules[__name__]),
                           weights=weight_digests(cfg) if source.decodes else {})
        with log.stage("report"):
            report.write_all(staging, result)
    return folder
