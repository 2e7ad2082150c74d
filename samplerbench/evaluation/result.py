"""What a run hands its report: every number and note of the result files, computed, nothing left to run."""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import numpy as np

from samplerbench.config import RunConfig
from samplerbench.datasets.base import DatasetIndex

IN_SUMMARY = "in_summary"  # a MainRow field's metadata: False for a field run.json's rows hold but summary.csv not


@dataclasses.dataclass(kw_only=True)
class MainRow:
    """One row of the main table: a sampler (``sampler``: its label, e.g. ``nsnet (w/o NS)``) at budget ``budget_K``
    of ``frames_T``. Its fields, in order, are ``summary.csv``'s columns (but those marked ``IN_SUMMARY: False``)
    and run.json's main rows. :mod:`samplerbench.tables.main` builds it with the scores (the mean over ``fits``
    fits) and GFLOPs, then fills the timing, cost, interval and Pareto columns in place; ``None`` where nothing was
    measured (the oracle's timings) or defined (a Δ without a uniform row).

    An adaptive sampler's row (``knob`` set) is one point of its sweep, ``knob = knob_value``: its videos use
    ``frames_mean`` ± ``frames_std`` frames (a fixed-K row: K ± 0), GFLOPs/video is the mean of what each used, and
    ``budget_K`` is the budget it stands beside, whose uniform row its Δ is taken against (the rule:
    :mod:`samplerbench.tables.main`)."""

    dataset: str
    sampler: str
    frames_T: int
    budget_K: int
    knob: str | None = None
    knob_value: float | None = None
    fits: int
    mAP: float
    mAP_fit_std: float | None = None
    mAP_lo: float | None = None
    mAP_hi: float | None = None
    dmAP_vs_uniform: float | None = None
    dmAP_lo: float | None = None
    dmAP_hi: float | None = None
    mAP_anet: float
    top1: float
    hit3: float
    salient_hit_rate: float
    gflops_per_video: float
    frames_mean: float
    frames_std: float
    videos_per_s: float | None = None
    timing_spread: float | None = None
    timed_iters: int | None = None
    speedup_vs_dense: float | None = None
    speedup_flops: float | None = None
    decoded_frames: int | None = None
    decode_s_per_video: float | None = None
    videos_per_s_e2e: float | None = None
    speedup_e2e_vs_dense: float | None = None
    pareto: bool = False
    # the oracle: an upper bound that reads the labels at evaluation, never timed nor Pareto-optimal
    reads_labels: bool = dataclasses.field(default=False, metadata={IN_SUMMARY: False})

    @classmethod
    def summary_columns(cls) -> list[str]:
        """``summary.csv``'s columns: the fields in order, but those marked ``IN_SUMMARY: False``."""
        return [f.name for f in dataclasses.fields(cls) if f.metadata.get(IN_SUMMARY, True)]


# MainRow's field names as attributes, for what reads them back as table columns (summary.csv): COLUMN.mAP == "mAP",
# and a name that is no field fails where it is written.
COLUMN = types.SimpleNamespace(**{f.name: f.name for f in dataclasses.fields(MainRow)})


@dataclasses.dataclass(frozen=True, kw_only=True)
class DecodeRow:
    """What decoding ``frames`` frames of a val video costs, behind the main table's end-to-end column: the median
    seconds per video, the spread (interquartile range over the median) and the decodes timed. ``successors``:
    mgsampler's pipeline (``frames`` / 2 frames, each with its successor, and their motion); ``decoder`` and
    ``device``: where a run's ``data.decoder`` other than the CPU's decoded (``None``: the CPU decoders)."""

    frames: int
    successors: bool
    s_per_video: float
    spread: float
    timed_decodes: int
    decoder: str | None = None
    device: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Table:
    """One table besides the main one: its rows and how the report titles and explains it."""

    name: str  # its key in run.json's "tables"
    filename: str
    title: str
    note: str
    rows: list[dict[str, Any]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunResult:
    """A finished run, as :func:`samplerbench.report.write.write_all` writes it.

    ``main``: the samplers × budgets rows (an adaptive sampler's: the sweep point matched to each budget);
    ``sweeps``: every sweep point of the adaptive samplers, matched ``by`` ``adaptive_match`` (``"GFLOPs/video"`` or
    ``"frames/video"``); ``decode``: the decoding cost behind their end-to-end column;
    ``reading``: the note every NSNet table carries; ``stages``: the stage log's records (a live list);
    ``predictions``/``selections``: for ``--export-predictions``/``--export-selections``."""

    cfg: RunConfig
    data: DatasetIndex
    machine: str
    features: str  # what made the per-frame features (the feature source's description), for every table's header
    decodes: bool  # the features come from decoded videos: the cost columns cover the whole pipeline
    main: list[MainRow]
    decode: list[DecodeRow]
    sweeps: list[MainRow] = dataclasses.field(default_factory=list)
    adaptive_match: str | None = None
    tables: list[Table] = dataclasses.field(default_factory=list)
    curves: dict | None = None
    reading: str | None = None
    paper_oracle: float | None = None
    stages: list[dict] = dataclasses.field(default_factory=list)
    skipped: list[tuple] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    protocol: dict[str, Any] | None = None
    predictions: dict[tuple[str, int], np.ndarray] | None = None
    video_ids: list[str] = dataclasses.field(default_factory=list)
    selections: dict[str, Any] | None = None
    checkpoints: list[dict] = dataclasses.field(default_factory=list)
    code: str = "?"  # cache.code_digest of the run's code
    weights: dict[str, str] = dataclasses.field(default_factory=dict)  # role -> "imagenet" or the file's digest
