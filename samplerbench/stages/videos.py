"""Features from videos: index -> decode -> recognizer / FEM trained -> their per-frame outputs, each a cached stage.

Decoded frames live in the frame store (:mod:`samplerbench.formats.store`). Under torchrun
(:mod:`samplerbench.core.distributed`) decoding and feature extraction take one block of shards per rank (gathered
back in record order) and training runs in DistributedDataParallel."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from samplerbench.config import Network, backbone_schedule
from samplerbench.core import distributed
from samplerbench.core.errors import UserError, environment_faults
from samplerbench.core.sgd import Fit, heldout_rows
from samplerbench.core.stagelog import warn
from samplerbench.datasets import get_dataset
from samplerbench.datasets.base import DatasetIndex, VideoRecord
from samplerbench.datasets.videolist import ListMatch, read_video_list, restrict
from samplerbench.formats import store
from samplerbench.formats.cache import source_hash, stage_key
from samplerbench.measures.cost import budgeted_gflops, pipeline_gflops
from samplerbench.recognizers import train as frame_training
from samplerbench.recognizers.backbones import FrameClassifier, load_weights, weights_identity
from samplerbench.recognizers.train import extract_outputs, train_frame_classifier
from samplerbench.samplers import AdaptiveSampler, FrameFeatures, Sampler
from samplerbench.stages import decode
from samplerbench.stages.decode import decode_stream, motion_stream, probe_many
from samplerbench.stages.preflight import check_memory
from samplerbench.stages.source import FeatureSource, Outputs, Split
from samplerbench.stages.throughput import budgeted_step, pipeline_step, typical_rows


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


class VideoSource(FeatureSource):
    """Features a run makes from the dataset's videos: decoded into the frame store, backbones trained on the
    training split, their per-frame outputs extracted on both splits."""

    decodes: ClassVar[bool] = True

    def check(self, names: list[str], *, extra: Collection[Network]) -> list[str]:
        data = self.index()
        check_memory(self.cfg, extra=extra, train_rows=len(data.split("train")) * self.cfg.data.train_views,
                     val_rows=len(data.split("val")), classes=len(data.classes))
        return []

    def describe(self) -> str:
        rec, fem = self.cfg.recognizer, self.cfg.fem
        return f"recognizer {rec.arch}@{rec.res}px, FEM {fem.arch}@{fem.res}px"

    def gflops(self, sampler: Sampler, k: int) -> float:
        """The whole pipeline per video (:func:`~samplerbench.measures.cost.pipeline_gflops`)."""
        cfg = self.cfg
        return pipeline_gflops(sampler, frames=cfg.data.frames, budget=k, rec=(cfg.recognizer.arch, cfg.recognizer.res),
                               fem=(cfg.fem.arch, cfg.fem.res))

    def budgeted_gflops(self, sampler: AdaptiveSampler, count: Tensor) -> Tensor:
        """The whole pipeline on each video (:func:`~samplerbench.measures.cost.budgeted_gflops`)."""
        cfg = self.cfg
        return budgeted_gflops(sampler, frames=cfg.data.frames, count=count,
                               rec=(cfg.recognizer.arch, cfg.recognizer.res), fem=(cfg.fem.arch, cfg.fem.res))

    def timed_step(self, sampler: Sampler, point: float, *, batch: int, rec: Outputs,
                   fem: Outputs) -> Callable[[], None]:
        """FEM, selection and recognizer on the cached decoded frames of the first ``batch`` val videos
        (:func:`~samplerbench.stages.throughput.pipeline_step`). For an adaptive sampler
        :func:`~samplerbench.stages.throughput.budgeted_step`, its exit rule reading the recognizer's cached outputs
        of those frames, on ``batch`` val videos whose frame counts at ``point`` spread as the whole split's
        (:func:`~samplerbench.stages.throughput.typical_rows`): the first ones may all exit at once."""
        cfg = self.cfg
        rows = (typical_rows(self._counts(sampler, point, rec=rec, fem=fem), batch)
                if isinstance(sampler, AdaptiveSampler) else torch.arange(batch))
        common = dict(sampler=sampler, frames=self.split("val").frames[rows], recognizer=rec.model, fem=fem.model,
                      fem_res=cfg.fem.res, num_classes=rec.val_logits.shape[-1], device=cfg.device,
                      compile_model=cfg.compile)
        if isinstance(sampler, AdaptiveSampler):
            return budgeted_step(**common, value=point, rec_logits=rec.val_logits[rows], rec_feats=rec.val_feats[rows])
        return pipeline_step(**common, k=int(point), motion=self.motion("val")[rows] if sampler.needs_motion else None)

    @staticmethod
    def _counts(sampler: AdaptiveSampler, point: float, *, rec: Outputs, fem: Outputs) -> Tensor:
        """``[N]``: the frames each val video uses at knob ``point``, computed on the CPU (where the cached outputs
        are; the timed step then moves the sampler to the run's device)."""
        val = FrameFeatures(fem=fem.val_feats, num_classes=rec.val_logits.shape[-1], rec_logits=rec.val_logits,
                            rec_feats=rec.val_feats)
        return sampler.to("cpu").budgeted(val, point).count

    def index(self) -> DatasetIndex:
        """The dataset, restricted to ``--video-list`` where given (its records, hence every key, change)."""
        return self._indexed()[0]

    def video_list(self) -> ListMatch | None:
        return self._indexed()[1]

    def _indexed(self) -> tuple[DatasetIndex, ListMatch | None]:
        def compute() -> tuple[DatasetIndex, ListMatch | None]:
            listed = read_video_list(self.cfg.data.video_list) if self.cfg.data.video_list else None  # before any work
            # Rank 0 generates the synthetic dataset (if needed) before the other ranks read it.
            with distributed.main_first(), self.stages.log.stage("index"):
                data = get_dataset(self.cfg.data.dataset)(self.cfg, self.stages.cache_dir)
            match = None
            if listed is not None:
                data, match = restrict(data, listed)
            for subset in ("train", "val"):
                if not data.split(subset):
                    raise UserError(f"dataset {data.name!r} has no {subset!r} videos")
            return data, match

        return self.stages.once(("index",), compute)

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

        return self.stages.once(("probes", subset), lambda: self.stages.cached(
            f"decode/{subset} frame counts", "probe", stage_key("probe", decode=split.key), compute,
            work={"videos": len(videos)}))

    def split(self, subset: str) -> Split:
        return self.stages.once(("split", subset), lambda: self._decode(subset))

    def _decode(self, subset: str) -> Split:
        """The split's frame store, decoded (or completed) first where needed: rank 0 verifies checksums and moves
        failing shards aside; each rank decodes the unfinished shards of its block, so a killed run resumes."""
        cfg, data = self.cfg, self.index()
        records = data.split(subset)
        params = self._decode_params(subset)
        key = stage_key("decode", files=[_file_fingerprint(r) for r in records], code=source_hash(decode), **params)
        root = self.stages.cache_dir / "frames" / key
        chunks = [records[i : i + store.SHARD_VIDEOS] for i in range(0, len(records), store.SHARD_VIDEOS)]
        shape = (cfg.data.frames, 3, cfg.recognizer.res, cfg.recognizer.res)
        with self.stages.log.stage(f"decode/{subset}") as st:
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
        return self.stages.once(("motion", subset), lambda: self._motion(subset))

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

        motion = self.stages.cached(f"motion/{subset}", "motion", key, compute, work={"videos": len(videos)})
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

    def outputs(self, role: str, arch: str, *, tsn: bool = False) -> Outputs:
        """The trained ``role`` ("recognizer" or "fem") network ``arch`` and its cached per-frame outputs."""
        return self.stages.once(("outputs", role, arch, tsn), lambda: self._outputs(role, arch, tsn))

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

        state = self.stages.cached(f"train {name}", "model", key, fit,
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
        feats = self.stages.cached(f"features {name}", "outputs", out_key, features, work={"frames": frames})
        return Outputs(key=out_key, name=name, arch=arch, model=model.eval(),
                       training=Fit.from_state(state["training"]), tsn=tsn, **feats)
