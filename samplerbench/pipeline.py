"""The cached stages of a run: index -> decode -> recognizer / FEM -> per-frame outputs -> fitted samplers.

Every stage result is stored in the :class:`~samplerbench.cache.StageCache` under a key that hashes its own
config and the keys of its inputs, and is memoised for the rest of the process, so the ablation tables can
ask for "NSNet on an EfficientNet FEM" without caring whether that was already computed by this run, by an
earlier run, or not at all.

Under torchrun (see :mod:`samplerbench.distributed`) every rank runs the same stages in the same order:
decoding and feature extraction split the rows over the ranks and gather them back in record order,
training runs in DistributedDataParallel, and only rank 0 writes the cache.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from samplerbench import distributed
from samplerbench.cache import StageCache, stage_key
from samplerbench.config import RunConfig
from samplerbench.datasets import get_dataset
from samplerbench.datasets.base import DatasetIndex, VideoRecord
from samplerbench.decode import DecodedSplit, decode_records
from samplerbench.errors import UserError
from samplerbench.recognizers.backbones import FrameClassifier, load_weights
from samplerbench.recognizers.train import extract_outputs, resize_frames, train_frame_classifier
from samplerbench.samplers import FrameBank, Sampler, get_sampler_class
from samplerbench.stagelog import StageLog


@dataclasses.dataclass(frozen=True)
class Split:
    """The decoded frames of one subset (one row per video, or per temporal-shift view in training)."""

    key: str
    frames: Tensor  # [N, T, 3, rec_res, rec_res] uint8
    targets: Tensor  # [N, C] multi-hot float
    salient: Tensor  # [N, T] bool: frame inside an annotated segment
    video_ids: list[str]
    skipped: list[tuple[str, str, str]]  # (video_id, path, reason)


@dataclasses.dataclass(frozen=True)
class Outputs:
    """A frozen frame classifier and its per-frame features and logits on both splits."""

    key: str
    name: str  # e.g. "recognizer/resnet18+tsn", for stage lines
    arch: str
    model: FrameClassifier  # in eval mode, for throughput timing
    train_feats: Tensor
    train_logits: Tensor
    val_feats: Tensor
    val_logits: Tensor
    history: list[float]
    tsn: bool = False  # trained "w/ TSN" (K segments, averaged logits)


@dataclasses.dataclass(frozen=True)
class Fitted:
    """A sampler the pipeline built, the non-default options it was built with, and the classifiers it was
    fitted on: what a checkpoint of it must record (see :mod:`samplerbench.checkpoint`)."""

    name: str
    fields: dict
    fem: Outputs
    rec: Outputs
    sampler: Sampler


def _file_fingerprint(record: VideoRecord) -> tuple:
    """Identity of a record's input for cache keys: a replaced or edited video invalidates its stages."""
    path = Path(record.path)
    stat = path.stat() if path.exists() else None
    return (record.video_id, str(path), record.labels, record.segments, stat and (stat.st_size, stat.st_mtime_ns))


class Pipeline:
    """Computes (or loads) each stage once."""

    def __init__(self, cfg: RunConfig, *, cache_dir: Path, log: StageLog) -> None:
        self.cfg = cfg
        self.cache_dir = Path(cache_dir)
        self.cache = StageCache(self.cache_dir / "stages")
        self.log = log
        self._memo: dict[tuple, object] = {}
        self.fitted: list[Fitted] = []  # every sampler built so far, in order, for the run's checkpoints

    def _once(self, key: tuple, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def cached(self, label: str, stage: str, key: str, compute: Callable[[], Any]) -> Any:
        """Entry ``key`` of the cache's ``stage``, else ``compute()`` saved there; one stage line ``label``.

        Under torchrun every rank calls this, and rank 0 decides hit or miss for all of them: a rank that
        loads while another computes would wait forever in the computation's collectives. ``compute`` runs
        on every rank and must return the same value on each; only rank 0 writes it. An entry that does not
        load is a miss (rank 0 moves it aside, see :meth:`StageCache.load`), so a damaged cache never blocks.
        """
        path = self.cache.path(stage, key)
        with self.log.stage(label) as st:
            value = self.cache.load(stage, key) if distributed.is_main() else None
            st["cached"] = distributed.broadcast(value is not None)
            if not st["cached"]:
                value = compute()
                if distributed.is_main():
                    self.cache.save(stage, key, value)
                return value
            if not distributed.is_main():
                value = self.cache.load(stage, key, heal=False)
            if value is None:
                raise UserError(f"rank {distributed.rank()} cannot load {path}, which rank 0 loaded: with several "
                                f"nodes, --cache-dir must be on a filesystem that all of them share")
            return value

    # -- data ---------------------------------------------------------------------------------------------
    def index(self) -> DatasetIndex:
        def compute() -> DatasetIndex:
            # Rank 0 generates the synthetic dataset (if needed) before the other ranks read it.
            with distributed.main_first(), self.log.stage("index"):
                data = get_dataset(self.cfg.dataset)(self.cfg, self.cache_dir)
            for subset in ("train", "val"):
                if not data.split(subset):
                    raise UserError(f"dataset {data.name!r} has no {subset!r} videos")
            return data

        return self._once(("index",), compute)

    def split(self, subset: str) -> Split:
        return self._once(("split", subset), lambda: self._decode(subset))

    def _decode(self, subset: str) -> Split:
        cfg, data = self.cfg, self.index()
        records = data.split(subset)
        train = subset == "train"
        params = dict(t=cfg.frames, short_side=cfg.short_side, crop=cfg.rec_res,
                      views=cfg.train_views if train else 1, seed=cfg.seed, train=train)
        key = stage_key("decode", files=[_file_fingerprint(r) for r in records], **params)

        def decode() -> dict:
            part = decode_records(records[distributed.shard(len(records))], **params, workers=cfg.workers,
                                  pin_memory=cfg.device.startswith("cuda"))
            return DecodedSplit.concat(distributed.gather(part)).to_dict()

        dec = DecodedSplit.from_dict(self.cached(f"decode/{subset}", "decode", key, decode))
        if not dec.video_ids:
            raise UserError(f"no readable {subset} video in dataset {data.name!r}; see the skipped list")
        targets = torch.zeros(len(dec.labels), len(data.classes))
        for row, labels in enumerate(dec.labels):
            targets[row, list(labels)] = 1.0
        return Split(key=key, frames=dec.frames, targets=targets, salient=dec.salient, video_ids=dec.video_ids,
                     skipped=dec.skipped)

    # -- frame classifiers --------------------------------------------------------------------------------
    def outputs(self, role: str, arch: str, *, tsn: bool = False) -> Outputs:
        """The trained ``role`` ("recognizer" or "fem") network ``arch`` and its cached per-frame outputs."""
        return self._once(("outputs", role, arch, tsn), lambda: self._outputs(role, arch, tsn))

    def _outputs(self, role: str, arch: str, tsn: bool) -> Outputs:
        cfg = self.cfg
        train, val = self.split("train"), self.split("val")
        rec = role == "recognizer"
        epochs = cfg.fem_epochs
        if rec:
            epochs = (cfg.rec_tsn_epochs or cfg.rec_epochs) if tsn else cfg.rec_epochs
        hyper = dict(
            arch=arch,
            segments=cfg.main_budget if tsn else 1,
            epochs=epochs,
            lr=cfg.rec_lr if rec else cfg.fem_lr,
            batch_size=cfg.rec_batch if rec else cfg.fem_batch,
            resolution=cfg.rec_res if rec else cfg.fem_res,
            seed=cfg.seed,
            weights=cfg.weights.get(role),
            dtype=cfg.dtype,
        )
        key = stage_key(f"train/{role}", train=train.key, **hyper)
        name = f"{role}/{arch}{'+tsn' if tsn else ''}"
        num_classes = train.targets.shape[1]
        dtype = getattr(torch, cfg.dtype)

        def fit() -> dict:
            torch.manual_seed(cfg.seed)  # initial weights from the seed alone, not from what ran before
            net = FrameClassifier(arch=arch, num_classes=num_classes)
            if hyper["weights"]:
                load_weights(net, hyper["weights"])
            net.to(dtype)
            history = train_frame_classifier(
                net, train.frames, train.targets, segments=hyper["segments"], epochs=hyper["epochs"],
                lr=hyper["lr"], batch_size=hyper["batch_size"], seed=cfg.seed, device=cfg.device,
                resolution=hyper["resolution"], desc=f"train {name}")
            # DDP keeps the weights equal on every rank, but not BatchNorm's running statistics on CPU
            # (local batches): every rank continues with rank 0's model, the one in the cache.
            return distributed.broadcast({"model": net.state_dict(), "history": history})

        state = self.cached(f"train {name}", "model", key, fit)
        model = FrameClassifier(arch=arch, num_classes=num_classes).to(dtype)
        model.load_state_dict(state["model"])
        out_key = stage_key(f"outputs/{role}", model=key, train=train.key, val=val.key)

        def features() -> dict[str, Tensor]:
            feats = {}
            for subset, split in (("train", train), ("val", val)):
                part = extract_outputs(model, split.frames[distributed.shard(len(split.frames))],
                                       resolution=hyper["resolution"], device=cfg.device,
                                       desc=f"features {name} {subset}")
                f, lg = (torch.cat(p) for p in zip(*distributed.gather(part), strict=True))
                feats[f"{subset}_feats"], feats[f"{subset}_logits"] = f, lg
            return feats

        feats = self.cached(f"features {name}", "outputs", out_key, features)
        return Outputs(key=out_key, name=name, arch=arch, model=model.eval(), history=list(state["history"]), tsn=tsn,
                       **feats)

    # -- samplers -----------------------------------------------------------------------------------------
    def banks(self, sampler: type[Sampler], *, fem: Outputs, rec: Outputs) -> tuple[FrameBank, FrameBank]:
        """The training bank (everything) and the evaluation bank (only what ``sampler`` may see at test)."""
        train, val = self.split("train"), self.split("val")
        num_classes = train.targets.shape[1]
        res = self.cfg.fem_res
        frames = (resize_frames(train.frames, res), resize_frames(val.frames, res)) if sampler.needs_frames \
            else (None, None)
        train_bank = FrameBank(fem=fem.train_feats, num_classes=num_classes, frames=frames[0],
                               labels=train.targets, rec_logits=rec.train_logits, rec_feats=rec.train_feats,
                               video_ids=tuple(train.video_ids))
        privileged = sampler.uses_labels_at_eval
        val_bank = FrameBank(fem=fem.val_feats, num_classes=num_classes, frames=frames[1],
                             labels=val.targets if privileged else None,
                             rec_logits=rec.val_logits if privileged else None,
                             rec_feats=rec.val_feats if privileged else None, video_ids=tuple(val.video_ids))
        return train_bank, val_bank

    def sampler(self, name: str, *, fem: Outputs, rec: Outputs, **fields) -> tuple[Sampler, FrameBank]:
        """A fitted sampler and its evaluation bank. ``fields`` are the sampler's own constructor options.

        Fields equal to the constructor's defaults are dropped first, so ``nsnet(guiding="prototype")`` and
        ``nsnet()`` are one sampler, fitted once.
        """
        params = inspect.signature(get_sampler_class(name).__init__).parameters
        fields = {k: v for k, v in fields.items() if k not in params or params[k].default != v}
        return self._once(("sampler", name, fem.key, rec.key, tuple(sorted(fields.items()))),
                          lambda: self._fit(name, fem, rec, fields))

    def _fit(self, name: str, fem: Outputs, rec: Outputs, fields: dict) -> tuple[Sampler, FrameBank]:
        cfg = self.cfg
        cls = get_sampler_class(name)
        common = dict(seed=cfg.seed, epochs=cfg.sampler_epochs, batch_size=cfg.sampler_batch,
                      lr=cfg.sampler_lr, device=cfg.device)
        accepted = inspect.signature(cls.__init__).parameters
        kwargs = {k: v for k, v in common.items() if k in accepted} | fields
        sampler = cls(**kwargs)
        train_bank, val_bank = self.banks(cls, fem=fem, rec=rec)
        if cls.trainable:
            key = stage_key("sampler", name=name, kwargs={k: v for k, v in kwargs.items() if k != "device"},
                            fem=fem.key, rec=rec.key)
            label = name + "".join(f" {k}={v}" for k, v in fields.items()) + f" ({fem.name}, {rec.name})"

            def fit() -> dict:
                sampler.fit(train_bank)
                return sampler.state_dict()

            sampler.load_state_dict(self.cached(f"fit {label}", "sampler", key, fit))
        self.fitted.append(Fitted(name=name, fields=fields, fem=fem, rec=rec, sampler=sampler))
        return sampler, val_bank
