"""Frame banks with obvious salient frames, shared by the tests of the learned samplers (NSNet, OCSampler)."""

from __future__ import annotations

import torch
from sklearn.metrics import average_precision_score

from samplerbench.samplers import FrameFeatures

C, T, D, F = 4, 16, 24, 12  # classes, frames, FEM width, recognizer feature width
SALIENT = 3  # frames per video that show the action


def salient_bank(n: int, *, seed: int, with_labels: bool = True, width: int = D) -> FrameFeatures:
    """Videos of one class each; SALIENT consecutive frames show it, the rest is shared background; ``width``: the
    FEM features' width.

    FEM: salient frames = class embedding + noise; background = a shared embedding + a faint embedding of
    another class (a confuser) + noise. The recognizer is confident and right on salient frames and
    mildly confident in the confuser class elsewhere, so picking background frames misleads it.
    """
    gen = torch.Generator().manual_seed(seed)
    world = torch.Generator().manual_seed(99)  # the same classes and background in every bank
    fem_class, rec_class = torch.randn(C, width, generator=world), torch.randn(C, F, generator=world)
    background = torch.randn(width, generator=world)
    y = torch.arange(n) % C
    confuser = (y + 1 + torch.randint(0, C - 1, (n,), generator=gen)) % C
    start = torch.randint(0, T - SALIENT + 1, (n,), generator=gen)
    t = torch.arange(T)
    salient = (t >= start[:, None]) & (t < start[:, None] + SALIENT)  # [n, T]
    s = salient[..., None].float()
    fem = s * fem_class[y][:, None] + (1 - s) * (background + 0.5 * fem_class[confuser][:, None])
    fem = fem + 0.3 * torch.randn(n, T, width, generator=gen)
    onehot = torch.nn.functional.one_hot
    logits = s * 4.0 * onehot(y, C)[:, None].float() + (1 - s) * 1.0 * onehot(confuser, C)[:, None].float()
    logits = logits + 0.3 * torch.randn(n, T, C, generator=gen)
    feats = s * rec_class[y][:, None] + (1 - s) * 0.3 * rec_class[confuser][:, None]
    feats = feats + 0.3 * torch.randn(n, T, F, generator=gen)
    labels = onehot(y, C).float()
    keep = dict(labels=labels, rec_logits=logits, rec_feats=feats) if with_labels else {}
    return FrameFeatures(fem=fem, num_classes=C, **keep)


def video_map(bank: FrameFeatures, selected: torch.Tensor) -> float:
    """mAP of the video score = mean per-frame softmax over the selected frames (how the suite evaluates)."""
    probs = bank.rec_logits.softmax(dim=2)
    picked = probs.gather(1, selected[..., None].expand(-1, -1, C)).mean(dim=1)
    return float(average_precision_score(bank.labels.numpy(), picked.numpy(), average="macro"))


def eval_view(bank: FrameFeatures) -> FrameFeatures:
    """What a sampler sees of a bank at evaluation: its FEM features."""
    return FrameFeatures(fem=bank.fem, num_classes=bank.num_classes)


def wide_bank(n: int, *, seed: int, width: int, classes: int = 10, snr: float = 0.2) -> FrameFeatures:
    """A bank at the width of a real FEM: ``classes`` classes, each video's 4 consecutive salient frames show its
    class embedding at ``snr`` of the noise, the rest a shared background; the recognizer is confident on salient
    frames only. Faint evidence in wide features: what makes NSNet's encoder at the FEM's width unstable."""
    gen, world = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(99)
    embedding, background = torch.randn(classes, width, generator=world), torch.randn(width, generator=world)
    y = torch.arange(n) % classes
    start = torch.randint(0, T - 4 + 1, (n,), generator=gen)
    t = torch.arange(T)
    s = ((t >= start[:, None]) & (t < start[:, None] + 4))[..., None].float()
    fem = s * snr * embedding[y][:, None] + (1 - s) * background + torch.randn(n, T, width, generator=gen)
    onehot = torch.nn.functional.one_hot(y, classes).float()
    logits = s * 4.0 * onehot[:, None] + torch.randn(n, T, classes, generator=gen)
    feats = s * embedding[y][:, None, :F] + 0.3 * torch.randn(n, T, F, generator=gen)
    return FrameFeatures(fem=fem, num_classes=classes, labels=onehot, rec_logits=logits, rec_feats=feats)
