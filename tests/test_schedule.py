"""Training schedules (samplerbench.core.sgd.Schedule): each trainable sampler's paper schedule by default, the
learning-rate curves, gradient clipping, and the held-out rule as an option."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from banks import salient_bank
from torch import nn

from samplerbench.config import backbone_schedule, build_config, sampler_override
from samplerbench.core.sgd import ONE_CYCLE_WARMUP, Schedule, ScheduleOverride, train_epochs
from samplerbench.core.stagelog import StageLog
from samplerbench.formats.store import TensorFrames
from samplerbench.samplers import get_sampler, get_sampler_class
from samplerbench.stages import pipeline, videos
from samplerbench.stages.source import Split

PAPER = {  # what each paper (or its authors' code) trains with, read off the sources the docstrings name
    "nsnet": dict(epochs=120, batch_size=64, lr=1e-2, momentum=0.9, weight_decay=0.0, lr_decay="step",
                  milestone_epochs=[50, 75], clip_grad_norm=5.0),  # the clipping is the suite's reading
    "ocsampler": dict(epochs=50, batch_size=40, lr=0.005, momentum=0.9, weight_decay=1e-4, lr_decay="cosine",
                      milestone_epochs=[], clip_grad_norm=40.0),
    "scsampler": dict(epochs=50, batch_size=48, lr=0.001, momentum=0.9, weight_decay=1e-4, lr_decay="step",
                      milestone_epochs=[], clip_grad_norm=20.0),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_each_trainable_sampler_defaults_to_its_papers_schedule_without_early_stopping(name: str) -> None:
    schedule = get_sampler(name).schedule()
    expected = dict(PAPER[name])
    assert schedule.milestone_epochs() == expected.pop("milestone_epochs")
    assert {k: getattr(schedule, k) for k in expected} == expected
    assert not schedule.early_stop


def test_step_decay_follows_the_papers_epochs_and_scales_with_them() -> None:
    s = Schedule(epochs=120, batch_size=64, lr=0.01, milestones=(50 / 120, 75 / 120))
    assert [s.lr_factor(e) for e in (0, 49, 50, 74, 75, 119)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    half = dataclasses.replace(s, epochs=60)
    assert half.milestone_epochs() == [25, 38]  # 50/120 and 75/120 of 60 epochs, rounded


def test_cosine_decay_and_linear_warmup() -> None:
    s = Schedule(epochs=50, batch_size=40, lr=0.005, lr_decay="cosine")
    assert s.lr_factor(0) == 1.0 and s.lr_factor(25) == pytest.approx(0.5) and s.lr_factor(49) < 0.01
    w = Schedule(epochs=10, batch_size=8, lr=0.1, warmup_epochs=3)
    assert [w.lr_factor(e) for e in range(5)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])


@pytest.mark.parametrize("bad", [dict(lr_decay="linear"), dict(epochs=0), dict(lr=0.0), dict(momentum=1.0),
                                 dict(milestones=(1.5,)), dict(warmup_epochs=120), dict(clip_grad_norm=0.0),
                                 dict(holdout_fraction=1.0)])
def test_a_schedule_that_makes_no_sense_is_refused_when_the_sampler_is_built(bad: dict) -> None:
    with pytest.raises(ValueError):
        get_sampler("nsnet", **bad)


def test_describe_says_what_a_reader_needs() -> None:
    text = get_sampler("nsnet").schedule().describe()
    assert text == ("SGD momentum 0.9, batch 64, lr 0.01 ×0.1 after epoch 50 and ×0.1 after epoch 75, 120 epochs, "
                    "gradient norm clipped at 5; every training video, final weights")
    early = get_sampler("ocsampler", early_stop=True).schedule().describe()
    assert "cosine to 0" in early and "clipped at 40" in early and "held-out early stopping" in early


def test_clipping_bounds_each_step_and_the_norms_are_recorded() -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    x, y = torch.randn(8, 4) * 100, torch.randn(8, 1) * 100
    before = model.weight.detach().clone()
    schedule = Schedule(epochs=1, batch_size=8, lr=1.0, momentum=0.0, clip_grad_norm=1e-3)
    fit = train_epochs(model, schedule=schedule, rows=8, seed=0,
                       loss=lambda rows: nn.functional.mse_loss(model(x[rows]), y[rows]),
                       epoch_inputs=lambda epoch, batches: ((b,) for b in batches), heldout_loss=None)
    assert fit.grad_norms[0] > 1.0  # recorded before clipping
    assert float((model.weight.detach() - before).norm()) <= 1e-3 + 1e-9  # lr 1 × a gradient of norm ≤ 1e-3


def test_the_paper_schedule_trains_on_every_video_and_keeps_the_final_weights() -> None:
    bank = salient_bank(40, seed=0)
    bank = dataclasses.replace(bank, video_ids=tuple(f"v{i}" for i in range(40)))
    sampler = get_sampler("scsampler", epochs=3, batch_size=8, seed=0)
    seen: list[set[str]] = []
    original = sampler.training_tensors

    def spy(train, *, draws):
        seen.append(set(train.video_ids))
        return original(train, draws=draws)

    sampler.training_tensors = spy
    sampler.fit(bank)
    assert seen == [set(bank.video_ids)] * 3  # every video, every epoch; nothing held out
    fit = sampler.training
    assert fit.epochs == 3 and fit.best_epoch == 2 and fit.heldout == []
    assert all(math.isfinite(g) for g in fit.grad_norms) and len(fit.grad_norms) == 3


def test_one_cycle_steps_per_batch_and_nesterov_reaches_the_optimiser() -> None:
    s = Schedule(epochs=4, batch_size=8, lr=0.1, nesterov=True, lr_decay="one_cycle", weight_decay=1e-4)
    opt = s.optimiser(nn.Linear(2, 1).parameters())
    assert opt.defaults["nesterov"] and opt.defaults["weight_decay"] == 1e-4
    curve = s.scheduler(opt, steps_per_epoch=5)
    assert s.per_step and isinstance(curve, torch.optim.lr_scheduler.OneCycleLR) and curve.total_steps == 20
    assert "one-cycle" in s.describe() and "Nesterov momentum" in s.describe()
    assert f"{ONE_CYCLE_WARMUP:.0%}" in s.describe()
    with pytest.raises(ValueError, match="one_cycle"):
        Schedule(epochs=4, batch_size=8, lr=0.1, lr_decay="one_cycle", milestones=(0.5,))
    with pytest.raises(ValueError, match="nesterov"):
        Schedule(epochs=4, batch_size=8, lr=0.1, nesterov=True, momentum=0.0)


# -- what a run's config sets: the backbones' schedule and the samplers' overrides, carried to their trainers


class _Stop(Exception):
    """Raised by a stand-in trainer once it has what it was handed."""


def _fake_splits(pipe: pipeline.Pipeline, *, videos: int = 8, classes: int = 2) -> None:
    """Decoded splits of a few blank videos in ``pipe``'s memo, so that no video is generated nor decoded."""
    t, res = pipe.cfg.data.frames, pipe.cfg.recognizer.res
    for subset in ("train", "val"):
        pipe._memo[("split", subset)] = Split(
            key=f"fake {subset}", frames=TensorFrames(torch.zeros(videos, t, 3, res, res, dtype=torch.uint8)),
            targets=torch.eye(classes)[torch.arange(videos) % classes],
            salient=torch.zeros(videos, t, dtype=torch.bool), video_ids=[f"v{i}" for i in range(videos)], skipped=[])


@pytest.mark.parametrize("role", ["recognizer", "fem"])
def test_the_backbone_schedule_carries_every_setting_of_the_config_to_the_trainer(tmp_path, monkeypatch, role):
    cfg = build_config("tiny", **{role: {"lr": 0.0123, "epochs": 5, "batch": 4}}, patience=2, holdout_fraction=0.25)
    schedule = backbone_schedule(cfg, role)
    assert (schedule.lr, schedule.epochs, schedule.batch_size) == (0.0123, 5, 4)
    assert (schedule.early_stop, schedule.patience, schedule.holdout_fraction) == (True, 2, 0.25)
    assert (schedule.lr_decay, schedule.nesterov, schedule.momentum, schedule.weight_decay) == \
        ("one_cycle", True, 0.9, 1e-4)
    handed = {}

    def trainer(model, frames, labels, **kwargs):
        handed.update(kwargs)
        raise _Stop

    monkeypatch.setattr(videos, "train_frame_classifier", trainer)
    pipe = pipeline.Pipeline(cfg, cache_dir=tmp_path, log=StageLog(quiet=True))
    _fake_splits(pipe)
    with pytest.raises(_Stop):
        pipe.source.outputs(role, getattr(cfg, role).arch)
    assert handed["schedule"] == schedule
    held = handed["heldout"]
    assert held.dtype == torch.bool and held.sum() == 2  # round(0.25 · 8 videos)


def test_the_runs_sampler_overrides_reach_every_trainable_sampler_below_its_options(tmp_path, monkeypatch):
    cfg = build_config("tiny", sampling={"epochs": 7, "lr": 0.05, "early_stop": True}, patience=4,
                       holdout_fraction=0.2)
    assert sampler_override(cfg) == ScheduleOverride(epochs=7, lr=0.05, early_stop=True, patience=4,
                                                     holdout_fraction=0.2)
    assert sampler_override(build_config()).changes() == {}  # each sampler keeps its paper's
    built = []

    def recording(name: str):
        cls = get_sampler_class(name)

        class Recording(cls):
            def __init__(self, **fields) -> None:
                super().__init__(**fields)
                built.append(self)

        return Recording

    def no_banks(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(pipeline, "get_sampler_class", recording)
    monkeypatch.setattr(pipeline.Pipeline, "features", no_banks)
    pipe = pipeline.Pipeline(cfg, cache_dir=tmp_path, log=StageLog(quiet=True))
    for name, options in (("scsampler", {}), ("nsnet", {"lr": 0.5}), ("uniform", {})):
        with pytest.raises(_Stop):
            pipe._fit(name, None, None, {}, options, fit=0)
    scsampler, nsnet, uniform = (s.schedule() if hasattr(s, "schedule") else s for s in built)
    assert (scsampler.epochs, scsampler.lr, scsampler.batch_size) == (7, 0.05, 48)  # its paper's batch
    assert (scsampler.early_stop, scsampler.patience, scsampler.holdout_fraction) == (True, 4, 0.2)
    assert (nsnet.epochs, nsnet.lr) == (7, 0.5)  # a sampler's own option wins over the run's
    assert not hasattr(uniform, "epochs")  # nothing to train: no schedule handed to it
