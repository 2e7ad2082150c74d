"""Metrics: hand-worked examples, and equality with scikit-learn on random data with ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from samplerbench.core.errors import UserError
from samplerbench.measures.metrics import (
    anet_average_precision,
    anet_interpolated_ap,
    frame_top1,
    hit_at_k,
    label_agreement,
    mean_average_precision,
    mean_average_precision_anet,
    per_class_average_precision,
    salient_hit_rate,
    top1_accuracy,
    video_scores,
)


def _sklearn_map(scores: np.ndarray, targets: np.ndarray) -> float:
    present = [c for c in range(targets.shape[1]) if targets[:, c].any()]
    return float(np.mean([average_precision_score(targets[:, c], scores[:, c]) for c in present]) * 100)


def test_video_scores_is_mean_softmax_of_selected_frames() -> None:
    logits = torch.randn(3, 4, 5).transpose(1, 2)  # [3, 5 frames, 4 classes], not contiguous
    index = torch.tensor([[0, 2], [4, 4], [1, 3]])
    expected = torch.stack([torch.softmax(logits[b, index[b]], dim=-1).mean(0) for b in range(3)])
    torch.testing.assert_close(video_scores(logits, index), expected)


def test_video_scores_hand_worked() -> None:
    # Frame 0: logits [0, 0] -> softmax [.5, .5]; frame 1: [ln 3, 0] -> [.75, .25]. Mean: [.625, .375].
    logits = torch.tensor([[[0.0, 0.0], [np.log(3.0), 0.0], [9.0, -9.0]]])
    out = video_scores(logits, torch.tensor([[0, 1]]))
    torch.testing.assert_close(out, torch.tensor([[0.625, 0.375]]))


def test_aggregations_hand_worked() -> None:
    """Two kept frames, two classes. Logits [2, 0] and [0, 0]; pooled features [1, 0] and [0, 3] under an
    identity head (so the logits would be [1, 0] and [0, 3])."""
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0], [9.0, 9.0]]])
    feats = torch.tensor([[[1.0, 0.0], [0.0, 3.0], [9.0, 9.0]]])
    head = (torch.eye(2), torch.zeros(2))
    index = torch.tensor([[0, 1]])
    e = np.e
    # mean of softmax: ([e²/(e²+1), 1/(e²+1)] + [.5, .5]) / 2
    mean_softmax = [(e**2 / (e**2 + 1) + 0.5) / 2, (1 / (e**2 + 1) + 0.5) / 2]
    # softmax of the mean logit [1, 0] (AR-Net's combine_logits)
    mean_logits = [e / (e + 1), 1 / (e + 1)]
    # head on the element-wise max [1, 3] of the features (OCSampler's / FrameExit's max consensus)
    max_features = [e / (e + e**3), e**3 / (e + e**3)]
    for aggregation, expected in (("mean_softmax", mean_softmax), ("mean_logits", mean_logits),
                                  ("max_features", max_features)):
        out = video_scores(logits, index, aggregation=aggregation, frame_feats=feats, head=head)
        torch.testing.assert_close(out, torch.tensor([expected]), msg=aggregation)
    assert torch.equal(video_scores(logits, index), video_scores(logits, index, aggregation="mean_softmax"))
    with pytest.raises(UserError, match="unknown aggregation 'median'; valid: mean_softmax, mean_logits, max_features"):
        video_scores(logits, index, aggregation="median")


def test_video_scores_half_precision_input_gives_float32() -> None:
    logits = torch.randn(2, 6, 5)
    index = torch.tensor([[0, 5], [2, 3]])
    out = video_scores(logits.half(), index)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, video_scores(logits, index), atol=2e-3, rtol=0)


def test_map_hand_worked_with_ties() -> None:
    # Class 0: ranking 0.9(+) 0.8(-) 0.7(+): AP = (1/1 + 2/3) / 2 = 5/6.
    # Class 1: all three tied at 0.5 with one positive: precision at the tie group's end = 1/3.
    # Class 2: no positive -> skipped.
    scores = np.array([[0.9, 0.5, 0.1], [0.8, 0.5, 0.2], [0.7, 0.5, 0.3]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    ap = per_class_average_precision(scores, targets)
    np.testing.assert_allclose(ap[:2], [5 / 6, 1 / 3])
    assert np.isnan(ap[2])
    assert mean_average_precision(scores, targets) == pytest.approx((5 / 6 + 1 / 3) / 2 * 100)


@pytest.mark.parametrize("levels", [None, 3, 10])
def test_map_equals_sklearn_on_random_data_with_ties(levels: int | None) -> None:
    rng = np.random.default_rng(levels or 0)
    scores = rng.random((300, 12))
    if levels is not None:  # coarse quantisation makes many ties, across positives and negatives
        scores = np.floor(scores * levels) / levels
    targets = (rng.random((300, 12)) < 0.15).astype(int)
    targets[:, 5] = 0  # one class without positives, skipped by both
    assert mean_average_precision(scores, targets) == pytest.approx(_sklearn_map(scores, targets), abs=1e-9)


def test_map_of_perfect_ranking_is_100() -> None:
    targets = np.eye(4, dtype=int)
    assert mean_average_precision(targets * 0.9 + 0.05, targets) == pytest.approx(100.0)


def test_anet_interpolated_ap_hand_worked() -> None:
    # Ranking + - + -, two positives: prec [1, .5, 2/3, .5], rec [.5, .5, 1, 1].
    # Envelope: [1, 2/3, 2/3, .5]; recall steps at ranks 1 and 3: 0.5 * 1 + 0.5 * 2/3 = 5/6.
    prec = np.array([1.0, 0.5, 2 / 3, 0.5])
    rec = np.array([0.5, 0.5, 1.0, 1.0])
    assert anet_interpolated_ap(prec, rec) == pytest.approx(5 / 6)


def test_anet_interpolation_credits_later_higher_precision() -> None:
    # Ranking - + + : prec [0, .5, 2/3], rec [0, .5, 1]. Envelope lifts the first positive to 2/3: AP = 2/3
    # (sklearn, uninterpolated, gives (1/2 + 2/3) / 2 = 7/12).
    scores, targets = np.array([0.9, 0.8, 0.7]), np.array([0, 1, 1])
    assert anet_average_precision(scores, targets) == pytest.approx(2 / 3)
    assert average_precision_score(targets, scores) == pytest.approx(7 / 12)


def test_anet_ties_are_ranked_stably_in_input_order() -> None:
    # All tied: the stable order is the input order. [+, -] -> 1.0; [-, +] -> envelope 0.5.
    assert anet_average_precision(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(1.0)
    assert anet_average_precision(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)


def test_mean_average_precision_anet_skips_empty_classes_and_bounds_sklearn() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random((200, 8))
    targets = (rng.random((200, 8)) < 0.2).astype(int)
    targets[:, 3] = 0
    anet = mean_average_precision_anet(scores, targets)
    per_class = [anet_average_precision(scores[:, c], targets[:, c]) for c in range(8) if c != 3]
    expected = np.mean(per_class) * 100
    assert anet == pytest.approx(expected)
    assert anet >= mean_average_precision(scores, targets)  # interpolation never lowers a precision


def test_top1_and_hit_at_k_hand_worked() -> None:
    scores = np.array(
        [
            [0.7, 0.2, 0.1],  # top-1 class 0 (label) -> hit
            [0.5, 0.3, 0.2],  # top-1 class 0, label 1 (2nd) -> miss at 1, hit at 2
            [0.4, 0.4, 0.2],  # tie at top: argmax picks class 0, label 1 -> miss at 1, hit at 2
            [0.6, 0.3, 0.1],  # multi-label {1, 2}: miss at 1, hit at 2
            [0.2, 0.3, 0.5],  # no label: always a miss
        ]
    )
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 0]])
    assert top1_accuracy(scores, targets) == pytest.approx(20.0)
    assert hit_at_k(scores, targets, k=1) == pytest.approx(20.0)
    assert hit_at_k(scores, targets, k=2) == pytest.approx(80.0)
    assert hit_at_k(scores, targets, k=3) == pytest.approx(80.0)


def test_salient_hit_rate_counts_every_video() -> None:
    salient = torch.tensor([[True, True, False, False], [False, False, False, False]])
    index = torch.tensor([[0, 2], [1, 3]])
    # Video 0: one of two selections inside the segment; video 1 has no segment: two misses. 1 / 4.
    assert salient_hit_rate(salient, index) == pytest.approx(25.0)


def test_frame_top1_counts_salient_frames_only():
    # 2 videos, T=3, C=2. Video 0 is class 0, video 1 class 1; frame argmaxes: [0, 1, 0] and [1, 1, 0].
    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]],
                           [[0.0, 2.0], [0.0, 2.0], [2.0, 0.0]]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    salient = torch.tensor([[True, True, False], [False, True, True]])
    # salient frames: v0f0 right, v0f1 wrong, v1f1 right, v1f2 wrong -> 2 of 4
    assert frame_top1(logits, targets, salient) == pytest.approx(50.0)
    # without annotations every frame counts: right are v0f0, v0f2, v1f0, v1f1 -> 4 of 6
    assert frame_top1(logits, targets, torch.zeros(2, 3, dtype=torch.bool)) == pytest.approx(400 / 6)


def test_frame_top1_multi_label_frame_is_right_on_any_label():
    logits = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    targets = torch.tensor([[1.0, 1.0, 0.0]])
    assert frame_top1(logits, targets, torch.tensor([[True, True]])) == pytest.approx(50.0)


def test_label_agreement_precision_and_recall():
    predicted = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1]])
    salient = torch.tensor([[True, False, False, True], [False, True, True, False]])
    # predicted salient: 5 frames, of which 3 annotated (v0f0, v1f1, v1f2); annotated: 4, of which 3 found
    precision, recall = label_agreement(predicted, salient)
    assert precision == pytest.approx(60.0)
    assert recall == pytest.approx(75.0)


def test_label_agreement_is_nan_without_annotations_or_predictions():
    assert all(np.isnan(v) for v in label_agreement(torch.ones(2, 3), torch.zeros(2, 3, dtype=torch.bool)))
    precision, recall = label_agreement(torch.zeros(1, 3), torch.tensor([[True, False, False]]))
    assert np.isnan(precision)
    assert recall == 0.0


def test_rank_correlation_per_video_and_a_smoothing_without_lag():
    from samplerbench.measures.metrics import rank_correlation, zero_phase_ema

    a = torch.tensor([[1.0, 2, 3, 4], [1.0, 2, 3, 4], [5.0, 5, 5, 5]])
    b = torch.tensor([[10.0, 20, 30, 40], [4.0, 3, 2, 1], [1.0, 2, 3, 4]])
    rho = rank_correlation(a, b)
    assert rho[:2].tolist() == pytest.approx([1.0, -1.0]) and np.isnan(rho[2])  # a constant row has no ranking
    ramp = np.linspace(0.0, 1.0, 16)
    smooth = zero_phase_ema(ramp)
    assert smooth[0] > 0 and smooth[-1] < 1  # both ends pulled inward: no one-sided start-up ramp
    assert smooth[8] == pytest.approx(1 - smooth[7])  # symmetric: no lag to one side
    bump = np.zeros(16)
    bump[8] = 1.0
    assert np.argmax(zero_phase_ema(bump)) == 8  # a peak stays where it is
