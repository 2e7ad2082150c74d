"""A whole benchmark run, top to bottom: data, models, every sampler at every budget, the ablation tables.

Read this file to know what a number in ``results/`` means; every stage it calls is cached (see
:mod:`samplerbench.pipeline`), so an identical re-run only re-reads the cache and rewrites the tables.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from samplerbench import distributed, report
from samplerbench.cache import stage_key
from samplerbench.config import RunConfig
from samplerbench.cost import MIN_TIMED_SECONDS, Timing, backbone_gflops, video_gflops
from samplerbench.decode import probe
from samplerbench.errors import UserError
from samplerbench.evaluate import Evaluation, evaluate_selection
from samplerbench.fusion import FUSIONS, fuse_select
from samplerbench.metrics import check_aggregation, frame_top1, label_agreement, per_class_average_precision
from samplerbench.pipeline import Outputs, Pipeline
from samplerbench.preflight import check_memory
from samplerbench.recognizers.backbones import require_weights
from samplerbench.runfolder import run_folder, staged
from samplerbench.samplers import Sampler, list_samplers
from samplerbench.samplers.base import field_values
from samplerbench.samplers.nsnet import NSNetSampler
from samplerbench.stagelog import StageLog, progress_bars, warn
from samplerbench.stats import paired_bootstrap
from samplerbench.throughput import decode_timing, decoded_frames, end_to_end_rate, sampler_throughput

# The paper's ActivityNet v1.3 figures (ResNet-101 recognizer, MobileNetV2 FEM), printed beside our rows except in
# a smoke test, with a note on datasets other than ActivityNet (report.printed_rows, report.paper_caveat).
PAPER_GUIDING = {"response": 74.1, "prototype": 74.7}
PAPER_FUSION = {"max": 75.1, "mul": 75.2, "add": 75.3, "join": 75.1, "intersection": 74.9, "union": 75.5}
PAPER_FEM = {"shufflenet_v2_x1_0": (70.8, 0.15), "mobilenet_v2": (75.5, 0.31), "efficientnet_b0": (76.0, 0.39)}
# Table 4's rows in order; our preset's table_rec_variants are set beside them row by row (smaller ResNets on CPU).
PAPER_RECOGNIZER = (("resnet101", False, 75.5), ("resnet101", True, 80.8), ("resnet152", True, 83.0))
PAPER_ORACLE = 96.3
WITHOUT_NS = "nsnet (w/o NS)"
DECODE_VIDEOS = 8  # val videos whose decoding is timed: the first readable ones, in record order


def machine_name(device: str) -> str:
    """What produced the timings: the GPU's name on CUDA, else the CPU and its core count."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU x{torch.get_num_threads()} threads ({platform.node()})"


@dataclasses.dataclass
class Bench:
    """The run's shared context: config, pipeline, and the main recognizer and FEM."""

    cfg: RunConfig
    pipe: Pipeline
    rec: Outputs
    fem: Outputs
    machine: str

    def nsnet(self, *, fem: Outputs | None = None, rec: Outputs | None = None, **fields):
        return self.pipe.sampler("nsnet", fem=fem or self.fem, rec=rec or self.rec, **fields)

    def evaluate(self, sampler: Sampler, bank, k: int, *, rec: Outputs | None = None) -> Evaluation:
        return self.score(sampler.select(bank, k), rec=rec)

    def score(self, index: Tensor, *, rec: Outputs | None = None) -> Evaluation:
        """The metrics of the val selection ``index`` ``[N, K]``, video scores aggregated as the config says."""
        rec, val = rec or self.rec, self.pipe.split("val")
        head = rec.model.head
        return evaluate_selection(index, logits=rec.val_logits, targets=val.targets, salient=val.salient,
                                  aggregation=self.cfg.aggregation, feats=rec.val_feats,
                                  head=(head.weight.detach(), head.bias.detach()))

    def gflops(self, sampler: Sampler, k: int) -> float:
        """T·(what the sampler reads per frame) + its head + K·recognizer, per video."""
        cfg = self.cfg
        rec = backbone_gflops(cfg.rec_arch, cfg.rec_res)
        scan = backbone_gflops(cfg.fem_arch, cfg.fem_res) if sampler.uses_fem else 0.0
        kept = cfg.frames if sampler.keeps_all else k
        if sampler.uses_labels_at_eval:
            # The oracle's guiding score needs the recognizer on all T frames, whose logits then also score
            # the K it keeps: no second recognizer pass.
            scan, kept = rec, 0
        return video_gflops(fem_per_frame=scan, head=sampler.gflops(cfg.frames), rec_per_frame=rec,
                            frames=cfg.frames, budget=kept)

    def throughput(self, label: str, sampler: Sampler, k: int) -> Timing | None:
        """Timed batches of the pipeline, cached per machine; ``None`` for the oracle, which needs labels and
        is not deployable."""
        if sampler.uses_labels_at_eval:
            return None
        cfg = self.cfg
        options = cfg.sampler_options.get(sampler.name)  # in the key only when set: older keys stay valid
        key = stage_key("throughput", label=label, k=k, machine=self.machine, rec=self.rec.key, fem=self.fem.key,
                        batch=cfg.throughput_batch, iters=cfg.throughput_iters, min_seconds=MIN_TIMED_SECONDS,
                        compile=cfg.compile, device=cfg.device, **({"options": options} if options else {}))
        batch = slice(0, cfg.throughput_batch)
        return self._timed(f"throughput {label} K={k}", key, lambda: sampler_throughput(
            sampler=sampler, frames=self.pipe.split("val").frames[batch], k=k,
            motion=self.pipe.motion("val")[batch] if sampler.needs_motion else None,
            recognizer=self.rec.model, fem=self.fem.model, fem_res=cfg.fem_res,
            num_classes=self.rec.val_logits.shape[-1], device=cfg.device, min_iters=cfg.throughput_iters,
            compile_model=cfg.compile))

    def decode_cost(self, frames: int, *, successors: bool = False) -> Timing:
        """Seconds per video to decode ``frames`` frames of the first :data:`DECODE_VIDEOS` readable val videos at
        the run's resolution; with ``successors``, ``frames / 2`` pre-sampled frames and the next frame of each,
        and their motion (what mgsampler's pipeline decodes). Decoding runs on the CPU, so the figure is cached
        per CPU whatever the device."""
        cfg, val = self.cfg, self.pipe.split("val")
        cpu = machine_name("cpu")
        key = stage_key("decode cost", frames=frames, machine=cpu, split=val.key, videos=DECODE_VIDEOS,
                        min_seconds=MIN_TIMED_SECONDS, **({"successors": True} if successors else {}))

        def measure() -> Timing:
            readable = set(val.video_ids)
            records = [r for r in self.pipe.index().split("val") if r.video_id in readable][:DECODE_VIDEOS]
            probed = {r.path: probe(r.path) for r in records}
            videos = [(path, info[0]) for path, info in probed.items() if not isinstance(info, str)]
            if not videos:
                raise UserError("the val videos decoded earlier can no longer be read; cannot time their decoding")
            return decode_timing(videos, frames, short_side=cfg.short_side, crop=cfg.rec_res, successors=successors)

        label = f"{frames // 2} frames + successors" if successors else f"{frames} frames"
        return self._timed(f"throughput decode {label}", key, measure)

    def _timed(self, label: str, key: str, measure: Callable[[], Timing]) -> Timing:
        """``measure()`` run by rank 0 alone while the other ranks wait (they would compete for the machine),
        cached in the ``throughput`` stage under rank 0's ``key`` (it names rank 0's machine, which another
        node's ranks do not share); ``cfg.remeasure`` drops the cached figure first."""
        key = distributed.broadcast(key)
        if self.cfg.remeasure and distributed.is_main():
            self.pipe.cache.path("throughput", key).unlink(missing_ok=True)

        def compute() -> dict:
            return distributed.broadcast(dataclasses.asdict(measure()) if distributed.is_main() else None)

        return Timing(**self.pipe.cached(label, "throughput", key, compute))


def timing_columns(timing: Timing | None, *, decoded: int) -> dict:
    """A row's measured throughput columns; empty (``None``) where nothing was measured."""
    if timing is None:
        return dict.fromkeys(("videos_per_s", "timing_spread", "timed_iters", "decoded_frames"))
    return dict(videos_per_s=timing.items_per_s, timing_spread=timing.spread, timed_iters=timing.iterations,
                decoded_frames=decoded)


def _ratio(value: float | None, reference: float | None) -> float | None:
    return value / reference if value and reference else None


def add_speedups(rows: list[dict], decode_s_per_video: dict[int, float]) -> None:
    """Complete the rows' cost columns: the end-to-end rate (decoding ``decoded_frames`` frames, seconds per
    video by frame count in ``decode_s_per_video``, then the measured compute) and the speed-ups over dense,
    measured, end to end, and from the FLOP counts."""
    for r in rows:
        measured = r["decoded_frames"] is not None
        r["decode_s_per_video"] = decode_s_per_video[r["decoded_frames"]] if measured else None
        r["videos_per_s_e2e"] = end_to_end_rate(decode_s_per_video=r["decode_s_per_video"],
                                                videos_per_s=r["videos_per_s"]) if measured else None
    dense = next((r for r in rows if r["sampler"] == "dense"), {})
    for r in rows:
        r["speedup_vs_dense"] = _ratio(r["videos_per_s"], dense.get("videos_per_s"))
        r["speedup_flops"] = _ratio(dense.get("gflops_per_video"), r["gflops_per_video"])
        r["speedup_e2e_vs_dense"] = _ratio(r["videos_per_s_e2e"], dense.get("videos_per_s_e2e"))


def main_comparison(b: Bench, names: list[str]) -> tuple[list[dict], dict, list[dict]]:
    """Every sampler (plus NSNet w/o NS) at every budget; dense once at K = T. Returns the rows, the scores,
    and the decoding cost behind the end-to-end figures (one row per frame count)."""
    cfg = b.cfg
    entries = [(n, n, {}) for n in names]
    if "nsnet" in names:
        entries.append((WITHOUT_NS, "nsnet", {"no_ns": True}))
    rows, scores, successors = [], {}, {}
    for label, name, fields in entries:
        sampler, bank = b.pipe.sampler(name, fem=b.fem, rec=b.rec, **fields)
        for k in [cfg.frames] if sampler.keeps_all else cfg.budgets:
            ev = b.evaluate(sampler, bank, k)
            scores[(label, k)] = ev.scores
            decoded = decoded_frames(sampler, t=cfg.frames, k=k)
            successors[decoded] = sampler.needs_motion  # mgsampler's 2T: T frames and the successor of each
            rows.append(dict(dataset=cfg.dataset, sampler=label, frames_T=cfg.frames, budget_K=k, **ev.metrics(),
                             gflops_per_video=b.gflops(sampler, k), reads_labels=sampler.uses_labels_at_eval,
                             **timing_columns(b.throughput(label, sampler, k), decoded=decoded)))
    decode = {n: b.decode_cost(n, successors=successors[n])
              for n in sorted({r["decoded_frames"] for r in rows} - {None})}
    add_speedups(rows, {n: t.seconds for n, t in decode.items()})
    decode_rows = [dict(frames=n, successors=successors[n], s_per_video=t.seconds, spread=t.spread,
                        timed_decodes=t.iterations) for n, t in decode.items()]
    return rows, scores, decode_rows


def add_confidence_intervals(b: Bench, rows: list[dict], scores: dict) -> None:
    """Paired bootstrap over val videos, per budget: each row's mAP CI and its difference from uniform's."""
    targets = b.pipe.split("val").targets.numpy()
    with b.pipe.log.stage("bootstrap"):
        for k in sorted({r["budget_K"] for r in rows}):
            group = {label: s for (label, kk), s in scores.items() if kk == k}
            stats = paired_bootstrap(group, targets, reference="uniform", resamples=b.cfg.bootstrap, seed=b.cfg.seed)
            for r in rows:
                if r["budget_K"] == k:
                    st = stats[r["sampler"]]
                    r.update(mAP_lo=st["lo"], mAP_hi=st["hi"], dmAP_vs_uniform=st.get("diff"),
                             dmAP_lo=st.get("diff_lo"), dmAP_hi=st.get("diff_hi"))


def table_guiding(b: Bench) -> list[dict]:
    """NSNet per guiding score, with how well its NS pseudo labels agree with the annotated segments."""
    k, rows = b.cfg.main_budget, []
    train_bank = b.pipe.banks(NSNetSampler, fem=b.fem, rec=b.rec)[0]
    for g in ("response", "prototype"):
        sampler, bank = b.nsnet(guiding=g)
        precision, recall = label_agreement(sampler.pseudo_labels(train_bank), b.pipe.split("train").salient)
        rows.append(dict(guiding=g, mAP=b.evaluate(sampler, bank, k).mAP, pseudo_label_precision=precision,
                         pseudo_label_recall=recall, paper_mAP=PAPER_GUIDING[g]))
    return rows


def table_fusion(b: Bench) -> list[dict]:
    k = b.cfg.main_budget
    sampler, bank = b.nsnet()
    sf, sv = sampler.branch_scores(bank)
    rows = []
    for fusion in FUSIONS:
        ev = b.score(fuse_select(sf, sv, k, fusion=fusion, alpha=sampler.alpha))
        rows.append(dict(fusion=fusion, mAP=ev.mAP, salient_hit_rate=ev.salient_hit_rate,
                         paper_mAP=PAPER_FUSION.get(fusion)))
    return rows


def table_fem(b: Bench) -> list[dict]:
    cfg, rows, val = b.cfg, [], b.pipe.split("val")
    for arch in cfg.table_fem_archs:
        fem = b.pipe.outputs("fem", arch)
        paper = PAPER_FEM.get(arch, (None, None))
        rows.append(dict(fem=arch, mAP=b.evaluate(*b.nsnet(fem=fem), cfg.main_budget).mAP,
                         fem_frame_top1=frame_top1(fem.val_logits, val.targets, val.salient),
                         epochs=fem.training.epochs,
                         gflops_per_frame=backbone_gflops(arch, cfg.fem_res),
                         gflops_per_frame_224=backbone_gflops(arch, 224), paper_mAP=paper[0], paper_gflops=paper[1]))
    return rows


def table_recognizer(b: Bench) -> list[dict]:
    cfg, rows, val = b.cfg, [], b.pipe.split("val")
    for i, (arch, tsn) in enumerate(cfg.table_rec_variants):
        rec = b.pipe.outputs("recognizer", arch, tsn=tsn)
        uniform, ubank = b.pipe.sampler("uniform", fem=b.fem, rec=rec)
        paper = PAPER_RECOGNIZER[i] if i < len(PAPER_RECOGNIZER) else (None, None, None)
        rows.append(dict(recognizer=arch, train="w/ TSN" if tsn else "w/o TSN",
                         nsnet_mAP=b.evaluate(*b.nsnet(rec=rec), cfg.main_budget, rec=rec).mAP,
                         uniform_mAP=b.evaluate(uniform, ubank, cfg.main_budget, rec=rec).mAP,
                         rec_frame_top1=frame_top1(rec.val_logits, val.targets, val.salient),
                         epochs=rec.training.epochs,
                         paper_row=paper[0] and f"{paper[0]} {'w/' if paper[1] else 'w/o'} TSN",
                         paper_mAP=paper[2]))
    return rows


def saliency_curves(b: Bench) -> dict:
    """Per-class mean saliency over normalised time for Guid., w/o NS and NSNet (paper Fig. 1)."""
    k = b.cfg.main_budget
    nsnet, bank = b.nsnet()
    oracle, obank = b.pipe.sampler("oracle", fem=b.fem, rec=b.rec)
    wo_ns, wbank = b.nsnet(no_ns=True)
    targets = b.pipe.split("val").targets
    return report.saliency_by_class(
        {"Guid.": oracle.scores(obank), "w/o NS": wo_ns.scores(wbank), "NSNet": nsnet.scores(bank)},
        targets=targets, class_ap=per_class_average_precision(b.evaluate(nsnet, bank, k).scores, targets.numpy()),
        classes=b.pipe.index().classes)


def ablation_tables(cfg: RunConfig, names: list[str]) -> set[str]:
    """The tables besides ``main`` that a run of samplers ``names`` writes: NSNet's ablations need NSNet among
    them, and Fig. 1 needs the oracle too."""
    if "nsnet" not in names:
        return set()
    return {t for t in cfg.tables if t != "main" and (t != "saliency" or "oracle" in names)}


def trained_backbones(cfg: RunConfig, ablations: set[str]) -> dict[str, list[str]]:
    """Role -> every architecture a run trains for it: the main one, then Table 4's / Table 3's when written."""
    return {
        "recognizer": [cfg.rec_arch, *([a for a, _ in cfg.table_rec_variants] if "recognizer" in ablations else [])],
        "fem": [cfg.fem_arch, *(cfg.table_fem_archs if "fem" in ablations else ())],
    }


def skip_notices(videos: int, entries: int, folder: Path) -> list[str]:
    """Console lines saying how much of the dataset a run leaves out and where the list is, printed even with
    ``--quiet``: accuracies over a silently smaller dataset would be compared as if complete."""
    lines = []
    if videos:
        lines.append(f"{videos} video{'s' if videos != 1 else ''} skipped as unreadable "
                     f"(see {folder / 'skipped.csv'} for the reasons)")
    if entries:
        lines.append(f"{entries} malformed annotation entr{'ies' if entries != 1 else 'y'} skipped (--lenient; "
                     f"see dataset.skipped_annotations in {folder / 'run.json'})")
    return lines


def dataset_warnings(classes: tuple[str, ...], *, train: torch.Tensor, val: torch.Tensor) -> list[str]:
    """What makes this dataset's scores degenerate, one line each (none for a sound dataset), from the
    multi-hot targets of the decoded ``train`` and ``val`` rows (so unreadable videos count as missing).

    Validation videos of fewer than two classes make every sampler score a perfect mAP and top-1 (a
    one-class dataset reports mAP 100 [100, 100]); a class without validation video has no AP and is left
    out of the mAP; one without training video is never learned.
    """
    def named(columns: np.ndarray) -> str:
        shown = ", ".join(repr(classes[c]) for c in columns[:5])
        return shown + (f" and {len(columns) - 5} more" if len(columns) > 5 else "")

    lines = []
    val_count = val.sum(dim=0).numpy()
    present, absent = np.flatnonzero(val_count > 0), np.flatnonzero(val_count == 0)
    untrained = np.flatnonzero(train.sum(dim=0).numpy() == 0)
    if len(present) < 2:
        lines.append(f"the validation videos show {len(present)} class(es) ({named(present)}) of {len(classes)}: every "
                     "sampler scores a trivially perfect mAP and top-1, which says nothing about it")
    elif len(absent):
        lines.append(f"{len(absent)} class(es) without a validation video ({named(absent)}): no AP, left out of "
                     "the mAP")
    if len(untrained):
        lines.append(f"{len(untrained)} class(es) without a training video ({named(untrained)}): never learned")
    return lines


def run(cfg: RunConfig, *, out: Path, cache_dir: Path, quiet: bool = False, overwrite: bool = False) -> Path:
    """Run the benchmark described by ``cfg``; returns the folder holding its tables, ``out``'s run folder
    for ``cfg`` (:func:`samplerbench.runfolder.run_folder`), which it may write only if it is free for this
    run or with ``overwrite`` (:func:`samplerbench.runfolder.check`). ``quiet``: no stage lines and no
    progress bars (ranks other than 0 are always quiet: one set of lines, from rank 0)."""
    quiet = quiet or not distributed.is_main()
    with progress_bars(not quiet):
        return _run(cfg, out=Path(out), cache_dir=Path(cache_dir), log=StageLog(quiet=quiet), overwrite=overwrite)


def _run(cfg: RunConfig, *, out: Path, cache_dir: Path, log: StageLog, overwrite: bool) -> Path:
    # fail before any work: the ranks cannot share a batch evenly, or a weights file is missing
    for batch in (cfg.rec_batch, cfg.fem_batch, cfg.sampler_batch):
        distributed.local_batch(batch)
    check_aggregation(cfg.aggregation)
    names = list(cfg.samplers) or list_samplers()
    ablations = ablation_tables(cfg, names)
    require_weights((arch, cfg.weights[role]) for role, archs in trained_backbones(cfg, ablations).items()
                    if role in cfg.weights for arch in archs)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    pipe = Pipeline(cfg, cache_dir=cache_dir, log=log)
    data = pipe.index()
    check_memory(cfg, train_rows=len(data.split("train")) * cfg.train_views, val_rows=len(data.split("val")),
                 classes=len(data.classes))
    for subset in ("train", "val"):  # decode first, so that a dataset with no readable video fails early
        pipe.split(subset)
    folder = run_folder(out, cfg)
    skipped = pipe.split("train").skipped + pipe.split("val").skipped
    for line in skip_notices(len(skipped), len(data.skipped), folder) if distributed.is_main() else ():
        tqdm.write(line)
    notes = dataset_warnings(data.classes, train=pipe.split("train").targets, val=pipe.split("val").targets)
    for line in notes if distributed.is_main() else ():
        warn(line)
    bench = Bench(cfg=cfg, pipe=pipe, rec=pipe.outputs("recognizer", cfg.rec_arch, tsn=cfg.rec_tsn),
                  fem=pipe.outputs("fem", cfg.fem_arch), machine=machine_name(cfg.device))

    rows, scores, decode = main_comparison(bench, names)
    add_confidence_intervals(bench, rows, scores)
    tables = {"main": rows, "decode": decode}
    if "guiding" in ablations:
        tables["guiding"] = table_guiding(bench)
    if "fusion" in ablations:
        tables["fusion"] = table_fusion(bench)
    if "fem" in ablations:
        tables["fem"] = table_fem(bench)
    if "recognizer" in ablations:
        tables["recognizer"] = table_recognizer(bench)
    curves = saliency_curves(bench) if "saliency" in ablations else None

    if not distributed.is_main():
        return folder
    with staged(folder, cfg, overwrite=overwrite) as staging:
        with log.stage("checkpoints") as st:
            checkpoints, written = report.write_checkpoints(staging / "checkpoints", pipe.fitted,
                                                            previous=folder / "checkpoints", cfg=cfg,
                                                            classes=data.classes, fem=bench.fem, rec=bench.rec)
            st["cached"] = written == 0
        with log.stage("report"):
            report.write_all(staging, cfg=cfg, data=data, tables=tables, curves=curves, machine=bench.machine,
                             stages=log.records, skipped=skipped, warnings=notes,
                             paper_oracle=PAPER_ORACLE, predictions=scores if cfg.export_predictions else None,
                             video_ids=pipe.split("val").video_ids, checkpoints=checkpoints,
                             nsnet=field_values(bench.nsnet()[0]) if "nsnet" in names else None)
    return folder
