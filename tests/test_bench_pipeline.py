"""Speed of the pipeline's pieces (pytest-benchmark): selection on cached tensors, decoding, backbones.

Run with ``pytest -m benchmark --benchmark-enable``; docs/performance.md lists the figures
measured on the reference 2-core machine. Rates are printed in each benchmark's ``extra_info``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.io import encode_jpeg

from samplerbench.core.timeline import presample_indices
from samplerbench.datasets.base import FrameFolder, VideoRecord
from samplerbench.datasets.synthetic import write_mp4
from samplerbench.measures.fusion import fuse_select
from samplerbench.measures.metrics import video_scores
from samplerbench.recognizers.backbones import FrameClassifier
from samplerbench.samplers import FrameFeatures, get_sampler
from samplerbench.stages.decode import decode_clip, decode_records

pytestmark = pytest.mark.benchmark

B, T, K, C = 50_000, 16, 4, 200


def _rate(benchmark, items: int) -> float | None:
    if benchmark.stats is None:
        return None
    rate = items / benchmark.stats.stats.mean
    benchmark.extra_info["items_per_s"] = round(rate, 1)
    return rate


@pytest.fixture(scope="module")
def cached_logits() -> torch.Tensor:
    return torch.randn(B, T, C, generator=torch.Generator().manual_seed(0))


def test_bench_uniform_select_and_score(benchmark, cached_logits):
    """Selection + evaluation on cached tensors for uniform (target: >= 50,000 videos/s)."""
    bank = FrameFeatures(fem=torch.zeros(B, T, 1), num_classes=C)
    sampler = get_sampler("uniform")
    benchmark.pedantic(lambda: video_scores(cached_logits, sampler.select(bank, K)), rounds=5, warmup_rounds=1)
    rate = _rate(benchmark, B)
    assert rate is None or rate >= 50_000


@pytest.mark.parametrize("fusion", ["union", "add", "intersection", "join"])
def test_bench_nsnet_fusion_select_and_score(benchmark, cached_logits, fusion):
    """NSNet's fusion of its two cached branch scores + evaluation (target: >= 50,000 videos/s)."""
    gen = torch.Generator().manual_seed(1)
    sf, sv = torch.rand(B, T, generator=gen), torch.randn(B, T, generator=gen).softmax(dim=1)
    benchmark.pedantic(lambda: video_scores(cached_logits, fuse_select(sf, sv, K, fusion=fusion)), rounds=5,
                       warmup_rounds=1)
    rate = _rate(benchmark, B)
    assert rate is None or rate >= 50_000


@pytest.fixture(scope="module")
def clip_frames() -> np.ndarray:
    """300 frames of 340x256, the size of a resized ActivityNet video: noise shifted by one grey level per
    frame (hard on both codecs, so neither source gets easy content)."""
    rng = np.random.default_rng(0)
    return ((rng.integers(0, 255, (1, 256, 340, 3)) + np.arange(300)[:, None, None, None]) % 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, clip_frames) -> str:
    """The 300 frames as an H.264 clip."""
    path = tmp_path_factory.mktemp("decode") / "clip.mp4"
    write_mp4(path, iter(clip_frames), fps=30, width=340, height=256)
    return str(path)


@pytest.fixture(scope="module")
def frame_folder(tmp_path_factory, clip_frames) -> FrameFolder:
    """The same 300 frames as a frame folder (mmaction2's rawframes, JPEG quality 95)."""
    folder = tmp_path_factory.mktemp("rawframes")
    for i, frame in enumerate(clip_frames):
        data = encode_jpeg(torch.from_numpy(frame).permute(2, 0, 1).contiguous(), quality=95)
        (folder / f"img_{i + 1:05d}.jpg").write_bytes(data.numpy().tobytes())
    return FrameFolder(path=folder, total_frames=len(clip_frames))


@pytest.mark.parametrize(("short_side", "crop"), [(56, 48), (256, 224)], ids=["default", "paper"])
def test_bench_decode_t_frames(benchmark, clip, short_side, crop):
    """decord: T=16 pre-sampled frames of a 300-frame clip, resized and centre-cropped (frames/s)."""
    indices = presample_indices(300, T)
    out = benchmark.pedantic(decode_clip, args=(clip, indices), kwargs=dict(short_side=short_side, crop=crop),
                             rounds=3, warmup_rounds=1)
    assert out.shape == (T, 3, crop, crop)
    _rate(benchmark, T)


@pytest.mark.parametrize(("short_side", "crop"), [(56, 48), (256, 224)], ids=["default", "paper"])
def test_bench_decode_t_frames_folder(benchmark, frame_folder, short_side, crop):
    """decode_jpeg (batched, CPU): the same T=16 frames of the same clip stored as a frame folder (frames/s),
    beside :func:`test_bench_decode_t_frames`'s video figure."""
    indices = presample_indices(300, T)
    out = benchmark.pedantic(decode_clip, args=(frame_folder, indices), kwargs=dict(short_side=short_side, crop=crop),
                             rounds=3, warmup_rounds=1)
    assert out.shape == (T, 3, crop, crop)
    _rate(benchmark, T)


@pytest.mark.parametrize(("short_side", "crop"), [(56, 48), (256, 224)], ids=["default", "paper"])
@pytest.mark.parametrize("workers", [1, 2])
def test_bench_decode_stage_workers(benchmark, clip, workers, short_side, crop):
    """The decode stage (probe + DataLoader decode) of 12 videos, T=16, at 48 and 224 px, with 1 and 2 workers."""
    records = [VideoRecord(video_id=f"v{i}", path=clip, labels=(0,), segments=(), subset="val")
               for i in range(12)]
    out = benchmark.pedantic(decode_records, args=(records,),
                             kwargs=dict(t=T, short_side=short_side, crop=crop, workers=workers),
                             rounds=3, warmup_rounds=1)
    assert out.frames.shape == (12, T, 3, crop, crop)
    if _rate(benchmark, 12 * T):
        benchmark.extra_info["videos_per_s"] = round(12 / benchmark.stats.stats.mean, 2)


@pytest.mark.parametrize("workers", [1, 2])
def test_bench_decode_stage_frame_folders(benchmark, frame_folder, workers):
    """The decode stage of 12 frame folders (the clip's frames as JPEGs), T=16, at 224 px: the frame-folder
    counterpart of :func:`test_bench_decode_stage_workers`' paper case."""
    records = [VideoRecord(video_id=f"v{i}", path=frame_folder.path, labels=(0,), subset="val", frames=frame_folder)
               for i in range(12)]
    out = benchmark.pedantic(decode_records, args=(records,),
                             kwargs=dict(t=T, short_side=256, crop=224, workers=workers), rounds=3, warmup_rounds=1)
    assert out.frames.shape == (12, T, 3, 224, 224)
    if _rate(benchmark, 12 * T):
        benchmark.extra_info["videos_per_s"] = round(12 / benchmark.stats.stats.mean, 2)


@pytest.mark.parametrize(
    ("arch", "res"),
    [("mobilenet_v2", 24), ("resnet18", 48), ("mobilenet_v2", 224), ("resnet101", 224)],
    ids=["fem-default", "recognizer-default", "fem-paper", "recognizer-paper"],
)
def test_bench_backbone_inference(benchmark, arch, res):
    """FEM and recognizer inference frames/s at the default and the paper's resolution (batch 16)."""
    model = FrameClassifier(arch=arch, num_classes=C).eval()
    x = torch.randint(0, 256, (16, 3, res, res), dtype=torch.uint8)
    with torch.inference_mode():
        benchmark.pedantic(model, args=(x,), rounds=3, warmup_rounds=1)
    _rate(benchmark, 16)
