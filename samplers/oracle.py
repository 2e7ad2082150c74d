"""The oracle, "Guid." in the paper: selects by the guiding saliency score computed with the ground truth.

It reads labels of the *evaluation* videos, so it is an upper bound, not a deployable sampler. ``fit``
computes the class prototypes exactly as NSNet does, so both see the same guiding score."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from samplerbench.samplers.base import FrameFeatures, Sampler, register_sampler
from samplerbench.samplers.guiding import GUIDINGS, check_choice, class_prototypes, guiding_scores


@register_sampler("oracle")
@dataclasses.dataclass(kw_only=True, eq=False)
class OracleSampler(Sampler):
    """Top-K frames by the guiding score (``"prototype"`` default, or ``"response"``)."""

    trainable = True
    uses_labels_at_eval = True
    guiding: str = "prototype"
    eps: float = 0.30
    prototypes: Tensor | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_choice("guiding score", self.guiding, GUIDINGS)

    def fit(self, train: FrameFeatures) -> None:
        if self.guiding == "prototype":
            train.require("labels", "rec_logits", "rec_feats", who=self.name)
            self.prototypes = class_prototypes(train.rec_logits, train.rec_feats, train.labels, eps=self.eps)

    def to(self, device: torch.device | str) -> OracleSampler:
        if self.prototypes is not None:
            self.prototypes = self.prototypes.to(device)
        return self

    def scores(self, batch: FrameFeatures) -> Tensor:
        batch.require("labels", "rec_logits", "rec_feats", who=self.name)
        return guiding_scores(
            self.guiding, rec_logits=batch.rec_logits, rec_feats=batch.rec_feats, labels=batch.labels,
            prototypes=self.prototypes,
        )

    def state_dict(self) -> dict:
        return {"prototypes": self.prototypes}

    def load_state_dict(self, state: dict) -> None:
        self.prototypes = state["prototypes"]
