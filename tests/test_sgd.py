"""The one training rule (samplerbench.core.sgd): the held-out slice of the training videos, early stopping on its
loss with the best epoch's weights restored, and a sampler's fit that never trains on the slice."""

from __future__ import annotations

import dataclasses

import torch
from banks import salient_bank
from torch import nn

from samplerbench.core.sgd import Schedule, heldout_videos, soft_targets, train_epochs
from samplerbench.samplers import get_sampler
from samplerbench.samplers.training import HELDOUT_EPOCH, epoch_generator

IDS = [f"v{i // 2}" for i in range(200)]  # 100 videos, two rows (temporal-shift views) each


def test_heldout_slice_is_deterministic_whole_videos_and_the_asked_share():
    held = heldout_videos(IDS, fraction=0.15, seed=0)
    assert torch.equal(held, heldout_videos(IDS, fraction=0.15, seed=0))
    assert int(held.sum()) == 30  # 15 of the 100 videos, both rows of each
    assert torch.equal(held[0::2], held[1::2])  # a video's views fall on one side
    assert not torch.equal(held, heldout_videos(IDS, fraction=0.15, seed=1))  # the seed picks another slice


def test_heldout_slice_follows_the_video_not_its_row():
    order = torch.randperm(len(IDS), generator=torch.Generator().manual_seed(0))
    shuffled = [IDS[i] for i in order]
    expected = heldout_videos(IDS, fraction=0.15, seed=0)[order]
    assert torch.equal(heldout_videos(shuffled, fraction=0.15, seed=0), expected)


def test_heldout_slice_keeps_a_video_on_each_side_or_holds_none():
    assert heldout_videos(["a", "b"], fraction=0.01, seed=0).sum() == 1
    assert heldout_videos(["a", "b"], fraction=0.5, seed=0).sum() == 1
    assert heldout_videos(["a", "a"], fraction=0.5, seed=0).sum() == 0  # one video: nothing to hold out


def test_soft_targets_share_one_rule():
    t = soft_targets(torch.tensor([[1.0, 0, 1.0], [0.0, 0, 0]]))
    assert torch.equal(t, torch.tensor([[0.5, 0, 0.5], [0.0, 0, 0]]))  # a row without labels stays zeros


def _scripted(heldout: list[float], *, patience: int, max_epochs: int):
    """Train a linear model with the held-out losses ``heldout`` (one per epoch); the weights after each epoch."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    after: list[torch.Tensor] = []

    def heldout_loss() -> tuple[float, int]:
        after.append(model.weight.detach().clone())
        return heldout[len(after) - 1] * 4, 4

    schedule = Schedule(epochs=max_epochs, batch_size=4, lr=0.1, momentum=0.0, early_stop=True, patience=patience)
    fit = train_epochs(model, schedule=schedule, rows=16, seed=0,
                       loss=lambda rows: nn.functional.mse_loss(model(x[rows]), y[rows]),
                       epoch_inputs=lambda epoch, batches: ((b,) for b in batches), heldout_loss=heldout_loss)
    return fit, model, after


def test_training_stops_when_the_heldout_loss_rises_and_keeps_the_best_weights():
    """12 epochs at most: the first 6 are warm-up, whose losses (0.5 included) neither stop nor are kept."""
    heldout = [0.5, 9, 9, 9, 9, 9, 3.0, 2.0, 1.0, 1.5, 2.5, 0.1]
    fit, model, after = _scripted(heldout, patience=2, max_epochs=12)
    assert fit.epochs == 11 and fit.heldout == heldout[:11]  # 2 epochs without improving on 1.0
    assert fit.best_epoch == 8 and fit.summary() == {"epochs": 11, "best_epoch": 9, "heldout_loss": 1.0}
    assert torch.equal(model.weight, after[8]) and not torch.equal(model.weight, after[-1])
    assert not model.training


def test_training_runs_to_the_cap_while_the_heldout_loss_falls():
    fit, model, after = _scripted([5.0 - i for i in range(5)], patience=1, max_epochs=5)
    assert fit.epochs == 5 and fit.best_epoch == 4 and torch.equal(model.weight, after[-1])


def test_a_tie_is_no_improvement():
    fit, _, _ = _scripted([9.0, 9.0, 9.0, 1.0, 1.0, 0.5], patience=1, max_epochs=6)
    assert fit.epochs == 5 and fit.best_epoch == 3


def test_warmup_losses_never_stop_training():
    fit, _, _ = _scripted([1.0, 2.0, 3.0, 4.0, 5.0, 4.5, 4.0, 3.5], patience=1, max_epochs=8)
    assert fit.epochs == 8 and fit.best_epoch == 7


def test_sampler_never_trains_on_its_heldout_videos():
    bank = salient_bank(60, seed=0)
    bank = dataclasses.replace(bank, video_ids=tuple(f"video{i}" for i in range(60)))
    held = {v for v, h in zip(bank.video_ids, heldout_videos(bank.video_ids, fraction=0.2, seed=3), strict=True)
            if h}
    sampler = get_sampler("scsampler", epochs=6, patience=2, holdout_fraction=0.2, batch_size=8, seed=3,
                          early_stop=True)
    seen: list[tuple[bool, set[str]]] = []
    original = sampler.training_tensors

    def spy(train, *, draws):
        fixed = torch.equal(draws.get_state(), epoch_generator(3, HELDOUT_EPOCH).get_state())
        seen.append((fixed, set(train.video_ids)))
        return original(train, draws=draws)

    sampler.training_tensors = spy
    sampler.fit(bank)
    assert len(held) == 12
    heldout_calls = [ids for fixed, ids in seen if fixed]
    assert heldout_calls == [held]  # measured on a fixed draw, every epoch from the same tensors
    assert all(not ids & held for fixed, ids in seen if not fixed)
    assert len(seen) == 1 + sampler.training.epochs and 1 <= sampler.training.epochs <= 6
