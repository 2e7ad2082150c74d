"""The sampler contract, for every built-in sampler: K distinct sorted in-range indices, determinism,
degenerate shapes, the registry, and checkpoints that load with ``weights_only=True``."""

from __future__ import annotations

import io

import pytest
import torch

import samplerbench.samplers.confidence_exit
import samplerbench.samplers.dense
import samplerbench.samplers.frameexit
import samplerbench.samplers.mgsampler
import samplerbench.samplers.nsnet
import samplerbench.samplers.ocsampler
import samplerbench.samplers.oracle
import samplerbench.samplers.random
import samplerbench.samplers.scsampler
import samplerbench.samplers.uniform  # noqa: F401 - importing registers the samplers
from samplerbench.core.errors import UserError
from samplerbench.samplers.adaptive import AdaptiveSampler
from samplerbench.samplers.base import (
    FrameFeatures,
    Sampler,
    get_sampler,
    list_samplers,
    register_sampler,
)
from samplerbench.samplers.mgsampler import cumulative_motion, distinct_in_range, quantile_indices

C, D, F = 3, 12, 6
TRAINING = dict(epochs=2, batch_size=8, seed=3)
SAMPLERS: dict[str, dict] = {
    "uniform": {},
    "random": {"seed": 3},
    "dense": {},
    "mgsampler": {"frame_size": (8, 10)},
    "oracle": {},
    "oracle_response": {"guiding": "response"},
    "ocsampler": {**TRAINING, "train_budget": 2},
    "scsampler": TRAINING,
    "scsampler_rank": TRAINING,
    "nsnet": {**TRAINING, "d": 8, "heads": 2, "layers": 1},
    "nsnet_no_ns": {**TRAINING, "d": 8, "heads": 2, "layers": 1, "no_ns": True},
    "nsnet_intersection": {**TRAINING, "d": 8, "heads": 2, "layers": 1, "fusion": "intersection"},
    "frameexit": TRAINING,
    "confidence_exit": {},
}


pytestmark = pytest.mark.usefixtures("one_thread")


def registry_name(case: str) -> str:
    return case.split("_")[0] if case.startswith(("oracle_", "nsnet_")) else case


def make_bank(n: int, t: int, *, seed: int, full: bool = True) -> FrameFeatures:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.nn.functional.one_hot(torch.arange(n) % C, C).float()
    if n > 1:
        labels[0, (1 if C > 1 else 0)] = 1.0  # one multi-label video
    return FrameFeatures(
        fem=torch.rand(n, t, D, generator=gen) * 3,
        num_classes=C,
        motion=torch.rand(n, t, generator=gen),
        labels=labels if full else None,
        rec_logits=torch.randn(n, t, C, generator=gen) if full else None,
        rec_feats=torch.randn(n, t, F, generator=gen) if full else None,
    )


def eval_bank(sampler: Sampler, n: int, t: int, seed: int) -> FrameFeatures:
    """What the pipeline hands a sampler at evaluation: labels only to the oracle, the recognizer's outputs also to
    samplers that read them, motion only on request."""
    bank = make_bank(n, t, seed=seed)
    recognized = sampler.uses_labels_at_eval or sampler.reads_recognizer
    return FrameFeatures(
        fem=bank.fem,
        num_classes=C,
        motion=bank.motion if sampler.needs_motion else None,
        labels=bank.labels if sampler.uses_labels_at_eval else None,
        rec_logits=bank.rec_logits if recognized else None,
        rec_feats=bank.rec_feats if recognized else None,
    )


def fitted(case: str, t: int) -> Sampler:
    sampler = get_sampler(registry_name(case), **SAMPLERS[case])
    sampler.fit(make_bank(20, t, seed=0))
    return sampler


def check_indices(out: torch.Tensor, b: int, k: int, t: int) -> None:
    assert out.shape == (b, k) and out.dtype == torch.long
    assert out.min() >= 0 and out.max() < t
    assert bool((out[:, 1:] > out[:, :-1]).all()), "indices must be distinct and sorted"


@pytest.mark.parametrize("case", list(SAMPLERS))
@pytest.mark.parametrize(("b", "t", "k"), [(1, 8, 3), (5, 8, 3), (5, 4, 4), (5, 1, 1), (1, 1, 1)])
def test_contract(case, b, t, k):
    sampler = fitted(case, t)
    batch = eval_bank(sampler, b, t, seed=1)
    out = sampler.select(batch, k)
    if sampler.keeps_all:
        assert torch.equal(out, torch.arange(t).expand(b, t))
    else:
        check_indices(out, b, k, t)
    assert torch.equal(out, sampler.select(batch, k)), "two calls must agree"
    scores = sampler.scores(batch)
    assert scores.shape == (b, t) and bool(torch.isfinite(scores).all())
    refit = fitted(case, t)
    assert torch.equal(out, refit.select(batch, k)), "a re-fit with the same seed must select the same frames"
    assert torch.equal(scores, refit.scores(batch))
    if isinstance(sampler, AdaptiveSampler):  # its own selection: the order, cut at a budget per video in 1..T
        chosen = sampler.budgeted(batch, sampler.sweep[0])
        assert torch.equal(torch.sort(chosen.index, dim=1).values, torch.arange(t).expand(b, t))
        assert chosen.count.dtype == torch.long and bool(((chosen.count >= 1) & (chosen.count <= t)).all())
        assert torch.equal(chosen.count, refit.budgeted(batch, sampler.sweep[0]).count)


@pytest.mark.parametrize("case", list(SAMPLERS))
def test_state_dict_round_trip(case, tmp_path):
    sampler = fitted(case, 8)
    batch = eval_bank(sampler, 5, 8, seed=2)
    path = tmp_path / "sampler.pt"
    torch.save(sampler.state_dict(), path)
    restored = get_sampler(registry_name(case), **{k: v for k, v in SAMPLERS[case].items() if k != "no_ns"})
    restored.load_state_dict(torch.load(path, weights_only=True))
    assert torch.equal(sampler.select(batch, 3), restored.select(batch, 3))
    assert torch.equal(sampler.scores(batch), restored.scores(batch))
    if isinstance(sampler, AdaptiveSampler):
        assert torch.equal(sampler.exit_scores(batch), restored.exit_scores(batch))


def test_nsnet_checkpoint_evaluates_under_other_fusions():
    """One trained NSNet, evaluated under each fusion (Table 2), without re-training."""
    sampler = fitted("nsnet", 8)
    state = io.BytesIO()
    torch.save(sampler.state_dict(), state)
    state.seek(0)
    loaded = torch.load(state, weights_only=True)
    batch = eval_bank(sampler, 5, 8, seed=2)
    sf = sampler.branch_scores(batch)[0]
    for fusion in ("add", "max", "intersection", "fs", "vg"):
        other = get_sampler("nsnet", fusion=fusion)
        other.load_state_dict(loaded)
        assert torch.equal(other.branch_scores(batch)[0], sf)
        check_indices(other.select(batch, 3), 5, 3, 8)


def test_fit_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fitted("nsnet", 8)
    assert torch.equal(torch.rand(3), expected)


def test_training_samplers_accept_pipeline_kwargs():
    for name in ("nsnet", "scsampler", "scsampler_rank"):
        sampler = get_sampler(name, seed=1, epochs=1, batch_size=4, lr=0.1, device="cpu")
        assert sampler.trainable and sampler.epochs == 1


def test_bad_field_values_are_user_errors():
    with pytest.raises(UserError, match=r"valid: .*union"):
        get_sampler("nsnet", fusion="unoin")
    with pytest.raises(UserError, match="prototype"):
        get_sampler("oracle", guiding="nope")
    with pytest.raises(UserError, match="rank"):
        get_sampler("scsampler", loss="hinge")


def test_registry():
    names = list_samplers()
    for name in ("uniform", "random", "dense", "oracle", "scsampler", "scsampler_rank", "mgsampler", "nsnet",
                 "ocsampler"):
        assert name in names
    with pytest.raises(ValueError, match="already registered"):
        register_sampler("nsnet")(type("Again", (Sampler,), {"scores": lambda self, batch: None}))
    with pytest.raises(UserError, match=r"valid: .*nsnet"):
        get_sampler("nssnet")
    assert get_sampler("scsampler_rank").loss == "rank" and get_sampler("scsampler").loss == "ce"


def test_untrained_sampler_refuses_to_select():
    with pytest.raises(RuntimeError, match="fitted"):
        get_sampler("nsnet").select(make_bank(2, 8, seed=0, full=False), 2)


def test_mgsampler_quantile_rule_by_hand():
    """MGSampler's rule (loading.py, SampleFrames): √motion, normalised and accumulated; for each quantile
    (j + 0.5)/K the frame whose cumulative motion is nearest, the first of equally near ones."""
    # √[0, 0, 1, 1, 9] = [0, 0, 1, 1, 3] -> cumulative [0, 0, .2, .4, 1]; .25 is nearest .2 (frame 2), .75 is
    # nearest 1 (frame 4). Without the square root it would be [0, 0, 1/11, 2/11, 1] -> frames 3 and 4.
    motion = torch.tensor([[0.0, 0, 1, 1, 9]])
    assert torch.allclose(cumulative_motion(motion), torch.tensor([[0.0, 0, 0.2, 0.4, 1]]))
    assert quantile_indices(motion, 2).tolist() == [[2, 4]]
    # one burst on frame 3: cumulative [0, 0, 0, 1, 1, 1, 1, 1]. K=2: .25 -> frame 0 (first of the zeros),
    # .75 -> frame 3. K=3: 1/6 -> 0, 1/2 is as near 0 as 1 -> frame 0 again, moved right to 1; 5/6 -> 3
    burst = torch.tensor([[0.0, 0, 0, 1, 0, 0, 0, 0]])
    assert quantile_indices(burst, 2).tolist() == [[0, 3]]
    assert quantile_indices(burst, 3).tolist() == [[0, 1, 3]]
    # no motion at all (MGSampler divides by zero): even weights, cumulative (t + 1)/8 -> every other frame
    assert quantile_indices(torch.zeros(1, 8), 4).tolist() == [[0, 2, 4, 6]]
    assert distinct_in_range(torch.tensor([[0, 0, 0], [5, 5, 5]]), 6).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_mgsampler_gflops_counts_the_motion_measure():
    with pytest.raises(RuntimeError, match="frame size"):
        get_sampler("mgsampler").gflops(16)
    explicit = get_sampler("mgsampler", frame_size=(112, 112))
    assert explicit.gflops(16) == pytest.approx(16 * 112 * 112 * (6 + 3 + 5 * 49 + 12) / 1e9)


@pytest.mark.parametrize("case", ["nsnet", "scsampler", "ocsampler"])
def test_head_gflops(case):
    pytest.importorskip("samplerbench.measures.cost")
    assert fitted(case, 8).gflops(8) > 0


@pytest.mark.parametrize("case", ["scsampler", "scsampler_rank", "nsnet", "ocsampler"])
def test_float64_features_train_and_reload_a_float64_network(case):
    """``--dtype float64`` banks: the network trains in float64, and its checkpoint reloads as float64."""
    bank = make_bank(20, 8, seed=0)
    bank64 = FrameFeatures(**{**vars(bank), "fem": bank.fem.double()})
    sampler = get_sampler(registry_name(case), **SAMPLERS[case])
    sampler.fit(bank64)
    assert all(p.dtype == torch.float64 for p in sampler.fitted_net().parameters())
    restored = get_sampler(registry_name(case), **SAMPLERS[case])
    restored.load_state_dict(sampler.state_dict())
    assert restored.fitted_net().standardize.mean.dtype == torch.float64
    batch = eval_bank(sampler, 5, 8, seed=2)
    batch64 = FrameFeatures(**{**vars(batch), "fem": batch.fem.double()})
    assert torch.equal(sampler.scores(batch64), restored.scores(batch64))


def test_random_draws_follow_the_video_not_its_features():
    """A video keeps its frames whichever FEM (or precision, or process count) made its features; without
    ids the position in the bank is the key."""
    sampler = get_sampler("random", seed=3)
    ids = ("v_a", "v_b", "v_c")
    first = sampler.select(FrameFeatures(fem=torch.rand(3, 8, D), num_classes=C, video_ids=ids), 3)
    other_fem = FrameFeatures(fem=torch.rand(3, 8, 5).double(), num_classes=C, video_ids=ids)
    assert torch.equal(sampler.select(other_fem, 3), first)
    reordered = FrameFeatures(fem=torch.rand(3, 8, D), num_classes=C, video_ids=ids[::-1])
    assert torch.equal(sampler.select(reordered, 3), first.flip(0))
    assert not torch.equal(first[0], first[1])  # videos draw independently
    assert not torch.equal(get_sampler("random", seed=4).select(other_fem, 3), first)
    positional = FrameFeatures(fem=torch.rand(3, 8, D), num_classes=C)
    assert torch.equal(sampler.select(positional, 3), sampler.select(FrameFeatures(fem=torch.zeros(3, 8, 1),
                                                                               num_classes=C), 3))


def test_half_precision_features_train_in_float32():
    bank = make_bank(20, 8, seed=0)
    sampler = get_sampler("nsnet", **SAMPLERS["nsnet"])
    sampler.fit(FrameFeatures(**{**vars(bank), "fem": bank.fem.half()}))
    assert all(p.dtype == torch.float32 for p in sampler.fitted_net().parameters())
