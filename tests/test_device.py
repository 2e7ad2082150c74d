"""Samplers keep their work on the device of their input, checked without a GPU.

Every registered sampler selects (and scores) a bank whose tensors live on the ``meta`` device, under
:class:`DeviceMixing`, which fails any aten op that sees tensors on two devices. ``meta`` tensors have no
data, so a CPU tensor mixed into the computation cannot be silently copied: a CPU tensor with elements fails
in PyTorch itself, and a zero-dimensional CPU tensor (``torch.tensor(0.5)``), which PyTorch lets pass on
CUDA as a scalar, fails in :class:`DeviceMixing`. Both are what a ``torch.tensor``/``arange``/``zeros``
without ``device=`` turns into on a GPU: a crash, or a hidden host-to-device copy per call. A CPU constant
moved with ``.to(device)`` on every call is the explicit form of that copy; it is listed and refused too.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from samplerbench.measures.cost import measure_interleaved
from samplerbench.measures.fusion import FUSIONS, fuse_scores, fuse_select
from samplerbench.recognizers.backbones import FrameClassifier
from samplerbench.samplers import AdaptiveSampler, FrameFeatures, Sampler, get_sampler_class, list_samplers
from samplerbench.samplers.base import constructor_fields
from samplerbench.stages.throughput import budgeted_step, pipeline_step

META = torch.device("meta")
B, T, K, D, C = 3, 8, 3, 12, 4
FEM_DIM = 1280  # mobilenet_v2's pooled features
COPIES_BY_DESIGN = {"random"}  # draws keyed by the video id are made on the CPU (see RandomSampler)
# Small networks and one epoch: what is tested is where tensors live, not what the samplers learned.
TRAINING = dict(epochs=1, batch_size=8, seed=0)
SMALL = {"nsnet": dict(d=8, heads=2, layers=1), "mgsampler": dict(frame_size=(8, 10))}
ADAPTIVE = [n for n in list_samplers() if issubclass(get_sampler_class(n), AdaptiveSampler)]


class DeviceMixing(TorchDispatchMode):
    """Fails every aten op whose tensor arguments live on more than one device (listed in ``mixed``), and
    lists the ops that copy tensors to another device (``copies``): a constant built on the CPU and copied
    over on every call is not mixing, but it is a host-to-device copy per call on a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.mixed: list[str] = []
        self.copies: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        devices = sorted({str(a.device) for a in tree_flatten((args, kwargs))[0] if isinstance(a, Tensor)})
        if len(devices) > 1:
            self.mixed.append(f"{func} on {devices}")
            raise AssertionError(f"{func} mixes devices {devices}")
        out = func(*args, **kwargs)
        produced = sorted({str(t.device) for t in tree_flatten(out)[0] if isinstance(t, Tensor)} - set(devices))
        if devices and produced:
            self.copies.append(f"{func}: {devices[0]} -> {produced[0]}")
        return out


def cpu_bank(n: int, *, seed: int, dim: int = D) -> FrameFeatures:
    gen = torch.Generator().manual_seed(seed)
    return FrameFeatures(
        fem=torch.rand(n, T, dim, generator=gen),
        num_classes=C,
        motion=torch.rand(n, T, generator=gen),
        labels=torch.nn.functional.one_hot(torch.arange(n) % C, C).float(),
        rec_logits=torch.randn(n, T, C, generator=gen),
        rec_feats=torch.randn(n, T, 6, generator=gen),
        video_ids=tuple(f"v{i}" for i in range(n)),
    )


def meta_bank(sampler: Sampler) -> FrameFeatures:
    """The evaluation bank the pipeline would build for ``sampler`` (labels only for the oracle, the recognizer's
    outputs also for samplers that read them), on meta."""
    bank = cpu_bank(B, seed=1)
    privileged = sampler.uses_labels_at_eval
    recognized = privileged or sampler.reads_recognizer
    return FrameFeatures(
        fem=bank.fem.to(META), num_classes=C, video_ids=bank.video_ids,
        motion=bank.motion.to(META) if sampler.needs_motion else None,
        labels=bank.labels.to(META) if privileged else None,
        rec_logits=bank.rec_logits.to(META) if recognized else None,
        rec_feats=bank.rec_feats.to(META) if recognized else None,
    )


def build(name: str, *, dim: int = D, **fields) -> Sampler:
    """``name`` as the pipeline builds it (training options where its constructor takes them), fitted on a CPU
    bank of ``dim``-wide features when trainable."""
    cls = get_sampler_class(name)
    params = constructor_fields(cls)
    sampler = cls(**{k: v for k, v in TRAINING.items() if k in params} | SMALL.get(name, {}) | fields)
    if sampler.trainable:
        sampler.fit(cpu_bank(16, seed=0, dim=dim))
    return sampler


def test_the_detector_catches_a_cpu_scalar_and_a_cpu_tensor():
    x = torch.ones(2, 3, device=META)
    with DeviceMixing() as mode, pytest.raises(AssertionError, match="mixes devices"):
        _ = x * torch.tensor(2.0)  # PyTorch itself lets a 0-dim CPU tensor through
    assert mode.mixed
    with DeviceMixing(), pytest.raises((AssertionError, RuntimeError)):
        _ = x * torch.tensor([1.0, 2.0, 3.0])
    with DeviceMixing() as mode:
        _ = torch.where(x > 0, x * 0.5, -1.0) + torch.arange(3).to(META)  # Python scalars and explicit copies
    assert not mode.mixed and mode.copies == ["aten._to_copy.default: cpu -> meta"]


@pytest.mark.parametrize("name", list_samplers())
def test_select_and_scores_stay_on_the_input_device(name):
    sampler = build(name).to(META)
    bank = meta_bank(sampler)
    with DeviceMixing() as mode:
        index = sampler.select(bank, K)
        scores = sampler.scores(bank)
    assert not mode.copies or name in COPIES_BY_DESIGN, mode.copies
    assert index.device == META and index.dtype == torch.long
    assert index.shape == (B, T if sampler.keeps_all else K)
    assert scores.device == META and scores.shape == (B, T)


@pytest.mark.parametrize("name", ADAPTIVE)
def test_a_budgeted_selection_and_its_cost_stay_on_the_input_device(name):
    """An adaptive sampler's exit rule (FrameExit's gates included) and its per-video cost, on the features' device;
    its order, a constant, is made once per device, not copied from the host on every call."""
    sampler = build(name).to(META)
    bank = meta_bank(sampler)
    sampler.order(bank)  # the constant's one copy to this device
    with DeviceMixing() as mode:
        chosen = sampler.budgeted(bank, sampler.sweep[len(sampler.sweep) // 2])
        cost = sampler.head_gflops(chosen.count, T)
    assert not mode.copies, mode.copies
    assert chosen.index.device == chosen.count.device == cost.device == META
    assert chosen.index.shape == (B, T) and chosen.count.shape == cost.shape == (B,)


def test_the_timed_budgeted_step_moves_a_sampler_to_its_device():
    """FrameExit's gates trained on the CPU, timed on another device: the step moves them there before the first
    call, so no batch is scored across devices."""
    sampler = build("frameexit")
    bank = meta_bank(sampler)
    rec = FrameClassifier(arch="resnet18", num_classes=C)
    budgeted_step(sampler=sampler, frames=torch.zeros(2, T, 3, 16, 16, dtype=torch.uint8), value=0.5,
                  rec_logits=bank.rec_logits[:2], rec_feats=bank.rec_feats[:2], recognizer=rec, fem=None, fem_res=8,
                  num_classes=C, device="meta")
    assert all(p.device == META for p in sampler.fitted_net().parameters())


def test_the_timed_budgeted_pipeline_runs_the_recognizer_on_the_frames_used():
    """The batch the recognizer gets in a timed step of an adaptive sampler: each video's used frames, Σ count."""
    torch.manual_seed(0)
    rec = FrameClassifier(arch="resnet18", num_classes=C).eval()
    seen: list[int] = []
    rec.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[0]))
    sampler = build("confidence_exit")
    bank = cpu_bank(4, seed=3)
    value = sampler.sweep[len(sampler.sweep) // 2]
    step = budgeted_step(sampler=sampler, frames=torch.randint(0, 256, (4, T, 3, 16, 16), dtype=torch.uint8),
                         value=value, rec_logits=bank.rec_logits, rec_feats=bank.rec_feats, recognizer=rec, fem=None,
                         fem_res=8, num_classes=C, device="cpu")
    step()
    assert seen == [int(sampler.budgeted(bank, value).count.sum())]


@pytest.mark.parametrize("fields", [{"no_ns": True}, *({"fusion": f} for f in FUSIONS)])
def test_every_nsnet_fusion_stays_on_the_input_device(fields):
    sampler = build("nsnet", **fields).to(META)
    bank = meta_bank(sampler)
    with DeviceMixing() as mode:
        index = sampler.select(bank, K)
    assert index.device == META and not mode.copies


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_fusions_stay_on_the_input_device(fusion):
    sf, sv = torch.rand(B, T, device=META), torch.rand(B, T, device=META).softmax(dim=1)
    with DeviceMixing():
        assert fuse_select(sf, sv, K, fusion=fusion).device == META
        if fusion in ("add", "mul", "max"):
            assert fuse_scores(sf, sv, fusion=fusion).device == META


def test_to_moves_a_fitted_sampler_and_returns_it():
    sampler = build("nsnet")
    assert sampler.to(META) is sampler
    assert all(p.device == META for p in sampler.fitted_net().parameters())
    assert build("uniform").to(META).select(meta_bank(build("uniform")), K).device == META


@pytest.mark.parametrize("name", ["dense", "uniform", "mgsampler", "nsnet"])
def test_the_timed_pipeline_stays_on_its_device(name):
    """What ``pipeline_step`` times per batch (FEM, selection, the recognizer on the kept frames) runs on the
    timing device: the step would otherwise copy through the host."""
    torch.manual_seed(0)
    rec = FrameClassifier(arch="resnet18", num_classes=C)
    fem = FrameClassifier(arch="mobilenet_v2", num_classes=C)
    frames = torch.randint(0, 256, (2, T, 3, 16, 16), dtype=torch.uint8)
    sampler = build(name, dim=FEM_DIM)
    with DeviceMixing():
        step = pipeline_step(sampler=sampler, frames=frames, k=K, recognizer=rec, fem=fem, fem_res=8,
                             motion=torch.rand(2, T) if sampler.needs_motion else None, num_classes=C, device="meta")
        timing = measure_interleaved({name: step}, reference=name, items_per_call=2, device=torch.device("meta"),
                                     min_rounds=1, min_seconds=0.0)
    assert timing[name].iterations >= 1
