"""Training schedules (samplerbench.core.sgd.Schedule): each trainable sampler's paper schedule by default, the
learning-rate curves, gradient clipping, and the held-out rule as an option."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from banks import salient_bank
from torch import nn

from samplerbench.core.sgd import Schedule, train_epochs
from samplerbench.samplers import get_sampler

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
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    fit = train_epochs(model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0), rows=8, batch_size=8,
                       seed=0, loss=lambda rows: nn.functional.mse_loss(model(x[rows]), y[rows]),
                       epoch_inputs=lambda epoch, batches: ((b,) for b in batches), heldout_loss=None,
                       max_epochs=1, patience=1, step_schedule=False, clip_grad_norm=1e-3)
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
