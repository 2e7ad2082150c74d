"""The cost columns beside the measured rates: which frames each pipeline decodes, the end-to-end arithmetic,
the speed-ups over dense, and re-measuring on request. No assertion here depends on how fast anything ran."""

from __future__ import annotations

import dataclasses

import pytest
from rows import main_row
from videofiles import write_clip

from samplerbench.cli import build_parser, config_from_args
from samplerbench.config import build_config
from samplerbench.core.stagelog import StageLog
from samplerbench.core.timeline import presample_indices
from samplerbench.evaluation.evaluator import Evaluator
from samplerbench.evaluation.result import DecodeRow, MainRow
from samplerbench.measures.cost import Timing
from samplerbench.report.write import main_markdown
from samplerbench.samplers import get_sampler, list_samplers
from samplerbench.stages import throughput
from samplerbench.stages.pipeline import Pipeline
from samplerbench.stages.throughput import decode_timing, decoded_frames, end_to_end_rate
from samplerbench.tables.main import add_speedups, add_timing

T, K = 16, 4
DECODES_2T = {"mgsampler"}  # every pre-sampled frame and its successor, for the motion between them
DECODES_T = {"dense", "nsnet", "ocsampler", "scsampler", "scsampler_rank", "oracle"}  # read every frame
DECODES_K = {"uniform", "random"}  # choose positions without looking at the frames


@pytest.mark.parametrize("name", sorted(DECODES_2T | DECODES_T | DECODES_K))
def test_samplers_that_read_frames_decode_t_the_others_k(name):
    assert name in list_samplers()
    expected = 2 * T if name in DECODES_2T else T if name in DECODES_T else K
    assert decoded_frames(get_sampler(name), t=T, k=K) == expected


def test_end_to_end_rate_adds_decode_and_compute_time():
    assert end_to_end_rate(decode_s_per_video=0.3, videos_per_s=10.0) == pytest.approx(1 / (0.3 + 0.1))


def _row(sampler: str, gflops: float, seconds_per_batch: float | None, decoded: int) -> MainRow:
    timing = None if seconds_per_batch is None else Timing(seconds=seconds_per_batch, spread=0.02, iterations=7,
                                                           items_per_call=8)
    row = main_row(sampler, gflops_per_video=gflops)
    add_timing(row, timing, decoded=decoded)
    return row


def test_speedups_measured_end_to_end_and_from_flops():
    rows = [_row("dense", 16.0, 0.8, T), _row("uniform", 2.0, 0.1, 2), _row("nsnet", 4.0, 0.4, T),
            _row("oracle", 16.0, None, T)]
    add_speedups(rows, {2: 0.05, T: 0.4})
    dense, uniform, nsnet, oracle = rows
    assert (dense.videos_per_s, dense.timed_iters, dense.timing_spread) == (10.0, 7, 0.02)
    assert dense.videos_per_s_e2e == pytest.approx(1 / (0.4 + 0.1))  # decodes T, computes 0.1 s/video
    assert uniform.decode_s_per_video == 0.05  # decodes only its K = 2 frames
    assert uniform.videos_per_s_e2e == pytest.approx(1 / (0.05 + 0.0125))
    assert (uniform.speedup_vs_dense, uniform.speedup_flops) == (8.0, 8.0)
    assert uniform.speedup_e2e_vs_dense == pytest.approx(0.5 / 0.0625)
    assert (nsnet.speedup_vs_dense, nsnet.speedup_flops) == (2.0, 4.0)
    assert nsnet.speedup_e2e_vs_dense == pytest.approx(0.5 / 0.45)  # decoding all T frames eats the gain
    assert oracle.speedup_flops == 1.0
    assert all(getattr(oracle, c) is None for c in ("videos_per_s", "timed_iters", "decoded_frames",
                                                    "decode_s_per_video", "videos_per_s_e2e", "speedup_vs_dense",
                                                    "speedup_e2e_vs_dense"))


def test_decode_timing_decodes_each_video_at_the_segment_centres(tmp_path, monkeypatch):
    videos = [(write_clip(tmp_path / "a.mp4", frames=12), 12), (write_clip(tmp_path / "b.mp4", frames=7), 7)]
    calls = []

    def recording(path, indices, **kwargs):
        calls.append((path, indices.tolist(), kwargs))
        # what was asked is recorded; the decoding itself is the CPU's, as torchcodec may be absent
        return real(path, indices, **kwargs | {"decoder": "cpu"})

    real = throughput.decode_clip
    monkeypatch.setattr(throughput, "decode_clip", recording)
    timing = decode_timing(videos, 3, short_side=40, crop=32, min_seconds=0.0)
    assert timing.iterations == 2 and timing.items_per_call == 1 and timing.seconds > 0
    # one untimed warm-up decode, then every video once
    assert [c[0] for c in calls] == [videos[0][0], videos[1][0], videos[0][0]]
    assert calls[1][1] == presample_indices(7, 3).tolist()
    assert calls[1][2] == {"short_side": 40, "crop": 32, "device": "cpu", "decoder": "cpu"}
    decode_timing(videos, 3, short_side=40, crop=32, decoder="torchcodec", min_seconds=0.0)  # the run's decoder
    assert calls[-1][2]["decoder"] == "torchcodec"


def test_decode_timing_with_successors_decodes_each_centre_and_its_next_frame(tmp_path, monkeypatch):
    """mgsampler's pipeline decodes T frames and their successors and measures the motion while decoding."""
    videos = [(write_clip(tmp_path / "a.mp4", frames=12), 12)]
    calls = []

    def recording(path, indices, num_frames, **kwargs):
        calls.append((indices.tolist(), num_frames, kwargs))
        return real(path, indices, num_frames, **kwargs)

    real = throughput.decode_motion
    monkeypatch.setattr(throughput, "decode_motion", recording)
    decode_timing(videos, 6, short_side=40, crop=32, successors=True, min_seconds=0.0)
    assert calls[-1] == (presample_indices(12, 3).tolist(), 12,
                         {"short_side": 40, "crop": 32, "device": "cpu", "decoder": "cpu"})


def test_remeasure_replaces_the_cached_figure(tmp_path):
    cfg = build_config("tiny")
    log = StageLog(quiet=True)

    def evaluator(remeasure: bool) -> Evaluator:
        pipe = Pipeline(dataclasses.replace(cfg, remeasure=remeasure), cache_dir=tmp_path, log=log)
        return Evaluator(cfg=pipe.cfg, pipe=pipe, rec=None, fem=None, machine="test machine")

    def timing(seconds: float):
        return lambda: {"seconds": seconds}

    assert evaluator(False)._timed("throughput x", "key", timing(1.0))["seconds"] == 1.0
    assert evaluator(False)._timed("throughput x", "key", timing(2.0))["seconds"] == 1.0  # from the cache
    assert evaluator(True)._timed("throughput x", "key", timing(3.0))["seconds"] == 3.0
    assert evaluator(False)._timed("throughput x", "key", timing(4.0))["seconds"] == 3.0  # the new figure, cached
    assert [s["cached"] for s in log.records] == [False, True, False, True]


def test_remeasure_flag():
    args = build_parser().parse_args(["--preset", "tiny", "--device", "cpu", "--remeasure"])
    assert config_from_args(args).remeasure
    assert not config_from_args(build_parser().parse_args(["--preset", "tiny", "--device", "cpu"])).remeasure


def test_main_table_marks_noisy_rates_and_states_the_timed_batches_and_decoding():
    rows = [_row("dense", 16.0, 0.8, T), _row("uniform", 2.0, 0.1, 2)]
    rows[1].timing_spread = 0.25  # the middle half of its batches spread over a quarter of the median
    add_speedups(rows, {2: 0.05, T: 0.4})
    decode = [DecodeRow(frames=2, successors=False, s_per_video=0.05, spread=0.3, timed_decodes=20),
              DecodeRow(frames=32, successors=True, s_per_video=0.2, spread=0.1, timed_decodes=8)]
    lines = main_markdown(rows, "header", decode=decode).splitlines()
    dense, uniform = ([cell.strip() for cell in line.split("|")] for line in lines if line.startswith("| ")
                      and line.split("|")[1].strip() in ("dense", "uniform"))
    assert {"10.0", "7", "2.0"} <= set(dense) and not any("†" in cell for cell in dense)
    assert {"80.0 †", "16.0 †"} <= set(uniform)  # compute and end-to-end rates of the noisy timing
    assert "2 frames 50 ms (IQR 30%, 20 decodes)" in lines[-1]
    assert "16 frames + their successors and motion 200 ms (IQR 10%, 8 decodes)" in lines[-1]
    assert "Decoding per video on this machine's CPU" in lines[-1]
    on_gpu = [dataclasses.replace(d, decoder="torchcodec", device="cuda") for d in decode]  # --decoder torchcodec
    assert "Decoding per video by torchcodec on cuda, median" in main_markdown(rows, "h", decode=on_gpu)
