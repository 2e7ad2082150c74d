"""The NSNet paper's ablations (Tables 1–4, Fig. 1) beside its ActivityNet figures, built on
:mod:`samplerbench.harness` and the public sampler API alone. A run without NSNet writes none of these."""

from __future__ import annotations

from typing import Any

from samplerbench.config import RunConfig
from samplerbench.cost import FLOP_NOTE, backbone_gflops
from samplerbench.fusion import FUSIONS, fuse_select
from samplerbench.harness import Entry, Evaluator, add_reference_intervals
from samplerbench.metrics import frame_top1, label_agreement, per_class_average_precision, saliency_by_class
from samplerbench.pipeline import Outputs
from samplerbench.result import Table
from samplerbench.samplers import FrameBank, Sampler, get_sampler_class
from samplerbench.samplers.guiding import PSEUDO_RULES
from samplerbench.samplers.nsnet import FEM_WIDTH, NON_SALIENT

# The paper's ActivityNet v1.3 figures (ResNet-101 recognizer, MobileNetV2 FEM), printed beside our rows except in
# a smoke test, with a note on datasets other than ActivityNet (report.printed_rows, report.paper_caveat).
PAPER_GUIDING = {"response": 74.1, "prototype": 74.7}
PAPER_FUSION = {"max": 75.1, "mul": 75.2, "add": 75.3, "join": 75.1, "intersection": 74.9, "union": 75.5}
PAPER_FEM = {"shufflenet_v2_x1_0": (70.8, 0.15), "mobilenet_v2": (75.5, 0.31), "efficientnet_b0": (76.0, 0.39)}
# Table 4's rows in order; our preset's table_rec_variants are set beside them row by row (smaller ResNets on CPU).
PAPER_RECOGNIZER = (("resnet101", False, 75.5), ("resnet101", True, 80.8), ("resnet152", True, 83.0))
PAPER_ORACLE = 96.3
WITHOUT_NS = "nsnet (w/o NS)"


def main_entries(names: list[str]) -> list[Entry]:
    """The main table's rows: the samplers ``names``, plus NSNet without its NS supervision beside NSNet."""
    entries = [(n, n, {}) for n in names]
    if "nsnet" in names:
        entries.append((WITHOUT_NS, "nsnet", {"no_ns": True}))
    return entries


def _position(items: tuple | list, item) -> int | None:
    return items.index(item) if item in items else None


def nsnet(b: Evaluator, *, fem: Outputs | None = None, rec: Outputs | None = None,
           **fields: Any) -> tuple[Sampler, FrameBank]:
    """The fitted NSNet of this variant (constructor ``fields``; the run's FEM and recognizer unless given)."""
    return b.pipe.sampler("nsnet", fem=fem or b.fem, rec=rec or b.rec, **fields)


def table_guiding(b: Evaluator) -> list[dict]:
    """NSNet per guiding score, with how well its NS pseudo labels agree with the annotated segments; reference
    row: the run's NSNet's guiding score."""
    k, rows, scores, guidings = b.cfg.sampling.main_budget, [], [], ("response", "prototype")
    train_bank = b.pipe.banks(get_sampler_class("nsnet"), fem=b.fem, rec=b.rec)[0]
    for g in guidings:
        sampler, bank = nsnet(b, guiding=g)
        precision, recall = label_agreement(sampler.pseudo_labels(train_bank), b.pipe.split("train").salient)
        ev = b.evaluate(sampler, bank, k)
        scores.append({"mAP": ev.scores})
        rows.append(dict(guiding=g, mAP=ev.mAP, pseudo_label_precision=precision,
                         pseudo_label_recall=recall, paper_mAP=PAPER_GUIDING[g]))
    return add_reference_intervals(b, rows, scores, _position(guidings, nsnet(b)[0].guiding))


def table_fusion(b: Evaluator) -> list[dict]:
    """One trained NSNet's branches under every fusion; reference row: its own fusion."""
    k = b.cfg.sampling.main_budget
    sampler, bank = nsnet(b)
    sf, sv = sampler.branch_scores(bank)
    rows, scores = [], []
    for fusion in FUSIONS:
        ev = b.score(fuse_select(sf, sv, k, fusion=fusion, alpha=sampler.alpha))
        scores.append({"mAP": ev.scores})
        rows.append(dict(fusion=fusion, mAP=ev.mAP, salient_hit_rate=ev.salient_hit_rate,
                         paper_mAP=PAPER_FUSION.get(fusion)))
    return add_reference_intervals(b, rows, scores, _position(FUSIONS, sampler.fusion))


def table_fem(b: Evaluator) -> list[dict]:
    """NSNet on each FEM backbone; reference row: the run's FEM."""
    cfg, rows, scores, val = b.cfg, [], [], b.pipe.split("val")
    for arch in cfg.report.fem_archs:
        fem = b.pipe.outputs("fem", arch)
        paper = PAPER_FEM.get(arch, (None, None))
        ev = b.evaluate(*nsnet(b, fem=fem), cfg.sampling.main_budget)
        scores.append({"mAP": ev.scores})
        rows.append(dict(fem=arch, mAP=ev.mAP,
                         fem_frame_top1=frame_top1(fem.val_logits, val.targets, val.salient),
                         epochs=fem.training.epochs,
                         gflops_per_frame=backbone_gflops(arch, cfg.fem.res),
                         gflops_per_frame_224=backbone_gflops(arch, 224), paper_mAP=paper[0], paper_gflops=paper[1]))
    return add_reference_intervals(b, rows, scores, _position(cfg.report.fem_archs, cfg.fem.arch))


def table_recognizer(b: Evaluator) -> list[dict]:
    """NSNet and uniform on each recognizer variant; reference row: the run's recognizer and training."""
    cfg, rows, scores, val = b.cfg, [], [], b.pipe.split("val")
    for i, (arch, tsn) in enumerate(cfg.report.recognizer_variants):
        rec = b.pipe.outputs("recognizer", arch, tsn=tsn)
        uniform, ubank = b.pipe.sampler("uniform", fem=b.fem, rec=rec)
        paper = PAPER_RECOGNIZER[i] if i < len(PAPER_RECOGNIZER) else (None, None, None)
        ns = b.evaluate(*nsnet(b, rec=rec), cfg.sampling.main_budget, rec=rec)
        uni = b.evaluate(uniform, ubank, cfg.sampling.main_budget, rec=rec)
        scores.append({"nsnet_mAP": ns.scores, "uniform_mAP": uni.scores})
        rows.append(dict(recognizer=arch, train="w/ TSN" if tsn else "w/o TSN", nsnet_mAP=ns.mAP,
                         uniform_mAP=uni.mAP, rec_frame_top1=frame_top1(rec.val_logits, val.targets, val.salient),
                         epochs=rec.training.epochs,
                         paper_row=paper[0] and f"{paper[0]} {'w/' if paper[1] else 'w/o'} TSN",
                         paper_mAP=paper[2]))
    reference = _position(cfg.report.recognizer_variants, (cfg.recognizer.arch, cfg.recognizer.tsn))
    return add_reference_intervals(b, rows, scores, reference)


def saliency_curves(b: Evaluator) -> dict:
    """Per-class mean saliency over normalised time for Guid., w/o NS and NSNet (paper Fig. 1)."""
    k = b.cfg.sampling.main_budget
    ns, bank = nsnet(b)
    oracle, obank = b.pipe.sampler("oracle", fem=b.fem, rec=b.rec)
    wo_ns, wbank = nsnet(b, no_ns=True)
    targets = b.pipe.split("val").targets
    return saliency_by_class(
        {"Guid.": oracle.scores(obank), "w/o NS": wo_ns.scores(wbank), "NSNet": ns.scores(bank)},
        targets=targets, class_ap=per_class_average_precision(b.evaluate(ns, bank, k).scores, targets.numpy()),
        classes=b.pipe.index().classes)


def ablation_tables(cfg: RunConfig, names: list[str]) -> set[str]:
    """The tables besides ``main`` that a run of samplers ``names`` writes: NSNet's ablations need NSNet among
    them, and Fig. 1 needs the oracle too."""
    if "nsnet" not in names:
        return set()
    return {t for t in cfg.report.tables if t != "main" and (t != "saliency" or "oracle" in names)}


def trained_backbones(cfg: RunConfig, ablations: set[str]) -> dict[str, list[str]]:
    """Role -> every architecture a run trains for it: the main one, then Table 4's / Table 3's when written."""
    return {
        "recognizer": [cfg.recognizer.arch,
                       *([a for a, _ in cfg.report.recognizer_variants] if "recognizer" in ablations else [])],
        "fem": [cfg.fem.arch, *(cfg.report.fem_archs if "fem" in ablations else ())],
    }


TABLE_SPECS = {
    "guiding": ("table1_guiding.md", "Table 1: guiding saliency score of the FS module (NSNet, K={k})",
                "NSNet trained with NS pseudo labels from the response-based or the prototype-based guiding score. "
                "pseudo_label_precision / _recall: % of the training frames labelled salient that lie in an "
                "annotated segment / % of annotated frames labelled salient (empty without annotations); the labels "
                "come from the recognizer's outputs only."),
    "fusion": ("table2_fusion.md", "Table 2: fusion of the FS and VG branches (NSNet, K={k})",
               "Score fusions (max, mul, add α=0.6) and index fusions (join, intersection, union α=0.6) of one "
               "trained NSNet; fs/vg are the single branches."),
    "fem": ("table3_fem.md", "Table 3: FEM backbone (NSNet, K={k})",
            "fem_frame_top1: % of the FEM's own frame predictions on val frames inside annotated segments (all "
            "frames without annotations) that name the video's class: a FEM near chance gives the sampler "
            "uninformative features. GFLOPs per frame at this run's FEM resolution and at 224 px. epochs: as "
            "every trained model, until its loss on held-out training videos stopped improving (at most "
            "fem.epochs). " + FLOP_NOTE),
    "recognizer": ("table4_recognizer.md", "Table 4: recognizer backbone × training (K={k})",
                   "'w/o TSN': one frame per video per step; 'w/ TSN': K segments, averaged logits. The default "
                   "preset uses smaller ResNets than the paper (ResNet-101/152) and sets each of its rows beside "
                   "the paper's row in the same position. rec_frame_top1: % of the recognizer's val frame "
                   "predictions inside annotated segments that name the video's class. epochs: every row trains "
                   "until its loss on held-out training videos stops improving (at most recognizer.epochs)."),
}


def nsnet_reading(fields: dict[str, Any]) -> str:
    """The note on every table with NSNet: what of it is this suite's reading, with the values of this run's
    NSNet (``fields``: its constructor fields) and what a user can switch to."""
    rule = (f"frames whose per-video min-max-normalised guiding score is at least {fields['pseudo_threshold']}"
            if fields["pseudo_rule"] == "minmax" else
            f"the top {fields['pseudo_ratio']:.0%} of each video's frames by guiding score")
    target = {"background": "classified as an extra background class",
              "uniform": "pushed to a uniform distribution over the classes", "none": "not supervised"}
    width = ("the FEM's own width (supplementary A.1)" if fields["d"] == FEM_WIDTH else
             f"{fields['d']} after a projection (supplementary A.1: the FEM's own width, `d = \"{FEM_WIDTH}\"`)")

    def others(chosen: str, valid: tuple[str, ...]) -> str:
        return ", ".join(f"`{v}`" for v in valid if v != chosen)

    return ("NSNet here is this suite's reading where no public text is specific (README: \"NSNet: this suite's "
            f"reading\"): NS pseudo labels = {rule} (`pseudo_rule = {fields['pseudo_rule']}`; also "
            f"{others(fields['pseudo_rule'], PSEUDO_RULES)}); the non-salient representation is "
            f"{target[fields['non_salient']]} (`non_salient = {fields['non_salient']}`; also "
            f"{others(fields['non_salient'], NON_SALIENT)}); FS loss = binary cross-entropy against them, weighted "
            f"{fields['fs_weight']:g} beside the VG losses weighted {fields['vg_weight']:g} (`fs_weight`, "
            f"`vg_weight`); encoder width {width}, {fields['heads']} heads, {fields['layers']} layers. Each is an "
            "option: `[sampling.options.nsnet]` in a config file or `--sampler-option nsnet.FIELD=VALUE`.")


def tables(b: Evaluator, wanted: set[str]) -> list[Table]:
    """The ablation tables of ``wanted`` (names from :func:`ablation_tables`), in the paper's order."""
    builders = {"guiding": table_guiding, "fusion": table_fusion, "fem": table_fem, "recognizer": table_recognizer}
    out = []
    for name, (filename, title, note) in TABLE_SPECS.items():
        if name in wanted:
            out.append(Table(name=name, filename=filename, title=title.format(k=b.cfg.sampling.main_budget), note=note,
                             rows=builders[name](b)))
    return out
