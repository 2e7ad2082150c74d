"""Mini-batch SGD epochs (:func:`train_epochs`) and the two ways a model here stops: at the end of its schedule
with its final weights (a published sampler's paper schedule, :class:`Schedule`), or by the suite's held-out rule
(the backbones' rule, an option for samplers): train on the videos outside a held-out slice
(:func:`heldout_videos`) and stop early on the slice's loss.

Under the held-out rule the first half of the schedule's ``epochs`` is warm-up (losses recorded, never stopping nor
kept: a network from scratch sits at chance there). Then training stops after ``patience`` epochs without
improvement, or at ``epochs``, restoring the best epoch's weights; the learning-rate curve spans every epoch, so
stopping early changes no earlier step.

Under torchrun the ranks' batches together are exactly the single-process batch (``DistributedSampler``,
global dropout draws: :func:`~samplerbench.core.distributed.global_draws`), and held-out sums are gathered so every
rank stops at the same epoch. When the row count is not a multiple of the world size, ``DistributedSampler``
repeats the first rows of the permutation to even out the ranks, so W > 1 then sees a few rows twice."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DistributedSampler

from samplerbench.core import distributed
from samplerbench.core.stagelog import progress


def soft_targets(labels: Tensor) -> Tensor:
    """Multi-hot ``[N, C]`` -> a distribution over each video's labels; a row without labels stays all zeros."""
    return labels / labels.sum(dim=1, keepdim=True).clamp_min(1.0)


def heldout_videos(video_ids: Sequence[str], *, fraction: float, seed: int) -> Tensor:
    """``[N]`` bool: the rows of the held-out videos, ``round(fraction · V)`` of the V distinct videos (at least 1,
    never all; none when V < 2), chosen by a seeded hash of the id: the same in every process and row order,
    with all rows of a video on one side."""
    videos = sorted(set(video_ids), key=lambda v: hashlib.sha256(f"{seed}:{v}".encode()).hexdigest())
    count = min(max(1, round(fraction * len(videos))), len(videos) - 1)
    held = set(videos[:count])
    return torch.tensor([v in held for v in video_ids], dtype=torch.bool)


LR_DECAYS: tuple[str, ...] = ("step", "cosine", "one_cycle")
ONE_CYCLE_WARMUP = 0.15  # the share of a one-cycle schedule's steps over which the rate rises to its peak


@dataclasses.dataclass(frozen=True, kw_only=True)
class Schedule:
    """How one network trains, the one value every trainer here takes (:func:`train_epochs`): SGD with momentum
    (Nesterov's with ``nesterov``) over ``epochs`` passes in batches of ``batch_size``, a learning-rate curve,
    optional gradient-norm clipping, and the stop rule: every training video and the final weights, or
    (``early_stop``) the held-out rule of this module, which holds out ``holdout_fraction`` of the videos
    (:func:`heldout_rows`) and stops after ``patience`` epochs without improvement.

    ``lr_decay``: ``"step"`` multiplies the rate by ``gamma`` after each of ``milestones``, given as fractions of
    ``epochs`` (50/120 is "after the 50th of 120 epochs", and stays the same share when ``epochs`` changes);
    ``"cosine"`` follows half a cosine from ``lr`` to 0 over the epochs (mmcv's ``CosineAnnealing``, by epoch);
    ``warmup_epochs`` ramps either linearly up to the curve over the first epochs. ``"one_cycle"`` (the suite's
    backbones) is torch's ``OneCycleLR`` stepped after every batch: the rate rises to ``lr`` over the first
    :data:`ONE_CYCLE_WARMUP` of the steps and anneals towards 0, cycling the momentum as torch does."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    lr_decay: str = "step"
    milestones: tuple[float, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    clip_grad_norm: float | None = None
    early_stop: bool = False
    patience: int = 3
    holdout_fraction: float = 0.15

    def __post_init__(self) -> None:
        problems = [
            (self.lr_decay not in LR_DECAYS, f"lr_decay = {self.lr_decay!r}: valid: {', '.join(LR_DECAYS)}"),
            (self.epochs < 1 or self.batch_size < 1, "epochs and batch_size must be at least 1"),
            (not self.lr > 0 or not 0 <= self.momentum < 1 or self.weight_decay < 0,
             "lr must be above 0, momentum in [0, 1), weight_decay at least 0"),
            (self.nesterov and not self.momentum > 0, "nesterov needs a momentum above 0"),
            (self.per_step and (self.milestones or self.warmup_epochs),
             "one_cycle warms up and decays by itself: no milestones or warmup_epochs"),
            (not all(0 < m <= 1 for m in self.milestones), "milestones are fractions of the epochs, in (0, 1]"),
            (not 0 <= self.warmup_epochs < self.epochs, "warmup_epochs must be at least 0 and below epochs"),
            (self.clip_grad_norm is not None and not self.clip_grad_norm > 0, "clip_grad_norm must be above 0"),
            (not 0 < self.holdout_fraction < 1 or self.patience < 1,
             "holdout_fraction must be in (0, 1) and patience at least 1"),
        ]
        for failed, problem in problems:
            if failed:
                raise ValueError(problem)

    def milestone_epochs(self) -> list[int]:
        """The 0-based epochs from which each step decay holds."""
        return sorted({round(self.epochs * f) for f in self.milestones}) if self.lr_decay == "step" else []

    @property
    def per_step(self) -> bool:
        """Whether the learning rate moves after every step (one-cycle), not after every epoch."""
        return self.lr_decay == "one_cycle"

    def lr_factor(self, epoch: int) -> float:
        """The learning rate of 0-based ``epoch`` as a multiple of ``lr`` (step and cosine decay)."""
        if self.lr_decay == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        else:
            factor = self.gamma ** sum(epoch >= m for m in self.milestone_epochs())
        if epoch < self.warmup_epochs:
            factor *= (epoch + 1) / (self.warmup_epochs + 1)
        return factor

    def optimiser(self, params: Iterable[nn.Parameter]) -> torch.optim.SGD:
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
                               nesterov=self.nesterov)

    def scheduler(self, optimiser: torch.optim.Optimizer, *,
                  steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
        """The learning-rate curve on ``optimiser``: stepped after every step when :attr:`per_step`, else once per
        epoch."""
        if self.per_step:
            return torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=self.lr,
                                                       total_steps=self.epochs * steps_per_epoch,
                                                       pct_start=ONE_CYCLE_WARMUP)
        return torch.optim.lr_scheduler.LambdaLR(optimiser, self.lr_factor)

    def describe(self) -> str:
        """The schedule in words, for tables and run.json."""
        decay = {"cosine": "cosine to 0",
                 "one_cycle": f"one-cycle (rising over the first {ONE_CYCLE_WARMUP:.0%} of the steps)",
                 "step": " and ".join(f"×{self.gamma:g} after epoch {m}" for m in self.milestone_epochs())
                 or "constant"}[self.lr_decay]
        extras = [f"weight decay {self.weight_decay:g}"] if self.weight_decay else []
        extras += [f"{self.warmup_epochs} warm-up epochs"] if self.warmup_epochs else []
        extras += [f"gradient norm clipped at {self.clip_grad_norm:g}"] if self.clip_grad_norm else []
        stop = (f"held-out early stopping ({self.holdout_fraction:g} of the videos, patience {self.patience}, best "
                "epoch kept)" if self.early_stop else "every training video, final weights")
        momentum = f"{'Nesterov ' if self.nesterov else ''}momentum {self.momentum:g}"
        return (f"SGD {momentum}, batch {self.batch_size}, lr {self.lr:g} {decay}, {self.epochs} "
                f"epochs{''.join(', ' + e for e in extras)}; {stop}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScheduleOverride:
    """What a run sets of every trainable sampler's schedule over the sampler's own (its paper's): each field that
    is not ``None`` replaces the :class:`Schedule` field of its name."""

    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    early_stop: bool | None = None
    patience: int | None = None
    holdout_fraction: float | None = None

    def changes(self) -> dict[str, Any]:
        """The fields set, by name (a trainable sampler's schedule fields are named as :class:`Schedule`'s)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}


def heldout_rows(video_ids: Sequence[str], *, schedule: Schedule, seed: int) -> Tensor:
    """``[N]`` bool: the rows ``schedule`` never trains on: :func:`heldout_videos` under its held-out rule
    (``early_stop``), none otherwise."""
    if not schedule.early_stop:
        return torch.zeros(len(video_ids), dtype=torch.bool)
    return heldout_videos(video_ids, fraction=schedule.holdout_fraction, seed=seed)


@dataclasses.dataclass(frozen=True)
class Fit:
    """What training did: the mean training loss, the mean gradient norm (before any clipping) and the held-out
    loss of every epoch run (warm-up included), and the epoch (0-based) whose weights were kept; no held-out
    losses when nothing was held out."""

    losses: list[float]
    heldout: list[float]
    best_epoch: int
    grad_norms: list[float] = dataclasses.field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.losses)

    def summary(self) -> dict[str, float | int | None]:
        """The run.json record of a trained model: epochs run, the kept epoch (1-based) and its held-out loss."""
        best = self.heldout[self.best_epoch] if self.heldout else None
        return {"epochs": self.epochs, "best_epoch": self.best_epoch + 1, "heldout_loss": best}

    def state(self) -> dict[str, list[float] | int]:
        return {"losses": list(self.losses), "heldout": list(self.heldout), "best_epoch": self.best_epoch,
                "grad_norms": list(self.grad_norms)}

    @classmethod
    def from_state(cls, state: dict) -> Fit:
        """Also reads the states of before ``grad_norms`` was recorded."""
        return cls(losses=list(state["losses"]), heldout=list(state["heldout"]), best_epoch=int(state["best_epoch"]),
                   grad_norms=list(state.get("grad_norms", [])))


def _mean(total: float, count: int) -> float:
    totals, counts = zip(*distributed.gather((total, count)), strict=True)
    return sum(totals) / max(1, sum(counts))


def train_epochs(
    model: nn.Module,
    *,
    schedule: Schedule,
    loss: Callable[..., Tensor],
    epoch_inputs: Callable[[int, list[Tensor]], Iterable[tuple]],
    heldout_loss: Callable[[], tuple[float, int]] | None,
    rows: int,
    seed: int,
    desc: str | None = None,
) -> Fit:
    """Train ``model`` in place as ``schedule`` says (its optimiser, learning-rate curve, clipping, epochs, batch and
    patience), by :mod:`this module's <samplerbench.core.sgd>` rule; leaves it in eval mode with the best monitored
    epoch's weights (the last epoch's without ``heldout_loss``).

    Args:
        model: the module whose parameters are trained and whose ``state_dict`` is kept and restored (``loss`` may
            run it wrapped in DDP or compiled).
        loss: ``loss(*inputs)``, the mean loss of one local batch.
        epoch_inputs: ``epoch_inputs(epoch, batches)`` -> one ``inputs`` tuple per local batch of row positions.
        heldout_loss: ``(sum, count)`` over this rank's held-out rows (eval, no grad); ``None`` (no early stop, or
            nothing held out): run every epoch.
        rows: the training rows; ``seed`` shuffles them, epoch by epoch.
    """
    local = distributed.local_batch(schedule.batch_size)
    order = DistributedSampler(range(rows), num_replicas=distributed.world_size(), rank=distributed.rank(),
                               shuffle=True, seed=seed)
    optimiser = schedule.optimiser(model.parameters())
    curve = schedule.scheduler(optimiser, steps_per_epoch=max(1, -(-len(order) // local)))
    losses: list[float] = []
    heldout: list[float] = []
    grad_norms: list[float] = []
    first = schedule.epochs // 2  # the first monitored epoch: the first half is warm-up
    best_epoch, best = -1, None
    epochs = range(schedule.epochs)
    for epoch in progress(epochs, desc=desc, unit="epoch") if desc else epochs:
        model.train()
        order.set_epoch(epoch)
        batches = list(torch.tensor(list(order), dtype=torch.long).split(local))
        total, seen, norms = 0.0, 0, 0.0
        for rows_, inputs in zip(batches, epoch_inputs(epoch, batches), strict=True):
            with distributed.global_draws(len(rows_)):
                step_loss = loss(*inputs)
            optimiser.zero_grad(set_to_none=True)
            step_loss.backward()
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads)
            if schedule.clip_grad_norm is not None:
                torch.nn.utils.clip_grads_with_norm_(model.parameters(), schedule.clip_grad_norm, norm)
            optimiser.step()
            if schedule.per_step:
                curve.step()
            total += step_loss.item() * len(rows_)
            seen += len(rows_)
            norms += norm.item() * len(rows_)
        if not schedule.per_step:
            curve.step()
        losses.append(_mean(total, seen))
        grad_norms.append(_mean(norms, seen))
        if heldout_loss is None:
            continue
        model.eval()
        with torch.no_grad():
            heldout.append(_mean(*heldout_loss()))
        if epoch < first:
            continue
        if best_epoch < first or heldout[-1] < heldout[best_epoch]:
            best_epoch, best = epoch, {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= schedule.patience:
            break
    if best is not None:
        model.load_state_dict(best)
    model.eval()
    return Fit(losses=losses, heldout=heldout, best_epoch=best_epoch if heldout else len(losses) - 1,
               grad_norms=grad_norms)
