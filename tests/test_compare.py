from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from samplerbench.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run_folder(path, seed, maps, *, preset="default", dataset="synthetic", frames=16, budgets=(4,)):
    path.mkdir(parents=True)
    rows = [dict(dataset=dataset, sampler=s, frames_T=frames, budget_K=k, mAP=m, top1=m / 2, salient_hit_rate=50.0,
                 gflops_per_video=1.0) for s, m in maps.items() for k in budgets]
    pd.DataFrame(rows).to_csv(path / "summary.csv", index=False)
    (path / "run.json").write_text(json.dumps({"seed": seed, "preset": preset, "machine": "m1",
                                               "config": {"budgets": list(budgets)}}))
    return path


def test_compare_mean_and_std_over_seeds(tmp_path, capsys):
    a = _run_folder(tmp_path / "s0", 0, {"uniform": 50.0, "nsnet": 70.0})
    b = _run_folder(tmp_path / "s1", 1, {"uniform": 54.0, "nsnet": 72.0})
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "agg")]) == 0
    out = capsys.readouterr().out
    assert "52.0 ± 2.8" in out and "71.0 ± 1.4" in out and "0,1" in out  # sample std, ddof=1
    agg = pd.read_csv(tmp_path / "agg.csv").set_index("sampler")
    assert agg.loc["nsnet", "mAP_mean"] == pytest.approx(71.0) and agg.loc["nsnet", "runs"] == 2
    text = (tmp_path / "agg.md").read_text()
    assert text.startswith("# Mean ± std over runs")
    assert f"- {b}: preset `default`, seed 1, machine: m1" in text


def test_compare_rejects_a_folder_without_summary(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err


# (id, the second run's setting, what the one line says it is)
MIXED = [
    ("another preset", {"preset": "tiny"}, "is preset `tiny`, dataset synthetic, T=16, K=4"),
    ("another dataset", {"dataset": "activitynet"}, "is preset `default`, dataset activitynet, T=16, K=4"),
    ("another T", {"frames": 8}, "is preset `default`, dataset synthetic, T=8, K=4"),
    ("another K set", {"budgets": (2, 4)}, "is preset `default`, dataset synthetic, T=16, K=2,4"),
]


@pytest.mark.parametrize(("setting", "says"), [c[1:] for c in MIXED], ids=[c[0] for c in MIXED])
def test_compare_refuses_runs_of_different_settings(tmp_path, capsys, setting, says):
    a = _run_folder(tmp_path / "a", 0, {"uniform": 50.0})
    b = _run_folder(tmp_path / "b", 1, {"uniform": 54.0}, **setting)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "agg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"cannot be averaged: {a} is preset `default`, dataset synthetic, T=16, K=4, but {b} {says}" in err, err
    assert "--separate" in err and not list(tmp_path.glob("agg*"))


def test_compare_separates_settings_on_request(tmp_path, capsys):
    a = _run_folder(tmp_path / "a", 0, {"uniform": 50.0})
    b = _run_folder(tmp_path / "b", 1, {"uniform": 54.0})
    tiny = _run_folder(tmp_path / "tiny", 0, {"uniform": 40.0}, preset="tiny", frames=8, budgets=(2, 4))
    assert main(["compare", str(a), str(tiny), str(b), "--separate", "--out", str(tmp_path / "agg")]) == 0
    out = capsys.readouterr().out
    default_part, tiny_part = out.split("## preset `tiny`, dataset synthetic, T=8, K=2,4")
    assert default_part.startswith("## preset `default`, dataset synthetic, T=16, K=4") and "52.0 ± 2.8" in default_part
    assert tiny_part.lstrip().startswith("**Smoke test** (preset `tiny`)") and "| uniform " in tiny_part
    agg = pd.read_csv(tmp_path / "agg.csv")
    assert sorted(zip(agg["preset"], agg["budget_K"], agg["runs"], strict=True)) == [
        ("default", 4, 2), ("tiny", 2, 1), ("tiny", 4, 1)]


def _nested_run(path, seed, maps, *, weights=None, **config):
    """A run folder whose run.json holds a nested config (``config`` merged into ``sampling``), as runs write;
    ``weights``: (the recognizer's weights file, its digest)."""
    folder = _run_folder(path, seed, maps)
    sampling = {"budgets": [4], "aggregation": "mean_softmax", "options": {}, **config}
    meta = {"seed": seed, "preset": "default", "machine": "m1", "code": "c0",
            "config": {"preset": "default", "seed": seed, "data": {"dataset": "synthetic", "frames": 16},
                       "sampling": sampling, "recognizer": {"weights": weights and weights[0]}},
            "weights": {"recognizer": weights[1]} if weights else {}}
    (folder / "run.json").write_text(json.dumps(meta))
    return folder


# (id, the second run's sampling settings, the setting the one line names)
IDENTITIES = [
    ("another aggregation", {"aggregation": "max_features"}, 'sampling.aggregation="max_features"'),
    ("a sampler option", {"options": {"nsnet": {"d": 32}}}, "sampling.options.nsnet.d=32"),
]


@pytest.mark.parametrize(("sampling", "says"), [c[1:] for c in IDENTITIES], ids=[c[0] for c in IDENTITIES])
def test_compare_refuses_runs_differing_only_in_an_option(tmp_path, capsys, sampling, says):
    a = _nested_run(tmp_path / "a", 0, {"nsnet": 50.0})
    b = _nested_run(tmp_path / "b", 1, {"nsnet": 54.0}, **sampling)
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"but {b} is preset `default`, dataset synthetic, T=16, K=4, {says}" in err, err
    assert main(["compare", str(a), str(b), "--separate"]) == 0
    out = capsys.readouterr().out
    assert out.count("## preset") == 2 and says in out and "± " not in out  # two tables of one run each


def test_compare_refuses_runs_of_different_code(tmp_path, capsys):
    a = _nested_run(tmp_path / "a", 0, {"nsnet": 50.0})
    b = _nested_run(tmp_path / "b", 1, {"nsnet": 54.0})
    meta = json.loads((b / "run.json").read_text())
    (b / "run.json").write_text(json.dumps({**meta, "code": "c1"}))
    assert main(["compare", str(a), str(b)]) == 2
    assert "code=c1" in capsys.readouterr().err


def test_compare_averages_runs_differing_only_where_numbers_do_not_change(tmp_path, capsys):
    a = _nested_run(tmp_path / "a", 0, {"nsnet": 50.0})
    b = _nested_run(tmp_path / "b", 1, {"nsnet": 54.0})
    meta = json.loads((b / "run.json").read_text())
    meta["config"].update(device="cuda", workers=7, report={"tables": ["main"]})
    (b / "run.json").write_text(json.dumps(meta))
    assert main(["compare", str(a), str(b)]) == 0
    assert "52.0 ± 2.8" in capsys.readouterr().out


def test_compare_counts_a_run_once(tmp_path, capsys):
    a = _nested_run(tmp_path / "a", 0, {"nsnet": 50.0})
    b = _nested_run(tmp_path / "b", 1, {"nsnet": 54.0})
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("summary.csv", "run.json"):
        (copy / name).write_bytes((a / name).read_bytes())
    for runs, says in (([a, a, b], f"{a} is given twice"), ([a, tmp_path / "b" / ".." / "a", b], "is given twice"),
                       ([a, copy, b], f"{a} and {copy} are both seed 0 of one setting")):
        assert main(["compare", *map(str, runs)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err and "Traceback" not in err, err


def test_compare_prints_and_writes_utf8_in_a_c_locale(tmp_path):
    a = _run_folder(tmp_path / "s0", 0, {"uniform": 50.0})
    b = _run_folder(tmp_path / "s1", 1, {"uniform": 54.0})
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    done = subprocess.run([sys.executable, str(ROOT / "bench.py"), "compare", str(a), str(b), "--out",
                           str(tmp_path / "agg")], env=env, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert "52.0 ± 2.8" in done.stdout.decode("utf-8") and "52.0 ± 2.8" in (tmp_path / "agg.md").read_text("utf-8")


def test_compare_knows_weights_by_content_not_by_name(tmp_path, capsys):
    a = _nested_run(tmp_path / "a", 0, {"nsnet": 50.0}, weights=("/data/rec.pt", "d0"))
    renamed = _nested_run(tmp_path / "b", 1, {"nsnet": 54.0}, weights=("/elsewhere/rec.pt", "d0"))
    retrained = _nested_run(tmp_path / "c", 2, {"nsnet": 58.0}, weights=("/data/rec.pt", "d1"))
    assert main(["compare", str(a), str(renamed)]) == 0
    assert "52.0 ± 2.8" in capsys.readouterr().out
    assert main(["compare", str(a), str(retrained)]) == 2
    assert 'recognizer.weights="d1"' in capsys.readouterr().err


def test_compare_reports_each_samplers_per_run_difference_to_uniform(tmp_path, capsys):
    """Across seeds every sampler moves with the data: the per-run Δ to uniform spreads far less than the mAP."""
    runs = [_run_folder(tmp_path / f"s{i}", i, {"uniform": u, "nsnet": u + 3.0 + d})
            for i, (u, d) in enumerate([(50.0, 0.0), (60.0, 1.0), (70.0, -1.0)])]
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "agg")]) == 0
    agg = pd.read_csv(tmp_path / "agg.csv").set_index("sampler")
    assert agg.loc["nsnet", "mAP_std"] == pytest.approx(9.539, abs=1e-3)  # 53, 64, 72
    assert agg.loc["nsnet", "dmAP_vs_uniform_mean"] == pytest.approx(3.0)
    assert agg.loc["nsnet", "dmAP_vs_uniform_std"] == pytest.approx(1.0)
    assert agg.loc["uniform", "dmAP_vs_uniform_mean"] == 0.0
    assert "| 3.0 ± 1.0 " in capsys.readouterr().out


def test_compare_averages_an_adaptive_sampler_only_at_one_knob_value(tmp_path, capsys):
    """Each run lists an adaptive sampler at K with the sweep point nearest K's cost, which may be another knob
    value from run to run: only runs at the same value are averaged."""
    runs = []
    for i, (value, score) in enumerate([(0.5, 60.0), (0.5, 62.0), (0.7, 70.0)]):
        folder = _run_folder(tmp_path / f"s{i}", i, {"uniform": 50.0})
        summary = pd.read_csv(folder / "summary.csv")
        point = {**summary.iloc[0].to_dict(), "sampler": "confidence_exit", "knob": "confidence",
                 "knob_value": value, "mAP": score}
        pd.concat([summary, pd.DataFrame([point])]).to_csv(folder / "summary.csv", index=False)
        runs.append(folder)
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "agg")]) == 0
    out = capsys.readouterr().out
    assert "| confidence_exit (confidence=0.5) |" in out and "| 61.0 ± 1.4 " in out
    assert "| confidence_exit (confidence=0.7) |" in out and "| uniform " in out
    agg = pd.read_csv(tmp_path / "agg.csv")
    assert sorted(agg.loc[agg["sampler"] == "confidence_exit", "runs"]) == [1, 2]
    assert agg.loc[agg["sampler"] == "uniform", "runs"].tolist() == [3]
