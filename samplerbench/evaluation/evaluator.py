"""Scoring any sampler on one run's features: metrics, GFLOPs, throughput timed interleaved (cached per machine),
paired bootstrap intervals. No sampler is named here: timing picks its reference by a class flag (``keeps_all``), and
the tables (:mod:`samplerbench.tables`) choose what to compare against."""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from samplerbench.config import RunConfig
from samplerbench.core import distributed
from samplerbench.core.errors import UserError
from samplerbench.formats.cache import stage_key
from samplerbench.measures.cost import MIN_TIMED_SECONDS, Timing, measure_interleaved
from samplerbench.measures.evaluate import Evaluation, combine_fits, evaluate_selection
from samplerbench.measures.stats import paired_bootstrap
from samplerbench.samplers import AdaptiveSampler, Sampler
from samplerbench.stages.decode import probe
from samplerbench.stages.pipeline import Pipeline
from samplerbench.stages.source import Outputs
from samplerbench.stages.throughput import (
    decode_timing,
)

DECODE_VIDEOS = 8  # val videos whose decoding is timed: the first readable ones, in record order


def machine_name(device: str) -> str:
    """What produced the timings: the GPU's name on CUDA, else the CPU and its core count."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU x{torch.get_num_threads()} threads ({platform.node()})"


@dataclasses.dataclass
class Evaluator:
    """What every table scores a sampler with: the run's config and pipeline, its main recognizer and FEM;
    a selection's metrics, GFLOPs and (cached, per machine) throughput."""

    cfg: RunConfig
    pipe: Pipeline
    rec: Outputs
    fem: Outputs
    machine: str

    @property
    def decodes(self) -> bool:
        """Whether rows have decoding and end-to-end columns: the run's features come from decoded videos."""
        return self.pipe.source.decodes

    def evaluate(self, sampler: Sampler, bank, k: int, *, rec: Outputs | None = None) -> Evaluation:
        return self.score(sampler.select(bank, k), rec=rec)

    def evaluate_fits(self, samplers: list[Sampler], bank, k: int, *, rec: Outputs | None = None) -> Evaluation:
        """Every fit of one sampler variant (:meth:`~samplerbench.stages.pipeline.Pipeline.fits`) scored and combined
        (:func:`~samplerbench.measures.evaluate.combine_fits`)."""
        return combine_fits([self.evaluate(s, bank, k, rec=rec) for s in samplers])

    def score(self, index: Tensor, *, rec: Outputs | None = None, count: Tensor | None = None) -> Evaluation:
        """The metrics of the val selection ``index`` ``[N, K]`` (with ``count`` ``[N]``: each video's first
        ``count`` frames, an adaptive sampler's), video scores aggregated as the config says."""
        rec, val = rec or self.rec, self.pipe.source.split("val")
        head = None if rec.model is None else rec.model.head  # unknown where the source has no model (a bank's)
        return evaluate_selection(index, logits=rec.val_logits, targets=val.targets, salient=val.salient,
                                  aggregation=self.cfg.sampling.aggregation, count=count, feats=rec.val_feats,
                                  head=None if head is None else (head.weight.detach(), head.bias.detach()))

    def gflops(self, sampler: Sampler, k: int) -> float:
        """The sampler's pipeline per video at budget ``k``, as the feature source prices it."""
        return self.pipe.source.gflops(sampler, k)

    def budgeted_gflops(self, sampler: AdaptiveSampler, count: Tensor) -> float:
        """An adaptive sampler's pipeline per video, as the feature source prices it: the mean over the val videos
        of what each one used (``count`` ``[N]`` frames)."""
        return float(self.pipe.source.budgeted_gflops(sampler, count).mean())

    def timed_batch(self) -> int:
        """Val videos per timed call: ``cost.batch``, or all of them when there are fewer."""
        return min(self.cfg.cost.batch, len(self.rec.val_logits))

    def step(self, sampler: Sampler, point: float) -> Callable[[], None]:
        """One timed batch of ``sampler``'s pipeline at ``point`` (K, or an adaptive sampler's knob value), as the
        feature source runs it: each video of the batch at its own budget for an adaptive sampler."""
        return self.pipe.source.timed_step(sampler, point, batch=self.timed_batch(), rec=self.rec, fem=self.fem)

    def throughputs(self, pipelines: list[tuple[str, Sampler, float]]) -> dict[tuple[str, float], Timing]:
        """Timed batches of every ``(label, sampler, point)`` pipeline (``point``: K, or an adaptive sampler's knob
        value), interleaved round by round against dense (else the first) so that the machine's drift cancels
        (:func:`~samplerbench.measures.cost.measure_interleaved`); cached per machine under the set of pipelines. The
        oracle is left out: it needs labels and is not deployable."""
        timed = [(label, sampler, k) for label, sampler, k in pipelines if not sampler.uses_labels_at_eval]
        if not timed:
            return {}
        cfg = self.cfg
        names = [pipeline_name(label, sampler, k) for label, sampler, k in timed]
        options = {s.name: cfg.sampling.options[s.name] for _, s, _ in timed if s.name in cfg.sampling.options}
        key = stage_key("throughput", pipelines=names, machine=self.machine, rec=self.rec.key,
                        fem=self.fem.key, batch=cfg.cost.batch, iters=cfg.cost.iters, min_seconds=MIN_TIMED_SECONDS,
                        compile=cfg.compile, device=cfg.device, options=options)
        reference = next((n for n, (_, s, _) in zip(names, timed, strict=True) if s.keeps_all), names[0])

        def measure() -> dict:
            steps = {n: self.step(sampler, k) for n, (_, sampler, k) in zip(names, timed, strict=True)}
            timings = measure_interleaved(steps, reference=reference, items_per_call=self.timed_batch(),
                                          device=torch.device(cfg.device), min_rounds=cfg.cost.iters)
            return {n: dataclasses.asdict(t) for n, t in timings.items()}

        measured = self._timed(f"throughput {len(names)} pipelines", key, measure)
        return {(label, k): Timing(**measured[n]) for n, (label, _, k) in zip(names, timed, strict=True)}

    def decode_cost(self, frames: int, *, successors: bool = False) -> Timing:
        """Seconds per video to decode ``frames`` frames of the first :data:`DECODE_VIDEOS` readable val videos (with
        ``successors``: mgsampler's frame pairs and motion) by the run's decoder, cached per machine: the CPU's,
        or with ``data.decoder = "torchcodec"`` the run's device's, where decoding, resizing and cropping run."""
        cfg, val = self.cfg, self.pipe.source.split("val")
        decoder = cfg.data.decoder
        device = cfg.device if decoder != "cpu" else "cpu"
        key = stage_key("decode cost", frames=frames, machine=machine_name(device), split=val.key, videos=DECODE_VIDEOS,
                        min_seconds=MIN_TIMED_SECONDS, **({"successors": True} if successors else {}),
                        **({"decoder": decoder, "device": device} if decoder != "cpu" else {}))

        def measure() -> Timing:
            readable = set(val.video_ids)
            records = [r for r in self.pipe.source.index().split("val") if r.video_id in readable][:DECODE_VIDEOS]
            probed = {r.source: probe(r.source) for r in records}
            videos = [(path, info[0]) for path, info in probed.items() if not isinstance(info, str)]
            if not videos:
                raise UserError("the val videos decoded earlier can no longer be read; cannot time their decoding")
            return decode_timing(videos, frames, short_side=cfg.data.short_side, crop=cfg.recognizer.res,
                                 successors=successors, decoder=decoder, device=device)

        label = f"{frames // 2} frames + successors" if successors else f"{frames} frames"
        return Timing(**self._timed(f"throughput decode {label}", key, lambda: dataclasses.asdict(measure())))

    def _timed(self, label: str, key: str, measure: Callable[[], dict]) -> dict:
        """``measure()`` run by rank 0 alone while the other ranks wait (they would compete for the machine),
        cached in the ``throughput`` stage under rank 0's ``key`` (it names rank 0's machine, which another
        node's ranks do not share); ``cfg.remeasure`` drops the cached figure first."""
        key = distributed.broadcast(key)
        if self.cfg.remeasure and distributed.is_main():
            self.pipe.cache.path("throughput", key).unlink(missing_ok=True)

        def compute() -> dict:
            return distributed.broadcast(measure() if distributed.is_main() else None)

        return self.pipe.cached(label, "throughput", key, compute)


def pipeline_name(label: str, sampler: Sampler, point: float) -> str:
    """``uniform K=4``, ``frameexit exit_threshold=0.5``: a timed pipeline's name (and part of the timing key)."""
    return f"{label} {sampler.knob}={point:g}" if isinstance(sampler, AdaptiveSampler) else f"{label} K={point}"


def bootstrap(b: Evaluator, scores: dict[str, np.ndarray], reference: str) -> dict[str, dict[str, float]]:
    """:func:`~samplerbench.measures.stats.paired_bootstrap` of val ``scores`` (label -> ``[N, C]``) against
    ``reference``,
    with the run's resample count and seed: every call resamples the same videos."""
    targets = b.pipe.source.split("val").targets.numpy()
    return paired_bootstrap(scores, targets, reference=reference, resamples=b.cfg.report.bootstrap, seed=b.cfg.seed)


def add_reference_intervals(b: Evaluator, rows: list[dict], scores: list[dict[str, np.ndarray]],
                            reference: int | None) -> list[dict]:
    """An ablation table's ``rows`` with every score column ``col`` given its 95% CI (``col_lo``, ``col_hi``), its
    std over fits (``col_std``, ``None`` for one fit) and, if ``reference`` (a row index) is given, the paired
    difference from that row (``col_delta``, ``col_delta_lo``, ``col_delta_hi``; that row marked ``reference:
    True``). ``scores[i]``: column -> row ``i``'s val scores, ``[N, C]`` or ``[F, N, C]`` for F fits."""
    for col in scores[0]:
        stats = bootstrap(b, {str(i): s[col] for i, s in enumerate(scores)}, str(reference))
        for i, r in enumerate(rows):
            st = stats[str(i)]
            r.update({f"{col}_lo": st["lo"], f"{col}_hi": st["hi"], f"{col}_std": st.get("fit_std")})
            if "diff" in st:
                r.update({f"{col}_delta": st["diff"], f"{col}_delta_lo": st["diff_lo"],
                          f"{col}_delta_hi": st["diff_hi"]})
    for i, r in enumerate(rows):
        r["reference"] = i == reference
    return rows


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
    """Why this dataset's scores would be degenerate, one line each (none if sound), from the decoded ``train`` and
    ``val`` targets: fewer than two validation classes, classes without a negative validation video (AP 100
    whatever the ranking), classes without validation or training videos."""
    def named(columns: np.ndarray) -> str:
        shown = ", ".join(repr(classes[c]) for c in columns[:5])
        return shown + (f" and {len(columns) - 5} more" if len(columns) > 5 else "")

    lines = []
    val_count = val.sum(dim=0).numpy()
    present, absent = np.flatnonzero(val_count > 0), np.flatnonzero(val_count == 0)
    untrained = np.flatnonzero(train.sum(dim=0).numpy() == 0)
    everywhere = np.flatnonzero(val_count == len(val)) if len(val) else np.zeros(0, dtype=np.int64)
    if len(present) < 2:
        lines.append(f"the validation videos show {len(present)} class(es) ({named(present)}) of {len(classes)}: every "
                     "sampler scores a trivially perfect mAP and top-1, which says nothing about it")
    elif len(everywhere) == len(present):
        lines.append(f"every class shown is positive in every validation video ({named(everywhere)}): every sampler "
                     "scores a trivially perfect mAP, which says nothing about it")
    elif len(everywhere):
        lines.append(f"{len(everywhere)} class(es) positive in every validation video ({named(everywhere)}): no "
                     "negative to rank, so their AP is 100 whatever the sampler")
    if len(present) >= 2 and len(absent):
        lines.append(f"{len(absent)} class(es) without a validation video ({named(absent)}): no AP, left out of "
                     "the mAP")
    if len(untrained):
        lines.append(f"{len(untrained)} class(es) without a training video ({named(untrained)}): never learned")
    return lines
