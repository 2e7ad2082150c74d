"""The cached stages of a run: index -> decode -> recognizer / FEM -> per-frame outputs -> fitted samplers.

Every stage result is stored in the :class:`~samplerbench.formats.cache.StageCache` under a key that hashes its own
config and its inputs' keys, and memoised in the process. Decoded frames live in the frame store
(:mod:`samplerbench.formats.store`). Under torchrun (:mod:`samplerbench.core.distributed`) every rank runs the same
stages
in the same order: decoding and feature extraction take one block of shards per rank (gathered back in
record order), training runs in DistributedDataParallel, and only rank 0 writes the cache."""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from samplerbench.config import RunConfig, backbone_schedule, sampler_override
from samplerbench.core import distributed
from samplerbench.core.errors import UserError, environment_faults
from samplerbench.core.sgd import Fit, heldout_rows
from samplerbench.core.stagelog import StageLog, warn
from samplerbench.datasets import get_dataset
from samplerbench.datasets.base import DatasetIndex, VideoRecord
from samplerbench.datasets.videolist import ListMatch, read_video_list, restrict
from samplerbench.formats import store
from samplerbench.formats.cache import StageCache, source_hash, stage_key
from samplerbench.formats.store import FrameSource
from samplerbench.recognizers import train as frame_training
from samplerbench.recognizers.backbones import FrameClassifier, load_weights, weights_identity
from samplerbench.recognizers.train import extract_outputs, train_frame_classifier
from samplerbench.samplers import FrameBank, Sampler, get_sampler_class
from samplerbench.samplers.base import check_options, constructor_fields, field_values
from samplerbench.samplers.training import TrainableSampler
from samplerbench.stages import decode
from samplerbench.stages.decode import decode_stream, motion_stream, probe_many


@dataclasses.dataclass(frozen=True)
class Split:
    """The decoded frames of one subset (one row per video, or per temporal-shift view in training)."""

    key: str
    frames: FrameSource | None  # [N, T, 3, rec_res, rec_res] uint8, read from the frame store; None for a bank
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
    model: FrameClassifier | None  # in eval mode, for throughput timing; None for a bank's (unknown backbones)
    train_feats: Tensor
    train_logits: Tensor
    val_feats: Tensor
    val_logits: Tensor
    training: Fit | None  # epochs run, losses, the kept epoch; None for a bank's (trained elsewhere)
    tsn: bool = False  # trained "w/ TSN" (K segments, averaged logits)


@dataclasses.dataclass(frozen=True)
class Fitted:
    """A sampler the pipeline built, the non-default fields it was built with (``fields``: the variant a table
    asked for, e.g. ``no_ns=True``; ``options``: the run's ``sampling.options`` for it), and the classifiers it
    was fitted on: what a checkpoint of it must record (see :mod:`samplerbench.stages.checkpoint`)."""

    name: str
    fields: dict
    options: dict
    fem: Outputs
    rec: Outputs
    sampler: Sampler


def _file_fingerprint(record: VideoRecord) -> tuple:
    """Identity of a record's input for cache keys: a replaced or edited video invalidates its stages (a frame
    folder's: its frame count, file names and the folder's mtime, which changes when a file is added or
    removed, not when one is rewritten in place)."""
    path = Path(record.path)
    stat = path.stat() if path.exists() else None
    key = (record.video_id, str(path), record.labels, record.segments, stat and (stat.st_size, stat.st_mtime_ns))
    if record.frames is None:
        return key
    return (*key, record.frames.total_frames, record.frames.template, record.frames.start_index)


FIT_SEED_STRIDE = 1_000_003  # fit i of a run with seed s trains with seed s + i · stride: distinct from every run's


def fit_seed(seed: int, fit: int) -> int:
    """The training seed of fit ``fit`` (0-based) of a sampler in a run with ``seed``; fit 0 uses ``seed`` itself."""
    return seed + fit * FIT_SEED_STRIDE


def sampler_batches(cfg: RunConfig, names: list[str]) -> list[int]:
    """The training batch of each trainable sampler among ``names``: its ``batch_size`` option, else
    ``sampling.batch``, else its own schedule's."""
    batches = []
    for name in names:
        fields = constructor_fields(get_sampler_class(name))
        if "batch_size" in fields:
            option = cfg.sampling.options.get(name, {}).get("batch_size")
            batches.append(option or cfg.sampling.batch or fields["batch_size"].default)
    return batches


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

    def cached(self, label: str, stage: str, key: str, compute: Callable[[], Any], *,
               work: dict[str, int] | Callable[[Any], dict[str, int]] | None = None,
               summary: Callable[[Any], dict] | None = None) -> Any:
        """Entry ``key`` of the cache's ``stage``, else ``compute()`` saved there; one stage line ``label`` with the
        rate of ``work`` when it ran, and ``summary(value)`` in the stage's run.json record.

        Under torchrun rank 0 decides hit or miss for every rank (a rank loading while another computes would hang
        in the collectives); ``compute`` runs on every rank and must return the same value. An entry that does not
        load is a miss (:meth:`StageCache.load`)."""
        path = self.cache.path(stage, key)
        with self.log.stage(label) as st:
            value = self.cache.load(stage, key) if distributed.is_main() else None
            st["cached"] = distributed.broadcast(value is not None)
            if not st["cached"]:
                value = compute()
                st.update((work(value) if callable(work) else work) or {})
                if distributed.is_main():
                    self.cache.save(stage, key, value)
            else:
                if not distributed.is_main():
                    value = self.cache.load(stage, key, heal=False)
                if value is None:
                    raise UserError(f"rank {distributed.rank()} cannot load {path}, which rank 0 loaded: with "
                                    f"several nodes, --cache-dir must be on a filesystem that all of them share")
            st.update(summary(value) if summary else {})
            return value

    # -- data ---------------------------------------------------------------------------------------------
    def index(self) -> DatasetIndex:
        """The dataset, restricted to ``--video-list`` where given (its records, hence every key, change)."""
        return self._indexed()[0]

    def video_list(self) -> ListMatch | None:
        """How ``--video-list`` matched the dataset; ``None`` without one."""
        return self._indexed()[1]

    def _indexed(self) -> tuple[DatasetIndex, ListMatch | None]:
        def compute() -> tuple[DatasetIndex, ListMatch | None]:
            listed = read_video_list(self.cfg.data.video_list) if self.cfg.data.video_list else None  # before any work
            # Rank 0 generates the synthetic dataset (if needed) before the other ranks read it.
            with distributed.main_first(), self.log.stage("index"):
                data = get_dataset(self.cfg.data.dataset)(self.cfg, self.cache_dir)
            match = None
            if listed is not None:
                data, match = restrict(data, listed)
            for subset in ("train", "val"):
                if not data.split(subset):
                    raise UserError(f"dataset {data.name!r} has no {subset!r} videos")
            return data, match

        return self._once(("index",), compute)

    def probes(self, subset: str) -> dict[str, tuple[int, float]]:
        """``(frame count, fps)`` of every decoded video of the split, by id, probed again because the frame
        store keeps neither: a stage of its own, keyed by the decode key (which fingerprints every file), run
        only for what needs it (``--export-selections``). Each rank probes a block of the videos."""
        split = self.split(subset)
        records = {r.video_id: r for r in self.index().split(subset)}
        videos = list(dict.fromkeys(split.video_ids))

        def compute() -> dict[str, tuple[int, float]]:
            mine = videos[distributed.shard(len(videos))]
            found = probe_many([records[v].source for v in mine], workers=self.cfg.workers)
            part = {v: found[records[v].source] for v in mine}
            merged = {v: info for block in distributed.gather(part) for v, info in block.items()}
            failed = [v for v, info in merged.items() if isinstance(info, str)]
            if failed:
                raise UserError(f"{len(failed)} {subset} video(s) decoded earlier no longer read "
                                f"({', '.join(failed[:5])}): run again to decode them afresh")
            return merged

        return self._once(("probes", subset), lambda: self.cached(
            f"decode/{subset} frame counts", "probe", stage_key("probe", decode=split.key), compute,
            work={"videos": len(videos)}))

    def split(self, subset: str) -> Split:
        return self._once(("split", subset), lambda: self._decode(subset))

    def _decode(self, subset: str) -> Split:
        """The split's frame store, decoded (or completed) first where needed: rank 0 verifies checksums and moves
        failing shards aside; each rank decodes the unfinished shards of its block, so a killed run resumes."""
        cfg, data = self.cfg, self.index()
        records = data.split(subset)
        params = self._decode_params(subset)
        key = stage_key("decode", files=[_file_fingerprint(r) for r in records], code=source_hash(decode), **params)
        root = self.cache_dir / "frames" / key
        chunks = [records[i : i + store.SHARD_VIDEOS] for i in range(0, len(records), store.SHARD_VIDEOS)]
        shape = (cfg.data.frames, 3, cfg.recognizer.res, cfg.recognizer.res)
        with self.log.stage(f"decode/{subset}") as st:
            st["cached"] = distributed.broadcast(distributed.is_main() and self._complete(root))
            if not st["cached"]:
                mine = range(len(chunks))[distributed.shard(len(chunks))]
                todo = [i for i in mine if not store.shard_done(root, i)]
                st["shards_resumed"] = sum(distributed.gather(len(mine) - len(todo)))
                st["videos"] = sum(distributed.gather(sum(len(chunks[i]) for i in todo)))
                store.check_space(root, st["videos"] * params["views"] * math.prod(shape))
                self._write_shards(root, [(i, chunks[i]) for i in todo], params, shape)
                distributed.barrier()
                if distributed.is_main():
                    store.finish(root, len(chunks), frame_shape=shape)
                distributed.barrier()
        frames = store.FrameStore(root)
        if not len(frames):
            raise UserError(f"no readable {subset} video in dataset {data.name!r}; see the skipped list")
        targets = torch.zeros(len(frames), len(data.classes))
        for row, labels in enumerate(frames.column("labels")):
            targets[row, labels] = 1.0
        salient = torch.tensor(frames.column("salient"), dtype=torch.bool).view(len(frames), cfg.data.frames)
        return Split(key=key, frames=frames, targets=targets, salient=salient, video_ids=frames.column("video_ids"),
                     skipped=frames.skipped())

    def _decode_params(self, subset: str) -> dict[str, Any]:
        """What decides a split's decoded frames (and the decode key): T, sizes, views and their seed, the decoder."""
        cfg, train = self.cfg, subset == "train"
        return dict(t=cfg.data.frames, short_side=cfg.data.short_side, crop=cfg.recognizer.res,
                    views=cfg.data.train_views if train else 1, seed=cfg.seed, train=train,
                    **({"decoder": cfg.data.decoder} if cfg.data.decoder != "cpu" else {}))  # older keys stay valid

    def motion(self, subset: str) -> Tensor:
        """``[N, T]`` MGSampler motion of every row (:func:`~samplerbench.stages.decode.motion_stream`), its own
        stage keyed by the decode key. A video whose successors cannot be read gets zeros (evenly spread
        frames), with a warning."""
        return self._once(("motion", subset), lambda: self._motion(subset))

    def _motion(self, subset: str) -> Tensor:
        cfg, split = self.cfg, self.split(subset)
        params = self._decode_params(subset)
        records = {r.video_id: r for r in self.index().split(subset)}
        videos = list(dict.fromkeys(split.video_ids))  # row order; a training video's views are consecutive rows
        key = stage_key("motion", decode=split.key, measure="1-ssim", code=source_hash(decode))

        def compute() -> Tensor:
            mine = [records[v] for v in videos[distributed.shard(len(videos))]]
            rows, failed = [], []
            for record, result in motion_stream(mine, **params, workers=cfg.workers, device=cfg.device):
                if isinstance(result, str):
                    failed.append(record.video_id)
                    result = torch.zeros(params["views"], cfg.data.frames)
                rows.append(torch.as_tensor(result, dtype=torch.float32))
            if failed:
                warn(f"{len(failed)} {subset} video(s) decoded but their successor frames could not be read "
                     f"({', '.join(failed[:5])}): no motion, so mgsampler spreads their frames evenly")
            mine_rows = torch.cat(rows) if rows else torch.zeros(0, cfg.data.frames)
            return distributed.gather_rows(mine_rows)

        motion = self.cached(f"motion/{subset}", "motion", key, compute, work={"videos": len(videos)})
        if motion.shape != (len(split.video_ids), cfg.data.frames):
            raise RuntimeError(f"motion of {motion.shape[0]} rows for a split of {len(split.video_ids)}")
        return motion

    def _complete(self, root: Path) -> bool:
        """Whether the store at ``root`` is complete and intact; shards that fail their check are reported,
        moved aside, and the store is left incomplete so that they are decoded again."""
        if not store.is_complete(root):
            return False
        bad = store.verify(root)
        for path in bad:
            warn(f"frame store shard {path} failed its size or checksum check; moved aside, decoding its videos "
                 f"again")
        return not bad

    def _write_shards(self, root: Path, todo: list[tuple[int, list[VideoRecord]]], params: dict,
                      shape: tuple[int, int, int, int]) -> None:
        """Decode the videos of the ``todo`` shards in one stream, writing each shard as its videos arrive."""
        store.sweep(root)
        stream = decode_stream([r for _, chunk in todo for r in chunk], **params, workers=self.cfg.workers,
                               device=self.cfg.device)
        for index, chunk in todo:
            with environment_faults(root), store.ShardWriter(root, index, frame_shape=shape) as writer:
                for record, result in itertools.islice(stream, len(chunk)):
                    if isinstance(result, str):
                        writer.skip(record.video_id, str(record.path), result)
                    else:
                        writer.add(record.video_id, record.labels, result.frames, result.salient)

    # -- frame classifiers --------------------------------------------------------------------------------
    def outputs(self, role: str, arch: str, *, tsn: bool = False) -> Outputs:
        """The trained ``role`` ("recognizer" or "fem") network ``arch`` and its cached per-frame outputs."""
        return self._once(("outputs", role, arch, tsn), lambda: self._outputs(role, arch, tsn))

    def _outputs(self, role: str, arch: str, tsn: bool) -> Outputs:
        cfg, net = self.cfg, getattr(self.cfg, role)
        train, val = self.split("train"), self.split("val")
        schedule = backbone_schedule(cfg, role)
        segments = cfg.sampling.main_budget if tsn else 1
        key = stage_key(f"train/{role}", train=train.key, code=source_hash(frame_training), arch=arch,
                        schedule=schedule, segments=segments, heldout_segments=cfg.sampling.main_budget,
                        resolution=net.res, seed=cfg.seed, weights=weights_identity(arch, net.weights), dtype=cfg.dtype,
                        **({"compile": True} if cfg.compile else {}))  # compiled kernels round differently
        name = f"{role}/{arch}{'+tsn' if tsn else ''}"
        num_classes = train.targets.shape[1]
        dtype = getattr(torch, cfg.dtype)

        def fit() -> dict:
            torch.manual_seed(cfg.seed)  # initial weights from the seed alone, not from what ran before
            model = FrameClassifier(arch=arch, num_classes=num_classes)
            if net.weights:
                load_weights(model, net.weights)
            model.to(dtype)
            training = train_frame_classifier(
                model, train.frames, train.targets, schedule=schedule,
                heldout=heldout_rows(train.video_ids, schedule=schedule, seed=cfg.seed),
                heldout_segments=cfg.sampling.main_budget, segments=segments, seed=cfg.seed, device=cfg.device,
                resolution=net.res, desc=f"train {name}", workers=cfg.workers, compile_model=cfg.compile)
            # DDP keeps the weights equal on every rank, but not BatchNorm's running statistics on CPU
            # (local batches): every rank continues with rank 0's model, the one in the cache.
            return distributed.broadcast({"model": model.state_dict(), "training": training.state()})

        state = self.cached(f"train {name}", "model", key, fit,
                            work=lambda state: {"frames": len(state["training"]["losses"]) * len(train.frames)
                                                * segments},
                            summary=lambda state: Fit.from_state(state["training"]).summary())
        model = FrameClassifier(arch=arch, num_classes=num_classes).to(dtype)
        model.load_state_dict(state["model"])
        out_key = stage_key(f"outputs/{role}", model=key, train=train.key, val=val.key,
                            code=source_hash(frame_training))

        def features() -> dict[str, Tensor]:
            feats = {}
            for subset, split in (("train", train), ("val", val)):
                mine = split.frames.rows(split.frames.shard_rows(distributed.shard(split.frames.num_shards)))
                part = extract_outputs(model, mine, resolution=net.res, device=cfg.device,
                                       desc=f"features {name} {subset}", workers=cfg.workers,
                                       compile_model=cfg.compile)
                feats[f"{subset}_feats"], feats[f"{subset}_logits"] = (distributed.gather_rows(p) for p in part)
            return feats

        frames = (len(train.frames) + len(val.frames)) * cfg.data.frames
        feats = self.cached(f"features {name}", "outputs", out_key, features, work={"frames": frames})
        return Outputs(key=out_key, name=name, arch=arch, model=model.eval(),
                       training=Fit.from_state(state["training"]), tsn=tsn, **feats)

    # -- samplers -----------------------------------------------------------------------------------------
    def banks(self, sampler: type[Sampler], *, fem: Outputs, rec: Outputs) -> tuple[FrameBank, FrameBank]:
        """The training bank (everything) and the evaluation bank (only what ``sampler`` may see at test)."""
        train, val = self.split("train"), self.split("val")
        num_classes = train.targets.shape[1]
        val_motion = self.motion("val") if sampler.needs_motion else None
        # a training-free sampler's fit reads nothing: only a trainable one costs the training split's motion
        train_motion = self.motion("train") if sampler.needs_motion and sampler.trainable else None
        train_bank = FrameBank(fem=fem.train_feats, num_classes=num_classes, motion=train_motion,
                               labels=train.targets, rec_logits=rec.train_logits, rec_feats=rec.train_feats,
                               video_ids=tuple(train.video_ids))
        privileged = sampler.uses_labels_at_eval
        val_bank = FrameBank(fem=fem.val_feats, num_classes=num_classes, motion=val_motion,
                             labels=val.targets if privileged else None,
                             rec_logits=rec.val_logits if privileged else None,
                             rec_feats=rec.val_feats if privileged else None, video_ids=tuple(val.video_ids))
        return train_bank, val_bank

    def sampler(self, name: str, *, fem: Outputs, rec: Outputs, fit: int = 0, **fields) -> tuple[Sampler, FrameBank]:
        """A fitted sampler and its evaluation bank. ``fields`` are the sampler's constructor fields for this variant;
        they win over the run's ``sampling.options``. Values equal to the constructor's defaults are dropped first,
        so ``nsnet(guiding="prototype")`` and ``nsnet()`` share one cache key. ``fit``: which of the variant's fits
        (:meth:`fits`); fit 0 trains with the run's seed and is the one the run's checkpoints hold."""
        params = constructor_fields(get_sampler_class(name))

        def non_default(values: dict) -> dict:
            return {k: v for k, v in values.items() if k not in params or params[k].default != v}

        fields = non_default(fields)
        options = {k: v for k, v in non_default(self.options(name)).items() if k not in fields}
        return self._once(("sampler", name, fem.key, rec.key, fit, tuple(sorted((fields | options).items()))),
                          lambda: self._fit(name, fem, rec, fields, options, fit=fit))

    def fits(self, name: str, *, fem: Outputs, rec: Outputs, **fields) -> tuple[list[Sampler], FrameBank]:
        """Every fit of a sampler variant on the same cached features, and its evaluation bank: ``sampling.fits``
        of a sampler trained by SGD (fit i with seed :func:`fit_seed`), one of any other (its fit is
        deterministic)."""
        first, bank = self.sampler(name, fem=fem, rec=rec, **fields)
        count = self.cfg.sampling.fits if isinstance(first, TrainableSampler) else 1
        return [first, *(self.sampler(name, fem=fem, rec=rec, fit=i, **fields)[0] for i in range(1, count))], bank

    def options(self, name: str) -> dict[str, Any]:
        """The run's ``sampling.options`` for sampler ``name``, checked against its constructor."""
        return check_options(name, self.cfg.sampling.options.get(name, {}))

    def _fit(self, name: str, fem: Outputs, rec: Outputs, fields: dict, options: dict, *,
             fit: int) -> tuple[Sampler, FrameBank]:
        cfg = self.cfg
        cls = get_sampler_class(name)
        common = dict(seed=fit_seed(cfg.seed, fit), device=cfg.device,
                      frame_size=(cfg.recognizer.res, cfg.recognizer.res), train_budget=cfg.sampling.main_budget)
        accepted = constructor_fields(cls)
        # the run's settings that the sampler has a field for, then the run's schedule changes for a trainable one;
        # its sampling.options and the variant's fields win over both
        schedule = sampler_override(cfg).changes() if issubclass(cls, TrainableSampler) else {}
        kwargs = {k: v for k, v in common.items() if k in accepted} | schedule | options | fields
        sampler = cls(**kwargs)
        train_bank, val_bank = self.banks(cls, fem=fem, rec=rec)
        if cls.trainable:
            # every field, defaults included, so that a changed default never serves an old fit
            key = stage_key("sampler", name=name, fields=field_values(sampler), fem=fem.key, rec=rec.key,
                            code=source_hash(sys.modules[cls.__module__]))
            label = (name + "".join(f" {k}={v}" for k, v in (options | fields).items())
                     + (f" fit {fit + 1}" if fit else "") + f" ({fem.name}, {rec.name})")

            def train() -> dict:
                sampler.fit(train_bank)
                return sampler.state_dict()

            def summary(state: dict) -> dict:
                if not isinstance(sampler, TrainableSampler):  # the oracle's fit is prototypes, not epochs
                    return {}
                return Fit.from_state(state["training"]).summary() | {"schedule": sampler.schedule().describe()}

            sampler.load_state_dict(self.cached(f"fit {label}", "sampler", key, train, summary=summary))
        if fit == 0:
            self.fitted.append(Fitted(name=name, fields=fields, options=options, fem=fem, rec=rec, sampler=sampler))
        return sampler, val_bank
