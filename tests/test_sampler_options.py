"""``[sampler_options.<name>]`` end to end: a tiny run whose NSNet options change the trained network, as its
checkpoint shows, with the options in run.json and in the fit's cache key, and repeated from run.json."""

from __future__ import annotations

import json

import pytest
import torch

from samplerbench.config import build_config, load_config_file
from samplerbench.runs.benchmark import run

pytestmark = pytest.mark.slow

OPTIONS = {"nsnet": {"d": 16, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same tiny run of NSNet without and with options, sharing one cache."""
    root = tmp_path_factory.mktemp("options")
    common = dict(samplers=("nsnet",), tables=("main",), budgets=(2,), throughput_iters=1, device="cpu")
    plain = build_config("tiny", **common)
    narrow = build_config("tiny", **common, sampling={"options": OPTIONS})
    folders = {name: run(cfg, out=root / name, cache_dir=root / "cache", quiet=True)
               for name, cfg in (("plain", plain), ("narrow", narrow))}
    return root, narrow, folders


def checkpoint(folder, name: str) -> dict:
    return torch.load(folder / "checkpoints" / name, weights_only=True)


def test_options_change_the_trained_network(runs):
    _, _, folders = runs
    plain, narrow = (checkpoint(folders[n], "nsnet.pt") for n in ("plain", "narrow"))
    assert plain["options"] == {} and plain["fields"]["d"] == 128
    assert plain["state"]["net"]["proj.weight"].shape == (128, 1280)  # mobilenet_v2 features -> d
    assert narrow["options"] == OPTIONS["nsnet"]
    assert (narrow["fields"]["d"], narrow["fields"]["heads"], narrow["fields"]["layers"]) == (16, 2, 1)
    assert narrow["state"]["net"]["proj.weight"].shape == (16, 1280)
    assert not any(k.startswith("encoder.layers.1.") for k in narrow["state"]["net"])  # one layer
    assert checkpoint(folders["narrow"], "nsnet_no_ns_true.pt")["fields"]["d"] == 16  # the w/o NS variant too


def test_options_are_recorded_and_keyed(runs):
    _, narrow, folders = runs
    meta = json.loads((folders["narrow"] / "run.json").read_text())
    assert meta["config"]["sampling"]["options"] == OPTIONS
    entry = next(e for e in meta["checkpoints"] if e["file"].endswith("/nsnet.pt"))
    assert entry["options"] == OPTIONS["nsnet"] and entry["fields"] == {}
    fits = [s for s in meta["stages"] if s["stage"].startswith("fit nsnet")]
    assert fits and not any(s["cached"] for s in fits)  # a new key: not the plain run's fit
    assert all(s["cached"] for s in meta["stages"] if s["stage"].split()[0].split("/")[0] in ("decode", "train"))
    assert build_config(file_values=load_config_file(folders["narrow"] / "run.json")) == narrow


def test_run_json_repeats_a_run_with_options(runs):
    root, _, folders = runs
    again = run(build_config(file_values=load_config_file(folders["narrow"] / "run.json")), out=root / "again",
                cache_dir=root / "cache", quiet=True)
    stages = json.loads((again / "run.json").read_text())["stages"]
    assert all(s["cached"] for s in stages if s["stage"].startswith("fit "))
    first, second = (checkpoint(f, "nsnet.pt")["state"]["net"] for f in (folders["narrow"], again))
    assert all(torch.equal(first[k], second[k]) for k in first)
