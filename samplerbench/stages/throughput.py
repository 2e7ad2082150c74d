"""Videos/s of a sampling pipeline, timed on the chosen device, and the cost of decoding its frames.

:func:`pipeline_step` is one batch of FEM (on T frames, if read) + selection + recognizer (on K), which the
harness times interleaved with the other pipelines (:func:`~samplerbench.measures.cost.measure_interleaved`);
:func:`budgeted_step` is its form for an adaptive sampler, each video at its own budget. Decoding is timed apart
(:func:`decode_timing`) and :func:`end_to_end_rate` adds the two. On CUDA: bf16 autocast, channels_last, every call
synchronised."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from samplerbench.core.timeline import presample_indices
from samplerbench.measures.cost import MIN_TIMED_SECONDS, Timing, measure_throughput
from samplerbench.recognizers.backbones import FrameClassifier
from samplerbench.recognizers.train import fast_path, resize_frames
from samplerbench.samplers import AdaptiveSampler, FrameFeatures, Sampler
from samplerbench.stages.decode import decode_clip, decode_motion


def _models(sampler: Sampler, frames: Tensor, *, recognizer: FrameClassifier, fem: FrameClassifier | None,
            fem_res: int, device: str, compile_model: bool) -> tuple[Callable[[Tensor], object], object,
                                                                     Callable[[], Tensor], Tensor]:
    """What a timed step runs, on ``device``: the recognizer (fast path) and its autocast context, the FEM features of
    ``frames`` as a function (zeros ``[B, T, 1]`` for a sampler that reads none), and the frames moved there."""
    dev = torch.device(device)
    sampler.to(dev)
    rec, autocast, _ = fast_path(recognizer.to(dev).eval(), device, compile_model=compile_model)
    fem_net = (fast_path(fem.to(dev).eval(), device, compile_model=compile_model)[0]
               if fem is not None and sampler.uses_fem else None)
    x = frames.to(dev)
    b, t = x.shape[:2]
    fem_x = resize_frames(x, fem_res) if fem_net is not None else None

    def features() -> Tensor:
        return (fem_net(fem_x.flatten(0, 1))[0].float().view(b, t, -1) if fem_net is not None
                else torch.zeros(b, t, 1, device=dev))

    return rec, autocast, features, x


def pipeline_step(
    *,
    sampler: Sampler,
    frames: Tensor,
    k: int,
    motion: Tensor | None = None,
    recognizer: FrameClassifier,
    fem: FrameClassifier | None,
    fem_res: int,
    num_classes: int,
    device: str,
    compile_model: bool = False,
) -> Callable[[], None]:
    """One timed call of ``sampler`` + recognizer on ``frames`` (uint8 ``[B, T, 3, H, W]``, one batch per call), for
    :func:`~samplerbench.measures.cost.measure_interleaved`; ``motion`` ``[B, T]`` for samplers that read it. The
    sampler and models are moved to ``device``."""
    rec, autocast, features, x = _models(sampler, frames, recognizer=recognizer, fem=fem, fem_res=fem_res,
                                         device=device, compile_model=compile_model)
    moved = motion.to(x.device) if motion is not None else None
    rows = torch.arange(x.shape[0], device=x.device).unsqueeze(1)

    def step() -> None:
        with autocast:
            bank = FrameFeatures(fem=features(), num_classes=num_classes, motion=moved)
            rec(x[rows, sampler.select(bank, k)].flatten(0, 1))

    return step


def budgeted_step(
    *,
    sampler: AdaptiveSampler,
    frames: Tensor,
    value: float,
    rec_logits: Tensor,
    rec_feats: Tensor,
    recognizer: FrameClassifier,
    fem: FrameClassifier | None,
    fem_res: int,
    num_classes: int,
    device: str,
    compile_model: bool = False,
) -> Callable[[], None]:
    """One timed call of an adaptive sampler's pipeline at knob ``value`` on ``frames`` (as :func:`pipeline_step`):
    its exit rule on the recognizer's cached outputs of these frames (``rec_logits`` ``[B, T, C]``, ``rec_feats``
    ``[B, T, F]``: what it would have read), then the recognizer on the frames each video used, Σ count frames in
    one call. The surprising fact: a deployment runs the recognizer step by step, on batches that shrink as videos
    exit; this charges the frames used, not that sequencing (nor the recognizer on frames it never used)."""
    rec, autocast, features, x = _models(sampler, frames, recognizer=recognizer, fem=fem, fem_res=fem_res,
                                         device=device, compile_model=compile_model)
    logits, feats = rec_logits.to(x.device), rec_feats.to(x.device)
    rows = torch.arange(x.shape[0], device=x.device).unsqueeze(1)

    def step() -> None:
        with autocast:
            bank = FrameFeatures(fem=features(), num_classes=num_classes, rec_logits=logits, rec_feats=feats)
            chosen = sampler.budgeted(bank, value)
            used = chosen.used()
            rec(x[rows.expand_as(chosen.index)[used], chosen.index[used]])

    return step


def typical_rows(count: Tensor, batch: int) -> Tensor:
    """``batch`` rows (ascending) whose ``count`` values spread as all of ``count`` ``[N]`` does: in a stable sort
    by count, the rows at the evenly spaced quantiles (i + ½)·N / batch; all N rows when ``batch`` ≥ N. A timed
    batch of an adaptive sampler so uses about the mean frames of the split, not those of its first rows."""
    n = count.shape[0]
    if batch >= n:
        return torch.arange(n)
    by_count = torch.sort(count.cpu(), stable=True).indices
    quantiles = ((torch.arange(batch, dtype=torch.float64) + 0.5) * n / batch).long()
    return torch.sort(by_count[quantiles]).values


def decoded_frames(sampler: Sampler, *, t: int, k: int) -> int:
    """Frames per video a pipeline must decode: 2T for motion (mgsampler), T when anything reads every pre-sampled
    frame, else only the K kept (uniform, random)."""
    if sampler.needs_motion:
        return 2 * t
    reads_all = sampler.keeps_all or sampler.uses_fem or sampler.uses_labels_at_eval
    return t if reads_all else k


def decode_timing(
    videos: Sequence[tuple[Path | str, int]],
    frames: int,
    *,
    short_side: int,
    crop: int,
    successors: bool = False,
    decoder: str = "cpu",
    device: str = "cpu",
    min_seconds: float = MIN_TIMED_SECONDS,
) -> Timing:
    """Seconds per video to decode ``frames`` segment-centre frames as the decode stage does (by ``decoder`` on
    ``device``, resized and cropped there), over ``videos`` ``(path, frame count)`` (with ``successors``: mgsampler's
    frame pairs and motion), until ``min_seconds``."""
    order = itertools.cycle(videos)

    def step() -> None:
        path, num_frames = next(order)
        if successors:
            decode_motion(path, presample_indices(num_frames, frames // 2), num_frames, short_side=short_side,
                          crop=crop, device=device, decoder=decoder)
        else:
            decode_clip(path, presample_indices(num_frames, frames), short_side=short_side, crop=crop, device=device,
                        decoder=decoder)

    return measure_throughput(step, items_per_call=1, device=torch.device(device), warmup=1, min_iters=len(videos),
                              min_seconds=min_seconds)


def end_to_end_rate(*, decode_s_per_video: float, videos_per_s: float) -> float:
    """Videos/s of one process that decodes a video's frames and then runs the pipeline on them:
    ``1 / (decode + 1 / compute rate)``. A deployment that decodes in other processes while the models run
    can approach the slower of the two rates instead."""
    return 1.0 / (decode_s_per_video + 1.0 / videos_per_s)


def head_step(*, sampler: Sampler, fem: Tensor, point: float, num_classes: int, device: str,
              motion: Tensor | None = None, rec_logits: Tensor | None = None,
              rec_feats: Tensor | None = None) -> Callable[[], None]:
    """One timed call of ``sampler``'s selection alone on FEM features ``fem`` ``[B, T, D]`` (and ``motion`` ``[B, T]``
    for samplers that read it, the recognizer's ``rec_logits`` and ``rec_feats`` for those that read them) that
    exist already (a frame bank's, :mod:`samplerbench.formats.bank`): no FEM, no recognizer, no decoding, so it covers
    the sampler heads only. ``point``: K, or an adaptive sampler's knob value (its budgeted selection)."""
    dev = torch.device(device)
    sampler.to(dev)

    def moved(x: Tensor | None) -> Tensor | None:
        return None if x is None else x.to(dev, torch.promote_types(x.dtype, torch.float32))

    bank = FrameFeatures(fem=moved(fem), num_classes=num_classes, motion=moved(motion), rec_logits=moved(rec_logits),
                         rec_feats=moved(rec_feats))
    if isinstance(sampler, AdaptiveSampler):
        return lambda: sampler.budgeted(bank, point)
    return lambda: sampler.select(bank, int(point))
