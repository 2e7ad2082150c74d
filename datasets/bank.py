"""``--dataset bank --data-root DIR``: a frame bank (:mod:`samplerbench.formats.bank`) instead of videos; records list
its videos and labels, and the run reads features from the bank (:class:`~samplerbench.stages.banks.BankSource`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from samplerbench.core.errors import UserError
from samplerbench.datasets.base import DatasetIndex, DatasetOptions, VideoRecord, register_dataset
from samplerbench.formats.bank import Bank, read_bank

NAME = "bank"


def bank_index(bank: Bank) -> DatasetIndex:
    """One record per video of ``bank`` (its path: the bank folder), with the rows ``bank`` left out as skipped."""
    records = []
    for subset, split in bank.splits.items():
        seen: set[str] = set()
        for row, video_id in enumerate(split.video_ids):
            if video_id not in seen:
                seen.add(video_id)
                labels = tuple(np.flatnonzero(split.labels[row]).tolist())
                records.append(VideoRecord(video_id=video_id, path=bank.root, labels=labels, subset=subset))
    return DatasetIndex(name=NAME, classes=bank.classes, records=tuple(records), skipped=bank.skipped)


def open_bank(cfg) -> Bank:
    """The bank of a run of ``cfg`` (a :class:`~samplerbench.config.RunConfig`): ``cfg.data.root``, read with
    ``cfg.data.lenient``."""
    if not cfg.data.root:
        raise UserError("--dataset bank needs --data-root: the bank folder (one a run wrote with --export-bank)")
    return read_bank(cfg.data.root, lenient=cfg.data.lenient)


@register_dataset(NAME, features="bank")
def build(cfg, cache_dir: Path, options: DatasetOptions) -> DatasetIndex:
    return bank_index(open_bank(cfg))
