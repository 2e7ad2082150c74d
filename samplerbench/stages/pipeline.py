"""The cached stages of a run: a feature source (videos or a frame bank) and the samplers fitted on its features.

Every stage result is stored in the :class:`~samplerbench.formats.cache.StageCache` under a key that hashes its own
config and its inputs' keys, and memoised in the process (:class:`~samplerbench.stages.runner.Stages`)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from samplerbench.config import RunConfig, sampler_override
from samplerbench.core.sgd import Fit
from samplerbench.core.stagelog import StageLog
from samplerbench.datasets import dataset_spec
from samplerbench.formats.cache import source_hash, stage_key
from samplerbench.samplers import FrameFeatures, Sampler, get_sampler_class
from samplerbench.samplers.base import check_options, constructor_fields, field_values
from samplerbench.samplers.training import TrainableSampler
from samplerbench.stages.banks import BankSource
from samplerbench.stages.runner import Stages
from samplerbench.stages.source import FeatureSource, Outputs
from samplerbench.stages.videos import VideoSource

# A dataset adapter's ``features`` kind -> the source that serves its features
SOURCES: dict[str, type[FeatureSource]] = {"videos": VideoSource, "bank": BankSource}


@dataclasses.dataclass(frozen=True)
class Fitted:
    """A sampler the pipeline built, the non-default fields it was built with (``fields``: the variant a table
    asked for, e.g. ``no_ns=True``; ``options``: the run's ``sampling.options`` for it), and the classifiers it
    was fitted on: what a checkpoint of it must record (see :mod:`samplerbench.stages.checkpoint`)."""

    name: str
    fields: dict
    options: dict
    fem: Outputs
    rec: Outputs
    sampler: Sampler


FIT_SEED_STRIDE = 1_000_003  # fit i of a run with seed s trains with seed s + i · stride: distinct from every run's


def fit_seed(seed: int, fit: int) -> int:
    """The training seed of fit ``fit`` (0-based) of a sampler in a run with ``seed``; fit 0 uses ``seed`` itself."""
    return seed + fit * FIT_SEED_STRIDE


def sampler_batches(cfg: RunConfig, names: list[str]) -> list[int]:
    """The training batch of each trainable sampler among ``names``: its ``batch_size`` option, else
    ``sampling.batch``, else its own schedule's."""
    batches = []
    for name in names:
        fields = constructor_fields(get_sampler_class(name))
        if "batch_size" in fields:
            option = cfg.sampling.options.get(name, {}).get("batch_size")
            batches.append(option or cfg.sampling.batch or fields["batch_size"].default)
    return batches


class Pipeline(Stages):
    """A run's stages: its :class:`~samplerbench.stages.source.FeatureSource` (videos or a frame bank, by the
    dataset adapter's ``features`` kind) and the samplers fitted on its features, each computed once and cached."""

    def __init__(self, cfg: RunConfig, *, cache_dir: Path, log: StageLog) -> None:
        super().__init__(cfg, cache_dir=cache_dir, log=log)
        self.source: FeatureSource = SOURCES[dataset_spec(cfg.data.dataset).features](stages=self)
        self.fitted: list[Fitted] = []  # every sampler built so far, in order, for the run's checkpoints

    def features(self, sampler: type[Sampler], *, fem: Outputs, rec: Outputs) -> tuple[FrameFeatures, FrameFeatures]:
        """What ``sampler`` sees: on the training split everything, on the val split only what it may see at test:
        the labels only if it declares ``uses_labels_at_eval`` (the oracle), the recognizer's outputs also if it
        declares ``reads_recognizer`` (it runs the recognizer on the frames it reads, FrameExit)."""
        source = self.source
        train, val = source.split("train"), source.split("val")
        num_classes = train.targets.shape[1]
        val_motion = source.motion("val") if sampler.needs_motion else None
        # a training-free sampler's fit reads nothing: only a trainable one costs the training split's motion
        train_motion = source.motion("train") if sampler.needs_motion and sampler.trainable else None
        train_feats = FrameFeatures(fem=fem.train_feats, num_classes=num_classes, motion=train_motion,
                                    labels=train.targets, rec_logits=rec.train_logits, rec_feats=rec.train_feats,
                                    video_ids=tuple(train.video_ids))
        privileged = sampler.uses_labels_at_eval
        recognized = privileged or sampler.reads_recognizer
        val_feats = FrameFeatures(fem=fem.val_feats, num_classes=num_classes, motion=val_motion,
                                  labels=val.targets if privileged else None,
                                  rec_logits=rec.val_logits if recognized else None,
                                  rec_feats=rec.val_feats if recognized else None, video_ids=tuple(val.video_ids))
        return train_feats, val_feats

    def sampler(self, name: str, *, fem: Outputs, rec: Outputs, fit: int = 0,
                **fields: Any) -> tuple[Sampler, FrameFeatures]:
        """A fitted sampler and its val features. ``fields`` are the sampler's constructor fields for this variant;
        they win over the run's ``sampling.options``. Values equal to the constructor's defaults are dropped first,
        so ``nsnet(guiding="prototype")`` and ``nsnet()`` share one cache key. ``fit``: which of the variant's fits
        (:meth:`fits`); fit 0 trains with the run's seed and is the one the run's checkpoints hold."""
        params = constructor_fields(get_sampler_class(name))

        def non_default(values: dict) -> dict:
            return {k: v for k, v in values.items() if k not in params or params[k].default != v}

        fields = non_default(fields)
        options = {k: v for k, v in non_default(self.options(name)).items() if k not in fields}
        return self.once(("sampler", name, fem.key, rec.key, fit, tuple(sorted((fields | options).items()))),
                          lambda: self._fit(name, fem, rec, fields, options, fit=fit))

    def fits(self, name: str, *, fem: Outputs, rec: Outputs, **fields) -> tuple[list[Sampler], FrameFeatures]:
        """Every fit of a sampler variant on the same cached features, and its val features: ``sampling.fits``
        of a sampler trained by SGD (fit i with seed :func:`fit_seed`), one of any other (its fit is
        deterministic)."""
        first, feats = self.sampler(name, fem=fem, rec=rec, **fields)
        count = self.cfg.sampling.fits if isinstance(first, TrainableSampler) else 1
        return [first, *(self.sampler(name, fem=fem, rec=rec, fit=i, **fields)[0] for i in range(1, count))], feats

    def options(self, name: str) -> dict[str, Any]:
        """The run's ``sampling.options`` for sampler ``name``, checked against its constructor."""
        return check_options(name, self.cfg.sampling.options.get(name, {}))

    def _fit(self, name: str, fem: Outputs, rec: Outputs, fields: dict, options: dict, *,
             fit: int) -> tuple[Sampler, FrameFeatures]:
        cfg = self.cfg
        cls = get_sampler_class(name)
        common = dict(seed=fit_seed(cfg.seed, fit), device=cfg.device,
                      frame_size=(cfg.recognizer.res, cfg.recognizer.res), train_budget=cfg.sampling.main_budget)
        accepted = constructor_fields(cls)
        # the run's settings that the sampler has a field for, then the run's schedule changes for a trainable one;
        # its sampling.options and the variant's fields win over both
        schedule = sampler_override(cfg).changes() if issubclass(cls, TrainableSampler) else {}
        kwargs = {k: v for k, v in common.items() if k in accepted} | schedule | options | fields
        sampler = cls(**kwargs)
        train_feats, val_feats = self.features(cls, fem=fem, rec=rec)
        if cls.trainable:
            # every field, defaults included, so that a changed default never serves an old fit
            key = stage_key("sampler", name=name, fields=field_values(sampler), fem=fem.key, rec=rec.key,
                            code=source_hash(sys.modules[cls.__module__]))
            label = (name + "".join(f" {k}={v}" for k, v in (options | fields).items())
                     + (f" fit {fit + 1}" if fit else "") + f" ({fem.name}, {rec.name})")

            def train() -> dict:
                sampler.fit(train_feats)
                return sampler.state_dict()

            def summary(state: dict) -> dict:
                if not isinstance(sampler, TrainableSampler):  # the oracle's fit is prototypes, not epochs
                    return {}
                return Fit.from_state(state["training"]).summary() | {"schedule": sampler.schedule().describe()}

            sampler.load_state_dict(self.cached(f"fit {label}", "sampler", key, train, summary=summary))
        if fit == 0:
            self.fitted.append(Fitted(name=name, fields=fields, options=options, fem=fem, rec=rec, sampler=sampler))
        return sampler, val_feats
