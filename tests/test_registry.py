"""The sampler registry: built-ins, duplicates, and third-party samplers through entry points."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from samplerbench.core.errors import UserError
from samplerbench.samplers import FrameFeatures, Sampler, base, get_sampler, list_samplers, register_sampler

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_registry():
    before = dict(base._REGISTRY)
    loaded = base._entry_points_loaded
    yield
    base._REGISTRY.clear()
    base._REGISTRY.update(before)
    base._entry_points_loaded = loaded


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
    base._entry_points_loaded = False
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
