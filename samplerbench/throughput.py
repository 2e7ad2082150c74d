"""Videos/s of a sampling pipeline, timed end to end on the chosen device.

What is timed per batch of B videos: the FEM on all T frames (for samplers that read FEM features), the
sampler's own selection, and the recognizer on the K kept frames; dense times the recognizer on all T. The
frames come from the decode cache, so decoding is outside the timed region (its frames/s is reported by the
decode benchmark). On CUDA the timed loop runs under bf16 autocast with channels_last tensors, and
``torch.cuda.synchronize`` brackets it, so the figure is the one users will quote.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from samplerbench.cost import measure_throughput
from samplerbench.recognizers.backbones import FrameClassifier
from samplerbench.recognizers.train import resize_frames
from samplerbench.samplers import FrameBank, Sampler


def _prepare(model: FrameClassifier, device: torch.device, compile_model: bool):
    model = model.to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if compile_model else model


def sampler_throughput(
    *,
    sampler: Sampler,
    frames: Tensor,
    k: int,
    recognizer: FrameClassifier,
    fem: FrameClassifier | None,
    fem_res: int,
    num_classes: int,
    device: str,
    iters: int,
    compile_model: bool = False,
) -> float:
    """Videos/s of ``sampler`` + recognizer on ``frames`` (uint8 ``[B, T, 3, H, W]``, one timed batch)."""
    dev = torch.device(device)
    rec = _prepare(recognizer, dev, compile_model)
    fem_net = _prepare(fem, dev, compile_model) if fem is not None and sampler.uses_fem else None
    x = frames.to(dev)
    b, t = x.shape[:2]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else contextlib.nullcontext()
    fem_x = resize_frames(x, fem_res) if fem_net is not None or sampler.needs_frames else None

    def step() -> None:
        with autocast:
            feats = (fem_net(fem_x.flatten(0, 1))[0].float().view(b, t, -1) if fem_net is not None
                     else torch.zeros(b, t, 1, device=dev))
            bank = FrameBank(fem=feats, num_classes=num_classes,
                             frames=fem_x if sampler.needs_frames else None)
            index = sampler.select(bank, k).to(dev)
            chosen = x[torch.arange(b, device=dev).unsqueeze(1), index]
            rec(chosen.flatten(0, 1))

    return measure_throughput(step, items_per_call=b, device=dev, iters=iters)
