"""Adaptive samplers: a number of frames of their own per video, up to all T, and a knob that trades accuracy for cost.

An :class:`AdaptiveSampler` reads a video's frames in an :meth:`~AdaptiveSampler.order` and stops at the first step
whose exit score reaches the knob value (the last step always stops); :meth:`~AdaptiveSampler.budgeted` returns that
per-video selection as a :class:`Budgeted`. The benchmark evaluates it at every value of its ``sweep`` field and
places each on the same accuracy-cost plane as the fixed-K samplers. A higher knob value never stops a video
earlier: the knob is how sure the exit rule must be.

The one surprising fact: an adaptive sampler is still a :class:`~samplerbench.samplers.base.Sampler` with a fixed-K
``select``: the first K frames of its order (its exit rule forced to K), so that every contract of the interface
(the checkpoints, ``doctor``, the device tests) holds for it unchanged."""

from __future__ import annotations

import abc
import dataclasses
import functools
import itertools
from typing import ClassVar

import torch
from torch import Tensor

from samplerbench.core.errors import UserError
from samplerbench.measures.metrics import used_frames
from samplerbench.samplers.base import FrameFeatures, Sampler, check_budget


@dataclasses.dataclass(frozen=True, kw_only=True)
class Budgeted:
    """A selection with a budget per video: ``index`` ``[N, T]`` long, each video's T frames in the order its
    sampler processes them, and ``count`` ``[N]`` long in 1..T, how many of them it used; the entries of a row past
    its count are padding (frames it never read). Both on the device of the features."""

    index: Tensor
    count: Tensor

    def used(self) -> Tensor:
        """``[N, T]`` bool: the entries of ``index`` each video used."""
        return used_frames(self.count, self.index.shape[1])

    def positions(self) -> list[list[int]]:
        """Each video's used frames in temporal order (for ``--export-selections``)."""
        return [sorted(row[:n]) for row, n in zip(self.index.tolist(), self.count.tolist(), strict=True)]


def _coarse_to_fine(t: int) -> list[int]:
    mid = t // 2
    order = list(dict.fromkeys([mid, 0, t - 1]))[:t]

    def midpoint(a: int, b: int) -> int:
        return round((a + b) / 2)  # half to even: exact for these small integers

    while len(order) < t:
        kept = sorted(order)
        gaps = [(a, b) for a, b in itertools.pairwise(kept) if b - a > 1]
        a, b = min(gaps, key=lambda g: (g[0] - g[1], abs(midpoint(*g) - mid), g[0]))
        order.append(midpoint(a, b))
    return order


@functools.cache
def _order_on(t: int, device: torch.device) -> Tensor:
    return torch.tensor(_coarse_to_fine(t), dtype=torch.long, device=device)


def coarse_to_fine_order(t: int, *, device: torch.device | str | None = None) -> Tensor:
    """``[T]`` long: FrameExit's deterministic policy (its appendix, Algorithm 1: the middle frame, the first, the
    last, then frames that bisect the halves). This suite's exact form: the middle is frame T // 2 (0-based), then
    the largest gap between frames already taken is bisected (midpoint rounded half to even; among equal gaps, the
    one whose midpoint is nearest the middle frame, then the earlier). It reproduces the official code's ActivityNet
    order for T = 10, ``[5, 0, 9, 2, 7, 4, 6, 3, 8, 1]``. One tensor per T and device, made once (a GPU's copy from
    the host is not made on every batch): read it, never write to it."""
    return _order_on(t, torch.device(device or "cpu"))


def exit_counts(scores: Tensor, value: float) -> Tensor:
    """``[N]`` long: for exit scores ``[N, T]`` by step, the 1-based first step whose score is at least ``value``,
    T where none is (the last step always stops). A higher ``value`` never gives a smaller count."""
    reached = scores >= value
    reached[:, -1] = True
    return reached.int().argmax(dim=1) + 1  # argmax returns the first maximal entry


def check_sweep(knob: str, sweep: tuple[float, ...]) -> None:
    """A sweep is at least one knob value in (0, 1], increasing; else a one-line :class:`UserError`."""
    if not sweep or any(not 0 < v <= 1 for v in sweep) or any(b <= a for a, b in itertools.pairwise(sweep)):
        raise UserError(f"sweep = {list(sweep)}: give increasing {knob} values in (0, 1]")


@dataclasses.dataclass(kw_only=True, eq=False)
class AdaptiveSampler(Sampler):
    """A sampler that spends a different number of frames on each video (module docstring). Subclasses implement
    :meth:`order` and :meth:`exit_scores`, name their knob (``knob``) and set the default of ``sweep``, the knob
    values a run evaluates (fixed before any run, never chosen on validation figures); a sampler with a cost of its
    own per step overrides :meth:`head_gflops`."""

    knob: ClassVar[str]
    sweep: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        check_sweep(self.knob, self.sweep)

    @abc.abstractmethod
    def order(self, batch: FrameFeatures) -> Tensor:
        """``[B, T]`` long: every frame of each video, in the order the sampler reads them."""

    @abc.abstractmethod
    def exit_scores(self, batch: FrameFeatures) -> Tensor:
        """``[B, T]`` float by step (step t = having read ``order[:, :t + 1]``): the step stops when its score is
        at least the knob value. A step's score may read only what the sampler has read by then."""

    def budgeted(self, batch: FrameFeatures, value: float) -> Budgeted:
        """The per-video selection at knob ``value``: :meth:`order`, cut at each video's first stopping step."""
        return Budgeted(index=self.order(batch), count=exit_counts(self.exit_scores(batch), value))

    def scores(self, batch: FrameFeatures) -> Tensor:
        """Reading priority: T for the first frame of the order, down to 1 for the last."""
        order = self.order(batch)
        priority = torch.arange(order.shape[1], 0, -1, device=order.device, dtype=torch.float32)
        return torch.zeros(order.shape, device=order.device).scatter_(1, order, priority.expand(order.shape))

    def select(self, batch: FrameFeatures, k: int) -> Tensor:
        """The first K frames of the order, in temporal order: the exit rule forced to K."""
        check_budget(k, batch.num_frames)
        return torch.sort(self.order(batch)[:, :k], dim=1).values

    def head_gflops(self, count: Tensor, frames: int) -> Tensor:
        """``[N]`` float64: the sampler's own GFLOPs on each video that used ``count`` of ``frames`` frames, beside
        the recognizer's; none by default (an exit rule of elementwise operations costs nothing by the suite's
        fvcore convention)."""
        return torch.zeros(count.shape, dtype=torch.float64, device=count.device)
