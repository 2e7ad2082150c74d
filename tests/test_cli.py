"""Bad input from the command line: one line on stderr, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from samplerbench.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--budget", "4,9", "--frames", "8"], "K=9 exceeds --frames T=8"),
        (["--budget", "2"], "main_budget = 4 is not one of the budgets 2: add it to --budget"),
        (["--dataset", "list", "--split", "2"], "data.options.list: unknown option 'split'"),
        (["--budget", "0"], "budgets = (0,): each value must be at least 1"),
        (["--frames", "0"], "frames = 0: must be at least 1"),
        (["--sampler", "uniform,nope"], "unknown sampler 'nope'; valid: dense, mgsampler, nsnet"),
        (["--sampler", "uniform,nsnte"], "unknown sampler 'nsnte'; did you mean 'nsnet'? valid: dense, mgsampler"),
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
