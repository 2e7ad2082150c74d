"""Frame banks in a run: the stages of a run on a bank (``--dataset bank``), and a run's bank written out
(``--export-bank``). The format itself is :mod:`samplerbench.formats.bank`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from samplerbench.core.errors import UserError, environment_faults
from samplerbench.datasets.bank import bank_index, open_bank
from samplerbench.datasets.base import DatasetIndex
from samplerbench.datasets.videolist import ListMatch
from samplerbench.formats.bank import SPLITS, Bank, BankSplit, write_bank
from samplerbench.formats.cache import stage_key
from samplerbench.stages.pipeline import Outputs, Pipeline, Split


class BankPipeline(Pipeline):
    """The stages of a run on a frame bank (``--dataset bank``): index, splits and per-frame outputs come from
    the bank, memory-mapped, and only the samplers are fitted (and cached). Its :class:`Outputs` have no model:
    the backbones that made a bank are unknown to the run."""

    def bank(self) -> Bank:
        return self._once(("bank",), lambda: open_bank(self.cfg))

    def _indexed(self) -> tuple[DatasetIndex, ListMatch | None]:
        def compute() -> tuple[DatasetIndex, None]:
            if self.cfg.data.video_list:
                raise UserError(f"--video-list {self.cfg.data.video_list}: a frame bank's rows are its videos; "
                                "export a bank of the listed videos instead (--video-list on the run that writes it)")
            with self.log.stage("index"):
                return bank_index(self.bank()), None

        return self._once(("index",), compute)

    def split(self, subset: str) -> Split:
        def compute() -> Split:
            bank = self.bank()
            rows = bank.splits[subset]
            return Split(key=stage_key("bank split", subset=subset, bank=bank.fingerprint), frames=None,
                         targets=torch.from_numpy(rows.labels).float(), salient=torch.tensor(rows.salient),
                         video_ids=list(rows.video_ids), skipped=[])

        return self._once(("split", subset), compute)

    def motion(self, subset: str) -> Tensor:
        raise UserError("a frame bank holds no frames, hence no motion: samplers that read motion cannot run on it")

    def outputs(self, role: str, arch: str, *, tsn: bool = False) -> Outputs:
        """The bank's FEM or recognizer outputs whatever ``arch`` and ``tsn`` say; the FEM's have no logits
        (``[N, T, 0]``). Features keep the bank's dtype (float16 stays float16 and memory-mapped); logits are
        read into memory as at least float32."""
        return self._once(("outputs", role), lambda: self._bank_outputs(role))

    def _bank_outputs(self, role: str) -> Outputs:
        bank, rec = self.bank(), role == "recognizer"
        values = {}
        for subset in SPLITS:
            rows = bank.splits[subset]
            logits = torch.from_numpy(rows.rec_logits) if rec else torch.empty(len(rows), bank.frames, 0)
            values[f"{subset}_feats"] = torch.from_numpy(rows.rec_features if rec else rows.fem_features)
            values[f"{subset}_logits"] = logits.to(torch.promote_types(logits.dtype, torch.float32))
        return Outputs(key=stage_key(f"bank/{role}", bank=bank.fingerprint), name=f"{role}/bank",
                       arch=str(bank.producer.get(role, "bank")), model=None, training=None, **values)


def export_bank(pipe: Pipeline, folder: Path, *, fem: Outputs, rec: Outputs) -> Path:
    """Write the frame bank of the run of ``pipe``: its ``fem`` and ``rec`` outputs on both splits into ``folder``
    (:mod:`samplerbench.formats.bank`), at the run's dtype; returns its index.json."""
    cfg, data = pipe.cfg, pipe.index()
    splits = {}
    for subset in SPLITS:
        split, feats, logits = pipe.split(subset), f"{subset}_feats", f"{subset}_logits"
        splits[subset] = BankSplit(
            fem_features=getattr(fem, feats).numpy(), rec_features=getattr(rec, feats).numpy(),
            rec_logits=getattr(rec, logits).numpy(), labels=split.targets.numpy().astype("uint8"),
            salient=split.salient.numpy(), video_ids=tuple(split.video_ids))
    producer = dict(tool="samplerbench", dataset=cfg.data.dataset, preset=cfg.preset, seed=cfg.seed,
                    fem=fem.name, recognizer=rec.name, fem_res=cfg.fem.res, rec_res=cfg.recognizer.res,
                    train_views=cfg.data.train_views)
    with environment_faults(folder):
        return write_bank(folder, classes=data.classes, splits=splits, producer=producer)
