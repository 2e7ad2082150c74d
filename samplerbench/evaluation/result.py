"""What a run hands its report: every number and note of the result files, computed, nothing left to run."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from samplerbench.config import RunConfig
from samplerbench.datasets.base import DatasetIndex


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

    ``main``: the samplers × budgets rows; ``decode``: the decoding cost behind their end-to-end column;
    ``reading``: the note every NSNet table carries; ``stages``: the stage log's records (a live list);
    ``predictions``/``selections``: for ``--export-predictions``/``--export-selections``."""

    cfg: RunConfig
    data: DatasetIndex
    machine: str
    features: str  # what made the per-frame features (the feature source's description), for every table's header
    decodes: bool  # the features come from decoded videos: the cost columns cover the whole pipeline
    main: list[dict[str, Any]]
    decode: list[dict[str, Any]]
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
