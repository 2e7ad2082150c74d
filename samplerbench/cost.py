"""Compute cost (fvcore GFLOPs) and measured throughput.

FLOPs follow fvcore's convention, which is also the papers': one multiply-add counts as one "flop", so
MobileNetV2@224 is 0.31 GFLOPs and ResNet-101@224 7.8. fvcore traces the model with ``torch.jit`` and
counts each aten op with a handle; it already handles convolutions, linear/matmul/bmm/einsum, the norms
(batch/group/layer/instance norm at ~5 flops per element) and adaptive average pooling. It has no handle for
the attention ops that ``torch.nn`` transformer layers trace to, so they were silently counted as zero.
Handles added here (multiply-adds):

* ``aten::scaled_dot_product_attention`` (``F.scaled_dot_product_attention``; ``nn.MultiheadAttention``
  in train mode): Q·Kᵀ and attn·V, ``B·L·S·(E + Ev)``.
* ``aten::_native_multi_head_attention`` (the MHA inference fast path, eval mode under no_grad): the
  q, k, v and out projections, which this op fuses (so fvcore's linear handle never sees them), plus
  Q·Kᵀ and attn·V.
* ``aten::_transformer_encoder_layer_fwd`` (the fused encoder-layer inference path): the above plus the
  FFN and both layer norms.

(``B`` the product of the batch and head dimensions, ``L``/``S`` the query/key lengths, ``E``/``Ev`` the
per-head query/value widths.) The fused handles count exactly what fvcore counts on the unfused path, so
a model costs the same in ``train()`` and ``eval()``. With torch 2.14 the encoder layer's own fast path is
not taken under fvcore (its forward hooks disable it), but the MHA one is; the encoder handle covers torch
versions and call paths that do take it. Causal or masked attention is counted dense, like fvcore's matmul.

Softmax, residual adds, scaling, activations and pooling are elementwise and conventionally not counted;
they are registered as ignored so that :meth:`FlopCountAnalysis.unsupported_ops` lists only ops that
might carry real compute.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable, Sequence
from math import prod
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn

with warnings.catch_warnings():  # fvcore.nn scripts its focal losses on import, which torch >= 2.10 warns about
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import get_shape

# Elementwise or pooling ops seen in torchvision backbones and nn transformer layers: negligible next to
# the matmuls and convolutions, and left out of published FLOP counts.
_IGNORED_OPS = (
    "aten::add",
    "aten::add_",
    "aten::sub",
    "aten::mul",
    "aten::mul_",
    "aten::div",
    "aten::softmax",
    "aten::unflatten",
    "aten::gelu",
    "aten::hardtanh",
    "aten::hardtanh_",
    "aten::hardswish",
    "aten::hardswish_",
    "aten::hardsigmoid",
    "aten::sigmoid",
    "aten::silu",
    "aten::silu_",
    "aten::dropout_",
    "aten::max_pool2d",
    "aten::mean",
)


def _sdpa_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::scaled_dot_product_attention``: the two attention matmuls; batch dims from the output (GQA)."""
    query, key, value = (get_shape(v) for v in inputs[:3])
    out = get_shape(outputs[0])
    return prod(out[:-2]) * query[-2] * key[-2] * (query[-1] + value[-1])


def _attention_block_flops(query: list[int], key: list[int]) -> int:
    """Multi-head attention with its in/out projections, as the unfused ``nn.MultiheadAttention`` traces it.

    The q, k, v and out projections are ``E×E`` linears on every token; the per-head products Q·Kᵀ and
    attn·V add up to ``2·B·L·S·E`` whatever the number of heads (``H`` heads of width ``E/H``).
    """
    width, query_length, key_length = query[-1], query[-2], key[-2]
    projections = (2 * prod(query[:-1]) + 2 * prod(key[:-1])) * width * width
    return projections + 2 * prod(query[:-2]) * query_length * key_length * width


def _native_mha_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::_native_multi_head_attention`` (MHA inference fast path): projections + attention."""
    return _attention_block_flops(get_shape(inputs[0]), get_shape(inputs[1]))


def _encoder_layer_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::_transformer_encoder_layer_fwd``: attention block, FFN and two layer norms (5 per element,
    fvcore's own layer-norm estimate, so the fused and unfused paths agree)."""
    src = get_shape(inputs[0])
    ffn_width = get_shape(inputs[14])[0]
    tokens, width = prod(src[:-1]), src[-1]
    return _attention_block_flops(src, src) + 2 * tokens * width * ffn_width + 2 * 5 * tokens * width


def flop_analysis(model: nn.Module, inputs: tuple) -> FlopCountAnalysis:
    """fvcore's analysis with the attention handles added and elementwise ops ignored, warnings off."""
    analysis = FlopCountAnalysis(model, inputs)
    analysis.set_op_handle(
        "aten::scaled_dot_product_attention",
        _sdpa_flops,
        "aten::_native_multi_head_attention",
        _native_mha_flops,
        "aten::_transformer_encoder_layer_fwd",
        _encoder_layer_flops,
    )
    analysis.set_op_handle(**dict.fromkeys(_IGNORED_OPS))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis


def count_gflops(model: nn.Module, inputs: tuple) -> float:
    """GFLOPs (1e9 multiply-adds) of one forward pass of ``model(*inputs)``.

    The trace runs under ``torch.no_grad`` (no autograd graph for a forward that is only measured), which
    is also what makes ``eval()`` models take the inference fast paths they take in deployment; the
    handles count those the same as the training path. The model's train/eval mode is left as it is.
    """
    with torch.no_grad():
        return flop_analysis(model, inputs).total() / 1e9


@functools.cache
def backbone_gflops(name: str, resolution: int) -> float:
    """Per-frame GFLOPs of a torchvision classification model (``torchvision.models.get_model(name)``).

    Cached because the jit trace takes seconds for the deeper ResNets and the tables ask for the same
    backbone once per sampler row. Counted in eval mode at batch 1 on a ``resolution``² RGB frame.
    """
    model = torchvision.models.get_model(name, weights=None).eval()
    return count_gflops(model, (torch.zeros(1, 3, resolution, resolution),))


def video_gflops(
    *,
    fem_per_frame: float,
    head: float,
    rec_per_frame: float,
    frames: int,
    budget: int,
) -> float:
    """GFLOPs per video of a sampler pipeline: ``T·FEM + head + K·recognizer``.

    The feature-extraction model (FEM) sees all ``frames`` (T) frames, the sampler head runs once per
    video, and the recognizer only sees the ``budget`` (K) selected frames. Dense recognition is
    ``fem_per_frame=0, head=0, budget=frames``.
    """
    return frames * fem_per_frame + head + budget * rec_per_frame


def pipeline_gflops(sampler: Any, *, frames: int, budget: int, rec: tuple[str, int], fem: tuple[str, int]) -> float:
    """GFLOPs per video of ``sampler`` (a :class:`~samplerbench.samplers.Sampler`, read through its class
    flags) keeping ``budget`` of ``frames`` frames, with the recognizer and FEM ``(architecture, resolution)``:
    :func:`video_gflops` of what it reads per frame, its head and the frames it keeps.

    The oracle (``uses_labels_at_eval``) needs the recognizer on all T frames for its guiding score, whose
    logits then also score the K it keeps: no FEM and no second recognizer pass.
    """
    rec_per_frame = backbone_gflops(*rec)
    scan = backbone_gflops(*fem) if sampler.uses_fem else 0.0
    kept = frames if sampler.keeps_all else budget
    if sampler.uses_labels_at_eval:
        scan, kept = rec_per_frame, 0
    return video_gflops(fem_per_frame=scan, head=sampler.gflops(frames), rec_per_frame=rec_per_frame,
                        frames=frames, budget=kept)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


FLOP_NOTE = "GFLOPs counted with fvcore: one multiply-add = one flop (the convention of the papers)."
MIN_TIMED_SECONDS = 0.5  # timed work behind every figure: a short loop on a shared machine is mostly noise


@dataclasses.dataclass(frozen=True, kw_only=True)
class Timing:
    """A timed loop summarised: the median call and how much the calls varied.

    Attributes:
        seconds: the median seconds per call.
        spread: the interquartile range of the call times over their median (0.04: the middle half of the
            calls lie within a band 4% of the median wide).
        iterations: how many timed calls stand behind the figure.
        items_per_call: the items (videos) each call processes.
    """

    seconds: float
    spread: float
    iterations: int
    items_per_call: int

    @property
    def items_per_s(self) -> float:
        return self.items_per_call / self.seconds

    @classmethod
    def from_durations(cls, durations: Sequence[float], *, items_per_call: int) -> Timing:
        q1, median, q3 = np.percentile(np.asarray(durations, dtype=np.float64), [25, 50, 75])
        return cls(seconds=float(median), spread=float((q3 - q1) / median), iterations=len(durations),
                   items_per_call=items_per_call)


def measure_throughput(
    fn: Callable[[], None],
    *,
    items_per_call: int,
    device: torch.device,
    warmup: int = 2,
    min_iters: int = 5,
    min_seconds: float = MIN_TIMED_SECONDS,
    clock: Callable[[], float] = time.perf_counter,
) -> Timing:
    """Times ``fn`` (each call processes ``items_per_call`` items, e.g. videos) call by call, until at least
    ``min_iters`` calls and ``min_seconds`` of timed work, and summarises the calls (:class:`Timing`).

    The median rather than the mean: on a shared machine some calls are slowed by other processes, which
    moves a mean but not the median.
    ``warmup`` untimed calls absorb lazy initialisation (cuDNN autotuning, allocator growth, first-touch
    page faults). On CUDA the device is synchronised after every call, so each call's time includes its
    kernels. Everything runs under ``torch.inference_mode``; bf16 autocast and channels_last belong to ``fn``
    and its model, so the caller states them next to the batch size. ``clock`` (seconds) is for tests.
    ``time.perf_counter`` rather than ``torch.utils.benchmark.Timer``: the Timer pins torch to one thread
    unless told otherwise, which would understate CPU throughput.
    """
    durations: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        _synchronize(device)
        while len(durations) < min_iters or sum(durations) < min_seconds:
            start = clock()
            fn()
            _synchronize(device)
            durations.append(clock() - start)
    return Timing.from_durations(durations, items_per_call=items_per_call)
