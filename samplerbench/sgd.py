"""The one training rule of every trained model: mini-batch SGD epochs on the training videos outside a
held-out slice (:func:`heldout_videos`), stopped early on the slice's loss.

The first half of ``max_epochs`` is warm-up (losses recorded, never stopping nor kept: a network from scratch
sits at chance there). Then training stops after ``patience`` epochs without improvement, or at ``max_epochs``,
restoring the best epoch's weights; the schedule spans ``max_epochs``, so stopping early changes no earlier step.

Under torchrun the ranks' batches together are exactly the single-process batch (``DistributedSampler``,
global dropout draws: :func:`~samplerbench.distributed.global_draws`), and held-out sums are gathered so every
rank stops at the same epoch. When the row count is not a multiple of the world size, ``DistributedSampler``
repeats the first rows of the permutation to even out the ranks, so W > 1 then sees a few rows twice."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DistributedSampler

from samplerbench import distributed
from samplerbench.stagelog import progress


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


@dataclasses.dataclass(frozen=True)
class Fit:
    """What training did: the mean training loss and the held-out loss of every epoch run (warm-up included),
    and the epoch (0-based) whose weights were kept; no held-out losses when nothing was held out."""

    losses: list[float]
    heldout: list[float]
    best_epoch: int

    @property
    def epochs(self) -> int:
        return len(self.losses)

    def summary(self) -> dict[str, float | int | None]:
        """The run.json record of a trained model: epochs run, the kept epoch (1-based) and its held-out loss."""
        best = self.heldout[self.best_epoch] if self.heldout else None
        return {"epochs": self.epochs, "best_epoch": self.best_epoch + 1, "heldout_loss": best}

    def state(self) -> dict[str, list[float] | int]:
        return {"losses": list(self.losses), "heldout": list(self.heldout), "best_epoch": self.best_epoch}

    @classmethod
    def from_state(cls, state: dict) -> Fit:
        return cls(losses=list(state["losses"]), heldout=list(state["heldout"]), best_epoch=int(state["best_epoch"]))


def _mean(total: float, count: int) -> float:
    totals, counts = zip(*distributed.gather((total, count)), strict=True)
    return sum(totals) / max(1, sum(counts))


def train_epochs(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    *,
    loss: Callable[..., Tensor],
    epoch_inputs: Callable[[int, list[Tensor]], Iterable[tuple]],
    heldout_loss: Callable[[], tuple[float, int]] | None,
    rows: int,
    batch_size: int,
    seed: int,
    max_epochs: int,
    patience: int,
    step_schedule: bool,
    desc: str | None = None,
) -> Fit:
    """Train ``model`` in place by :mod:`this module's <samplerbench.sgd>` rule; leaves it in eval mode with
    the best monitored epoch's weights (the last epoch's without ``heldout_loss``).

    Args:
        model: the module whose ``state_dict`` is kept and restored (``loss`` may run it wrapped in DDP).
        loss: ``loss(*inputs)``, the mean loss of one local batch.
        epoch_inputs: ``epoch_inputs(epoch, batches)`` -> one ``inputs`` tuple per local batch of row positions.
        heldout_loss: ``(sum, count)`` over this rank's held-out rows (eval, no grad); ``None``: run all epochs.
        step_schedule: step ``schedule`` after every step (else after every epoch).
    """
    local = distributed.local_batch(batch_size)
    order = DistributedSampler(range(rows), num_replicas=distributed.world_size(), rank=distributed.rank(),
                               shuffle=True, seed=seed)
    losses: list[float] = []
    heldout: list[float] = []
    first = max_epochs // 2  # the first monitored epoch: the first half is warm-up
    best_epoch, best = -1, None
    for epoch in progress(range(max_epochs), desc=desc, unit="epoch") if desc else range(max_epochs):
        model.train()
        order.set_epoch(epoch)
        batches = list(torch.tensor(list(order), dtype=torch.long).split(local))
        total, seen = 0.0, 0
        for rows_, inputs in zip(batches, epoch_inputs(epoch, batches), strict=True):
            with distributed.global_draws(len(rows_)):
                step_loss = loss(*inputs)
            optimiser.zero_grad(set_to_none=True)
            step_loss.backward()
            optimiser.step()
            if step_schedule:
                schedule.step()
            total += step_loss.item() * len(rows_)
            seen += len(rows_)
        if not step_schedule:
            schedule.step()
        losses.append(_mean(total, seen))
        if heldout_loss is None:
            continue
        model.eval()
        with torch.no_grad():
            heldout.append(_mean(*heldout_loss()))
        if epoch < first:
            continue
        if best_epoch < first or heldout[-1] < heldout[best_epoch]:
            best_epoch, best = epoch, {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    if best is not None:
        model.load_state_dict(best)
    model.eval()
    return Fit(losses=losses, heldout=heldout, best_epoch=best_epoch if heldout else len(losses) - 1)
