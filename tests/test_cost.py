"""Cost: fvcore counts with the attention handles against hand calculations and published backbone values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from samplerbench.measures.cost import (
    Timing,
    backbone_gflops,
    count_gflops,
    flop_analysis,
    measure_interleaved,
    measure_throughput,
    video_gflops,
)

D, HEADS, FFN, TOKENS = 64, 4, 64, 16


def _hand_layer_macs(tokens: int = TOKENS, width: int = D, ffn: int = FFN) -> int:
    """q/k/v/out projections + Q·Kᵀ and attn·V + the two FFN linears, per layer, batch 1."""
    return 4 * tokens * width**2 + 2 * tokens**2 * width + 2 * tokens * width * ffn


def _encoder(layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(D, HEADS, FFN, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class _SelfAttention(nn.Module):
    """``nn.MultiheadAttention`` called as self-attention, the way a sampler head would."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(D, HEADS, batch_first=True)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return self.attn(x, memory, memory, need_weights=False)[0]


class _Sdpa(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v)


class _FusedEncoderLayer(nn.Module):
    """Calls the fused inference kernel directly (fvcore's hooks keep the encoder layer off that path)."""

    def __init__(self, layer: nn.TransformerEncoderLayer) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer, attn = self.layer, self.layer.self_attn
        return torch._transformer_encoder_layer_fwd(
            x, attn.embed_dim, attn.num_heads, attn.in_proj_weight, attn.in_proj_bias,
            attn.out_proj.weight, attn.out_proj.bias, False, layer.norm_first, layer.norm1.eps,
            layer.norm1.weight, layer.norm1.bias, layer.norm2.weight, layer.norm2.bias,
            layer.linear1.weight, layer.linear1.bias, layer.linear2.weight, layer.linear2.bias, None, None,
        )  # fmt: skip


@pytest.mark.parametrize("layers", [1, 2])
def test_transformer_encoder_matches_hand_count_in_train_and_eval(layers: int) -> None:
    model, x = _encoder(layers), torch.randn(1, TOKENS, D)
    train = count_gflops(model.train(), (x,))
    evaluated = count_gflops(model.eval(), (x,))
    hand = layers * _hand_layer_macs() / 1e9
    assert train == pytest.approx(hand, rel=0.05)  # the rest is fvcore's layer-norm estimate
    assert evaluated == train  # the eval fast path is counted exactly like the training path


def test_encoder_attention_ops_are_all_handled() -> None:
    """Which attention op each mode traces to in this torch, and that none is left unsupported."""
    x = torch.randn(1, TOKENS, D)
    with torch.no_grad():  # the analysis traces lazily: one model per mode
        train = flop_analysis(_encoder(1).train(), (x,))
        evaluated = flop_analysis(_encoder(1).eval(), (x,))
        assert "scaled_dot_product_attention" in train.by_operator()
        fast_paths = {"_native_multi_head_attention", "_transformer_encoder_layer_fwd"}
        assert fast_paths & set(evaluated.by_operator())
        assert not train.unsupported_ops() and not evaluated.unsupported_ops()


def test_fused_encoder_layer_kernel_counts_like_the_unfused_layer() -> None:
    layer = nn.TransformerEncoderLayer(D, HEADS, FFN, dropout=0.0, batch_first=True).eval()
    x = torch.randn(2, TOKENS, D)
    fused = _FusedEncoderLayer(layer)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), layer(x))
        assert "_transformer_encoder_layer_fwd" in flop_analysis(fused, (x,)).by_operator()
    assert count_gflops(fused, (x,)) == count_gflops(layer.train(), (x,))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_multihead_attention_matches_hand_count(mode: str) -> None:
    queries, keys = 8, 20  # cross-attention: different query and key lengths
    model = _SelfAttention()
    model.train(mode == "train")
    x, memory = torch.randn(3, queries, D), torch.randn(3, keys, D)
    hand = 3 * ((2 * queries + 2 * keys) * D * D + 2 * queries * keys * D)
    assert count_gflops(model, (x, memory)) * 1e9 == pytest.approx(hand)


def test_scaled_dot_product_attention_counts_both_products() -> None:
    batch, heads, queries, keys, width, value_width = 2, 4, 16, 24, 8, 12
    q = torch.randn(batch, heads, queries, width)
    k = torch.randn(batch, heads, keys, width)
    v = torch.randn(batch, heads, keys, value_width)
    hand = batch * heads * queries * keys * (width + value_width)
    assert count_gflops(_Sdpa(), (q, k, v)) * 1e9 == pytest.approx(hand)


@pytest.mark.parametrize(
    ("name", "published"),
    [
        ("mobilenet_v2", 0.30),
        ("shufflenet_v2_x1_0", 0.15),
        ("efficientnet_b0", 0.39),
        ("resnet101", 7.8),
        ("resnet152", 11.5),
    ],
)
def test_backbone_gflops_match_published_values(name: str, published: float) -> None:
    assert backbone_gflops(name, 224) == pytest.approx(published, rel=0.05)


def test_backbone_gflops_scale_with_resolution_and_are_cached() -> None:
    full, half = backbone_gflops("mobilenet_v2", 224), backbone_gflops("mobilenet_v2", 112)
    assert half == pytest.approx(full / 4, rel=0.1)
    hits = backbone_gflops.cache_info().hits
    assert backbone_gflops("mobilenet_v2", 112) == half
    assert backbone_gflops.cache_info().hits == hits + 1


def test_video_gflops() -> None:
    # 16 frames through a 0.3 G FEM, a 0.01 G head, 4 frames through a 7.8 G recognizer.
    cost = video_gflops(fem_per_frame=0.3, head=0.01, rec_per_frame=7.8, frames=16, budget=4)
    assert cost == pytest.approx(16 * 0.3 + 0.01 + 4 * 7.8)


class StepClock:
    """A fake clock that moves only when a call runs: call i lasts ``durations[i]`` seconds, warm-ups included."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 0.0
        self.durations = iter(durations)
        self.modes: list[bool] = []

    def __call__(self) -> float:
        return self.now

    def call(self) -> None:
        self.modes.append(torch.is_inference_mode_enabled())
        self.now += next(self.durations)


def _measure(clock: StepClock, **kwargs) -> Timing:
    return measure_throughput(clock.call, items_per_call=4, device=torch.device("cpu"), clock=clock, **kwargs)


def test_warm_up_calls_are_untimed_and_everything_runs_in_inference_mode() -> None:
    clock = StepClock([100.0, 100.0] + [0.5] * 5)
    timing = _measure(clock, warmup=2, min_iters=5, min_seconds=1.0)
    assert clock.modes == [True] * 7
    assert (timing.seconds, timing.spread, timing.iterations) == (0.5, 0.0, 5)  # the two slow warm-ups left out
    assert timing.items_per_s == 8.0


@pytest.mark.parametrize(("duration", "min_iters", "calls"), [(0.5, 5, 5), (0.125, 3, 8), (2.0, 1, 1)])
def test_timed_calls_continue_to_both_minimums(duration, min_iters, calls) -> None:
    """At least ``min_iters`` calls and at least ``min_seconds`` (1 s) of timed work, whichever needs more."""
    timing = _measure(StepClock([duration] * 20), warmup=0, min_iters=min_iters, min_seconds=1.0)
    assert timing.iterations == calls and timing.seconds == duration


def test_median_ignores_a_call_slowed_by_another_process() -> None:
    timing = _measure(StepClock([0.125, 0.125, 4.0, 0.125, 0.125]), warmup=0, min_iters=5, min_seconds=0.0)
    assert (timing.seconds, timing.spread, timing.items_per_s) == (0.125, 0.0, 32.0)  # the mean: 0.9 s


def test_spread_is_the_interquartile_range_over_the_median() -> None:
    timing = Timing.from_durations([5.0, 1.0, 4.0, 2.0, 3.0], items_per_call=2)
    assert (timing.seconds, timing.iterations) == (3.0, 5)
    assert timing.spread == pytest.approx((4.0 - 2.0) / 3.0)
    assert Timing.from_durations([0.2], items_per_call=1) == Timing(seconds=0.2, spread=0.0, iterations=1,
                                                                    items_per_call=1)


class DriftingMachine:
    """A fake clock on a machine whose speed changes: a call of work ``w`` lasts ``w × speed`` and the speed is
    ``speeds[i]`` during the i-th call, warm-ups included; records the order of the calls."""

    def __init__(self, speeds: list[float]) -> None:
        self.now, self.speeds, self.calls = 0.0, iter(speeds), []

    def __call__(self) -> float:
        return self.now

    def step(self, name: str, work: float):
        def call() -> None:
            self.calls.append(name)
            self.now += work * next(self.speeds)
        return call


def test_interleaved_timing_cancels_drift_between_rounds() -> None:
    """Two pipelines of equal work timed while the machine slows down round after round (each round 1.5× slower
    than the one before, as another job takes the cores) get the same figure, the reference's median time times
    their work ratio; timed one after the other they would differ by the drift."""
    machine = DriftingMachine([1.0] * 6 + [1.5**r for r in range(6) for _ in range(3)])
    steps = {"dense": machine.step("dense", 0.4), "a": machine.step("a", 0.1), "b": machine.step("b", 0.1)}
    timings = measure_interleaved(steps, reference="dense", items_per_call=8, device=torch.device("cpu"),
                                  warmup=2, min_rounds=6, min_seconds=0.0, clock=machine)
    assert machine.calls[:6] == ["dense", "dense", "a", "a", "b", "b"]  # warm-ups, untimed
    assert machine.calls[6:15] == ["dense", "a", "b", "a", "b", "dense", "b", "dense", "a"]  # each round starts later
    dense = Timing.from_durations([0.4 * 1.5**r for r in range(6)], items_per_call=8)
    assert (timings["dense"].seconds, timings["dense"].spread) == (pytest.approx(dense.seconds),
                                                                   pytest.approx(dense.spread))
    for name in ("a", "b"):
        assert timings[name].seconds == pytest.approx(dense.seconds / 4)
        assert (timings[name].spread, timings[name].iterations) == (pytest.approx(0.0), 6)


def test_interleaved_timing_runs_until_the_rounds_and_the_mean_timed_seconds() -> None:
    machine = DriftingMachine([1.0] * 1000)
    steps = {"slow": machine.step("slow", 0.3), "fast": machine.step("fast", 0.1)}
    timings = measure_interleaved(steps, reference="slow", items_per_call=2, device=torch.device("cpu"), warmup=0,
                                  min_rounds=2, min_seconds=1.0, clock=machine)
    assert timings["fast"].iterations == 5  # 5 rounds × 0.4 s = 2 s = 1 s per step on average
    assert timings["fast"].items_per_s == pytest.approx(20.0) and timings["slow"].items_per_s == pytest.approx(2 / 0.3)
    with pytest.raises(ValueError, match="reference"):
        measure_interleaved(steps, reference="dense", items_per_call=2, device=torch.device("cpu"))
