"""The generic registry, and each of its uses: samplers (built-ins, duplicates, third-party samplers through entry
points), datasets, tables, aggregations and fusions."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from samplerbench.cli import main
from samplerbench.config import build_config
from samplerbench.core.errors import UserError
from samplerbench.core.registry import Registry
from samplerbench.datasets import dataset_spec
from samplerbench.evaluation.result import Table
from samplerbench.measures.fusion import check_fusion
from samplerbench.measures.metrics import check_aggregation
from samplerbench.samplers import FrameFeatures, Sampler, get_sampler, list_samplers, register_sampler
from samplerbench.samplers.base import SAMPLERS
from samplerbench.tables import (
    TABLES,
    build_tables,
    chosen_tables,
    extra_networks,
    frameless_notes,
    run_tables,
)

ROOT = Path(__file__).resolve().parents[1]


def test_registry_decorator_and_call_register_in_order():
    reg: Registry[object] = Registry("colour")

    @reg.register("red")
    def red():
        return "red"

    blue = reg.register("blue", object())
    assert reg.get("red") is red and reg.get("blue") is blue
    assert reg.names() == ["red", "blue"] and list(reg) == ["red", "blue"]
    assert reg.items() == [("red", red), ("blue", blue)]
    assert "red" in reg and "green" not in reg


def test_registry_sorted_names():
    reg: Registry[int] = Registry("number", sort=True)
    for name in ("two", "one", "three"):
        reg.register(name, len(name))
    assert reg.names() == ["one", "three", "two"]


def test_registry_refuses_a_taken_name_but_not_the_same_object():
    reg: Registry[object] = Registry("colour")
    red = reg.register("red", object())
    assert reg.register("red", red) is red  # a module imported twice registers the same object again
    with pytest.raises(ValueError, match="a colour named 'red' is already registered"):
        reg.register("red", object())
    assert reg.get("red") is red


def test_registry_unknown_name_is_one_line_with_did_you_mean():
    reg: Registry[int] = Registry("sampler")
    for i, name in enumerate(("nsnet", "uniform", "dense")):
        reg.register(name, i)
    with pytest.raises(UserError) as err:
        reg.get("nsnte")
    assert str(err.value) == "unknown sampler 'nsnte'; did you mean 'nsnet'? valid: nsnet, uniform, dense"
    with pytest.raises(UserError) as err:
        reg.get("zzz")
    assert str(err.value) == "unknown sampler 'zzz'; valid: nsnet, uniform, dense"


def test_registry_check_runs_before_storing():
    def positive(name: str, value: int) -> None:
        if value <= 0:
            raise TypeError(f"{name}: not positive")

    reg: Registry[int] = Registry("count", check=positive)
    with pytest.raises(TypeError, match="bad: not positive"):
        reg.register("bad", -1)
    assert "bad" not in reg and reg.register("good", 3) == 3


@pytest.fixture
def clean_registry(monkeypatch):
    """The sampler registry as it was before the test, whatever the test registers or loads."""
    monkeypatch.setattr(SAMPLERS, "_entries", dict(SAMPLERS._entries))
    monkeypatch.setattr(SAMPLERS, "_group_loaded", SAMPLERS._group_loaded)


def test_builtins_are_registered():
    assert {"uniform", "random", "dense", "oracle", "scsampler", "mgsampler", "nsnet"} <= set(list_samplers())


def test_duplicate_name_raises(clean_registry):
    with pytest.raises(ValueError, match="already registered"):

        @register_sampler("uniform")
        class Again(Sampler):
            def scores(self, batch):
                return batch.fem[..., 0]


def test_a_sampler_must_be_a_dataclass(clean_registry):
    """Its init fields are its options (checked, cached, checkpointed): a plain class would hide them."""
    with pytest.raises(TypeError, match="NotADataclass must be a dataclass"):

        @register_sampler("not_a_dataclass")
        class NotADataclass(Sampler):
            def __init__(self, *, width: int = 3) -> None:
                self.width = width

            def scores(self, batch):
                return batch.fem[..., 0]


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UserError, match=r"unknown sampler 'nope'; valid: .*uniform"):
        get_sampler("nope")


def _plugin(tmp_path: Path) -> Path:
    """A package that lives outside samplerbench and declares a sampler in the entry-point group."""
    site = tmp_path / "site"
    pkg = site / "third_party_sampler"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        import dataclasses
        import torch
        from samplerbench.samplers import Sampler

        @dataclasses.dataclass(kw_only=True, eq=False)
        class LastFrames(Sampler):
            """Keeps the last K frames: a sampler that samplerbench itself does not ship."""
            def scores(self, batch):
                return torch.arange(batch.num_frames, dtype=torch.float32).expand(batch.batch_size, -1)
    '''))
    dist = site / "third_party_sampler-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: third-party-sampler\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[samplerbench.samplers]\nlast_frames = third_party_sampler:LastFrames\n")
    return site


def test_entry_point_sampler_from_another_package(tmp_path, monkeypatch, clean_registry):
    monkeypatch.syspath_prepend(str(_plugin(tmp_path)))
    SAMPLERS._group_loaded = False
    assert "last_frames" in list_samplers()
    sampler = get_sampler("last_frames")
    bank = FrameFeatures(fem=torch.randn(2, 6, 4), num_classes=3)
    assert sampler.select(bank, 2).tolist() == [[4, 5], [4, 5]]


def test_entry_point_sampler_reaches_the_cli(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(_plugin(tmp_path))}
    out = subprocess.run([sys.executable, "bench.py", "--list"], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "last_frames" in out


def test_readme_example_runs(clean_registry):
    """The "Add a sampler" example of docs/samplers.md is real code: run it as written."""
    readme = (ROOT / "docs" / "samplers.md").read_text()
    block = re.search(r"<!-- example:add-sampler -->\s*```python\n(.*?)```", readme, re.S)
    assert block, "docs/samplers.md lost its add-a-sampler example"
    namespace: dict = {}
    exec(compile(block.group(1), "docs/samplers.md", "exec"), namespace)
    sampler = get_sampler("feature_norm")
    fem = torch.zeros(1, 5, 3)
    fem[0, 3] = 10.0
    fem[0, 1] = 5.0
    assert sampler.select(FrameFeatures(fem=fem, num_classes=2), 2).tolist() == [[1, 3]]


@pytest.mark.parametrize(
    ("lookup", "message"),
    [
        (lambda: get_sampler("nsnte"), "unknown sampler 'nsnte'; did you mean 'nsnet'? valid: confidence_exit, "),
        (lambda: dataset_spec("ucf110"), "unknown dataset 'ucf110'; did you mean 'ucf101'? valid: activitynet, "),
        (lambda: check_aggregation("mean_softmx"),
         "unknown aggregation 'mean_softmx'; did you mean 'mean_softmax'? valid: mean_softmax, mean_logits, "
         "max_features"),
        (lambda: check_fusion("unoin"),
         "unknown fusion 'unoin'; did you mean 'union'? valid: add, mul, max, join, intersection, union, fs, vg"),
    ],
    ids=["sampler", "dataset", "aggregation", "fusion"],
)
def test_each_registry_says_did_you_mean(lookup, message):
    with pytest.raises(UserError) as err:
        lookup()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.fixture
def clean_tables(monkeypatch):
    """The table registry as it was before the test."""
    monkeypatch.setattr(TABLES, "_entries", dict(TABLES._entries))


def test_a_table_registers_itself_from_its_own_module(tmp_path, clean_tables, capsys):
    """A new module with a decorated function is all a table needs: the run writes it, the command line names it."""
    path = tmp_path / "my_tables.py"
    path.write_text(textwrap.dedent('''
        from samplerbench.tables import register_table

        @register_table("budgets", filename="budgets.md", title="Budgets (main K={k})", note="one row per K",
                        needs=("uniform",))
        def budgets(b):
            return [{"K": k} for k in b.cfg.sampling.budgets]
    '''))
    spec = importlib.util.spec_from_file_location("my_tables", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))

    cfg = build_config("tiny")
    written = run_tables(cfg, ["uniform", "nsnet", "oracle"])
    assert [t.name for t in written] == ["main", "guiding", "fusion", "fem", "recognizer", "saliency", "budgets"]
    assert "budgets" not in [t.name for t in run_tables(cfg, ["nsnet"])]  # it needs uniform
    only = dataclasses.replace(cfg, report=dataclasses.replace(cfg.report, tables=("budgets",)))
    assert [t.name for t in run_tables(only, ["uniform"])] == ["budgets"]
    assert build_tables(SimpleNamespace(cfg=cfg), [TABLES.get("budgets")]) == [
        Table(name="budgets", filename="budgets.md", title=f"Budgets (main K={cfg.sampling.main_budget})",
              note="one row per K", rows=[{"K": k} for k in cfg.sampling.budgets])]
    assert main(["--list"]) == 0 and "budgets" in capsys.readouterr().out.splitlines()[-1]


def test_a_bank_run_leaves_out_the_tables_that_train_on_frames():
    cfg = build_config("tiny")
    names = ["uniform", "nsnet", "oracle"]
    assert [t.name for t in run_tables(cfg, names, frames=False)] == ["main", "guiding", "fusion", "saliency"]
    assert frameless_notes(cfg, frames=True) == []
    assert frameless_notes(cfg, frames=False) == ["frame bank: table(s) fem, recognizer left out: they train backbones "
                                                  "on decoded frames"]
    main_only = dataclasses.replace(cfg, report=dataclasses.replace(cfg.report, tables=("main",)))
    assert frameless_notes(main_only, frames=False) == [] and extra_networks(main_only, chosen_tables(main_only)) == []
    assert extra_networks(cfg, chosen_tables(cfg)) == [
        *(("fem", arch, False) for arch in cfg.report.fem_archs),
        *(("recognizer", arch, tsn) for arch, tsn in cfg.report.recognizer_variants)]


def test_unknown_table_is_one_line_with_did_you_mean():
    cfg = build_config("tiny")
    with pytest.raises(UserError) as err:
        chosen_tables(dataclasses.replace(cfg, report=dataclasses.replace(cfg.report, tables=("main", "guidng"))))
    assert str(err.value) == ("unknown table 'guidng'; did you mean 'guiding'? valid: main, guiding, fusion, fem, "
                              "recognizer, saliency")
