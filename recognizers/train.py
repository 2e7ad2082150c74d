"""Training frame classifiers (recognizer and FEM) and caching their per-frame outputs.

The paper trains its recognizer "w/o TSN" (one frame per video per step) for the main results and reports
"w/ TSN" (K segments per video, logits averaged) in Table 4; the FEM backbone is trained the same way as a
frame classifier and then frozen. Multi-label videos are trained with a soft target that spreads the mass
evenly over the video's labels, which reduces to ordinary cross-entropy for single-label data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DistributedSampler
from torchvision.transforms.v2 import functional as TF

from samplerbench import distributed
from samplerbench.recognizers.backbones import FrameClassifier
from samplerbench.stagelog import progress


def resize_frames(frames: Tensor, resolution: int) -> Tensor:
    """uint8 ``[..., 3, H, W]`` -> uint8 ``[..., 3, r, r]``; a no-op at the cached resolution."""
    if frames.shape[-1] == resolution and frames.shape[-2] == resolution:
        return frames
    lead = frames.shape[:-3]
    out = TF.resize(frames.reshape(-1, *frames.shape[-3:]), [resolution, resolution], antialias=True)
    return out.reshape(*lead, *out.shape[-3:])


def soft_targets(labels: Tensor) -> Tensor:
    """Multi-hot ``[N, C]`` -> a distribution over the video's labels (one-hot for single-label videos)."""
    return labels / labels.sum(dim=1, keepdim=True).clamp_min(1.0)


def _pick_frames(num_frames: int, offsets: Tensor) -> Tensor:
    """One frame inside each of ``segments`` equal parts of the T frames: ``[batch, segments]``.

    ``offsets`` (uniform in ``[0, 1)``, ``[batch, segments]``) place the pick inside its part. ``segments=1``
    is "w/o TSN" (any frame of the video); ``segments=K`` is TSN's segment sampling.
    """
    segments = offsets.shape[1]
    edges = torch.linspace(0, num_frames, segments + 1)
    width = (edges[1:] - edges[:-1]).clamp_min(1.0)
    return (edges[:-1] + offsets * width).floor().long().clamp_(0, num_frames - 1)


def train_frame_classifier(
    model: FrameClassifier,
    frames: Tensor,
    labels: Tensor,
    *,
    segments: int,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: str,
    resolution: int,
    desc: str,
) -> list[float]:
    """Train in place with SGD (momentum 0.9, one-cycle schedule, horizontal flips); returns the loss per epoch.

    Under torchrun the model is trained with DistributedDataParallel and the *global* batch is the same as in
    one process: ``DistributedSampler(seed=seed)`` draws the same permutation for any world size and rank r
    takes every W-th index, so one step's rank-local batches of ``batch_size / W`` rows together are exactly
    the single-process batch; DDP averages the ranks' mean losses' gradients, i.e. the global mean's. The
    augmentation of a row (frame picks, flip) is drawn from a table keyed by (seed, epoch, row), not from a
    per-rank stream, and dropout and stochastic-depth masks are drawn for the global batch
    (:func:`~samplerbench.distributed.global_draws`), so neither depends on which rank handles the row. What
    still differs with W > 1 is the order of floating-point sums, which training from scratch amplifies
    (see ``RunConfig.dtype``). When the row count is not a multiple of W, DistributedSampler repeats the
    first rows of the permutation to even out the ranks.

    Args:
        frames: uint8 ``[N, T, 3, H, W]``, the cached training frames (one row per temporal-shift view).
        labels: multi-hot ``[N, C]``.
        segments: 1 trains "w/o TSN"; K trains "w/ TSN" with K segments and averaged logits.
    """
    local = distributed.local_batch(batch_size)
    torch.manual_seed(seed)  # dropout: the same stream on every rank (see distributed.GlobalDraws)
    net = distributed.wrap(model.to(device).train(), device=device)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4, nesterov=True)
    order = DistributedSampler(range(len(frames)), num_replicas=distributed.world_size(), rank=distributed.rank(),
                               shuffle=True, seed=seed)
    steps = epochs * max(1, -(-len(order) // local))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    targets = soft_targets(labels)
    augment = torch.Generator().manual_seed(seed)
    history = []
    for epoch in progress(range(epochs), desc=desc, unit="epoch"):
        order.set_epoch(epoch)
        draws = torch.rand(len(frames), segments + 1, generator=augment)  # per row: picks, then flip
        total, seen = 0.0, 0
        for rows in torch.tensor(list(order), dtype=torch.long).split(local):
            picks = _pick_frames(frames.shape[1], draws[rows, :segments])
            clip = frames[rows.unsqueeze(1), picks]  # [b, segments, 3, H, W]
            flip = (draws[rows, segments] < 0.5).repeat_interleave(segments)
            x = resize_frames(clip.flatten(0, 1), resolution)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x).to(device)
            with distributed.global_draws(len(rows)):
                _, logits = net(x)
            logits = logits.view(len(rows), segments, -1).mean(dim=1)
            loss = F.cross_entropy(logits, targets[rows].to(device, logits.dtype))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(rows)
            seen += len(rows)
        totals, counts = zip(*distributed.gather((total, seen)), strict=True)
        history.append(sum(totals) / sum(counts))
    model.eval()
    return history


@torch.inference_mode()
def extract_outputs(
    model: FrameClassifier, frames: Tensor, *, resolution: int, device: str, batch_size: int = 256, desc: str
) -> tuple[Tensor, Tensor]:
    """Per-frame (features ``[N,T,F]``, logits ``[N,T,C]``) of every cached frame, in eval mode, in the
    model's floating-point type."""
    model.to(device).eval()
    flat = frames.flatten(0, 1)
    feats, logits = [], []
    for start in progress(range(0, len(flat), batch_size), desc=desc, unit="batch"):
        f, lg = model(resize_frames(flat[start : start + batch_size], resolution).to(device))
        feats.append(f.cpu())
        logits.append(lg.cpu())
    n, t = frames.shape[:2]
    return torch.cat(feats).view(n, t, -1), torch.cat(logits).view(n, t, -1)
