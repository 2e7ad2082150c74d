"""NSNet: Non-saliency Suppression Network (Xia, Wu et al., ECCV 2022), as described by its supplementary.

    FEM features [T, D] → standardise → [Linear D→d] → + sinusoidal positional encoding → dropout 0.2
      → TransformerEncoder (L layers, h heads of d/h, FFN hidden d) → z [T, d]
    Frame Scrutinize (FS): Linear d→1 per frame → s^f = sigmoid, BCE against NS pseudo labels
    Video Glimpse (VG):    Linear d→1 per frame → a = softmax over T → s^v = a
        salient     Σ a_i z_i           → dropout 0.9 → FC d→C+1, target: the video's class(es)
        non-salient Σ (1-a_i)/(T-1) z_i → the same FC,   target: the extra "background" class C
    loss = fs_weight · BCE(FS) + vg_weight · (CE(salient) + CE(non-salient))

``d="fem"`` (the ``paper`` preset) works at the FEM's own width as supplementary A.1 says; the default
``d=128`` is a narrow variant for CPU presets. Training follows supplementary A.1's schedule (the fields of
:class:`~samplerbench.samplers.training.TrainableSampler`) plus one stabiliser of this suite's: the gradients' global
norm is clipped at ``clip_grad_norm`` = 5, without which the encoder at the FEM's width does not train at lr 1e-2.
Where the paper is silent (pseudo-label rule, non-salient target, loss weights, heads/layers, encoder dropout,
positional encoding, multi-label targets, ``no_ns``, temporal shift, clipping) each choice is a constructor field;
docs/samplers.md lists them. Non-obvious details: the
complementary weights come from the attention before dropout, so they sum to exactly 1; with T = 1 the
non-salient term is dropped; ``scores`` is the ``add`` fusion whatever fusion ``select`` uses."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samplerbench.core.errors import UserError
from samplerbench.core.sgd import soft_targets
from samplerbench.measures.fusion import check_fusion, fuse_scores, fuse_select
from samplerbench.samplers.base import FrameFeatures, check_budget, register_sampler
from samplerbench.samplers.guiding import (
    GUIDINGS,
    PSEUDO_RULES,
    check_choice,
    class_prototypes,
    guiding_scores,
    ns_pseudo_labels,
)
from samplerbench.samplers.training import Standardize, TrainableSampler, training_dtype


def sinusoidal_encoding(t: int, d: int, *, device: torch.device | str | None = None) -> Tensor:
    """``[T, d]`` float32 Vaswani et al.'s sine/cosine positional encoding, computed on ``device``."""
    position = torch.arange(t, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / d))
    enc = torch.zeros(t, d, device=device)
    enc[:, 0::2] = torch.sin(position * freq)
    enc[:, 1::2] = torch.cos(position * freq)[:, : d // 2]
    return enc


class NSNetNet(nn.Module):
    """The network. ``forward`` is the inference path (both branch scores); training calls :meth:`encode`
    and :meth:`branches` separately because the loss also needs the encoded frames."""

    def __init__(
        self, in_dim: int, num_classes: int, *, d: int | None, heads: int, layers: int,
        pe_dropout: float, encoder_dropout: float, attention_dropout: float, fc_dropout: float,
    ) -> None:
        """``d=None``: the encoder works at ``in_dim`` itself, with no input projection."""
        super().__init__()
        self.standardize = Standardize(in_dim)
        self.proj = nn.Identity() if d is None else nn.Linear(in_dim, d)
        d = in_dim if d is None else d
        self.pe_dropout = nn.Dropout(pe_dropout)
        layer = nn.TransformerEncoderLayer(
            d, heads, dim_feedforward=d, dropout=encoder_dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.fs_head = nn.Linear(d, 1)
        self.vg_attention = nn.Linear(d, 1)
        self.attention_dropout = nn.Dropout(attention_dropout)
        self.fc_dropout = nn.Dropout(fc_dropout)
        self.classifier = nn.Linear(d, num_classes + 1)  # the last class is "background" (non-salient)

    def encode(self, fem: Tensor) -> Tensor:
        x = self.proj(self.standardize(fem))
        x = x + sinusoidal_encoding(x.shape[1], x.shape[2], device=x.device).to(x.dtype)
        return self.encoder(self.pe_dropout(x))

    def branches(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """FS logits and VG attention (softmax over T) from encoded frames."""
        return self.fs_head(z).squeeze(2), self.vg_attention(z).squeeze(2).softmax(dim=1)

    def forward(self, fem: Tensor) -> tuple[Tensor, Tensor]:
        """``(s^f, s^v)``, both ``[B, T]``: what a sampler runs at inference (and what gflops counts)."""
        fs_logits, attention = self.branches(self.encode(fem))
        return fs_logits.sigmoid(), attention


FEM_WIDTH = "fem"  # NSNet's ``d``: the encoder at the FEM features' own width, as supplementary A.1 specifies
NON_SALIENT: tuple[str, ...] = ("background", "uniform", "none")  # targets of the non-salient representation


@register_sampler("nsnet")
@dataclasses.dataclass(kw_only=True, eq=False)
class NSNetSampler(TrainableSampler):
    """NSNet with its two branches fused by ``fusion`` (index union, α = 0.6, by default). ``d``: the encoder's
    width (features projected to it) or ``"fem"`` (the FEM's own width, no projection)."""

    d: int | str = 128
    heads: int = 4
    layers: int = 2
    pe_dropout: float = 0.2
    encoder_dropout: float = 0.1
    attention_dropout: float = 0.2
    fc_dropout: float = 0.9
    guiding: str = "prototype"
    eps: float = 0.30
    pseudo_rule: str = "minmax"
    pseudo_threshold: float = 0.5
    pseudo_ratio: float = 0.3
    fs_weight: float = 1.0
    vg_weight: float = 1.0
    non_salient: str = "background"
    no_ns: bool = False
    fusion: str = "union"
    alpha: float = 0.6
    # The suite's reading, not the paper's (which names no clipping): at the FEM's width (1280) and lr 1e-2 the
    # unclipped encoder's loss stays near chance until the lr decays and its attention collapses onto few frames.
    clip_grad_norm: float | None = 5.0
    # the class prototypes of the last fit: training only, not part of the state
    prototypes: Tensor | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("guiding score", self.guiding, GUIDINGS)
        check_choice("pseudo-label rule", self.pseudo_rule, PSEUDO_RULES)
        check_choice("non-salient target", self.non_salient, NON_SALIENT)
        check_fusion(self.fusion)
        for name in ("heads", "layers", *(() if self.d == FEM_WIDTH else ("d",))):
            value = getattr(self, name)
            if isinstance(value, str) or value < 1:
                raise UserError(f"nsnet: {name}={value!r} must be a positive integer"
                                + (f" or {FEM_WIDTH!r} (the FEM's width)" if name == "d" else ""))
        if self.d != FEM_WIDTH:
            self.check_width(self.d)

    def check_width(self, width: int) -> None:
        """The encoder's ``width`` must split into ``heads`` equal heads."""
        if width % self.heads:
            what = f"d={self.d}" if self.d != FEM_WIDTH else f"d={FEM_WIDTH!r} (the FEM's width {width})"
            raise UserError(f"nsnet: {what} must be divisible by heads={self.heads}")

    def architecture(self) -> dict[str, Any]:
        return {"d": self.d, "heads": self.heads, "layers": self.layers, "no_ns": self.no_ns}

    def build_net(self, in_dim: int, num_classes: int) -> NSNetNet:
        if self.d == FEM_WIDTH:
            self.check_width(in_dim)
        return NSNetNet(
            in_dim, num_classes, d=None if self.d == FEM_WIDTH else self.d, heads=self.heads, layers=self.layers,
            pe_dropout=self.pe_dropout, encoder_dropout=self.encoder_dropout,
            attention_dropout=self.attention_dropout, fc_dropout=self.fc_dropout,
        )

    def class_prototypes(self, train: FrameFeatures) -> Tensor | None:
        """The prototype of every class from the training features (supplementary A.1); ``None`` for response
        guiding, which needs none."""
        if self.guiding != "prototype":
            return None
        train.require("labels", "rec_logits", "rec_feats", who=self.name)
        return class_prototypes(train.rec_logits, train.rec_feats, train.labels.float(), eps=self.eps)

    def pseudo_labels(self, train: FrameFeatures, *, prototypes: Tensor | None = None) -> Tensor:
        """The binary NS pseudo labels ``[N, T]`` of the training frames: the Frame Scrutinize targets, from
        the guiding score of the recognizer's outputs and the video labels (never from annotated segments).
        ``prototypes``: computed from ``train`` itself when not given."""
        train.require("labels", "rec_logits", "rec_feats", who=self.name)
        if prototypes is None:
            prototypes = self.class_prototypes(train)
        guiding = guiding_scores(
            self.guiding, rec_logits=train.rec_logits, rec_feats=train.rec_feats, labels=train.labels.float(),
            prototypes=prototypes,
        )
        return ns_pseudo_labels(guiding, rule=self.pseudo_rule, threshold=self.pseudo_threshold,
                                ratio=self.pseudo_ratio)

    def prepare(self, train: FrameFeatures) -> None:
        """The class prototypes, once, from every view of every training video."""
        self.prototypes = self.class_prototypes(train)

    def training_tensors(self, train: FrameFeatures, *, draws: torch.Generator) -> tuple[Tensor, ...]:
        """FEM features, soft video targets over C+1 classes, and the NS pseudo labels of every frame of the
        epoch's rows (their guiding score against the prototypes of :meth:`prepare`)."""
        dtype = training_dtype(train.fem)
        labels = train.labels.to(dtype)
        target = F.pad(soft_targets(labels), (0, 1))
        return train.fem.to(dtype), target, self.pseudo_labels(train, prototypes=self.prototypes).to(dtype)

    def training_loss(self, net: nn.Module, fem: Tensor, target: Tensor, pseudo: Tensor) -> Tensor:
        z = net.encode(fem)
        fs_logits, attention = net.branches(z)
        salient = torch.einsum("bt,btd->bd", net.attention_dropout(attention), z)
        vg = F.cross_entropy(net.classifier(net.fc_dropout(salient)), target)
        if self.no_ns:
            return self.vg_weight * vg
        b, t = fem.shape[:2]
        if t > 1 and self.non_salient != "none":
            complement = (1.0 - attention) / (t - 1)
            non_salient = net.classifier(net.fc_dropout(torch.einsum("bt,btd->bd", complement, z)))
            classes = target.shape[1] - 1
            if self.non_salient == "background":
                vg = vg + F.cross_entropy(non_salient, torch.full((b,), classes, device=fem.device))
            else:  # uniform over the C classes, nothing on the background
                uniform = F.pad(torch.full((b, classes), 1.0 / classes, device=fem.device, dtype=fem.dtype), (0, 1))
                vg = vg + F.cross_entropy(non_salient, uniform)
        fs = F.binary_cross_entropy_with_logits(fs_logits, pseudo)
        return self.fs_weight * fs + self.vg_weight * vg

    def branch_scores(self, batch: FrameFeatures) -> tuple[Tensor, Tensor]:
        """``(s^f, s^v)``, ``[B, T]`` each, in eval mode."""
        sf, sv = self.infer(batch.fem, lambda net, fem: net(fem))
        return sf, sv

    def scores(self, batch: FrameFeatures) -> Tensor:
        """The saliency curve for plots: α·s^f + (1-α)·s^v/max(s^v), or s^v alone for ``no_ns``."""
        sf, sv = self.branch_scores(batch)
        if self.no_ns:
            return sv
        return fuse_scores(sf, sv, fusion="add", alpha=self.alpha)

    def select(self, batch: FrameFeatures, k: int) -> Tensor:
        """The two branches fused by ``self.fusion`` (``"vg"`` for ``no_ns``: its FS head is untrained)."""
        check_budget(k, batch.num_frames)
        sf, sv = self.branch_scores(batch)
        return fuse_select(sf, sv, k, fusion="vg" if self.no_ns else self.fusion, alpha=self.alpha)

    def gflops(self, frames: int) -> float:
        """The whole network at inference (encoder + both heads) on one video of ``frames`` features."""
        return self.head_gflops(self.fitted_net(), frames)
