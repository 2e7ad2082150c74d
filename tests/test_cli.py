"""Bad input from the command line: one line on stderr, exit status 2, no traceback."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from samplerbench.cli import main
from samplerbench.config import build_config
from samplerbench.recognizers.train import extract_outputs, train_frame_classifier
from samplerbench.runs import select
from samplerbench.samplers import get_sampler
from samplerbench.stages.decode import decode_stream, motion_stream, probe_many

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--budget", "4,9", "--frames", "8"], "K=9 exceeds --frames T=8"),
        (["--budget", "2"], "main_budget = 4 is not one of the budgets 2: add it to --budget"),
        (["--dataset", "list", "--split", "2"], "data.options.list: unknown option 'split'"),
        (["--budget", "0"], "budgets = (0,): each value must be at least 1"),
        (["--frames", "0"], "frames = 0: must be at least 1"),
        (["--sampler", "uniform,nope"], "unknown sampler 'nope'; valid: confidence_exit, dense, frameexit"),
        (["--sampler", "uniform,nsnte"], "unknown sampler 'nsnte'; did you mean 'nsnet'? valid: confidence_exit, "),
        (["--dataset", "kinetics9000"],
         "unknown dataset 'kinetics9000'; did you mean 'minikinetics'? valid: activitynet"),
        (["--tables", "main,bogus"], "unknown table 'bogus'; valid: main, guiding, fusion, fem, recognizer, saliency"),
        (["--tables", "main,fusoin"], "unknown table 'fusoin'; did you mean 'fusion'? valid: main, guiding"),
        (["--dataset", "activitynet"], "activity_net.v1-3.min.json"),
    ],
)
def test_user_errors_are_one_line(argv, message, capsys, tmp_path):
    status = main([*argv, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unknown_preset_is_rejected_by_argparse_in_one_line(capsys):
    assert main(["--preset", "huge"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'huge'" in err and err.count("\n") == 1


def test_list_names_everything(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("uniform", "random", "dense", "nsnet", "oracle", "synthetic", "activitynet", "tiny", "resnet18"):
        assert name in out


def test_bench_py_is_the_console_script():
    """``python bench.py --list`` and ``samplerbench --list`` print the same thing."""
    a = subprocess.run([sys.executable, "bench.py", "--list"], cwd=ROOT, capture_output=True, text=True, check=True)
    b = subprocess.run(["samplerbench", "--list"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert a.stdout == b.stdout and "samplers:" in a.stdout


def test_progress_bars_follow_quiet(capsys):
    """``--quiet`` (and ranks other than 0 under torchrun) turn the bars off; they are on by default."""
    from samplerbench.core.stagelog import progress, progress_bars

    assert list(progress(range(3), desc="visible")) == [0, 1, 2]
    assert "visible" in capsys.readouterr().err
    with progress_bars(False):
        assert list(progress(range(3), desc="hidden")) == [0, 1, 2]
    assert "hidden" not in capsys.readouterr().err
    assert not progress(range(1)).disable  # the switch is scoped to its block


@pytest.mark.parametrize("fn", [probe_many, decode_stream, motion_stream, train_frame_classifier, extract_outputs])
def test_workers_have_no_numeric_default_where_processes_are_started(fn):
    """Every worker count comes from the caller: a run's config, select's flag or their one default."""
    workers = inspect.signature(fn).parameters["workers"]
    assert workers.kind is inspect.Parameter.KEYWORD_ONLY and workers.default is inspect.Parameter.empty


def test_select_passes_its_workers_flag_to_the_sampler_it_loads(monkeypatch, capsys):
    handed = []

    def load_sampler(path, *, device, workers):
        handed.append(workers)
        return SimpleNamespace(select_videos=lambda videos, k, top5: [{"video": str(videos[0]), "skipped": "x"}])

    monkeypatch.setattr(select, "load_sampler", load_sampler)
    argv = ["select", "--checkpoint", "s.pt", "-k", "2", "v.mp4"]
    assert main([*argv, "--workers", "3"]) == 1 and main(argv) == 1  # 1: no video was readable
    assert handed == [3, None]  # None: the loaded sampler's default, a run's
    assert main([*argv, "--workers", "0"]) == 2 and "--workers: 0: must be at least 1" in capsys.readouterr().err


def test_select_decodes_with_a_runs_default_workers(monkeypatch):
    """Without ``--workers``, select probes and decodes with as many processes as a run would: the config's
    default, the cores this process may use."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(6)))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    used = []

    def probe_many(paths, *, workers):
        used.append(("probe", workers))
        return {p: "missing file" for p in paths}

    def decode_records(records, *, workers, **kwargs):
        used.append(("decode", workers))
        return SimpleNamespace(frames=torch.zeros(0), video_ids=[], skipped=[])

    monkeypatch.setattr(select, "probe_many", probe_many)
    monkeypatch.setattr(select, "decode_records", decode_records)
    trained = select.TrainedSampler(sampler=get_sampler("uniform"), fem=None, recognizer=None, classes=("a",), frames=4,
                                    short_side=32, crop=32, fem_res=32, rec_res=32, device="cpu")
    assert trained.workers == build_config().workers == 6
    assert trained.select_videos(["gone.mp4"], 2) == [{"video": "gone.mp4", "skipped": "missing file"}]
    assert used == [("probe", 6), ("decode", 6)]
