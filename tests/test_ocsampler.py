"""OCSampler: the probability of a drawn set, the TSN baseline and the reward worked by hand, and learning on a
bank with obvious salient frames (it beats random there)."""

from __future__ import annotations

import math

import pytest
import torch
from banks import eval_view, salient_bank, video_map

from samplerbench.samplers import get_sampler
from samplerbench.samplers import ocsampler as oc
from samplerbench.samplers.ocsampler import confidence, set_log_prob, tsn_indices

pytestmark = pytest.mark.usefixtures("one_thread")


def test_probability_of_a_drawn_set_by_hand(monkeypatch):
    """π = [.5, .3, .2]. Frames {0, 1} drawn without replacement: .5 · .3/.5 + .3 · .5/.7 = .3 + .2143 (either
    order); the three pairs' probabilities sum to 1. Above the exact limit, the order drawn: .5 · .3/.5 = .3."""
    pi = torch.tensor([0.5, 0.3, 0.2])
    pair = set_log_prob(pi[[0, 1]][None]).exp().item()
    assert pair == pytest.approx(0.3 + 0.15 / 0.7)
    assert set_log_prob(pi[[1, 0]][None]).exp().item() == pytest.approx(pair)  # a set: order does not matter
    pairs = sum(set_log_prob(pi[list(s)][None]).exp().item() for s in ((0, 1), (0, 2), (1, 2)))
    assert pairs == pytest.approx(1.0)
    assert set_log_prob(pi[[2]][None]).item() == pytest.approx(math.log(0.2))
    monkeypatch.setattr(oc, "EXACT_ORDERS", 1)
    assert set_log_prob(pi[[0, 1]][None]).exp().item() == pytest.approx(0.3)
    assert set_log_prob(pi[[1, 0]][None]).exp().item() == pytest.approx(0.3 * 0.5 / 0.7)


def test_tsn_baseline_by_hand():
    # T = 8, K = 3: segments of 2 frames starting at 0, 3, 6; draws .1 .6 .9 -> frames 0, 4, 7
    assert tsn_indices(8, torch.tensor([[0.1, 0.6, 0.9]])).tolist() == [[0, 4, 7]]
    # T = 16, K = 5: 3-frame segments at linspace(0, 13, 5) = 0, 3.25, 6.5, 9.75, 13 -> 0, 3, 6, 9, 13
    assert tsn_indices(16, torch.zeros(1, 5)).tolist() == [[0, 3, 6, 9, 13]]
    assert tsn_indices(4, torch.full((1, 4), 0.99)).tolist() == [[0, 1, 2, 3]]


def test_reward_is_the_recognizers_top_probability_on_the_frames():
    # frames 0 and 1 say class 0 with probability .9, frames 2 and 3 are undecided
    logits = torch.tensor([[[math.log(9), 0.0]] * 2 + [[0.0, 0.0]] * 2])
    assert confidence(logits, torch.tensor([[0, 1]])).item() == pytest.approx(0.9)
    assert confidence(logits, torch.tensor([[2, 3]])).item() == pytest.approx(0.5)
    assert confidence(logits, torch.tensor([[0, 2]])).item() == pytest.approx(0.7)


def test_ocsampler_learns_the_salient_frames_and_beats_random():
    train, held_out = salient_bank(160, seed=0), salient_bank(80, seed=1)
    sampler = get_sampler("ocsampler", train_budget=2, epochs=10, batch_size=32, lr=0.05, seed=0)
    sampler.fit(train)
    selected = sampler.select(eval_view(held_out), 2)
    salient = held_out.rec_logits.argmax(dim=2) == held_out.labels.argmax(dim=1, keepdim=True)
    assert salient.gather(1, selected).float().mean() > 0.9
    ocsampler = video_map(held_out, selected)
    rand = video_map(held_out, get_sampler("random", seed=0).select(eval_view(held_out), 2))
    assert ocsampler > rand + 0.2, (ocsampler, rand)
    scores = sampler.scores(eval_view(held_out))
    assert torch.allclose(scores.sum(dim=1), torch.ones(80))  # π: a distribution over the T frames
