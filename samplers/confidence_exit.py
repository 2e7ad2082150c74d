"""Confidence exit: the training-free early-exit baseline. It reads frames in FrameExit's coarse-to-fine order and
stops at the first step where the running video prediction, the mean softmax of the recognizer over the frames read
so far, gives some class a probability of at least τ (the knob ``confidence``); the last frame always stops.

This is the suite's baseline, not a paper's method: the obvious rule any early-exit method must beat (FrameExit's
own first step is such a rule, at 0.99). The order is FrameExit's so that the two differ only in the exit rule. The
running prediction is the mean softmax, the suite's default aggregation, whatever a run's ``--aggregation``."""

from __future__ import annotations

import dataclasses

from torch import Tensor

from samplerbench.measures.metrics import running_mean_softmax
from samplerbench.samplers.adaptive import AdaptiveSampler, coarse_to_fine_order
from samplerbench.samplers.base import FrameFeatures, register_sampler


def running_confidence(rec_logits: Tensor, order: Tensor) -> Tensor:
    """``[B, T]`` by step: the highest class probability of the mean softmax of the frames ``order[:, :t + 1]``."""
    return running_mean_softmax(rec_logits, order).amax(dim=2)


@register_sampler("confidence_exit")
@dataclasses.dataclass(kw_only=True, eq=False)
class ConfidenceExit(AdaptiveSampler):
    """Stops a video when the recognizer's running prediction is confident enough (module docstring)."""

    knob = "confidence"
    reads_recognizer = True
    sweep: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)

    def order(self, batch: FrameFeatures) -> Tensor:
        return coarse_to_fine_order(batch.num_frames, device=batch.fem.device).expand(batch.batch_size, -1)

    def exit_scores(self, batch: FrameFeatures) -> Tensor:
        batch.require("rec_logits", who=self.name)
        return running_confidence(batch.rec_logits, self.order(batch))
