"""Inference: a trained sampler choosing frames of new videos (:func:`load_sampler`; ``samplerbench select``).

Videos go through exactly what the benchmark does to a validation video, so a checkpoint selects the frames it
was scored on; output as in :mod:`samplerbench.formats.selections`, unreadable videos reported, not fatal."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from samplerbench.core.distributed import local_cores
from samplerbench.core.errors import UserError
from samplerbench.core.workers import IN_PROCESS
from samplerbench.datasets.base import VideoRecord
from samplerbench.formats.selections import video_selection
from samplerbench.formats.store import TensorFrames
from samplerbench.measures.metrics import video_scores
from samplerbench.measures.topk import check_budget
from samplerbench.recognizers.backbones import FrameClassifier
from samplerbench.recognizers.train import extract_outputs
from samplerbench.samplers import FrameFeatures, Sampler
from samplerbench.stages.checkpoint import (
    SAMPLER,
    build_sampler,
    check_trained_with,
    load_checkpoint,
    load_frame_classifier,
)
from samplerbench.stages.decode import decode_records, motion_stream, probe_many

TOP = 5  # classes reported with ``top5``


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainedSampler:
    """A sampler with the FEM and recognizer it was trained with and the preprocessing of its run; ``workers``: the
    processes that probe and decode new videos (default: as a run's, the cores this process may use)."""

    sampler: Sampler
    fem: FrameClassifier
    recognizer: FrameClassifier
    classes: tuple[str, ...]
    frames: int  # T
    short_side: int
    crop: int
    fem_res: int
    rec_res: int
    device: str
    workers: int = dataclasses.field(default_factory=local_cores)
    aggregation: str = "mean_softmax"  # how the run scored a video from its kept frames

    def select_video(self, video: Path | str, k: int, *, top5: bool = False) -> dict:
        """The selection of one video; see :meth:`select_videos`."""
        return self.select_videos([video], k, top5=top5)[0]

    def select_videos(self, videos: Sequence[Path | str], k: int, *, top5: bool = False) -> list[dict]:
        """K of the T pre-sampled frames of every video, in the order given, as JSON-ready dicts
        (:func:`~samplerbench.formats.selections.video_selection`, plus ``"top5"`` when asked); ``dense`` keeps all
        T."""
        check_budget(k, self.frames)
        paths = [Path(v) for v in videos]
        probed = probe_many(paths, workers=self.workers)
        readable = [p for p in dict.fromkeys(paths) if not isinstance(probed[p], str)]
        records = [VideoRecord(video_id=str(p), path=p, labels=(), subset="val") for p in readable]
        decoded = decode_records(records, t=self.frames, short_side=self.short_side, crop=self.crop, probed=probed,
                                 workers=self.workers)
        reasons = {Path(path): reason for _, path, reason in decoded.skipped}
        reasons |= {p: info for p, info in probed.items() if isinstance(info, str)}
        motion = None
        if self.sampler.needs_motion:
            motions = {r.video_id: m for r, m in motion_stream(records, t=self.frames, short_side=self.short_side,
                                                               crop=self.crop, probed=probed, workers=self.workers)}
            reasons |= {Path(v): m for v, m in motions.items() if isinstance(m, str)}
            motion = torch.zeros(len(decoded.video_ids), self.frames)
            for row, video in enumerate(decoded.video_ids):
                if not isinstance(motions[video], str):
                    motion[row] = torch.as_tensor(motions[video]).view(-1)
        # a new video's identity for id-keyed samplers (random) is its file name without the extension
        chosen = self._choose(decoded.frames, tuple(Path(v).stem for v in decoded.video_ids), k, top5=top5,
                              motion=motion)
        results = {Path(vid): row for vid, row in zip(decoded.video_ids, chosen, strict=True)}
        out = []
        for path in paths:
            if path in reasons:
                out.append(video_selection(str(path), (), reasons[path], t=self.frames))
                continue
            positions, top = results[path]
            entry = video_selection(str(path), positions, probed[path], t=self.frames)
            out.append(entry | ({"top5": top} if top5 else {}))
        return out

    def _choose(self, frames: torch.Tensor, video_ids: tuple[str, ...], k: int, *, top5: bool,
                motion: torch.Tensor | None) -> list[tuple[list[int], list[dict]]]:
        """Per video of ``frames`` ``[N, T, 3, crop, crop]`` (and its ``motion`` ``[N, T]``, for samplers that
        read it): the selected positions among the T, and the top classes of the recognizer on them (empty
        unless ``top5``). The frames are in memory: the networks read them in this process."""
        if not len(frames):
            return []
        feats, _ = extract_outputs(self.fem, TensorFrames(frames), resolution=self.fem_res, device=self.device,
                                   desc="features", workers=IN_PROCESS)
        bank = FrameFeatures(fem=feats, num_classes=len(self.classes), video_ids=video_ids, motion=motion)
        positions = self.sampler.select(bank, k)
        tops: list[list[dict]] = [[] for _ in positions]
        if top5:
            kept = frames[torch.arange(len(frames))[:, None], positions]  # [N, K, 3, crop, crop]
            feats, logits = extract_outputs(self.recognizer, TensorFrames(kept), resolution=self.rec_res,
                                            device=self.device, desc="recognizer", workers=IN_PROCESS)
            head = self.recognizer.head
            scores = video_scores(logits, torch.arange(kept.shape[1]).expand(len(kept), -1),
                                  aggregation=self.aggregation, frame_feats=feats,
                                  head=(head.weight.detach().cpu(), head.bias.detach().cpu()))
            best = scores.topk(min(TOP, scores.shape[1]), dim=1)
            tops = [[{"label": self.classes[c], "score": round(float(s), 6)} for s, c in zip(*row, strict=True)]
                    for row in zip(best.values.tolist(), best.indices.tolist(), strict=True)]
        return list(zip(positions.tolist(), tops, strict=True))


def load_sampler(path: Path | str, *, device: str = "cpu", workers: int | None = None) -> TrainedSampler:
    """A sampler checkpoint (``<out>/<dataset>/checkpoints/<sampler>.pt``) with the FEM and recognizer
    checkpoints it references, ready for :meth:`TrainedSampler.select_video`; decoding with ``workers`` processes
    (``None``: :class:`TrainedSampler`'s default)."""
    path = Path(path)
    ckpt = load_checkpoint(path, SAMPLER)
    sampler = build_sampler(ckpt, device=device, path=path)
    if sampler.uses_labels_at_eval:
        raise UserError(f"{path}: sampler {sampler.name!r} selects with the ground-truth labels and the "
                        f"recognizer's outputs of the video itself (an upper bound, not a deployable sampler), "
                        f"so it cannot select frames of new videos")
    if sampler.reads_recognizer:
        raise UserError(f"{path}: sampler {sampler.name!r} decides on the recognizer's outputs of the frames it reads, "
                        f"step by step; `samplerbench select` runs the FEM alone before selecting, so it cannot run it")
    for role in ("fem", "recognizer"):
        if not isinstance(ckpt.get(role), str):
            raise UserError(f"{path}: no {role} checkpoint named; a hand-edited or foreign checkpoint?")
    fem, fem_ckpt = load_frame_classifier(path.parent / ckpt["fem"], device=device, role="fem")
    recognizer, rec_ckpt = load_frame_classifier(path.parent / ckpt["recognizer"], device=device, role="recognizer")
    check_trained_with(path, ckpt, fem=(fem, fem_ckpt), recognizer=(recognizer, rec_ckpt))
    pre = rec_ckpt["preprocessing"]
    return TrainedSampler(sampler=sampler, fem=fem, recognizer=recognizer, classes=tuple(rec_ckpt["classes"]),
                          frames=pre["frames"], short_side=pre["short_side"], crop=pre["crop"],
                          fem_res=fem_ckpt["preprocessing"]["resolution"], rec_res=pre["resolution"],
                          device=device, aggregation=rec_ckpt.get("aggregation", "mean_softmax"),
                          **({} if workers is None else {"workers": workers}))
