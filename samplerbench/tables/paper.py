"""The NSNet paper's ablations (Tables 1–4, Fig. 1) beside its ActivityNet figures: NSNet variants fitted by the
run's pipeline (``b.pipe``: its fits, features and splits), scored by the
:class:`~samplerbench.evaluation.evaluator.Evaluator`, and NSNet's own API (branch scores, pseudo labels) for what
only NSNet has. A run without NSNet writes none of these."""

from __future__ import annotations

import itertools
from typing import Any

from samplerbench.config import Network, RunConfig
from samplerbench.evaluation.evaluator import Evaluator, add_reference_intervals
from samplerbench.measures.cost import FLOP_NOTE, backbone_gflops
from samplerbench.measures.evaluate import Evaluation, combine_fits
from samplerbench.measures.fusion import FUSIONS, fuse_select, union_effective_alpha
from samplerbench.measures.metrics import frame_top1, label_agreement, per_class_average_precision, saliency_by_class
from samplerbench.samplers import FrameFeatures, Sampler, get_sampler_class
from samplerbench.samplers.base import field_values
from samplerbench.samplers.guiding import PSEUDO_RULES
from samplerbench.samplers.nsnet import FEM_WIDTH, NON_SALIENT, NSNetSampler
from samplerbench.stages.source import Outputs
from samplerbench.tables.registry import TABLES, TableSpec, register_table

# The paper's ActivityNet v1.3 figures (ResNet-101 recognizer, MobileNetV2 FEM), printed beside our rows except in
# a smoke test, with a note on datasets other than ActivityNet (report.printed_rows, report.paper_caveat).
PAPER_GUIDING = {"response": 74.1, "prototype": 74.7}
PAPER_FUSION = {"max": 75.1, "mul": 75.2, "add": 75.3, "join": 75.1, "intersection": 74.9, "union": 75.5}
PAPER_FEM = {"shufflenet_v2_x1_0": (70.8, 0.15), "mobilenet_v2": (75.5, 0.31), "efficientnet_b0": (76.0, 0.39)}
# Table 4's rows in order; our preset's table_rec_variants are set beside them row by row (smaller ResNets on CPU).
PAPER_RECOGNIZER = (("resnet101", False, 75.5), ("resnet101", True, 80.8), ("resnet152", True, 83.0))
PAPER_ORACLE = 96.3
# What a row's paper_comparison says when its paper figure is no like-for-like reference
FROM_SCRATCH_FEM = ("not comparable: this FEM is trained from scratch here, so the rows rank by how well each "
                    "trained (fem_frame_top1), not by the backbone; the paper's FEMs start from ImageNet")
WEAKER_RECOGNIZER = ("not comparable: a weaker recognizer (rec_frame_top1) than the row above ({above}), where the "
                     "paper's row is a stronger one")


def _position(items: tuple | list, item) -> int | None:
    return items.index(item) if item in items else None


def nsnet(b: Evaluator, *, fem: Outputs | None = None, rec: Outputs | None = None,
           **fields: Any) -> tuple[Sampler, FrameFeatures]:
    """The fitted NSNet of this variant (constructor ``fields``; the run's FEM and recognizer unless given): its
    first fit, the one the run's checkpoints hold."""
    return b.pipe.sampler("nsnet", fem=fem or b.fem, rec=rec or b.rec, **fields)


def nsnet_fits(b: Evaluator, *, fem: Outputs | None = None, rec: Outputs | None = None,
               **fields: Any) -> tuple[list[Sampler], FrameFeatures]:
    """Every fit of this NSNet variant (:meth:`~samplerbench.stages.pipeline.Pipeline.fits`)."""
    return b.pipe.fits("nsnet", fem=fem or b.fem, rec=rec or b.rec, **fields)


def branch_evaluations(b: Evaluator, fits: list[Sampler], bank: FrameFeatures, k: int,
                       fusions: tuple[str, ...]) -> dict[str, Evaluation]:
    """Each of ``fusions`` of every fit's two branch scores, scored and combined over the fits."""
    branches = [s.branch_scores(bank) for s in fits]
    return {fusion: combine_fits([b.score(fuse_select(sf, sv, k, fusion=fusion, alpha=fits[0].alpha))
                                  for sf, sv in branches]) for fusion in fusions}


@register_table(
    "guiding", filename="table1_guiding.md", title="Table 1: guiding saliency score of the FS module (NSNet, K={k})",
    note="NSNet trained with NS pseudo labels from the response-based or the prototype-based guiding score. fs_mAP: "
         "the K frames the FS branch alone selects (top-K of s^f), the quantity of the paper's Table 1; fused_mAP: the "
         "fused NSNet's selection, for reference. pseudo_label_precision / _recall: % of the training frames "
         "labelled salient that lie in an annotated segment / % of annotated frames labelled salient (empty without "
         "annotations); the labels come from the recognizer's outputs only.",
    needs=("nsnet",))
def table_guiding(b: Evaluator) -> list[dict]:
    """The FS branch's selection of NSNet trained with each guiding score (the supplementary's Table 1 scores "the
    guiding saliency score in FS module"), the fused NSNet beside it, and how well its NS pseudo labels agree with
    the annotated segments; reference row: the run's NSNet's guiding score."""
    k, rows, scores, guidings = b.cfg.sampling.main_budget, [], [], ("response", "prototype")
    train_bank = b.pipe.features(get_sampler_class("nsnet"), fem=b.fem, rec=b.rec)[0]
    for g in guidings:
        fits, bank = nsnet_fits(b, guiding=g)
        precision, recall = label_agreement(fits[0].pseudo_labels(train_bank), b.pipe.source.split("train").salient)
        ev = branch_evaluations(b, fits, bank, k, ("fs", fits[0].fusion))
        fs, fused = ev["fs"], ev[fits[0].fusion]
        scores.append({"fs_mAP": fs.scores, "fused_mAP": fused.scores})
        rows.append(dict(guiding=g, fs_mAP=fs.mAP, fused_mAP=fused.mAP, fs_salient_hit_rate=fs.salient_hit_rate,
                         pseudo_label_precision=precision, pseudo_label_recall=recall, paper_mAP=PAPER_GUIDING[g]))
    return add_reference_intervals(b, rows, scores, _position(guidings, nsnet(b)[0].guiding))


def union_note(budgets: tuple[int, ...], alpha: float) -> str:
    """What union's α = ``alpha`` amounts to at each budget
    (:func:`~samplerbench.measures.fusion.union_effective_alpha`)."""
    shares = ", ".join(f"K={k}: {union_effective_alpha(k, alpha):.3g}" for k in budgets)
    return (f"Union takes ⌈Kα⌉ frames of π^f and ⌈K(1-α)⌉ of π^v, one fewer from the smaller remainder when they "
            f"exceed K, so its effective α (π^f's share when the branches' top frames differ) at α = {alpha:g} is "
            f"{shares}.")


def fusion_note(b: Evaluator) -> str:
    """Table 2's note, with what union's α amounts to at the run's budgets (:func:`union_note`)."""
    return ("Score fusions (max, mul, add α=0.6) and index fusions (join, intersection, union α=0.6) of one trained "
            "NSNet; fs/vg are the single branches. " + union_note(b.cfg.sampling.budgets, nsnet(b)[0].alpha))


@register_table("fusion", filename="table2_fusion.md", title="Table 2: fusion of the FS and VG branches (NSNet, K={k})",
                note=fusion_note, needs=("nsnet",))
def table_fusion(b: Evaluator) -> list[dict]:
    """The trained NSNet's branches under every fusion, over its fits; reference row: its own fusion."""
    k = b.cfg.sampling.main_budget
    fits, bank = nsnet_fits(b)
    evaluations = branch_evaluations(b, fits, bank, k, tuple(FUSIONS))
    rows, scores = [], []
    for fusion, ev in evaluations.items():
        scores.append({"mAP": ev.scores})
        rows.append(dict(fusion=fusion, mAP=ev.mAP, salient_hit_rate=ev.salient_hit_rate,
                         paper_mAP=PAPER_FUSION.get(fusion)))
    return add_reference_intervals(b, rows, scores, _position(FUSIONS.names(), fits[0].fusion))


def fem_variants(cfg: RunConfig) -> list[Network]:
    """Table 3's FEMs: ``report.fem_archs``."""
    return [("fem", arch, False) for arch in cfg.report.fem_archs]


@register_table(
    "fem", filename="table3_fem.md", title="Table 3: FEM backbone (NSNet, K={k})",
    note="fem_frame_top1: % of the FEM's own frame predictions on val frames inside annotated segments (all frames "
         "without annotations) that name the video's class: a FEM near chance gives the sampler uninformative "
         "features. GFLOPs per frame at this run's FEM resolution and at 224 px. epochs: as every trained model, until "
         "its loss on held-out training videos stopped improving (at most fem.epochs). " + FLOP_NOTE,
    needs=("nsnet",), trains=fem_variants)
def table_fem(b: Evaluator) -> list[dict]:
    """NSNet on each FEM backbone; reference row: the run's FEM."""
    cfg, rows, scores, val = b.cfg, [], [], b.pipe.source.split("val")
    for arch in cfg.report.fem_archs:
        fem = b.pipe.source.outputs("fem", arch)
        paper = PAPER_FEM.get(arch, (None, None))
        ev = b.evaluate_fits(*nsnet_fits(b, fem=fem), cfg.sampling.main_budget)
        scores.append({"mAP": ev.scores})
        rows.append(dict(fem=arch, mAP=ev.mAP,
                         fem_frame_top1=frame_top1(fem.val_logits, val.targets, val.salient),
                         epochs=fem.training.epochs,
                         gflops_per_frame=backbone_gflops(arch, cfg.fem.res),
                         gflops_per_frame_224=backbone_gflops(arch, 224), paper_mAP=paper[0], paper_gflops=paper[1],
                         paper_comparison=None if cfg.fem.weights else FROM_SCRATCH_FEM))
    return add_reference_intervals(b, rows, scores, _position(cfg.report.fem_archs, cfg.fem.arch))


def recognizer_variants(cfg: RunConfig) -> list[Network]:
    """Table 4's recognizers: ``report.recognizer_variants``."""
    return [("recognizer", arch, tsn) for arch, tsn in cfg.report.recognizer_variants]


@register_table(
    "recognizer", filename="table4_recognizer.md", title="Table 4: recognizer backbone × training (K={k})",
    note="'w/o TSN': one frame per video per step; 'w/ TSN': K segments, averaged logits. The default preset uses "
         "smaller ResNets than the paper (ResNet-101/152) and sets each of its rows beside the paper's row in the same "
         "position. rec_frame_top1: % of the recognizer's val frame predictions inside annotated segments that name "
         "the video's class. epochs: every row trains until its loss on held-out training videos stops improving (at "
         "most recognizer.epochs).",
    needs=("nsnet",), trains=recognizer_variants)
def table_recognizer(b: Evaluator) -> list[dict]:
    """NSNet and uniform on each recognizer variant; reference row: the run's recognizer and training."""
    cfg, rows, scores, val = b.cfg, [], [], b.pipe.source.split("val")
    for i, (arch, tsn) in enumerate(cfg.report.recognizer_variants):
        rec = b.pipe.source.outputs("recognizer", arch, tsn=tsn)
        uniform, ubank = b.pipe.sampler("uniform", fem=b.fem, rec=rec)
        paper = PAPER_RECOGNIZER[i] if i < len(PAPER_RECOGNIZER) else (None, None, None)
        ns = b.evaluate_fits(*nsnet_fits(b, rec=rec), cfg.sampling.main_budget, rec=rec)
        uni = b.evaluate(uniform, ubank, cfg.sampling.main_budget, rec=rec)
        scores.append({"nsnet_mAP": ns.scores, "uniform_mAP": uni.scores})
        rows.append(dict(recognizer=arch, train="w/ TSN" if tsn else "w/o TSN", nsnet_mAP=ns.mAP,
                         uniform_mAP=uni.mAP, rec_frame_top1=frame_top1(rec.val_logits, val.targets, val.salient),
                         epochs=rec.training.epochs,
                         paper_row=paper[0] and f"{paper[0]} {'w/' if paper[1] else 'w/o'} TSN",
                         paper_mAP=paper[2]))
    for above, row in itertools.pairwise(rows):  # the paper's rows grow stronger down the table
        weaker = row["rec_frame_top1"] < above["rec_frame_top1"]
        row["paper_comparison"] = WEAKER_RECOGNIZER.format(above=row_name(above)) if weaker else None
    rows[0]["paper_comparison"] = None
    reference = _position(cfg.report.recognizer_variants, (cfg.recognizer.arch, cfg.recognizer.tsn))
    return add_reference_intervals(b, rows, scores, reference)


def row_name(row: dict) -> str:
    return f"{row['recognizer']} {row['train']}"


def saliency_curves(b: Evaluator) -> dict:
    """Per-class mean saliency over normalised time for Guid., w/o NS and NSNet (paper Fig. 1)."""
    k = b.cfg.sampling.main_budget
    ns, bank = nsnet(b)
    oracle, obank = b.pipe.sampler("oracle", fem=b.fem, rec=b.rec)
    wo_ns, wbank = nsnet(b, no_ns=True)
    targets = b.pipe.source.split("val").targets
    return saliency_by_class(
        {"Guid.": oracle.scores(obank), "w/o NS": wo_ns.scores(wbank), "NSNet": ns.scores(bank)},
        targets=targets, class_ap=per_class_average_precision(b.evaluate(ns, bank, k).scores, targets.numpy()),
        classes=b.pipe.source.index().classes)


# Fig. 1, which the run plots from saliency_curves: the oracle is its guiding variant
TABLES.register("saliency", TableSpec(name="saliency", needs=frozenset({"nsnet", "oracle"})))


def nsnet_reading(sampler: NSNetSampler) -> str:
    """The note on every table with NSNet: what of it is this suite's reading, with the values of this run's
    NSNet (``sampler``, its first fit) and what a user can switch to, and the schedule it trained by."""
    fields = field_values(sampler)
    rule = (f"frames whose per-video min-max-normalised guiding score is at least {fields['pseudo_threshold']}"
            if fields["pseudo_rule"] == "minmax" else
            f"the top {fields['pseudo_ratio']:.0%} of each video's frames by guiding score")
    target = {"background": "classified as an extra background class",
              "uniform": "pushed to a uniform distribution over the classes", "none": "not supervised"}
    width = ("the FEM's own width (supplementary A.1)" if fields["d"] == FEM_WIDTH else
             f"{fields['d']} after a projection (supplementary A.1: the FEM's own width, `d = \"{FEM_WIDTH}\"`)")

    def others(chosen: str, valid: tuple[str, ...]) -> str:
        return ", ".join(f"`{v}`" for v in valid if v != chosen)

    return ("NSNet here is this suite's reading where no public text is specific (docs/samplers.md: \"NSNet: this "
            f"suite's reading\"): NS pseudo labels = {rule} (`pseudo_rule = {fields['pseudo_rule']}`; also "
            f"{others(fields['pseudo_rule'], PSEUDO_RULES)}); the non-salient representation is "
            f"{target[fields['non_salient']]} (`non_salient = {fields['non_salient']}`; also "
            f"{others(fields['non_salient'], NON_SALIENT)}); FS loss = binary cross-entropy against them, weighted "
            f"{fields['fs_weight']:g} beside the VG losses weighted {fields['vg_weight']:g} (`fs_weight`, "
            f"`vg_weight`); encoder width {width}, {fields['heads']} heads, {fields['layers']} layers. Each is an "
            "option: `[sampling.options.nsnet]` in a config file or `--sampler-option nsnet.FIELD=VALUE`. Trained by "
            f"{sampler.schedule().describe()}. Supplementary A.1: SGD momentum 0.9, batch 64, lr 0.01 ×0.1 after "
            "epochs 50 and 75 of 120, every training video, final weights; clipping the gradients' norm "
            "(`clip_grad_norm`, 5 by default) is this suite's reading, without which the encoder at the FEM's "
            "width does not train at that lr.")
