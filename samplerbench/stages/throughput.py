"""Videos/s of a sampling pipeline, timed on the chosen device, and the cost of decoding its frames.

:func:`pipeline_step` is one batch of FEM (on T frames, if read) + selection + recognizer (on K), which the
harness times interleaved with the other pipelines (:func:`~samplerbench.measures.cost.measure_interleaved`);
decoding is
timed apart (:func:`decode_timing`) and :func:`end_to_end_rate` adds the two. On CUDA: bf16 autocast,
channels_last, every call synchronised."""

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
from samplerbench.samplers import FrameFeatures, Sampler
from samplerbench.stages.decode import decode_clip, decode_motion


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
    sampler
    and models are moved to ``device``."""
    dev = torch.device(device)
    sampler.to(dev)
    rec, autocast, _ = fast_path(recognizer.to(dev).eval(), device, compile_model=compile_model)
    fem_net = (fast_path(fem.to(dev).eval(), device, compile_model=compile_model)[0]
               if fem is not None and sampler.uses_fem else None)
    x = frames.to(dev)
    b, t = x.shape[:2]
    fem_x = resize_frames(x, fem_res) if fem_net is not None else None
    moved = motion.to(dev) if motion is not None else None
    rows = torch.arange(b, device=dev).unsqueeze(1)

    def step() -> None:
        with autocast:
            feats = (fem_net(fem_x.flatten(0, 1))[0].float().view(b, t, -1) if fem_net is not None
                     else torch.zeros(b, t, 1, device=dev))
            bank = FrameFeatures(fem=feats, num_classes=num_classes, motion=moved)
            rec(x[rows, sampler.select(bank, k)].flatten(0, 1))

    return step


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


def head_step(*, sampler: Sampler, fem: Tensor, k: int, num_classes: int, device: str,
              motion: Tensor | None = None) -> Callable[[], None]:
    """One timed call of ``sampler``'s selection alone on FEM features ``fem`` ``[B, T, D]`` (and ``motion`` ``[B, T]``
    for samplers that read it) that exist already (a frame bank's, :mod:`samplerbench.formats.bank`): no FEM, no
    recognizer, no decoding, so it covers the sampler heads only."""
    dev = torch.device(device)
    sampler.to(dev)
    bank = FrameFeatures(fem=fem.to(dev, torch.promote_types(fem.dtype, torch.float32)), num_classes=num_classes,
                     motion=None if motion is None else motion.to(dev))
    return lambda: sampler.select(bank, k)
