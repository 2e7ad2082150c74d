"""What the trainable samplers (NSNet, SCSampler, OCSampler) share: the SGD loop, the per-epoch temporal random
shift, input standardisation, checkpoints.

The schedule is the paper's for every trainable sampler, so a comparison between samplers is not a
comparison between optimisers: SGD with momentum 0.9, batch 64, lr 1e-2 decayed ×0.1 at 50/120 and 75/120
of the epochs. So is the augmentation: temporal random shift drawn anew every epoch (:mod:`.shift`).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DistributedSampler

from samplerbench import distributed
from samplerbench.samplers.base import FrameBank, Sampler
from samplerbench.samplers.shift import shift_views

MILESTONE_FRACTIONS: tuple[float, float] = (50 / 120, 75 / 120)
EVAL_CHUNK = 4096  # videos per forward pass at evaluation: bounds memory, not a loop over videos


def milestones(epochs: int) -> list[int]:
    """The paper's decay epochs (50 and 75 of 120) scaled to ``epochs``."""
    return sorted({round(epochs * f) for f in MILESTONE_FRACTIONS})


def training_dtype(fem: Tensor) -> torch.dtype:
    """What a sampler network computes in: float64 for float64 features (``--dtype float64``), else float32
    (half-precision features are promoted, as SGD in float16 would lose the small updates)."""
    return torch.promote_types(fem.dtype, torch.float32)


class _Objective(nn.Module):
    """``loss_fn(net, *batch)`` as a module's forward: DistributedDataParallel synchronises the gradients of
    what runs inside its wrapped module's forward, and NSNet's loss calls several submodules of its network,
    not ``net.forward``."""

    def __init__(self, net: nn.Module, loss_fn: Callable[..., Tensor]) -> None:
        super().__init__()
        self.net = net
        self.loss_fn = loss_fn

    def forward(self, *batch: Tensor) -> Tensor:
        return self.loss_fn(self.net, *batch)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator of one epoch's random draws (temporal shift, a policy's samples): a function of the
    seed and the epoch alone, so every process and device draws the same numbers."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def train_sgd(
    net: nn.Module,
    loss_fn: Callable[..., Tensor],
    epoch_tensors: Callable[[int], tuple[Tensor, ...]],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
    momentum: float = 0.9,
) -> list[float]:
    """Mini-batch SGD over the rows of ``epoch_tensors(epoch)`` (shuffled from ``seed``; the same number of
    rows every epoch); the mean loss of each epoch.

    ``loss_fn(net, *batch)`` gets the same rows of every tensor, already on ``device``, and returns their
    mean loss. Under torchrun the rows are split as in
    :func:`~samplerbench.recognizers.train.train_frame_classifier`: the same global batches for any number
    of processes, each rank a ``batch_size / W`` share, gradients averaged by DistributedDataParallel, and
    dropout masks drawn for the global batch. A loss that needs other random numbers finds them among its
    tensors, drawn for every row by ``epoch_tensors``: a draw inside the step would differ between world sizes.
    """
    local = distributed.local_batch(batch_size)
    torch.manual_seed(seed)  # dropout: the same stream on every rank (see distributed.GlobalDraws)
    objective = distributed.wrap(_Objective(net, loss_fn), device=device)
    optimiser = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, milestones=milestones(epochs), gamma=0.1)
    order: DistributedSampler | None = None
    history: list[float] = []
    net.train()
    for epoch in range(epochs):
        tensors = epoch_tensors(epoch)
        if order is None:
            order = DistributedSampler(range(tensors[0].shape[0]), num_replicas=distributed.world_size(),
                                       rank=distributed.rank(), shuffle=True, seed=seed)
        order.set_epoch(epoch)
        total, seen = 0.0, 0
        for rows in torch.tensor(list(order), dtype=torch.long).split(local):
            with distributed.global_draws(len(rows)):
                loss = objective(*(x[rows].to(device) for x in tensors))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(rows)
            seen += len(rows)
        del tensors  # before the next epoch's are made: two epochs' copies of a large bank need not coexist
        schedule.step()
        totals, counts = zip(*distributed.gather((total, seen)), strict=True)
        history.append(sum(totals) / sum(counts))
    net.eval()
    return history


class Standardize(nn.Module):
    """Per-channel standardisation with statistics of the training frames, kept as buffers.

    Why: FEM features (post-ReLU averages, D ≈ 1280) are all positive with channel scales that differ by
    orders of magnitude; plain SGD at lr 1e-2 then trains slowly or diverges. Unlike a LayerNorm it keeps a
    frame's overall activation level, which itself carries saliency (empty, dark or blurred frames).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set_statistics(self, x: Tensor) -> None:
        flat = x.reshape(-1, x.shape[-1]).to(self.mean.dtype)
        self.mean.copy_(flat.mean(dim=0))
        self.std.copy_(flat.std(dim=0, unbiased=False).clamp_min(1e-6))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


@dataclasses.dataclass(kw_only=True, eq=False)
class TrainableSampler(Sampler):
    """A sampler whose network is trained on the training bank by :func:`train_sgd`.

    Subclasses say how to build the network (:meth:`build_net`), what to train on (:meth:`prepare`, once;
    :meth:`training_tensors`, every epoch) and the loss (:meth:`training_loss`). ``fit`` is deterministic given
    ``seed``: the global RNG (weight init and dropout) is seeded inside a forked RNG state, so fitting neither
    depends on nor disturbs the caller's random state, and shuffling and the epochs' draws use their own
    generators.

    ``temporal_shift`` (default, the NSNet supplementary's augmentation): every epoch trains on one row per
    video whose frame t is drawn among its decoded views for that epoch and segment (:func:`.shift.shift_views`);
    ``False`` trains on the decoded views as they are, every view a row every epoch.
    """

    trainable = True
    uses_fem = True
    seed: int = 0
    epochs: int = 120
    batch_size: int = 64
    lr: float = 1e-2
    device: str = "cpu"
    temporal_shift: bool = True  # per epoch and segment, a fresh draw among the decoded views (.shift)
    net: nn.Module | None = dataclasses.field(default=None, init=False, repr=False)
    history: list[float] = dataclasses.field(default_factory=list, init=False, repr=False)
    dims: tuple[int, int] | None = dataclasses.field(default=None, init=False, repr=False)  # (D, C)

    @abc.abstractmethod
    def build_net(self, in_dim: int, num_classes: int) -> nn.Module:
        """A fresh network; its first module must be a :class:`Standardize` named ``standardize``."""

    def prepare(self, train: FrameBank) -> None:
        """What training computes once from the whole training bank (every view of every video) before the
        epochs, e.g. NSNet's class prototypes; nothing by default."""

    @abc.abstractmethod
    def training_tensors(self, train: FrameBank, *, draws: torch.Generator) -> tuple[Tensor, ...]:
        """Row-aligned tensors the loss reads in one epoch, FEM features first: ``train`` is the epoch's bank
        (one row per video under temporal shift), ``draws`` the epoch's CPU generator for any random numbers the
        loss needs (see :func:`train_sgd`)."""

    @abc.abstractmethod
    def training_loss(self, net: nn.Module, *batch: Tensor) -> Tensor:
        """The training loss of one mini-batch."""

    def architecture(self) -> dict[str, Any]:
        """The fields fixed by training (network shape, training variant); stored in checkpoints and restored
        on load."""
        return {}

    def fit(self, train: FrameBank) -> None:
        train.require("labels", "rec_logits", "rec_feats", who=self.name)
        fork_devices = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(self.seed)
            self.prepare(train)
            self.dims = (train.fem.shape[2], train.num_classes)
            self.net = self.build_net(*self.dims).to(self.device, training_dtype(train.fem))
            self.net.standardize.set_statistics(train.fem)

            def epoch_tensors(epoch: int) -> tuple[Tensor, ...]:
                draws = epoch_generator(self.seed, epoch)
                return self.training_tensors(shift_views(train, draws) if self.temporal_shift else train, draws=draws)

            self.history = train_sgd(
                self.net, self.training_loss, epoch_tensors, epochs=self.epochs, batch_size=self.batch_size,
                lr=self.lr, seed=self.seed, device=self.device,
            )

    def to(self, device: torch.device | str) -> TrainableSampler:
        """The network and every later fit or load on ``device``."""
        self.device = str(torch.device(device))
        if self.net is not None:
            self.net.to(self.device)
        return self

    def fitted_net(self) -> nn.Module:
        if self.net is None:
            raise RuntimeError(f"sampler {self.name!r} must be fitted (or loaded) before use")
        return self.net

    def infer(
        self, fem: Tensor, forward: Callable[[nn.Module, Tensor], tuple[Tensor, ...]]
    ) -> tuple[Tensor, ...]:
        """``forward(net, fem_chunk)`` in eval mode without autograd, batched in chunks; float32 results on the
        device of ``fem``. The network runs on its own device, so a CPU bank (the cached features) is scored
        by a GPU network chunk by chunk; with ``fem`` on the network's device nothing is copied."""
        net = self.fitted_net().eval()
        with torch.inference_mode():
            parts = [
                tuple(o.to(fem.device, torch.float32)
                      for o in forward(net, chunk.to(net.standardize.mean.device, net.standardize.mean.dtype)))
                for chunk in fem.split(EVAL_CHUNK)
            ]
        return tuple(torch.cat(outs) for outs in zip(*parts, strict=True))

    def head_gflops(self, module: nn.Module, frames: int) -> float:
        """fvcore-convention GFLOPs of ``module`` on one video of ``frames`` FEM features."""
        from samplerbench.cost import count_gflops  # lazy: cost.py pulls in fvcore

        assert self.dims is not None
        example = torch.zeros(1, frames, self.dims[0], device=self.device)
        return count_gflops(module.eval(), (example,))

    def state_dict(self) -> dict:
        """Plain values and tensors only, so ``torch.load(..., weights_only=True)`` restores it."""
        net = self.fitted_net()
        assert self.dims is not None
        return {
            "architecture": self.architecture(),
            "dims": list(self.dims),
            "net": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict) -> None:
        """Rebuild the network from the checkpoint's architecture; eval-time fields (fusion, α) stay as
        constructed, so one trained model can be evaluated under several of them."""
        for key, value in state["architecture"].items():
            setattr(self, key, value)
        self.dims = (int(state["dims"][0]), int(state["dims"][1]))
        net = self.build_net(*self.dims).to(state["net"]["standardize.mean"].dtype)
        net.load_state_dict(state["net"])
        self.net = net.to(self.device).eval()
        self.history = list(state["history"])
