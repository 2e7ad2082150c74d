"""Features from a frame bank (``--dataset bank``): another run's per-frame outputs, memory-mapped; and a run's own
features written out as a bank (``--export-bank``). The format itself is :mod:`samplerbench.formats.bank`."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from samplerbench.config import Network
from samplerbench.core.errors import UserError, environment_faults
from samplerbench.datasets.bank import bank_index, open_bank
from samplerbench.datasets.base import DatasetIndex
from samplerbench.datasets.videolist import ListMatch
from samplerbench.formats.bank import SPLITS, Bank, BankSplit, write_bank
from samplerbench.formats.cache import stage_key
from samplerbench.samplers import AdaptiveSampler, Sampler, get_sampler_class
from samplerbench.stages.source import FeatureSource, Outputs, Split
from samplerbench.stages.throughput import head_step


class BankSource(FeatureSource):
    """A frame bank's rows: index, splits, per-frame outputs and (where the bank holds it) motion come from the bank;
    only the samplers are fitted. Its :class:`Outputs` have no model: the backbones that made a bank are unknown
    to the run, so a pipeline's cost here is the sampler heads alone."""

    decodes: ClassVar[bool] = False

    def bank(self) -> Bank:
        return self.stages.once(("bank",), lambda: open_bank(self.cfg))

    def index(self) -> DatasetIndex:
        return self.stages.once(("index",), self._index)

    def _index(self) -> DatasetIndex:
        if self.cfg.data.video_list:
            raise UserError(f"--video-list {self.cfg.data.video_list}: a frame bank's rows are its videos; export a "
                            "bank of the listed videos instead (--video-list on the run that writes it)")
        with self.stages.log.stage("index"):
            return bank_index(self.bank())

    def video_list(self) -> ListMatch | None:
        return None

    def check(self, names: list[str], *, extra: Collection[Network]) -> list[str]:
        cfg, bank = self.cfg, self.bank()
        if bank.frames != cfg.data.frames:
            raise UserError(f"--frames {cfg.data.frames}: the bank {cfg.data.root} holds T = {bank.frames} frames per "
                            f"video (its index.json); pass --frames {bank.frames}")
        if cfg.sampling.aggregation == "max_features":
            raise UserError("--aggregation max_features needs the recognizer's classifier head, which a frame bank "
                            "does not hold; use mean_softmax or mean_logits")
        motion = [] if bank.has_motion else [n for n in names if get_sampler_class(n).needs_motion]
        if motion and cfg.sampling.samplers:
            raise UserError(f"--sampler {', '.join(motion)}: reads per-frame motion, which the bank {cfg.data.root} "
                            "does not hold (a bank exported by this version holds it); leave it out")
        names[:] = [n for n in names if n not in motion]
        return ["frame bank: GFLOPs/video and videos/s cover the sampler heads alone (the bank's backbones are "
                "unknown: add T × FEM + K × recognizer per frame for a pipeline's cost); nothing is decoded, so no "
                "e2e column"] + [f"frame bank: {n} left out: it reads per-frame motion, which this bank does not "
                                 "hold" for n in motion]

    def describe(self) -> str:
        return f"features of the frame bank {self.cfg.data.root}"

    def split(self, subset: str) -> Split:
        def compute() -> Split:
            bank = self.bank()
            rows = bank.splits[subset]
            return Split(key=stage_key("bank split", subset=subset, bank=bank.fingerprint), frames=None,
                         targets=torch.from_numpy(rows.labels).float(), salient=torch.tensor(rows.salient),
                         video_ids=list(rows.video_ids), skipped=[])

        return self.stages.once(("split", subset), compute)

    def motion(self, subset: str) -> Tensor | None:
        rows = self.bank().splits[subset]
        return None if rows.motion is None else torch.from_numpy(rows.motion).float()

    def outputs(self, role: str, arch: str, *, tsn: bool = False) -> Outputs:
        """The bank's FEM or recognizer outputs whatever ``arch`` and ``tsn`` say; the FEM's have no logits
        (``[N, T, 0]``). Features keep the bank's dtype (float16 stays float16 and memory-mapped); logits are
        read into memory as at least float32."""
        return self.stages.once(("outputs", role), lambda: self._outputs(role))

    def _outputs(self, role: str) -> Outputs:
        bank, rec = self.bank(), role == "recognizer"
        values = {}
        for subset in SPLITS:
            rows = bank.splits[subset]
            logits = torch.from_numpy(rows.rec_logits) if rec else torch.empty(len(rows), bank.frames, 0)
            values[f"{subset}_feats"] = torch.from_numpy(rows.rec_features if rec else rows.fem_features)
            values[f"{subset}_logits"] = logits.to(torch.promote_types(logits.dtype, torch.float32))
        return Outputs(key=stage_key(f"bank/{role}", bank=bank.fingerprint), name=f"{role}/bank",
                       arch=str(bank.producer.get(role, "bank")), model=None, training=None, **values)

    def gflops(self, sampler: Sampler, k: int) -> float:
        """The sampler's heads alone: the bank's backbones are unknown."""
        return sampler.gflops(self.cfg.data.frames)

    def budgeted_gflops(self, sampler: AdaptiveSampler, count: Tensor) -> Tensor:
        """The sampler's own cost on each video (an adaptive sampler's gates), as :meth:`gflops`."""
        return sampler.head_gflops(count, self.cfg.data.frames)

    def timed_step(self, sampler: Sampler, point: float, *, batch: int, rec: Outputs,
                   fem: Outputs) -> Callable[[], None]:
        """The selection alone on the bank's FEM features, and its recognizer outputs for a sampler that reads them
        (:func:`~samplerbench.stages.throughput.head_step`)."""
        rows = slice(0, batch)
        recognized = ({"rec_logits": rec.val_logits[rows], "rec_feats": rec.val_feats[rows]}
                      if sampler.reads_recognizer else {})
        return head_step(sampler=sampler, fem=fem.val_feats[rows], point=point, num_classes=rec.val_logits.shape[-1],
                         motion=self.motion("val")[rows] if sampler.needs_motion else None, device=self.cfg.device,
                         **recognized)


def export_bank(source: FeatureSource, folder: Path, *, fem: Outputs, rec: Outputs) -> Path:
    """Write the features of ``source``: its ``fem`` and ``rec`` outputs, labels, salient flags and per-frame motion
    on both splits into ``folder`` (:mod:`samplerbench.formats.bank`), at the run's dtype; returns its index.json.
    The motion stage runs for both splits if no sampler needed it yet, so that every sampler runs on the bank (a
    source without motion, a bank that holds none, writes a bank without it)."""
    cfg, data = source.cfg, source.index()
    splits = {}
    for subset in SPLITS:
        split, feats, logits = source.split(subset), f"{subset}_feats", f"{subset}_logits"
        motion = source.motion(subset)
        splits[subset] = BankSplit(
            fem_features=getattr(fem, feats).numpy(), rec_features=getattr(rec, feats).numpy(),
            rec_logits=getattr(rec, logits).numpy(), labels=split.targets.numpy().astype("uint8"),
            salient=split.salient.numpy(), video_ids=tuple(split.video_ids),
            motion=None if motion is None else motion.numpy().astype("float32"))
    producer = dict(tool="samplerbench", dataset=cfg.data.dataset, preset=cfg.preset, seed=cfg.seed,
                    fem=fem.name, recognizer=rec.name, fem_res=cfg.fem.res, rec_res=cfg.recognizer.res,
                    train_views=cfg.data.train_views)
    with environment_faults(folder):
        return write_bank(folder, classes=data.classes, splits=splits, producer=producer)
