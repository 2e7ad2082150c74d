"""Fusing NSNet's two branches (supplementary A.3): hand-worked examples, literal reference procedures."""

from __future__ import annotations

import math

import pytest
import torch

from samplerbench.core.errors import UserError
from samplerbench.measures.fusion import FUSIONS, fuse_scores, fuse_select, normalise_attention, union_quotas

# One video, T = 6.  π^f = [0, 2, 4, 3, 5, 1];  π^v = [1, 3, 5, 2, 0, 4] (frames 0 and 4 tie at 0.05).
SF = torch.tensor([[0.9, 0.1, 0.8, 0.3, 0.7, 0.2]])
# An attention (sums to 1); sv / max(sv) = [.125 1 .25 .625 .125 .375].
SV = torch.tensor([[0.05, 0.4, 0.1, 0.25, 0.05, 0.15]])


def sel(fusion: str, k: int, sf=SF, sv=SV, alpha: float = 0.6) -> list[int]:
    return fuse_select(sf, sv, k, fusion=fusion, alpha=alpha)[0].tolist()


def test_attention_normalised_by_its_max():
    assert torch.allclose(normalise_attention(SV), torch.tensor([[0.125, 1.0, 0.25, 0.625, 0.125, 0.375]]))
    flat = torch.full((1, 4), 0.25)
    assert torch.equal(normalise_attention(flat), torch.ones(1, 4))


@pytest.mark.parametrize(
    ("fusion", "k", "alpha", "expected"),
    [
        ("fs", 3, 0.6, [0, 2, 4]),
        ("vg", 3, 0.6, [1, 3, 5]),
        # add, α=0.5: [.5125 .55 .525 .4625 .4125 .2875] -> frames 1, 2, 0
        ("add", 3, 0.5, [0, 1, 2]),
        # add, α=0.6: [.59 .46 .58 .43 .47 .27] -> frames 0, 2, 4
        ("add", 3, 0.6, [0, 2, 4]),
        # mul: [.1125 .1 .2 .1875 .0875 .075] -> frames 2, 3, 0
        ("mul", 3, 0.6, [0, 2, 3]),
        # max: [.9 1 .8 .625 .7 .375] -> frames 1, 0, 2 ; join keeps the same frames
        ("max", 3, 0.6, [0, 1, 2]),
        ("join", 3, 0.6, [0, 1, 2]),
        ("join", 4, 0.6, [0, 1, 2, 4]),
        # intersection: top-3 lists disjoint; grow π^f to 4 -> {3}; π^v to 4 -> {2, 3}; π^f to 5 -> {2, 3, 5}
        ("intersection", 3, 0.6, [2, 3, 5]),
        # union K=5, α=0.6: ⌈3⌉ + ⌈2⌉ = 5: {0, 2, 4} ∪ {1, 3}
        ("union", 5, 0.6, [0, 1, 2, 3, 4]),
        # union K=3, α=0.6: ⌈1.8⌉ + ⌈1.2⌉ = 4 > 3, lists disjoint: π^v (remainder .2) gives back frame 3
        ("union", 3, 0.6, [0, 1, 2]),
        # union K=2, α=0.6: ⌈1.2⌉ + ⌈0.8⌉ = 3 > 2: π^f (remainder .2) gives back frame 2 -> {0} ∪ {1}
        ("union", 2, 0.6, [0, 1]),
    ],
)
def test_hand_worked(fusion, k, alpha, expected):
    assert sel(fusion, k, alpha=alpha) == expected


def test_union_quotas():
    assert union_quotas(5, 0.6) == (3, 2, None)
    assert union_quotas(3, 0.6) == (2, 2, "v")  # exact shares 1.8 / 1.2: the surplus seat is π^f's
    assert union_quotas(2, 0.6) == (2, 1, "f")  # 1.2 / 0.8: the surplus seat is π^v's
    assert union_quotas(3, 0.5) == (2, 2, "v")  # 1.5 / 1.5: a tie keeps π^f's frame
    assert union_quotas(4, 1.0) == (4, 0, None)
    assert union_quotas(4, 0.0) == (0, 4, None)


def test_union_overlap_fills_from_pi_f():
    sv = torch.tensor([[0.3, 0.05, 0.4, 0.1, 0.05, 0.1]])  # π^v = [2, 0, 3, 5, 1, 4]
    # K=3: {0, 2} ∪ {2, 0} = {0, 2}: one short, filled with π^f's next frame, 4
    assert sel("union", 3, sv=sv) == [0, 2, 4]
    # K=5: {0, 2, 4} ∪ {2, 0} = 3 frames; fill 3 then 5 from π^f
    assert sel("union", 5, sv=sv) == [0, 2, 3, 4, 5]
    # intersection K=2: top-2 lists agree entirely
    assert sel("intersection", 2, sv=sv) == [0, 2]


def test_overflow_only_drops_when_lists_are_disjoint():
    sv = torch.tensor([[0.3, 0.05, 0.05, 0.4, 0.1, 0.1]])  # π^v = [3, 0, 4, 5, 1, 2]
    # K=3, α=0.6: {0, 2} ∪ {3, 0} = {0, 2, 3}: exactly K, nothing to give back
    assert sel("union", 3, sv=sv) == [0, 2, 3]


def test_ties_go_to_lower_index():
    flat = torch.full((1, 5), 0.5)
    att = torch.full((1, 5), 0.2)
    for fusion in FUSIONS:
        assert sel(fusion, 2, sf=flat, sv=att) == [0, 1], fusion


def test_k_equals_t_and_t_one():
    b, t = 3, 6
    sf, sv = torch.rand(b, t, generator=torch.Generator().manual_seed(1)), torch.rand(b, t).softmax(dim=1)
    for fusion in FUSIONS:
        assert torch.equal(fuse_select(sf, sv, t, fusion=fusion), torch.arange(t).expand(b, t)), fusion
        one = fuse_select(torch.rand(b, 1), torch.ones(b, 1), 1, fusion=fusion)
        assert torch.equal(one, torch.zeros(b, 1, dtype=torch.long)), fusion


def _order(row: torch.Tensor) -> list[int]:
    return sorted(range(len(row)), key=lambda i: (-float(row[i]), i))


def reference_union(sf_row, sv_row, k, alpha):
    """The supplementary's procedure, one video at a time, with the documented overflow rule."""
    pf, pv = _order(sf_row), _order(sv_row)
    kf, kv = math.ceil(round(k * alpha, 9)), math.ceil(round(k * (1 - alpha), 9))
    chosen = set(pf[:kf]) | set(pv[:kv])
    if len(chosen) > k:
        remainder_f = k * alpha - math.floor(round(k * alpha, 9))
        chosen.discard(pv[kv - 1] if remainder_f >= 0.5 else pf[kf - 1])
    for frame in pf:
        if len(chosen) == k:
            break
        chosen.add(frame)
    return sorted(chosen)


def reference_intersection(sf_row, sv_row, k):
    pf, pv = _order(sf_row), _order(sv_row)
    lf = lv = k
    turn_f = True
    while len(set(pf[:lf]) & set(pv[:lv])) < k:
        if turn_f:
            lf += 1
        else:
            lv += 1
        turn_f = not turn_f
    return sorted(set(pf[:lf]) & set(pv[:lv]))


def reference_join(sf_row, sv_row, k):
    svn = sv_row / sv_row.max()
    t = len(sf_row)
    entries = [(float(sf_row[i]), i, 0) for i in range(t)] + [(float(svn[i]), i, 1) for i in range(t)]
    entries.sort(key=lambda e: (-e[0], e[1], e[2]))
    chosen: list[int] = []
    for _, frame, _ in entries:
        if frame not in chosen:
            chosen.append(frame)
    return sorted(chosen[:k])


@pytest.mark.parametrize("t", [1, 2, 5, 8, 16])
def test_vectorised_matches_reference(t):
    gen = torch.Generator().manual_seed(t)
    # coarse values make ties frequent
    sf = torch.randint(0, 4, (40, t), generator=gen).float() / 4
    sv = (torch.randint(1, 5, (40, t), generator=gen).float()).softmax(dim=1)
    for k in range(1, t + 1):
        for alpha in (0.0, 0.3, 0.5, 0.6, 1.0):
            got = fuse_select(sf, sv, k, fusion="union", alpha=alpha).tolist()
            assert got == [reference_union(sf[i], sv[i], k, alpha) for i in range(40)], (k, alpha)
        got = fuse_select(sf, sv, k, fusion="intersection").tolist()
        assert got == [reference_intersection(sf[i], sv[i], k) for i in range(40)], k
        got = fuse_select(sf, sv, k, fusion="join").tolist()
        assert got == [reference_join(sf[i], sv[i], k) for i in range(40)], k


def test_join_equals_max_without_ties():
    sf, sv = torch.rand(100, 16), torch.randn(100, 16).softmax(dim=1)
    assert torch.equal(fuse_select(sf, sv, 4, fusion="join"), fuse_select(sf, sv, 4, fusion="max"))


def test_contract_on_random_scores():
    sf, sv = torch.rand(64, 16), torch.randn(64, 16).softmax(dim=1)
    for fusion in FUSIONS:
        for k in (1, 4, 7, 16):
            out = fuse_select(sf, sv, k, fusion=fusion)
            assert out.shape == (64, k) and out.dtype == torch.long
            assert bool((out[:, 1:] > out[:, :-1]).all()) and out.min() >= 0 and out.max() < 16


def test_score_fusion_values():
    fused = fuse_scores(SF, SV, fusion="add", alpha=0.6)
    assert torch.allclose(fused, 0.6 * SF + 0.4 * normalise_attention(SV))


def test_bad_arguments():
    with pytest.raises(UserError, match="valid: add"):
        fuse_select(SF, SV, 2, fusion="bogus")
    with pytest.raises(UserError):
        fuse_select(SF, SV, 7, fusion="union")
    with pytest.raises(UserError):
        fuse_select(SF, SV, 2, fusion="add", alpha=1.5)



def test_unions_effective_alpha_is_what_its_quotas_take():
    from samplerbench.measures.fusion import union_effective_alpha

    # α = 0.6: K=4 takes ⌈2.4⌉ = 3 + ⌈1.6⌉ = 2 > 4, so π^f (remainder .4 < .5) gives one back: 2 + 2
    assert [union_effective_alpha(k, 0.6) for k in (1, 2, 4, 5, 8, 10)] == [1.0, 0.5, 0.5, 0.6, 0.625, 0.6]
    sf = torch.tensor([[8.0, 7, 6, 5, 0, 0, 0, 0]])  # disjoint top frames: π^f 0-3, π^v 4-7
    sv = torch.tensor([[0.0, 0, 0, 0, 8, 7, 6, 5]])
    chosen = fuse_select(sf, sv, 4, fusion="union", alpha=0.6)[0].tolist()
    assert sum(i < 4 for i in chosen) / 4 == union_effective_alpha(4, 0.6)
