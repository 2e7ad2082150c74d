"""A cache entry that does not load (truncated, empty, foreign) is named, moved aside and recomputed: it
never crashes or blocks a run."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch
from runconfigs import MICRO

from samplerbench.cli import main
from samplerbench.config import build_config
from samplerbench.core.errors import UserError
from samplerbench.core.stagelog import StageLog
from samplerbench.formats import cache as cache_module
from samplerbench.formats import store
from samplerbench.formats.cache import StageCache
from samplerbench.stages.pipeline import Pipeline

STAGE_KINDS = ("model", "outputs", "sampler", "throughput")


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def foreign(path: Path) -> None:
    """A torch file, but a pickled object of another program: ``weights_only`` refuses it."""
    torch.save(Path("someone else's object"), path)


DAMAGES = {"truncated": truncate, "zero-byte": empty, "foreign": foreign}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("stage", STAGE_KINDS)
def test_a_damaged_entry_is_moved_aside_and_recomputed(tmp_path, capsys, stage, damage):
    pipe = Pipeline(build_config("tiny"), cache_dir=tmp_path, log=StageLog(quiet=True))
    value = {"frames": torch.arange(1000), "names": ["a", "b"]}
    pipe.cached("label", stage, "k", lambda: value)
    entry = pipe.cache.path(stage, "k")
    DAMAGES[damage](entry)
    calls = []
    again = pipe.cached("label", stage, "k", lambda: calls.append(1) or value)
    assert calls == [1] and torch.equal(again["frames"], value["frames"])  # recomputed
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"warning: cache entry {entry} does not load (" in err and "recomputing" in err
    aside = [p.name for p in entry.parent.iterdir() if p.name != entry.name]
    assert len(aside) == 1 and aside[0].startswith("k.pt.corrupt-") and aside[0] in err
    served = pipe.cached("label", stage, "k", lambda: pytest.fail("the fresh entry does not load"))
    assert torch.equal(served["frames"], value["frames"])




@pytest.mark.slow
def test_a_run_heals_every_stage_kind(tmp_path, capsys):
    """Damage one entry of every stage kind and one shard of the frame store of a finished run: the next run
    names each, recomputes (re-decodes) each, and reports the same accuracy."""
    (tmp_path / "run.toml").write_text(MICRO)
    argv = ["--preset", "tiny", "--config", str(tmp_path / "run.toml"), "--device", "cpu", "--quiet",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    first = json.loads((tmp_path / "out/synthetic-tiny/run.json").read_text())["tables"]["main"]
    stages = tmp_path / "cache" / "stages"
    damaged = {}
    for i, kind in enumerate(STAGE_KINDS):
        entry = sorted((stages / kind).glob("*.pt"))[0]
        list(DAMAGES.values())[i % len(DAMAGES)](entry)
        damaged[kind] = entry
    shard = sorted((tmp_path / "cache" / "frames").glob("*/shard-00000.u8"))[0]
    truncate(shard)
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    for kind, entry in damaged.items():
        assert f"cache entry {entry} does not load" in err, kind
        assert len(list(entry.parent.glob(f"{entry.name}.corrupt-*"))) == 1 and entry.is_file(), kind
    assert f"frame store shard {shard} failed its size or checksum check" in err
    assert len(list(shard.parent.glob(f"{shard.name}.corrupt-*"))) == 1 and store.shard_done(shard.parent, 0)
    again = json.loads((tmp_path / "out/synthetic-tiny/run.json").read_text())["tables"]["main"]
    assert [r["mAP"] for r in again] == [r["mAP"] for r in first]


def test_an_entry_the_user_may_not_read_is_named_not_moved(tmp_path, monkeypatch):
    """Another user's 0600 entry in a shared cache is no damage to repair: one line naming it."""
    cache = StageCache(tmp_path)
    cache.save("model", "k", {"w": torch.ones(1)})

    def denied(path, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(cache_module.torch, "load", denied)
    with pytest.raises(UserError, match=f"cannot read {cache.path('model', 'k')}: Permission denied; fix the"):
        cache.load("model", "k")
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["k.pt"]
