"""Where a run's per-frame inputs come from: one :class:`FeatureSource` interface that the pipeline, the evaluator and
the tables consume, implemented by videos (:mod:`samplerbench.stages.videos`: decode, train the backbones, extract
their outputs) and by frame banks (:mod:`samplerbench.stages.banks`: read another run's outputs).

The one surprising fact: a source also prices a pipeline over its features (:meth:`FeatureSource.gflops`,
:meth:`FeatureSource.timed_step`), because only it knows whether the backbones that made them are there to count."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Collection
from typing import ClassVar

from torch import Tensor

from samplerbench.config import Network, RunConfig
from samplerbench.core.sgd import Fit
from samplerbench.datasets.base import DatasetIndex
from samplerbench.datasets.videolist import ListMatch
from samplerbench.formats.store import FrameSource
from samplerbench.recognizers.backbones import FrameClassifier
from samplerbench.samplers import AdaptiveSampler, Sampler
from samplerbench.stages.runner import Stages


@dataclasses.dataclass(frozen=True)
class Split:
    """One subset's videos (one row per video, or per temporal-shift view in training)."""

    key: str
    frames: FrameSource | None  # [N, T, 3, rec_res, rec_res] uint8, read from the frame store; None without frames
    targets: Tensor  # [N, C] multi-hot float
    salient: Tensor  # [N, T] bool: frame inside an annotated segment
    video_ids: list[str]
    skipped: list[tuple[str, str, str]]  # (video_id, path, reason)


@dataclasses.dataclass(frozen=True)
class Outputs:
    """A frozen frame classifier's per-frame features and logits on both splits (and the classifier, where known)."""

    key: str
    name: str  # e.g. "recognizer/resnet18+tsn", for stage lines
    arch: str
    model: FrameClassifier | None  # in eval mode, for throughput timing; None where unknown (a bank's)
    train_feats: Tensor
    train_logits: Tensor
    val_feats: Tensor
    val_logits: Tensor
    training: Fit | None  # epochs run, losses, the kept epoch; None where trained elsewhere (a bank's)
    tsn: bool = False  # trained "w/ TSN" (K segments, averaged logits)


class FeatureSource(abc.ABC):
    """The dataset of a run and the per-frame outputs of its backbones on both splits, each a cached stage of
    ``stages``. Subclasses register under a dataset adapter's ``features`` kind (:data:`SOURCES`)."""

    # Whether the source decodes videos: its runs price and time the whole pipeline (decoding, FEM, sampler,
    # recognizer), write checkpoints and may train further backbones (Tables 3 and 4); otherwise the sampler
    # heads alone, on features that exist already.
    decodes: ClassVar[bool]

    def __init__(self, *, stages: Stages) -> None:
        self.stages = stages
        self.cfg: RunConfig = stages.cfg

    @abc.abstractmethod
    def index(self) -> DatasetIndex:
        """The dataset's records and classes."""

    @abc.abstractmethod
    def video_list(self) -> ListMatch | None:
        """How ``--video-list`` matched the dataset; ``None`` without one."""

    @abc.abstractmethod
    def split(self, subset: str) -> Split:
        """The rows of ``subset`` ("train" or "val")."""

    @abc.abstractmethod
    def outputs(self, role: str, arch: str, *, tsn: bool = False) -> Outputs:
        """The ``role`` ("recognizer" or "fem") network's per-frame outputs on both splits."""

    @abc.abstractmethod
    def motion(self, subset: str) -> Tensor | None:
        """``[N, T]`` per-frame motion of every row of ``subset``, for samplers that declare ``needs_motion``;
        ``None`` where the source holds none (then :meth:`check` has left such samplers out)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """What made the features, for the line that opens every table."""

    @abc.abstractmethod
    def check(self, names: list[str], *, extra: Collection[Network]) -> list[str]:
        """Before any work: a :class:`~samplerbench.core.errors.UserError` for what this source cannot serve to the
        samplers ``names`` or the run's settings, or for the memory it would need with the ``extra`` networks the
        run's tables train; returns what the run's tables must say it left out, one line each (default-list
        samplers it cannot serve are removed from ``names`` in place)."""

    @abc.abstractmethod
    def gflops(self, sampler: Sampler, k: int) -> float:
        """GFLOPs per video of ``sampler``'s pipeline at budget ``k`` on these features."""

    @abc.abstractmethod
    def budgeted_gflops(self, sampler: AdaptiveSampler, count: Tensor) -> Tensor:
        """``[N]`` GFLOPs of each val video on which ``sampler``'s pipeline used ``count`` ``[N]`` frames."""

    @abc.abstractmethod
    def timed_step(self, sampler: Sampler, point: float, *, batch: int, rec: Outputs,
                   fem: Outputs) -> Callable[[], None]:
        """One timed call of ``sampler``'s pipeline on the first ``batch`` val rows, at ``point``: its budget K, or
        an :class:`~samplerbench.samplers.adaptive.AdaptiveSampler`'s knob value (each video at its own budget)."""

