"""The main table: every sampler at every budget with its accuracy, GFLOPs per video and timed throughput (interleaved
against dense), paired confidence intervals against uniform and the Pareto front; one :class:`MainRow` each.

Adaptive samplers (:class:`~samplerbench.samplers.adaptive.AdaptiveSampler`) are scored over their knob sweep and
stand in the table at a budget K with the sweep point nearest in mean cost to the fixed-K rows at K, among the points
nearer K's cost than any other budget's (:func:`stand_ins`); every sweep point is a row of its own beside the table,
and the Pareto front takes fixed-K rows and sweep points together."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from samplerbench.evaluation.evaluator import Evaluator, bootstrap
from samplerbench.evaluation.result import DecodeRow, MainRow
from samplerbench.measures.cost import Timing
from samplerbench.measures.evaluate import combine_fits
from samplerbench.measures.metrics import pareto_flags
from samplerbench.samplers import AdaptiveSampler, Budgeted, get_sampler_class
from samplerbench.stages.throughput import decoded_frames, end_to_end_rate
from samplerbench.tables.registry import TABLES, TableSpec

# Every run computes this table (main_comparison; the report writes it, main.md and summary.csv): the registry holds its
# name and its place, first.
TABLES.register("main", TableSpec(name="main"))

WITHOUT_NS = "nsnet (w/o NS)"
Entry = tuple[str, str, dict]  # a main-table row's (label, registered sampler, constructor fields)


def main_entries(names: list[str]) -> list[Entry]:
    """The main table's rows: the samplers ``names``, plus NSNet without its NS supervision beside NSNet."""
    entries = [(n, n, {}) for n in names]
    if "nsnet" in names:
        entries.append((WITHOUT_NS, "nsnet", {"no_ns": True}))
    return entries


def add_timing(row: MainRow, timing: Timing | None, *, decoded: int | None) -> None:
    """Fill the row's measured throughput columns, and the ``decoded`` frames its pipeline reads; left empty
    (``None``) where nothing was measured."""
    if timing is not None:
        row.videos_per_s, row.timing_spread, row.timed_iters = timing.items_per_s, timing.spread, timing.iterations
        row.decoded_frames = decoded


def _ratio(value: float | None, reference: float | None) -> float | None:
    return value / reference if value and reference else None


def add_speedups(rows: list[MainRow], decode_s_per_video: dict[int, float]) -> None:
    """Complete the rows' cost columns: the end-to-end rate (decoding ``decoded_frames`` frames, seconds per
    video by frame count in ``decode_s_per_video``, then the measured compute) and the speed-ups over dense,
    measured, end to end, and from the FLOP counts (none without a dense row)."""
    for r in rows:
        measured = r.decoded_frames is not None
        r.decode_s_per_video = decode_s_per_video[r.decoded_frames] if measured else None
        r.videos_per_s_e2e = end_to_end_rate(decode_s_per_video=r.decode_s_per_video,
                                             videos_per_s=r.videos_per_s) if measured else None
    dense = next((r for r in rows if r.sampler == "dense"), None)
    for r in rows:
        r.speedup_vs_dense = _ratio(r.videos_per_s, dense and dense.videos_per_s)
        r.speedup_flops = _ratio(dense and dense.gflops_per_video, r.gflops_per_video)
        r.speedup_e2e_vs_dense = _ratio(r.videos_per_s_e2e, dense and dense.videos_per_s_e2e)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MainComparison:
    """What :func:`main_comparison` computed. ``scores``: the val scores of every main row by (label, K);
    ``sweep_scores``: every adaptive sweep point's by (label, knob value); ``selected``: the val positions kept by
    (label, K), ``[N, K]`` (each video's list for an adaptive row; for ``--export-selections``; not the oracle's,
    which picks with the labels and this run's recognizer, no upper bound for any other recognizer); ``decode``:
    the decoding cost behind the end-to-end figures (one row per frame count); ``matched_by``: the cost an adaptive
    row is matched on (:data:`BY_GFLOPS` or :data:`BY_FRAMES`), ``None`` without adaptive samplers."""

    rows: list[MainRow]
    sweeps: list[MainRow]
    scores: dict[tuple[str, int], np.ndarray]
    sweep_scores: dict[tuple[str, float], np.ndarray]
    selected: dict[tuple[str, int], Tensor | list[list[int]]]
    decode: list[DecodeRow]
    matched_by: str | None


BY_GFLOPS, BY_FRAMES = "GFLOPs/video", "frames/video"  # the cost an adaptive sampler's rows are matched on


def match_cost(row: MainRow, matched_by: str) -> float:
    """The cost of ``row`` an adaptive row is matched on: its mean GFLOPs/video, or its mean frames/video."""
    return row.gflops_per_video if matched_by == BY_GFLOPS else row.frames_mean


def budget_targets(rows: list[MainRow], budgets: tuple[int, ...], *, decodes: bool) -> tuple[str, dict[int, float]]:
    """The cost each budget K stands for, and what cost that is: the mean GFLOPs/video of the deployable fixed-K
    rows at K; where GFLOPs cover the sampler heads alone (features not from decoded videos: a frame bank's) or
    some K has no such row, the frames K itself (mean frames/video)."""
    fixed = {k: [r for r in rows if r.budget_K == k and r.knob is None and not r.reads_labels] for k in budgets}
    if not decodes or not all(fixed.values()):
        return BY_FRAMES, {k: float(k) for k in budgets}
    return BY_GFLOPS, {k: float(np.mean([r.gflops_per_video for r in at_k])) for k, at_k in fixed.items()}


def nearest_budget(cost: float, targets: dict[int, float]) -> int:
    """The budget whose target cost is nearest ``cost`` (the smaller on a tie)."""
    return min(targets, key=lambda k: (abs(cost - targets[k]), k))


def stand_ins(points: list[MainRow], targets: dict[int, float], matched_by: str) -> dict[int, MainRow]:
    """The sweep point of one adaptive sampler that stands in the main table at each budget K: among its ``points``
    whose ``budget_K`` (the budget nearest their cost) is K, the one nearest K's target cost (the cheaper on a tie).
    A budget no point belongs to is absent: a point far dearer or cheaper than K's rows is no comparison at K."""
    stand = {}
    for k, target in targets.items():
        at_k = [r for r in points if r.budget_K == k]
        if at_k:
            stand[k] = min(at_k, key=lambda r: (abs(match_cost(r, matched_by) - target), r.knob_value))
    return stand


def main_comparison(b: Evaluator, entries: list[Entry]) -> MainComparison:
    """Every entry's sampler at every budget; one that keeps all frames (dense) once, at K = T. A sampler trained by
    SGD is scored over its fits (metrics averaged; scores ``[F, N, C]``); cost and selections are its first fit's.

    An adaptive sampler is scored at every knob value of its ``sweep`` (a sweep row each, its GFLOPs/video and frames
    per video averaged over its videos and fits, its budget_K the budget nearest in cost), and stands in the main
    rows at a budget K with the sweep point whose mean cost is nearest the mean cost of the fixed-K rows at K
    (:func:`budget_targets`; the cheaper point on a tie) among its points whose budget_K is K; at a K that no point
    of its sweep is nearest, it has no row (a point far costlier or cheaper than K's rows is no comparison at K)."""
    cfg = b.cfg
    rows, scores, selected, successors, pipelines, decodes = [], {}, {}, {}, [], []
    adaptive = [e for e in entries if issubclass(get_sampler_class(e[1]), AdaptiveSampler)]
    for label, name, fields in [e for e in entries if e not in adaptive]:
        fits, bank = b.pipe.fits(name, fem=b.fem, rec=b.rec, **fields)
        sampler = fits[0]
        for k in [cfg.data.frames] if sampler.keeps_all else cfg.sampling.budgets:
            indices = [s.select(bank, k) for s in fits]
            index = indices[0]
            ev = combine_fits([b.score(i) for i in indices])
            scores[(label, k)] = ev.scores
            if not sampler.uses_labels_at_eval:
                selected[(label, k)] = index
            decoded = decoded_frames(sampler, t=cfg.data.frames, k=k) if b.decodes else None
            successors[decoded] = sampler.needs_motion  # mgsampler's 2T: T frames and the successor of each
            pipelines.append((label, sampler, k))
            rows.append(MainRow(dataset=cfg.data.dataset, sampler=label, frames_T=cfg.data.frames, budget_K=k,
                                fits=len(fits), **ev.metrics(), gflops_per_video=b.gflops(sampler, k),
                                frames_mean=float(k), frames_std=0.0, reads_labels=sampler.uses_labels_at_eval))
            decodes.append(decoded)
    matched_by, targets = budget_targets(rows, cfg.sampling.budgets, decodes=b.decodes)
    sweeps, sweep_scores, chosen = sweep_rows(b, adaptive, targets, matched_by=matched_by, pipelines=pipelines)
    timings = b.throughputs(pipelines)
    for row, decoded in zip(rows, decodes, strict=True):
        add_timing(row, timings.get((row.sampler, row.budget_K)), decoded=decoded)
    for row in sweeps:  # no decoding column: an adaptive sampler decodes a different number of frames per video
        add_timing(row, timings.get((row.sampler, row.knob_value)), decoded=None)
    decode = {n: b.decode_cost(n, successors=successors[n])
              for n in sorted({r.decoded_frames for r in rows} - {None})}
    add_speedups([*rows, *sweeps], {n: t.seconds for n, t in decode.items()})
    for label, *_ in adaptive:
        for k, point in stand_ins([r for r in sweeps if r.sampler == label], targets, matched_by).items():
            rows.append(dataclasses.replace(point, budget_K=k))
            scores[(label, k)] = sweep_scores[(label, point.knob_value)]
            selected[(label, k)] = chosen[(label, point.knob_value)].positions()
    on_device = {"decoder": cfg.data.decoder, "device": cfg.device} if cfg.data.decoder != "cpu" else {}
    decode_rows = [DecodeRow(frames=n, successors=successors[n], s_per_video=t.seconds, spread=t.spread,
                             timed_decodes=t.iterations, **on_device) for n, t in decode.items()]
    return MainComparison(rows=rows, sweeps=sweeps, scores=scores, sweep_scores=sweep_scores, selected=selected,
                          decode=decode_rows, matched_by=matched_by if adaptive else None)


def sweep_rows(b: Evaluator, entries: list[Entry], targets: dict[int, float], *, matched_by: str,
               pipelines: list) -> tuple[list[MainRow], dict[tuple[str, float], np.ndarray],
                                         dict[tuple[str, float], Budgeted]]:
    """Every adaptive entry at every knob value of its sweep: its rows (untimed), val scores and its first fit's
    selection, by (label, knob value); each point's pipeline is appended to ``pipelines`` for timing. A point's
    GFLOPs/video and frames/video are means over its videos and fits (a fit's exits are its own), the frames' std
    is over both."""
    cfg = b.cfg
    rows, scores, chosen = [], {}, {}
    for label, name, fields in entries:
        fits, bank = b.pipe.fits(name, fem=b.fem, rec=b.rec, **fields)
        sampler = fits[0]
        for value in sampler.sweep:
            selections = [s.budgeted(bank, value) for s in fits]
            ev = combine_fits([b.score(c.index, count=c.count) for c in selections])
            counts = torch.stack([c.count for c in selections]).double()
            gflops = float(np.mean([b.budgeted_gflops(s, c.count) for s, c in zip(fits, selections, strict=True)]))
            row = MainRow(dataset=cfg.data.dataset, sampler=label, frames_T=cfg.data.frames, budget_K=0,
                          knob=sampler.knob, knob_value=value, fits=len(fits), **ev.metrics(),
                          gflops_per_video=gflops, frames_mean=float(counts.mean()),
                          frames_std=float(counts.std(unbiased=False)))
            row.budget_K = nearest_budget(match_cost(row, matched_by), targets)
            rows.append(row)
            scores[(label, value)], chosen[(label, value)] = ev.scores, selections[0]
            pipelines.append((label, sampler, value))
    return rows, scores, chosen


def add_confidence_intervals(b: Evaluator, rows: list[MainRow], scores: dict, sweeps: list[MainRow] = (),
                             sweep_scores: dict | None = None) -> None:
    """Paired bootstrap over val videos, per budget: each row's mAP CI and its difference from uniform's at its K;
    each adaptive sweep point's (``sweeps``, scored ``sweep_scores`` by (label, knob value)) likewise, against
    uniform at its budget_K."""
    with b.pipe.log.stage("bootstrap"):
        for k in sorted({r.budget_K for r in [*rows, *sweeps]}):
            points = {(r.sampler, r.knob_value): sweep_scores[(r.sampler, r.knob_value)]
                      for r in sweeps if r.budget_K == k}
            stats = bootstrap(b, {label: s for (label, kk), s in scores.items() if kk == k} | points, "uniform")
            keyed = [(r, r.sampler) for r in rows] + [(r, (r.sampler, r.knob_value)) for r in sweeps]
            for r, key in keyed:
                if r.budget_K == k:
                    st = stats[key]
                    r.mAP_lo, r.mAP_hi, r.mAP_fit_std = st["lo"], st["hi"], st.get("fit_std")
                    r.dmAP_vs_uniform, r.dmAP_lo, r.dmAP_hi = st.get("diff"), st.get("diff_lo"), st.get("diff_hi")


def add_pareto_flags(rows: list[MainRow], metric: str, sweeps: list[MainRow] = ()) -> None:
    """Mark the operating points Pareto-optimal in (GFLOPs, ``metric``: ``"mAP"`` or ``"top1"``) among the deployable
    ones (:func:`~samplerbench.measures.metrics.pareto_flags`): the fixed-K rows and every adaptive sweep point
    together; an adaptive row of the main table is marked as its sweep point is. A row that reads labels is no
    operating point."""
    candidates = [*(r for r in rows if r.knob is None), *sweeps]
    points = [None if r.reads_labels else (r.gflops_per_video, getattr(r, metric)) for r in candidates]
    for row, flag in zip(candidates, pareto_flags(points), strict=True):
        row.pareto = flag
    flags = {(r.sampler, r.knob_value): r.pareto for r in sweeps}
    for row in rows:
        if row.knob is not None:
            row.pareto = flags[(row.sampler, row.knob_value)]


