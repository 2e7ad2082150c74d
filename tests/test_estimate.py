"""The time a run says it will take before its first stage, and the elapsed-against-expected clock of its lines."""

from __future__ import annotations

import dataclasses
import re

import pytest

from samplerbench.config import build_config
from samplerbench.core.stagelog import StageLog, clock_time
from samplerbench.stages.estimate import REFERENCE_SECONDS, estimate, minutes, record

MACHINE, SOURCE = "test machine", "source-1"


def stages(*, cached: bool, scale: float = 1.0) -> list[dict]:
    return [{"stage": "index", "cached": False, "seconds": 2.0 * scale},
            {"stage": "train recognizer/resnet18", "cached": cached, "seconds": (0.1 if cached else 100.0) * scale},
            {"stage": "report", "cached": False, "seconds": 1.0 * scale}]


def test_first_the_presets_reference_then_this_machines_stage_times(tmp_path):
    cfg = build_config("default")
    first = estimate(cfg, cache_dir=tmp_path, machine=MACHINE, source=SOURCE)
    assert first.total == REFERENCE_SECONDS["default"]["computed"] and "reference machine" in first.source
    assert estimate(build_config("paper"), cache_dir=tmp_path, machine=MACHINE, source=SOURCE) is None  # no figure

    record(cfg, cache_dir=tmp_path, machine=MACHINE, source=SOURCE, stages=stages(cached=False))
    again = estimate(cfg, cache_dir=tmp_path, machine=MACHINE, source=SOURCE)
    assert again.total == REFERENCE_SECONDS["default"]["cached"]  # the same run is cached: a re-run's figure
    record(cfg, cache_dir=tmp_path, machine=MACHINE, source=SOURCE, stages=stages(cached=True))
    rerun = estimate(cfg, cache_dir=tmp_path, machine=MACHINE, source=SOURCE)
    assert rerun.stages == {"index": 2.0, "train recognizer/resnet18": 0.1, "report": 1.0}
    assert "from the cache" in rerun.source

    other_seed = dataclasses.replace(cfg, seed=7)  # another seed costs the same, but computes every stage
    assert estimate(other_seed, cache_dir=tmp_path, machine=MACHINE, source=SOURCE).total == pytest.approx(103.0)
    changed = estimate(cfg, cache_dir=tmp_path, machine=MACHINE, source="source-2")  # edited code: stages recomputed
    assert changed.total == pytest.approx(103.0) and "stage times" in changed.source
    assert estimate(cfg, cache_dir=tmp_path, machine="another machine", source=SOURCE).total == REFERENCE_SECONDS[
        "default"]["computed"]


def test_a_computed_stage_replaces_its_figure_and_an_unreadable_history_is_none(tmp_path):
    cfg = build_config("tiny")
    record(cfg, cache_dir=tmp_path, machine=MACHINE, source=SOURCE, stages=stages(cached=False))
    record(dataclasses.replace(cfg, seed=1), cache_dir=tmp_path, machine=MACHINE, source=SOURCE,
           stages=stages(cached=False, scale=2.0))
    assert estimate(cfg, cache_dir=tmp_path, machine=MACHINE, source="new").total == pytest.approx(206.0)
    (tmp_path / "timings.json").write_text("{not json")
    assert estimate(cfg, cache_dir=tmp_path, machine=MACHINE, source=SOURCE).total == REFERENCE_SECONDS["tiny"][
        "computed"]


def test_stage_lines_show_elapsed_against_expected(capsys):
    log = StageLog(expected={"a": 60.0, "b": 120.0})
    with log.stage("a"):
        pass
    line = capsys.readouterr().out
    assert re.search(r"\[a +\] +0\.00 s  \(computed\)  \[0:00 of ~2:00\]", line), line  # a took 0 s, not 60
    assert log.expected == {"b": 120.0}
    with StageLog().stage("c"):
        pass
    assert "of ~" not in capsys.readouterr().out  # no estimate, no clock
    assert (clock_time(65.4), minutes(65.4), minutes(42)) == ("1:05", "1 min 05 s", "42 s")
