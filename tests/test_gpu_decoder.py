"""``--decoder torchcodec``: the same frame indices as the CPU decoders, the same resize path on its layout, the CPU
decoders as fallback, a one-line error without torchcodec, and (where torchcodec loads) pixels within tolerance."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from videofiles import write_clip

from samplerbench.cli import main
from samplerbench.config import build_config
from samplerbench.core.errors import UserError
from samplerbench.core.stagelog import StageLog
from samplerbench.datasets.synthetic import SyntheticConfig, generate
from samplerbench.stages import decode
from samplerbench.stages.decode import PIXEL_TOLERANCE, _cpu_frames, _decode_video, decode_clip, view_indices
from samplerbench.stages.pipeline import Pipeline

SIZE = dict(short_side=40, crop=32)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Synthetic videos of the tiny preset's size (moving content: neighbouring frames differ) and a rotated clip."""
    root = tmp_path_factory.mktemp("gpu-decoder")
    cfg = SyntheticConfig(num_classes=2, train_per_class=1, val_per_class=1, min_frames=20, max_frames=40, width=64,
                          height=48)
    generate(cfg, seed=0, root=root, workers=1)
    return [*sorted((root / "videos").glob("*.mp4")), write_clip(root / "rotated.mp4", rotation=90)]


class FakeGpuDecoder:
    """Stands in for torchcodec: records the indices asked for and returns the CPU decoders' frames in torchcodec's
    layout ``[n, 3, H, W]``, so that everything but the decoder itself runs as with ``--decoder torchcodec``."""

    def __init__(self) -> None:
        self.asked: list[list[int]] = []

    def __call__(self, path: Path, wanted: np.ndarray, *, device: str) -> torch.Tensor:
        self.asked.append(wanted.tolist())
        return _cpu_frames(path, wanted).permute(0, 3, 1, 2).to(device)


def test_gpu_decoder_gets_the_cpu_decoders_indices_and_gives_their_frames(videos, monkeypatch) -> None:
    fake = FakeGpuDecoder()
    monkeypatch.setattr(decode, "torchcodec_frames", fake)
    for path in videos[:2]:
        n = decode.probe(path)[0]
        for train in (False, True):
            args = dict(t=8, **SIZE, views=2, seed=3, train=train, device="cpu")
            gpu = _decode_video(path, path.stem, n, 8.0, **args, decoder="torchcodec")
            cpu = _decode_video(path, path.stem, n, 8.0, **args)
            wanted = view_indices(n, t=8, views=2, seed=3, video_id=path.stem, train=train)
            assert fake.asked[-1] == np.unique(wanted).tolist()  # the same index-selection code
            assert np.array_equal(gpu[1], cpu[1])  # the same timestamps
            assert np.array_equal(gpu[0], cpu[0])  # the same resize and crop, from the other layout


def test_a_file_the_gpu_decoder_cannot_read_falls_back_to_the_cpu_decoders(videos, monkeypatch) -> None:
    def broken(path: Path, wanted: np.ndarray, *, device: str) -> torch.Tensor:
        raise RuntimeError("Could not open input file")

    monkeypatch.setattr(decode, "torchcodec_frames", broken)
    idx = np.array([5, 1, 1, 9])
    assert torch.equal(decode_clip(videos[0], idx, **SIZE, decoder="torchcodec"), decode_clip(videos[0], idx, **SIZE))


def test_without_torchcodec_the_decoder_is_a_one_line_error(videos, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # import fails as if not installed
    with pytest.raises(UserError, match=r"--decoder torchcodec: torchcodec cannot be loaded .* or use --decoder cpu"):
        decode_clip(videos[0], np.array([0, 1]), **SIZE, decoder="torchcodec")


def test_decoder_is_checked_and_in_the_decode_key_only_when_not_cpu(tmp_path, capsys) -> None:
    assert main(["--decoder", "nvdec", "--preset", "tiny"]) == 2
    assert "invalid choice: 'nvdec'" in capsys.readouterr().err
    with pytest.raises(UserError, match="--decoder nvdec: valid: cpu, torchcodec"):
        build_config("tiny", data={"decoder": "nvdec"})
    log = StageLog(quiet=True)
    cpu = Pipeline(build_config("tiny"), cache_dir=tmp_path, log=log).source._decode_params("val")
    gpu = Pipeline(build_config("tiny", data={"decoder": "torchcodec"}), cache_dir=tmp_path, log=log)
    assert "decoder" not in cpu  # keys of runs before the option stay valid
    assert gpu.source._decode_params("val") == cpu | {"decoder": "torchcodec"}


def _torchcodec_loads() -> bool:
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception:  # not installed, or FFmpeg's libraries missing (RuntimeError)
        return False
    return True


@pytest.mark.skipif(not _torchcodec_loads(), reason="torchcodec (and FFmpeg's libraries) not installed")
def test_torchcodec_on_the_cpu_matches_the_cpu_decoders_within_tolerance(videos) -> None:
    for path in videos:
        n = decode.probe(path)[0]
        idx = view_indices(n, t=8, views=1, seed=0, video_id=path.stem, train=False)[0]
        tc = decode_clip(path, idx, **SIZE, decoder="torchcodec")
        raw = decode.torchcodec_frames(path, np.unique(idx), device="cpu")
        cpu = decode_clip(path, idx, **SIZE)
        assert raw.shape[-2:] == _cpu_frames(path, np.unique(idx)).shape[1:3], path.name  # upright, as decord
        assert (tc.float() - cpu.float()).abs().mean() <= PIXEL_TOLERANCE, path.name
