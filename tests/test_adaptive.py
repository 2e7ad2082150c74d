"""Adaptive samplers: per-video budgets scored on the frames each video used, their cost averaged over what each video
used, FrameExit's order and labels as its code and this suite's reading say, exit rules that read only what they
have read, and the labels kept from every sampler that reads the recognizer."""

from __future__ import annotations

import math

import pytest
import torch
from rows import main_row

from samplerbench.config import build_config
from samplerbench.core.stagelog import StageLog
from samplerbench.measures.cost import backbone_gflops, budgeted_gflops
from samplerbench.measures.metrics import salient_hit_rate, video_scores
from samplerbench.samplers import AdaptiveSampler, FrameFeatures, get_sampler, get_sampler_class, list_samplers
from samplerbench.samplers.adaptive import coarse_to_fine_order, exit_counts
from samplerbench.samplers.frameexit import exit_labels, gate_gflops
from samplerbench.stages.pipeline import Pipeline
from samplerbench.stages.source import Outputs, Split
from samplerbench.stages.throughput import typical_rows
from samplerbench.tables.main import BY_FRAMES, BY_GFLOPS, nearest_budget, stand_ins

pytestmark = pytest.mark.usefixtures("one_thread")

N, T, C, F = 40, 8, 4, 6
AGGREGATIONS = ("mean_softmax", "mean_logits", "max_features")
ADAPTIVE = [n for n in list_samplers() if issubclass(get_sampler_class(n), AdaptiveSampler)]
TRAINING = dict(epochs=3, batch_size=16, seed=0)


def bank(n: int = N, t: int = T, *, seed: int = 0) -> FrameFeatures:
    """Videos of one class each whose frames show it with a strength of their own: some videos are easy from the
    first frame, others never."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.nn.functional.one_hot(torch.arange(n) % C, C).float()
    strength = torch.rand(n, t, 1, generator=gen) * torch.linspace(0, 6, n).view(n, 1, 1)
    logits = torch.randn(n, t, C, generator=gen) + strength * labels[:, None]
    signal = torch.nn.functional.one_hot(torch.arange(n) % C, F).float()  # the class in the recognizer's features
    feats = torch.randn(n, t, F, generator=gen) + strength * signal[:, None]
    return FrameFeatures(fem=torch.rand(n, t, 3, generator=gen), num_classes=C, labels=labels, rec_logits=logits,
                         rec_feats=feats, video_ids=tuple(f"v{i}" for i in range(n)))


def head() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return torch.randn(C, F, generator=gen), torch.randn(C, generator=gen)


def fitted(name: str) -> AdaptiveSampler:
    sampler = get_sampler(name, **(TRAINING if get_sampler_class(name).trainable else {}))
    sampler.fit(bank(seed=1))
    return sampler


def test_without_counts_every_aggregation_is_the_fixed_k_computation():
    """The fixed-K samplers' scores are bit for bit what they were: no count, no mask, the same arithmetic."""
    b, weight_bias = bank(), head()
    index = torch.sort(torch.rand(N, T, generator=torch.Generator().manual_seed(2)).argsort(dim=1)[:, :3]).values

    def picked(x: torch.Tensor) -> torch.Tensor:
        return x.gather(1, index.unsqueeze(2).expand(-1, -1, x.shape[2]))

    weight, bias = weight_bias
    expected = {
        "mean_softmax": torch.softmax(picked(b.rec_logits), dim=-1, dtype=torch.float32).mean(dim=1),
        "mean_logits": torch.softmax(picked(b.rec_logits).float().mean(dim=1), dim=-1),
        "max_features": torch.softmax(picked(b.rec_feats).float().amax(dim=1) @ weight.T + bias, dim=-1),
    }
    for aggregation, scores in expected.items():
        out = video_scores(b.rec_logits, index, aggregation=aggregation, frame_feats=b.rec_feats, head=weight_bias)
        assert torch.equal(out, scores), aggregation
    salient = torch.rand(N, T, generator=torch.Generator().manual_seed(3)) > 0.5
    assert salient_hit_rate(salient, index) == salient.gather(1, index).float().mean().item() * 100.0


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_a_per_video_budget_scores_each_video_on_its_first_count_frames(aggregation):
    b, weight_bias = bank(), head()
    gen = torch.Generator().manual_seed(4)
    order = torch.rand(N, T, generator=gen).argsort(dim=1)
    count = torch.randint(1, T + 1, (N,), generator=gen)
    out = video_scores(b.rec_logits, order, aggregation=aggregation, count=count, frame_feats=b.rec_feats,
                       head=weight_bias)
    for i in range(N):
        alone = video_scores(b.rec_logits[i:i + 1], order[i:i + 1, :count[i]], aggregation=aggregation,
                             frame_feats=b.rec_feats[i:i + 1], head=weight_bias)
        torch.testing.assert_close(out[i], alone[0], rtol=1e-6, atol=1e-7)
    unread = torch.arange(T) >= count[:, None]  # positions in the order past each video's count
    rows = torch.arange(N)[:, None].expand(N, T)[unread]
    logits, feats = b.rec_logits.clone(), b.rec_feats.clone()
    logits[rows, order[unread]] = 50.0
    feats[rows, order[unread]] = 50.0
    again = video_scores(logits, order, aggregation=aggregation, count=count, frame_feats=feats, head=weight_bias)
    assert torch.equal(again, out), "the frames past a video's count are padding, never read"


def test_the_salient_hit_rate_counts_the_frames_used():
    salient = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0]], dtype=torch.bool)
    index = torch.tensor([[0, 1, 2, 3], [1, 0, 2, 3]])
    # used: video 0 frame 0 (salient); video 1 frames 1, 0, 2 (salient, not, salient): 3 of 4
    assert salient_hit_rate(salient, index, torch.tensor([1, 3])) == pytest.approx(75.0)
    assert salient_hit_rate(salient, index) == pytest.approx(50.0)


class _Budgeted:
    """What budgeted_gflops reads of an adaptive sampler: whether it uses the FEM, and its own cost per video."""

    def __init__(self, *, uses_fem: bool) -> None:
        self.uses_fem = uses_fem

    def head_gflops(self, count: torch.Tensor, frames: int) -> torch.Tensor:
        return 0.25 * count.double()


def test_gflops_per_video_is_what_each_video_used_averaged():
    rec, fem = ("resnet18", 32), ("mobilenet_v2", 32)
    per_frame, scan = backbone_gflops(*rec), backbone_gflops(*fem)
    count = torch.tensor([1, 3, 4])
    used = budgeted_gflops(_Budgeted(uses_fem=False), frames=4, count=count, rec=rec, fem=fem)
    assert used.tolist() == pytest.approx([per_frame + 0.25, 3 * per_frame + 0.75, 4 * per_frame + 1.0])
    assert float(used.mean()) == pytest.approx(8 / 3 * (per_frame + 0.25))
    with_fem = budgeted_gflops(_Budgeted(uses_fem=True), frames=4, count=count, rec=rec, fem=fem)
    assert (with_fem - used).tolist() == pytest.approx([4 * scan] * 3)


def test_an_adaptive_sampler_stands_at_a_budget_only_with_a_point_nearest_that_budget():
    targets = {1: 0.2, 2: 0.3, 4: 0.5, 8: 0.9}
    points = []
    for value, cost in [(0.1, 0.21), (0.2, 0.24), (0.3, 0.85), (0.4, 1.0), (0.5, 1.5)]:
        point = main_row("a", 0, knob="k", knob_value=value, gflops_per_video=cost, frames_mean=cost * 10)
        point.budget_K = nearest_budget(cost, targets)
        points.append(point)
    assert [p.budget_K for p in points] == [1, 1, 8, 8, 8]
    assert nearest_budget(2.5, {2: 2.0, 3: 3.0}) == 2  # a tie: the smaller budget
    stand = {k: p.knob_value for k, p in stand_ins(points, targets, BY_GFLOPS).items()}
    assert stand == {1: 0.1, 8: 0.3}  # nothing at 2 or 4: the dearer points are nearer 8's cost
    assert {k: p.knob_value for k, p in stand_ins(points, {1: 2.0, 2: 8.0}, BY_FRAMES).items()} == {1: 0.1}


def test_a_timed_batch_uses_the_frames_of_the_whole_split_not_of_its_first_rows():
    count = torch.tensor([1] * 60 + [16] * 20 + [4] * 20)  # the first rows all exit at once
    rows = typical_rows(count, 10)
    assert rows.tolist() == sorted(rows.tolist()) and len(set(rows.tolist())) == 10
    assert float(count[rows].double().mean()) == float(count.double().mean()) == 4.6
    assert count[:10].double().mean() == 1.0  # what the first batch would have timed
    assert typical_rows(count, 200).tolist() == list(range(100))


def test_frameexit_runs_one_gate_per_step_from_the_second_to_the_last_but_one():
    sampler = fitted("frameexit")
    gates = sampler.head_gflops(torch.arange(1, T + 1), T) / gate_gflops(F)
    assert gates.tolist() == pytest.approx([0, 1, 2, 3, 4, 5, 6, 6])  # step 1 thresholds, step T always exits
    linear = 2 * (F * 128 + 128 * 64) + 128  # two embeddings and the output layer, multiply-adds
    assert linear <= gate_gflops(F) * 1e9 < 1.1 * linear


def test_the_coarse_to_fine_order_is_the_official_codes_for_ten_frames():
    assert coarse_to_fine_order(10).tolist() == [5, 0, 9, 2, 7, 4, 6, 3, 8, 1]  # activitynet_inference_2d.yml
    for t in range(1, 40):
        order = coarse_to_fine_order(t).tolist()
        assert sorted(order) == list(range(t))
        if t >= 3:
            assert order[:3] == [t // 2, 0, t - 1]  # the middle, the first, the last


def test_confidence_exit_stops_at_the_first_confident_step():
    """One video, two classes, read in the order [2, 0, 3, 1]: class 0's probability 0.6, 0.9, 0.9, 0.5 by step, a
    running mean of 0.6, 0.75, 0.8, 0.725."""
    p = torch.tensor([0.9, 0.5, 0.6, 0.9])  # frames 0..3
    logits = torch.stack([(p / (1 - p)).log(), torch.zeros(4)], dim=1).unsqueeze(0)
    video = FrameFeatures(fem=torch.zeros(1, 4, 1), num_classes=2, rec_logits=logits, rec_feats=torch.zeros(1, 4, 1))
    sampler = get_sampler("confidence_exit")
    assert sampler.order(video).tolist() == [[2, 0, 3, 1]]
    for tau, steps in ((0.55, 1), (0.7, 2), (0.78, 3), (0.85, 4)):
        assert sampler.budgeted(video, tau).count.tolist() == [steps], tau


@pytest.mark.parametrize("name", ADAPTIVE)
def test_a_higher_knob_value_never_stops_a_video_earlier(name):
    sampler, b = fitted(name), bank(seed=5)
    counts = torch.stack([sampler.budgeted(b, v).count for v in sampler.sweep])
    assert bool((counts[1:] >= counts[:-1]).all())
    assert counts[-1].float().mean() > counts[0].float().mean()
    assert exit_counts(torch.tensor([[0.2, 0.9, 0.1]]), 0.5).tolist() == [2]
    assert exit_counts(torch.tensor([[0.2, 0.3, 0.1]]), 0.5).tolist() == [3]  # the last step always stops


@pytest.mark.parametrize("name", ADAPTIVE)
def test_an_exit_reads_only_the_frames_already_read(name):
    """Whatever the recognizer says of the frames a video never reached, it stops where it stopped."""
    sampler, b = fitted(name), bank(seed=6)
    gen = torch.Generator().manual_seed(8)
    for value in sampler.sweep:
        chosen = sampler.budgeted(b, value)
        unread = ~chosen.used()
        rows = torch.arange(N)[:, None].expand(N, T)[unread]
        logits, feats = b.rec_logits.clone(), b.rec_feats.clone()
        logits[rows, chosen.index[unread]] = torch.randn(int(unread.sum()), C, generator=gen) * 10
        feats[rows, chosen.index[unread]] = torch.randn(int(unread.sum()), F, generator=gen) * 10
        other = FrameFeatures(fem=b.fem, num_classes=C, rec_logits=logits, rec_feats=feats)
        assert torch.equal(sampler.budgeted(other, value).count, chosen.count), value


def test_frameexit_labels_exit_where_the_running_loss_is_below_epsilon():
    """The video of the confidence test, of class 0: the running cross-entropy at steps 2 and 3 (the gated ones) is
    -log 0.75 = 0.288 and -log 0.8 = 0.223."""
    p = torch.tensor([0.9, 0.5, 0.6, 0.9])
    logits = torch.stack([(p / (1 - p)).log(), torch.zeros(4)], dim=1).unsqueeze(0)
    labels, order = torch.tensor([[1.0, 0.0]]), torch.tensor([[2, 0, 3, 1]])
    assert exit_labels(logits, labels, order, beta=0.25, rule="constant").tolist() == [[False, True]]
    # ε_t = β·exp(t/2): β = 0.1 gives 0.272 and 0.448; β = 0.11 gives 0.299 and 0.493
    assert exit_labels(logits, labels, order, beta=0.1, rule="exp").tolist() == [[False, True]]
    assert exit_labels(logits, labels, order, beta=0.11, rule="exp").tolist() == [[True, True]]
    assert math.isclose(0.1 * math.exp(1.0), 0.2718, abs_tol=1e-4)


class _Source:
    """A feature source of N videos on each split, for :meth:`Pipeline.features`."""

    def split(self, subset: str) -> Split:
        return Split(key=subset, frames=None, targets=torch.eye(C)[torch.arange(N) % C],
                     salient=torch.zeros(N, T, dtype=torch.bool), video_ids=[f"{subset}{i}" for i in range(N)],
                     skipped=[])

    def motion(self, subset: str) -> torch.Tensor:
        return torch.zeros(N, T)


def test_labels_never_reach_a_sampler_that_reads_the_recognizer(tmp_path):
    pipe = Pipeline(build_config("tiny"), cache_dir=tmp_path, log=StageLog(quiet=True))
    pipe.source = _Source()
    b = bank()
    outputs = Outputs(key="k", name="n", arch="a", model=None, train_feats=b.rec_feats, train_logits=b.rec_logits,
                      val_feats=b.rec_feats, val_logits=b.rec_logits, training=None)
    for name in list_samplers():
        cls = get_sampler_class(name)
        train, val = pipe.features(cls, fem=outputs, rec=outputs)
        assert train.labels is not None and train.rec_logits is not None
        assert (val.labels is not None) == cls.uses_labels_at_eval, name
        assert (val.rec_logits is not None) == (val.rec_feats is not None) == (
            cls.uses_labels_at_eval or cls.reads_recognizer), name
    for name in ADAPTIVE:
        assert get_sampler_class(name).reads_recognizer and not get_sampler_class(name).uses_labels_at_eval
