"""What the trainable samplers (NSNet, SCSampler, OCSampler) share: a training schedule made of fields, the
per-epoch temporal random shift, input standardisation, checkpoints.

Each sampler trains by its own paper's (or its authors' code's) schedule by default: the schedule fields'
defaults are NSNet's (supplementary A.1) and a subclass redeclares the ones its paper sets otherwise. The suite's
held-out early stopping (:mod:`samplerbench.core.sgd`) is an option (``early_stop``), never a default."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from samplerbench.core import distributed
from samplerbench.core.sgd import Fit, Schedule, heldout_rows, train_epochs
from samplerbench.samplers.base import FrameFeatures, Sampler
from samplerbench.samplers.shift import shift_views, video_runs

EVAL_CHUNK = 4096  # videos per forward pass at evaluation: bounds memory, not a loop over videos


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


HELDOUT_EPOCH = -1  # the "epoch" of the held-out rows' draws (temporal shift, a policy's samples): one, fixed


def fit_sgd(
    net: nn.Module,
    loss_fn: Callable[..., Tensor],
    epoch_tensors: Callable[[int], tuple[Tensor, ...]],
    heldout: tuple[Tensor, ...] | None,
    *,
    rows: int,
    schedule: Schedule,
    seed: int,
    device: str,
) -> Fit:
    """Mini-batch SGD over the ``rows`` rows of ``epoch_tensors(epoch)`` by :func:`~samplerbench.core.sgd.train_epochs`
    as ``schedule`` says, stopped early on the mean ``loss_fn(net, *batch)`` of the ``heldout`` rows when they are
    given; random numbers a loss needs must be among its tensors."""
    torch.manual_seed(seed)  # dropout: the same stream on every rank (see distributed.GlobalDraws)
    objective = distributed.wrap(_Objective(net, loss_fn), device=device)

    def epoch_inputs(epoch: int, batches: list[Tensor]) -> Iterable[tuple[Tensor, ...]]:
        tensors = epoch_tensors(epoch)
        return (tuple(x[b].to(device) for x in tensors) for b in batches)

    def heldout_loss() -> tuple[float, int]:
        assert heldout is not None
        mine = torch.arange(heldout[0].shape[0])[distributed.shard(heldout[0].shape[0])]
        total = sum(loss_fn(net, *(x[chunk].to(device) for x in heldout)).item() * len(chunk)
                    for chunk in mine.split(EVAL_CHUNK))
        return total, len(mine)

    return train_epochs(net, schedule=schedule, loss=objective, epoch_inputs=epoch_inputs,
                        heldout_loss=heldout_loss if heldout is not None else None, rows=rows, seed=seed)


class Standardize(nn.Module):
    """Per-channel standardisation with statistics of the training frames, kept as buffers (not a LayerNorm: a
    frame's overall activation level carries saliency)."""

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
    """A sampler whose network is trained by :func:`~samplerbench.core.sgd.train_epochs` as its :meth:`schedule` says.
    Subclasses implement :meth:`build_net`, :meth:`prepare`, :meth:`training_tensors` and :meth:`training_loss`;
    ``fit`` is deterministic given ``seed`` and leaves the caller's random state alone. ``temporal_shift``: see
    :mod:`.shift`. The schedule fields are :class:`~samplerbench.core.sgd.Schedule`'s; their defaults here are NSNet's
    (supplementary A.1: SGD momentum 0.9, batch 64, lr 1e-2 ×0.1 after epochs 50 and 75 of 120, every training
    video, final weights)."""

    trainable = True
    uses_fem = True
    # The FrameFeatures field the network reads, per frame: its width sizes the network (``dims``) and its training
    # frames' statistics standardise it; "fem" for every FEM-based sampler, "rec_feats" for FrameExit's gates.
    net_input: ClassVar[str] = "fem"
    seed: int = 0
    epochs: int = 120
    batch_size: int = 64
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay: str = "step"
    milestones: tuple[float, ...] = (50 / 120, 75 / 120)
    warmup_epochs: int = 0
    clip_grad_norm: float | None = None
    early_stop: bool = False  # the suite's held-out rule instead of the paper's schedule (an option, ours)
    patience: int = 3
    holdout_fraction: float = 0.15
    device: str = "cpu"
    temporal_shift: bool = True  # per epoch and segment, a fresh draw among the decoded views (.shift)
    net: nn.Module | None = dataclasses.field(default=None, init=False, repr=False)
    training: Fit | None = dataclasses.field(default=None, init=False, repr=False)
    dims: tuple[int, int] | None = dataclasses.field(default=None, init=False, repr=False)  # (input width, C)

    @abc.abstractmethod
    def build_net(self, in_dim: int, num_classes: int) -> nn.Module:
        """A fresh network on ``in_dim``-wide :attr:`net_input` features; its first module must be a
        :class:`Standardize` named ``standardize``."""

    def prepare(self, train: FrameFeatures) -> None:
        """What training computes once from the whole training split's features (every view of every video) before the
        epochs, e.g. NSNet's class prototypes; nothing by default."""

    @abc.abstractmethod
    def training_tensors(self, train: FrameFeatures, *, draws: torch.Generator) -> tuple[Tensor, ...]:
        """Row-aligned tensors the loss reads in one epoch, FEM features first: ``train`` is the epoch's features
        (one row per video under temporal shift), ``draws`` the epoch's CPU generator for any random numbers the
        loss needs: a draw inside the step would differ between torchrun's world sizes."""

    @abc.abstractmethod
    def training_loss(self, net: nn.Module, *batch: Tensor) -> Tensor:
        """The training loss of one mini-batch."""

    def architecture(self) -> dict[str, Any]:
        """The fields fixed by training (network shape, training variant); stored in checkpoints and restored
        on load."""
        return {}

    def __post_init__(self) -> None:
        self.schedule()  # a ValueError for schedule fields that make no schedule

    def schedule(self) -> Schedule:
        """The schedule of :meth:`fit`, from this sampler's fields."""
        return Schedule(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
                        weight_decay=self.weight_decay, lr_decay=self.lr_decay, milestones=self.milestones,
                        warmup_epochs=self.warmup_epochs, clip_grad_norm=self.clip_grad_norm,
                        early_stop=self.early_stop, patience=self.patience, holdout_fraction=self.holdout_fraction)

    def fit(self, train: FrameFeatures) -> None:
        train.require("labels", "rec_logits", "rec_feats", who=self.name)
        schedule = self.schedule()
        ids = train.video_ids or tuple(str(row) for row in range(train.batch_size))
        held = heldout_rows(ids, schedule=schedule, seed=self.seed)
        fitted, heldout = train.take(~held), train.take(held)
        fork_devices = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(self.seed)
            self.prepare(fitted)
            inputs = getattr(train, self.net_input)
            self.dims = (inputs.shape[2], train.num_classes)
            self.net = net = self.build_net(*self.dims).to(self.device, training_dtype(inputs))
            net.standardize.set_statistics(getattr(fitted, self.net_input))

            def tensors(feats: FrameFeatures, draws: torch.Generator) -> tuple[Tensor, ...]:
                return self.training_tensors(shift_views(feats, draws) if self.temporal_shift else feats, draws=draws)

            held_tensors = tensors(heldout, epoch_generator(self.seed, HELDOUT_EPOCH)) if heldout.batch_size else None
            self.training = fit_sgd(
                net, self.training_loss, lambda epoch: tensors(fitted, epoch_generator(self.seed, epoch)),
                held_tensors,
                rows=len(video_runs(fitted)[0]) if self.temporal_shift else fitted.batch_size, schedule=schedule,
                seed=self.seed, device=self.device)

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
        """``forward(net, chunk)`` in eval mode without autograd, batched in chunks of ``fem`` (the batch's
        :attr:`net_input` features); float32 results on the device of ``fem``. The network runs on its own device, so
        CPU features (the cached ones) is scored by a GPU network chunk by chunk; with ``fem`` on the network's device
        nothing is copied."""
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
        from samplerbench.measures.cost import count_gflops  # lazy: cost.py pulls in fvcore

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
            "training": self.training.state() if self.training else None,
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
        self.training = state["training"] and Fit.from_state(state["training"])
