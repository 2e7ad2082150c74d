"""Compute cost (fvcore GFLOPs) and measured throughput.

FLOPs follow fvcore's convention (one multiply-add = one flop, as in the papers). fvcore has no handle for
the attention ops of ``torch.nn`` transformer layers and would count them as zero; this module adds
handles for ``aten::scaled_dot_product_attention``, ``aten::_native_multi_head_attention`` and
``aten::_transformer_encoder_layer_fwd`` that count exactly what the unfused path costs, so a model costs
the same in ``train()`` and ``eval()``. Masked attention is counted dense. Elementwise ops are registered as
ignored so that ``unsupported_ops`` lists only ops that might carry real compute.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from math import prod
from typing import Any

import numpy as np
import torch
import torchvision
from torch import Tensor, nn

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
    """Multi-head attention with its in/out projections, as the unfused ``nn.MultiheadAttention`` traces it:
    four ``E×E`` projections per token plus ``2·B·L·S·E`` for Q·Kᵀ and attn·V."""
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
    """GFLOPs (1e9 multiply-adds) of one forward pass of ``model(*inputs)``, traced under ``torch.no_grad``;
    the model's train/eval mode is left as it is."""
    with torch.no_grad():
        return flop_analysis(model, inputs).total() / 1e9


@functools.cache
def backbone_gflops(name: str, resolution: int) -> float:
    """Per-frame GFLOPs of ``torchvision.models.get_model(name)`` in eval mode at batch 1 on a ``resolution``² frame
    (cached: the trace takes seconds)."""
    model = torchvision.models.get_model(name, weights=None).eval()
    return count_gflops(model, (torch.zeros(1, 3, resolution, resolution),))


def video_gflops(
    *,
    fem_per_frame: float,
    head: float | Tensor,
    rec_per_frame: float,
    frames: int,
    budget: int | Tensor,
) -> float | Tensor:
    """GFLOPs per video of a sampler pipeline: ``T·FEM + head + K·recognizer``; per video (``[N]``) where ``head``
    and ``budget`` are per-video tensors (an adaptive sampler's).

    Dense recognition is ``fem_per_frame=0, head=0, budget=frames``."""
    return frames * fem_per_frame + head + budget * rec_per_frame


def pipeline_gflops(sampler: Any, *, frames: int, budget: int, rec: tuple[str, int], fem: tuple[str, int]) -> float:
    """GFLOPs per video of ``sampler`` (read through its class flags) keeping ``budget`` of ``frames`` frames,
    with the recognizer and FEM ``(architecture, resolution)``, via :func:`video_gflops`.

    The oracle (``uses_labels_at_eval``) runs the recognizer on all T frames and reuses those logits: no FEM."""
    rec_per_frame = backbone_gflops(*rec)
    scan = backbone_gflops(*fem) if sampler.uses_fem else 0.0
    kept = frames if sampler.keeps_all else budget
    if sampler.uses_labels_at_eval:
        scan, kept = rec_per_frame, 0
    return video_gflops(fem_per_frame=scan, head=sampler.gflops(frames), rec_per_frame=rec_per_frame,
                        frames=frames, budget=kept)


def budgeted_gflops(sampler: Any, *, frames: int, count: Tensor, rec: tuple[str, int],
                    fem: tuple[str, int]) -> Tensor:
    """``[N]`` float64 GFLOPs of each video on which an adaptive sampler's pipeline used ``count`` ``[N]`` of the
    ``frames`` frames, via :func:`video_gflops`: T·FEM if it reads FEM features, its own cost on that video
    (``sampler.head_gflops(count, frames)``, e.g. FrameExit's gates: one per step it ran) and ``count`` ·
    recognizer. A table's GFLOPs/video is their mean over the val videos, what each video actually used."""
    scan = backbone_gflops(*fem) if sampler.uses_fem else 0.0
    return video_gflops(fem_per_frame=scan, head=sampler.head_gflops(count, frames),
                        rec_per_frame=backbone_gflops(*rec), frames=frames, budget=count.double())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


FLOP_NOTE = "GFLOPs counted with fvcore: one multiply-add = one flop (the convention of the papers)."
MIN_TIMED_SECONDS = 0.5  # timed work behind every figure: a short loop on a shared machine is mostly noise


@dataclasses.dataclass(frozen=True, kw_only=True)
class Timing:
    """A timed loop summarised.

    Attributes:
        seconds: the median seconds per call.
        spread: the interquartile range of the call times over their median.
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
    """Times ``fn`` (each call processes ``items_per_call`` items) after ``warmup`` untimed calls, until at least
    ``min_iters`` calls and ``min_seconds``, as a :class:`Timing`. CUDA is synchronised after every call; runs under
    ``torch.inference_mode``. ``clock`` is for tests (``torch.utils.benchmark.Timer`` would pin torch to one thread)."""
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


def measure_interleaved(
    steps: Mapping[str, Callable[[], None]],
    *,
    reference: str,
    items_per_call: int,
    device: torch.device,
    warmup: int = 2,
    min_rounds: int = 5,
    min_seconds: float = MIN_TIMED_SECONDS,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Timing]:
    """Times several pipelines against one ``reference`` among them, so that a machine whose speed drifts (other
    jobs, clocks, caches) moves them all alike: after ``warmup`` untimed calls of each, every round calls each
    step once (each round starting one step further on), until ``min_rounds`` rounds and ``min_seconds`` of timed
    work per step on average. A step's figure is the reference's median call time times the median over rounds
    of its call time over the reference's in that round, its spread the interquartile range of that ratio over
    its median; the reference's own are those of :meth:`Timing.from_durations`. Two steps doing the same work
    thus get the same figure up to the noise within rounds, not the drift between them."""
    names = list(steps)
    if reference not in steps:
        raise ValueError(f"reference {reference!r} is not among the steps {names}")
    durations: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for step in steps.values():
            for _ in range(warmup):
                step()
        _synchronize(device)
        rounds = 0
        while rounds < min_rounds or sum(map(sum, durations.values())) < min_seconds * len(names):
            for name in names[rounds % len(names):] + names[: rounds % len(names)]:
                start = clock()
                steps[name]()
                _synchronize(device)
                durations[name].append(clock() - start)
            rounds += 1
    ref = Timing.from_durations(durations[reference], items_per_call=items_per_call)
    timings = {}
    for name in names:
        ratio = Timing.from_durations(np.divide(durations[name], durations[reference]), items_per_call=items_per_call)
        timings[name] = ref if name == reference else dataclasses.replace(ratio, seconds=ref.seconds * ratio.seconds)
    return timings
