"""Measured throughput that repeats (pytest-benchmark): pipelines with identical compute, timed interleaved in
one measurement as a run times them, get the same videos/s; and at the default preset's shapes a FEM-based
sampler at the main K is faster than dense, as in the paper (its FEM costs a fraction of the recognizer).

Run with ``pytest -m benchmark --benchmark-enable``; the rates are in each benchmark's ``extra_info``."""

from __future__ import annotations

import pytest
import torch

from samplerbench.config import build_config
from samplerbench.measures.cost import measure_interleaved
from samplerbench.recognizers.backbones import FrameClassifier
from samplerbench.samplers import FrameFeatures, Sampler, get_sampler_class
from samplerbench.samplers.base import constructor_fields
from samplerbench.stages.throughput import pipeline_step

pytestmark = pytest.mark.benchmark

CFG = build_config("default")
T, K, C, BATCH = CFG.data.frames, CFG.sampling.main_budget, 10, CFG.cost.batch
FEM_DIM = 1280  # mobilenet_v2's pooled features
TWINS = [("scsampler", "scsampler_rank"), ("nsnet", "nsnet (w/o NS)")]  # one linear head; one network


def fitted(name: str, **fields) -> Sampler:
    """``name`` fitted for one epoch on random features: its weights do not change what a batch computes."""
    gen = torch.Generator().manual_seed(0)
    cls = get_sampler_class(name)
    sampler = cls(**{k: v for k, v in {"epochs": 1, "seed": 0}.items() if k in constructor_fields(cls)} | fields)
    if sampler.trainable:
        sampler.fit(FrameFeatures(fem=torch.rand(32, T, FEM_DIM, generator=gen), num_classes=C,
                              labels=torch.nn.functional.one_hot(torch.arange(32) % C, C).float(),
                              rec_logits=torch.randn(32, T, C, generator=gen),
                              rec_feats=torch.randn(32, T, 512, generator=gen),
                              video_ids=tuple(f"v{i}" for i in range(32))))
    return sampler


def test_bench_interleaved_pipelines_agree(benchmark):
    """The main table's pipelines at K = 4 at the default preset's shapes (T = 16, batch 8, ResNet-18 at 48 px,
    MobileNetV2 at 24 px): twins within 10% of each other, and SCSampler faster than dense."""
    torch.manual_seed(0)
    rec = FrameClassifier(arch=CFG.recognizer.arch, num_classes=C).eval()
    fem = FrameClassifier(arch=CFG.fem.arch, num_classes=C).eval()
    frames = torch.randint(0, 256, (BATCH, T, 3, CFG.recognizer.res, CFG.recognizer.res), dtype=torch.uint8)
    samplers = {"dense": fitted("dense"), "uniform": fitted("uniform"), "scsampler": fitted("scsampler"),
                "scsampler_rank": fitted("scsampler_rank"), "nsnet": fitted("nsnet"),
                "nsnet (w/o NS)": fitted("nsnet", no_ns=True)}
    steps = {label: pipeline_step(sampler=s, frames=frames, k=T if s.keeps_all else K, recognizer=rec, fem=fem,
                                  fem_res=CFG.fem.res, num_classes=C, device="cpu") for label, s in samplers.items()}
    timings = benchmark.pedantic(measure_interleaved, args=(steps,),
                                 kwargs=dict(reference="dense", items_per_call=BATCH, device=torch.device("cpu"),
                                             min_rounds=10), rounds=1, iterations=1)
    rates = {label: t.items_per_s for label, t in timings.items()}
    benchmark.extra_info.update({f"{label} videos/s": round(r, 1) for label, r in rates.items()})
    for a, b in TWINS:
        assert abs(rates[a] / rates[b] - 1) < 0.10, (a, b, rates)
    assert rates["scsampler"] > 1.2 * rates["dense"], rates
    assert rates["uniform"] >= rates["scsampler"], rates
