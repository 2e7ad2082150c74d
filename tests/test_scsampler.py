"""SCSampler as AR-Net's ``--real_scsampler``: its two losses worked by hand on two-frame videos, AR-Net's own
ranking-loss example, and saliency = the largest class logit."""

from __future__ import annotations

import math

import pytest
import torch

from samplerbench.samplers import FrameFeatures, get_sampler
from samplerbench.samplers.scsampler import saliency_rank_loss, time_averaged_ce


def test_cross_entropy_of_the_time_averaged_logits():
    # frames' logits [2, 0] and [0, 0]: their mean [1, 0]; class 0 -> -log(e / (e + 1)) = log(1 + 1/e)
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])
    assert time_averaged_ce(logits, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(math.log(1 + math.exp(-1)))
    # not the mean of per-frame losses: (log(1 + e^-2) + log 2) / 2 = 0.4100
    assert time_averaged_ce(logits, torch.tensor([[1.0, 0.0]])).item() != pytest.approx(0.4100, abs=1e-3)


def test_ranking_loss_on_two_frames():
    """One pair (frame 0, frame 1), ground truth class 1. The recognizer prefers frame 1 (0.5 < 2.0), so the
    target is -1 and the loss is max(0, lite_0 - lite_1 + margin)."""
    real = torch.tensor([[[9.0, 0.5], [-9.0, 2.0]]])  # class 0's logits must not matter
    lite = torch.tensor([[[0.0, 0.3], [5.0, 0.1]]])
    labels = torch.tensor([[0.0, 1.0]])
    assert saliency_rank_loss(lite, real, labels, margin=0.0).item() == pytest.approx(0.2)
    assert saliency_rank_loss(lite, real, labels, margin=1.0).item() == pytest.approx(1.2)
    agreeing = torch.tensor([[[0.0, 0.1], [0.0, 0.3]]])  # lite also prefers frame 1: no loss
    assert saliency_rank_loss(agreeing, real, labels, margin=0.0).item() == 0.0
    tie = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])  # a tie is a -1 target, as in AR-Net
    assert saliency_rank_loss(lite, tie, labels, margin=0.0).item() == pytest.approx(0.2)
    one_frame = saliency_rank_loss(lite[:, :1].requires_grad_(), real[:, :1], labels, margin=0.0)
    assert one_frame.item() == 0.0 and one_frame.requires_grad


def test_ranking_loss_reproduces_ar_nets_own_example():
    """``ops/sal_rank_loss.py``'s __main__: B=2, T=3, K=4 classes, targets 3 and 2; AR-Net prints the expected
    0.0167 (= 0.1/6) at margin 0 and 0.9333 (= 5.6/6) at margin 1."""
    a = torch.tensor([[[0.1, 0.2, 0.3, 0.4], [0.5, 0.2, 0.1, 0.2], [0.3, 0.3, 0.3, 0.1]],
                      [[0.3, 0.1, 0.1, 0.1], [0.2, 0.2, 0.5, 0.3], [0.4, 0.4, 0.3, 0.1]]])
    b = torch.tensor([[[0.0, 0.0, 0.0, 0.3], [0.0, 0.0, 0.0, 0.2], [0.0, 0.0, 0.0, 0.3]],
                      [[0.0, 0.0, 0.1, 0.0], [0.0, 0.0, 0.3, 0.0], [0.0, 0.0, 0.2, 0.0]]])
    labels = torch.nn.functional.one_hot(torch.tensor([3, 2]), 4).float()
    assert saliency_rank_loss(a, a, labels, margin=0.0).item() == pytest.approx(0.0)
    assert saliency_rank_loss(b, a, labels, margin=0.0).item() == pytest.approx(0.1 / 6)
    assert saliency_rank_loss(b, a, labels, margin=1.0).item() == pytest.approx(5.6 / 6)


@pytest.mark.parametrize("name", ["scsampler", "scsampler_rank"])
def test_saliency_is_the_largest_class_logit(name):
    gen = torch.Generator().manual_seed(0)
    bank = FrameFeatures(fem=torch.randn(12, 4, 6, generator=gen), num_classes=3,
                     labels=torch.nn.functional.one_hot(torch.arange(12) % 3, 3).float(),
                     rec_logits=torch.randn(12, 4, 3, generator=gen), rec_feats=torch.randn(12, 4, 5, generator=gen))
    sampler = get_sampler(name, epochs=2, batch_size=4, seed=0)
    sampler.fit(bank)
    net = sampler.fitted_net()
    assert isinstance(net.fc, torch.nn.Linear) and net.fc.out_features == 3  # C logits, also for the rank loss
    with torch.no_grad():
        assert torch.allclose(sampler.scores(bank), net.eval()(bank.fem).amax(dim=2))
