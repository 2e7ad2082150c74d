"""The main table: every sampler at every budget with its accuracy, GFLOPs per video and timed throughput (interleaved
against dense), paired confidence intervals against uniform and the Pareto front; one :class:`MainRow` each."""

from __future__ import annotations

from samplerbench.evaluation.evaluator import Evaluator, bootstrap
from samplerbench.evaluation.result import DecodeRow, MainRow
from samplerbench.measures.cost import Timing
from samplerbench.measures.evaluate import combine_fits
from samplerbench.measures.metrics import pareto_flags
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


def main_comparison(b: Evaluator, entries: list[Entry]) -> tuple[list[MainRow], dict, dict, list[DecodeRow]]:
    """Every entry's sampler at every budget; one that keeps all frames (dense) once, at K = T. A sampler trained by
    SGD is scored over its fits (metrics averaged; scores ``[F, N, C]``); cost and selections are its first fit's.
    Returns the rows, the val scores and the val positions ``[N, K]`` kept (for ``--export-selections``; not the
    oracle's, which picks with the labels and this run's recognizer, no upper bound for any other recognizer) by
    (label, K), and the decoding cost behind the end-to-end figures (one row per frame count)."""
    cfg = b.cfg
    rows, scores, selected, successors, pipelines, decodes = [], {}, {}, {}, [], []
    for label, name, fields in entries:
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
                                reads_labels=sampler.uses_labels_at_eval))
            decodes.append(decoded)
    timings = b.throughputs(pipelines)
    for row, decoded in zip(rows, decodes, strict=True):
        add_timing(row, timings.get((row.sampler, row.budget_K)), decoded=decoded)
    decode = {n: b.decode_cost(n, successors=successors[n])
              for n in sorted({r.decoded_frames for r in rows} - {None})}
    add_speedups(rows, {n: t.seconds for n, t in decode.items()})
    on_device = {"decoder": cfg.data.decoder, "device": cfg.device} if cfg.data.decoder != "cpu" else {}
    decode_rows = [DecodeRow(frames=n, successors=successors[n], s_per_video=t.seconds, spread=t.spread,
                             timed_decodes=t.iterations, **on_device) for n, t in decode.items()]
    return rows, scores, selected, decode_rows


def add_confidence_intervals(b: Evaluator, rows: list[MainRow], scores: dict) -> None:
    """Paired bootstrap over val videos, per budget: each row's mAP CI and its difference from uniform's."""
    with b.pipe.log.stage("bootstrap"):
        for k in sorted({r.budget_K for r in rows}):
            stats = bootstrap(b, {label: s for (label, kk), s in scores.items() if kk == k}, "uniform")
            for r in rows:
                if r.budget_K == k:
                    st = stats[r.sampler]
                    r.mAP_lo, r.mAP_hi, r.mAP_fit_std = st["lo"], st["hi"], st.get("fit_std")
                    r.dmAP_vs_uniform, r.dmAP_lo, r.dmAP_hi = st.get("diff"), st.get("diff_lo"), st.get("diff_hi")


def add_pareto_flags(rows: list[MainRow], metric: str) -> None:
    """Mark the rows Pareto-optimal in (GFLOPs, ``metric``: ``"mAP"`` or ``"top1"``) among the deployable ones
    (:func:`~samplerbench.measures.metrics.pareto_flags`); a row that reads labels is no operating point."""
    points = [None if r.reads_labels else (r.gflops_per_video, getattr(r, metric)) for r in rows]
    for row, flag in zip(rows, pareto_flags(points), strict=True):
        row.pareto = flag


