"""The pieces that make W processes train like one, on 2 gloo processes against one process: BatchNorm over
the global batch, dropout / attention-dropout / stochastic-depth masks drawn for the global batch, and
per-frame features gathered as tensors.

Each rank gets the rows ``r, r + W, ...`` of a global batch, as ``DistributedSampler`` hands them out; the
reference is one process on the whole batch with the same seed.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from samplerbench.core import distributed
from samplerbench.core.distributed import GLOBAL_BATCH_NORMS, GlobalDraws

WORLD = 2
BATCH = 6


def _encoder() -> nn.Module:
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=8, dropout=0.3, batch_first=True)
    return nn.TransformerEncoder(layer, 1, enable_nested_tensor=False).train()


def _draws(x: torch.Tensor, tsn: torch.Tensor, samples: int) -> dict[str, torch.Tensor]:
    """Every kind of random draw a training step makes, from seed 0, inside ``distributed.global_draws``."""
    encoder = _encoder()
    torch.manual_seed(0)
    with distributed.global_draws(samples):
        return {
            "dropout": F.dropout(torch.ones(samples, 5), 0.5),
            "tsn_dropout": F.dropout(torch.ones(tsn.shape[0], 5), 0.5),  # K rows per sample
            "stochastic_depth": StochasticDepth(0.5, "row").train()(torch.ones(samples, 2, 3, 3)),
            "encoder": encoder(x),
        }


def _batch_norm_step(x: torch.Tensor, bn: nn.Module) -> dict[str, torch.Tensor]:
    x = x.clone().requires_grad_()
    y = bn(x)
    uneven = torch.arange(1.0, 4.0).view(3, *(1,) * (x.dim() - 2))  # uneven gradients per channel
    ((y + 1) * uneven).pow(3).sum().backward()  # cubic: BatchNorm's backward zeroes a gradient affine in y
    return {"y": y.detach(), "x_grad": x.grad, "w_grad": bn.weight.grad, "b_grad": bn.bias.grad,
            "running_mean": bn.running_mean.clone(), "running_var": bn.running_var.clone()}


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return (torch.randn(BATCH, 3, 4, 4, generator=gen) * 3 + 5, torch.randn(BATCH, 4, 8, generator=gen),
            torch.ones(BATCH * 2, 1))


def _batch_norm_inputs() -> dict[type[nn.Module], torch.Tensor]:
    """A global batch for each BatchNorm the distributed wrapper converts: images ``[B, 3, 4, 4]``, vectors
    ``[B, 3]``; float64, so that the cubic loss's rounding stays below the tolerance."""
    images = _inputs()[0].double()
    return {nn.BatchNorm2d: images, nn.BatchNorm1d: images.mean(dim=(2, 3))}


def _features(rank: int) -> torch.Tensor:
    """Rank r's rows of per-frame features: r + 2 rows, so the ranks hold different numbers of them."""
    return torch.arange(10.0 * rank, 10.0 * rank + 3 * (rank + 2), dtype=torch.float64).view(rank + 2, 3)


def _rank(rank: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    try:
        _, seq, tsn = _inputs()
        mine = slice(rank, None, WORLD)
        result = {}
        for kind, x in _batch_norm_inputs().items():
            bn = kind(3).double()
            bn.__class__ = GLOBAL_BATCH_NORMS[kind]  # as distributed.wrap converts it
            step = _batch_norm_step(x[mine], bn)
            for name in ("w_grad", "b_grad"):  # what DDP does: the ranks' gradients summed (our loss is a sum)
                dist.all_reduce(step[name])
            result |= {(kind.__name__, name): v for name, v in step.items()}
        result |= _draws(seq[mine], tsn.view(BATCH, 2, 1)[mine].flatten(0, 1), BATCH // WORLD)
        result["gathered"] = distributed.gather_rows(_features(rank))
        torch.save(result, f"{out}/{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, torch.Tensor]]:
    out = tmp_path_factory.mktemp("ranks")
    mp.spawn(_rank, args=(f"file://{out}/store", str(out)), nprocs=WORLD)
    return [torch.load(out / f"{r}.pt") for r in range(WORLD)]


def _interleave(parts: list[torch.Tensor], rows_per_sample: int = 1) -> torch.Tensor:
    """The ranks' rows back in global-batch order."""
    stacked = torch.stack([p.view(-1, rows_per_sample, *p.shape[1:]) for p in parts], dim=1)
    return stacked.flatten(0, 2)


@pytest.mark.parametrize("kind", [nn.BatchNorm1d, nn.BatchNorm2d], ids=lambda k: k.__name__)
def test_global_batch_norm_matches_one_process(ranks, kind):
    ref = _batch_norm_step(_batch_norm_inputs()[kind], kind(3).double())
    for name in ("y", "x_grad"):
        torch.testing.assert_close(_interleave([r[kind.__name__, name] for r in ranks]), ref[name], rtol=1e-5,
                                   atol=1e-5)
    for name in ("w_grad", "b_grad", "running_mean", "running_var"):
        for r in ranks:
            torch.testing.assert_close(r[kind.__name__, name], ref[name], rtol=1e-5, atol=1e-5)


def test_masks_are_the_global_batch_rows(ranks):
    """Each rank's masks are its rows of the one-process masks, for plain, per-frame (TSN) and per-sample
    (stochastic depth) draws and for the attention and feed-forward dropouts inside a transformer layer."""
    _, seq, tsn = _inputs()
    ref = _draws(seq, tsn, BATCH)  # one process: global_draws is a no-op, the native kernels draw
    assert ref["dropout"].eq(0).any() and ref["dropout"].ne(0).any()  # the masks are not trivial
    assert torch.equal(_interleave([r["dropout"] for r in ranks]), ref["dropout"])
    assert torch.equal(_interleave([r["tsn_dropout"] for r in ranks], 2), ref["tsn_dropout"])
    assert torch.equal(_interleave([r["stochastic_depth"] for r in ranks]), ref["stochastic_depth"])
    torch.testing.assert_close(_interleave([r["encoder"] for r in ranks]), ref["encoder"])
    encoder = _encoder()
    torch.manual_seed(1)
    assert not torch.allclose(encoder(seq), ref["encoder"])  # the encoder's output does depend on its masks


def test_native_dropout_is_drawn_for_the_global_batch():
    """CUDA's dropout is the fused ``native_dropout``; the mode draws it like CPU's (called directly here)."""
    torch.manual_seed(0)
    full = torch.empty(4, 3).bernoulli_(0.5)
    torch.manual_seed(0)
    with GlobalDraws(2, rank=1, world=2):
        out, keep = torch.ops.aten.native_dropout(torch.ones(2, 3), 0.5, True)
    assert torch.equal(keep, full[1::2].bool()) and torch.equal(out, full[1::2] * 2)


def test_draws_that_cannot_follow_the_batch_are_refused():
    with GlobalDraws(4, rank=0, world=2), pytest.raises(RuntimeError, match="first dimension is not the 4 samples"):
        F.dropout(torch.ones(3, 5), 0.5)
    with GlobalDraws(4, rank=0, world=2), pytest.raises(RuntimeError, match=r"randn.*draws random numbers"):
        torch.randn(4, 2)


LAYOUTS = {
    "contiguous": lambda b: torch.ones(b, 5),
    "batch inside time (attention's transposes)": lambda b: torch.ones(4, b, 3).transpose(0, 1),
    "channels last": lambda b: torch.ones(b, 3, 2, 2).to(memory_format=torch.channels_last),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("per_rank", [1, 3])
def test_each_rank_draws_its_rows_of_the_native_global_draw(layout, per_rank):
    """CPU kernels fill in memory order, so the global draw must be laid out as one process's input is,
    also when a rank holds a single sample (its batch stride is then ambiguous)."""
    make = LAYOUTS[layout]
    torch.manual_seed(0)
    ref = F.dropout(make(per_rank * WORLD), 0.5)
    for rank in range(WORLD):
        torch.manual_seed(0)
        with GlobalDraws(per_rank, rank=rank, world=WORLD):
            assert torch.equal(F.dropout(make(per_rank), 0.5), ref[rank::WORLD])


def test_feature_rows_of_unequal_ranks_are_gathered_as_tensors_in_rank_order(ranks):
    whole = torch.cat([_features(r) for r in range(WORLD)])
    for r in ranks:
        assert r["gathered"].dtype == torch.float64 and torch.equal(r["gathered"], whole)
