"""The sampler interface and its registry.

A sampler sees T uniformly pre-sampled frames of a video through a :class:`FrameFeatures` and keeps K (an
:class:`~samplerbench.samplers.adaptive.AdaptiveSampler`: a number of its own per video). Labels and recognizer
outputs are in the features on the training split only, except for samplers that declare ``uses_labels_at_eval``
(the oracle upper bound: both) or ``reads_recognizer`` (the recognizer's outputs, never the labels). Registration
mirrors torchvision's ``register_model``; other packages register through the entry-point group
``samplerbench.samplers``."""

from __future__ import annotations

import abc
import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor

from samplerbench.core.errors import UserError
from samplerbench.core.fields import option_fields
from samplerbench.core.registry import Registry
from samplerbench.measures.topk import check_budget, topk_sorted

ENTRY_POINT_GROUP = "samplerbench.samplers"


@dataclasses.dataclass(frozen=True, kw_only=True)
class FrameFeatures:
    """A batch of B videos, T pre-sampled frames each, as cached by the pipeline. It holds no pixels.

    Attributes:
        fem: FEM features of every frame, ``[B, T, D]`` float.
        motion: ``[B, T]`` float (:mod:`samplerbench.measures.motion`) for samplers that declare ``needs_motion``;
        else ``None``.
        labels: multi-hot targets ``[B, C]`` float; training split only (and in the oracle's evaluation features).
        rec_logits: the recognizer's per-frame logits ``[B, T, C]``; training split only (and the evaluation features
        of the oracle and of samplers that declare ``reads_recognizer``).
        rec_feats: the recognizer's per-frame pooled features ``[B, T, F]``; same availability as logits.
        num_classes: C, so that samplers can size their heads before seeing labels.
        video_ids: one identity per video, for samplers whose draws must follow the video; ``None`` if unknown.
    """

    fem: Tensor
    num_classes: int
    motion: Tensor | None = None
    labels: Tensor | None = None
    rec_logits: Tensor | None = None
    rec_feats: Tensor | None = None
    video_ids: tuple[str, ...] | None = None

    @property
    def batch_size(self) -> int:
        return self.fem.shape[0]

    @property
    def num_frames(self) -> int:
        return self.fem.shape[1]

    def take(self, rows: Tensor) -> FrameFeatures:
        """The features of the rows ``rows`` selects (indices, or a ``[B]`` bool mask), every field alike."""
        index = torch.arange(self.batch_size, device=rows.device)[rows]
        values = {name: value[index.to(value.device)] for name in (*FRAME_FIELDS, "labels")
                  if (value := getattr(self, name)) is not None}
        ids = self.video_ids and tuple(self.video_ids[i] for i in index.tolist())
        return dataclasses.replace(self, **values, video_ids=ids)

    def require(self, *names: str, who: str) -> None:
        """Fail loudly when a sampler is handed features without the fields it needs."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"sampler {who!r} needs FrameFeatures fields {missing}, which these features lack")


FRAME_FIELDS = ("fem", "motion", "rec_logits", "rec_feats")  # the FrameFeatures fields with a value per frame


class Sampler(abc.ABC):
    """Keeps K of T frames per video.

    Subclasses implement :meth:`scores`; :meth:`select` keeps the top-K by score unless overridden. Every sampler
    is a keyword-only dataclass whose init fields are its options (:func:`constructor_fields`). Both methods
    create every tensor on the features' device and return their result there."""

    name: ClassVar[str]
    trainable: ClassVar[bool] = False
    uses_labels_at_eval: ClassVar[bool] = False
    needs_motion: ClassVar[bool] = False  # reads FrameFeatures.motion: its pipeline decodes each frame's successor
    keeps_all: ClassVar[bool] = False  # dense: ignores K, reported once at K = T
    uses_fem: ClassVar[bool] = False  # reads FEM features: its cost includes the FEM on all T frames
    # Reads the recognizer's outputs (rec_logits, rec_feats) of the frames it has processed at test time, as a
    # sampler that runs the recognizer frame by frame and decides on what it saw does (FrameExit); never the labels.
    # Its features at evaluation hold the recognizer's outputs of all T frames: reading only those of the frames it
    # processed is its own contract (tests/test_adaptive.py checks the built-in ones).
    reads_recognizer: ClassVar[bool] = False

    def fit(self, train: FrameFeatures) -> None:  # noqa: B027 - a no-op is the right default
        """Learn from the training split; training-free samplers keep this no-op."""

    @abc.abstractmethod
    def scores(self, batch: FrameFeatures) -> Tensor:
        """Saliency ``[B, T]``, higher = keep."""

    def select(self, batch: FrameFeatures, k: int) -> Tensor:
        """``[B, K]`` distinct frame indices in ascending (temporal) order."""
        check_budget(k, batch.num_frames)
        return topk_sorted(self.scores(batch), k)

    def to(self, device: torch.device | str) -> Sampler:
        """Move the learned state (networks, prototypes) to ``device`` and return ``self``, as
        ``nn.Module.to`` does; samplers without tensor state keep this no-op."""
        return self

    def gflops(self, frames: int) -> float:
        """The sampler's own cost per video on top of the FEM features (fvcore convention: 1 MAC = 1 flop)."""
        return 0.0

    def state_dict(self) -> dict:
        """Learned state, for checkpoints and the stage cache; empty for training-free samplers."""
        return {}

    def load_state_dict(self, state: dict) -> None:  # noqa: B027 - nothing to load by default
        """Restore what :meth:`state_dict` returned."""


def _check_sampler_class(name: str, cls: type[Sampler]) -> None:
    """What :data:`SAMPLERS` holds: a :class:`Sampler` dataclass, which takes ``name`` as its ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, Sampler)):
        raise TypeError(f"@register_sampler({name!r}) must decorate a Sampler subclass, got {cls!r}")
    if "__dataclass_fields__" not in vars(cls):
        raise TypeError(f"@register_sampler({name!r}): {cls.__name__} must be a dataclass "
                        "(@dataclasses.dataclass(kw_only=True, eq=False) below the decorator)")
    cls.name = name


# Every sampler, built-in and from the entry points of ENTRY_POINT_GROUP (an undecorated Sampler class an entry point
# names is registered under the entry point's name), by name, sorted.
SAMPLERS: Registry[type[Sampler]] = Registry("sampler", sort=True, entry_points=ENTRY_POINT_GROUP,
                                             check=_check_sampler_class)
S = TypeVar("S", bound=type[Sampler])


def register_sampler(name: str) -> Callable[[S], S]:
    """Class decorator: ``@register_sampler("uniform")``. A name can be registered once."""
    return SAMPLERS.register(name)


def list_samplers() -> list[str]:
    """Every registered sampler name, built-in and from entry points, sorted."""
    return SAMPLERS.names()


def get_sampler_class(name: str) -> type[Sampler]:
    """The sampler class registered as ``name``, else a one-line :class:`UserError` (did you mean)."""
    return SAMPLERS.get(name)


def get_sampler(name: str, **kwargs) -> Sampler:
    """Build a registered sampler, like ``timm.create_model``: ``get_sampler("nsnet", fusion="union")``."""
    return get_sampler_class(name)(**kwargs)


RUN_FIELDS = ("device",)  # constructor fields the run sets for every sampler, never an option


@functools.cache
def constructor_fields(cls: type[Sampler]) -> dict[str, dataclasses.Field]:
    """The init fields of the sampler dataclass ``cls`` by name: what configs, the pipeline and checkpoints
    set (``.default`` is each one's default)."""
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def field_values(sampler: Sampler) -> dict[str, Any]:
    """Every constructor field of ``sampler`` with its value, except the run's (:data:`RUN_FIELDS`): what it
    was built with, for cache keys and checkpoints."""
    return {name: getattr(sampler, name) for name in constructor_fields(type(sampler)) if name not in RUN_FIELDS}


def check_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` for sampler ``name``, checked against its init fields and types
    (:func:`~samplerbench.core.fields.option_fields`) and by building the sampler; returns the conformed options, else a
    one-line :class:`UserError` naming sampler and field."""
    cls = get_sampler_class(name)
    where = f"sampling.options.{name}"
    out = option_fields(cls, options, where=where, exclude=RUN_FIELDS)
    try:
        cls(**out)
    except (TypeError, ValueError, UserError) as exc:
        raise UserError(f"{where}: {exc}") from None
    return out
