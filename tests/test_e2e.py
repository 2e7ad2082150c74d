"""The tiny preset end to end: every file written, an identical re-run served from the cache, determinism, a
smoke test that says so, a re-run that leaves no file of the earlier one."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pandas as pd
import pytest

from samplerbench.config import build_config, load_config_file
from samplerbench.report.write import SUMMARY_COLUMNS
from samplerbench.runs.benchmark import run
from samplerbench.samplers import get_sampler

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    cfg = build_config("tiny", seed=0, report={"export_selections": True})
    folder = run(cfg, out=root / "out", cache_dir=root / "cache", quiet=True)
    return cfg, root, folder


def test_every_result_file_is_written(tiny):
    cfg, _, folder = tiny
    for name in ("summary.csv", "main.md", "run.json", "skipped.csv", "table1_guiding.md", "table2_fusion.md",
                 "table3_fem.md", "table4_recognizer.md", "fig1_saliency.png", "map_vs_gflops.png"):
        assert (folder / name).is_file(), name
    summary = pd.read_csv(folder / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    samplers = set(summary["sampler"])
    assert {"uniform", "random", "dense", "oracle", "nsnet", "nsnet (w/o NS)", "scsampler", "mgsampler"} <= samplers
    for name in samplers - {"dense"}:
        assert sorted(summary.loc[summary["sampler"] == name, "budget_K"]) == sorted(cfg.sampling.budgets), name
    assert summary.loc[summary["sampler"] == "dense", "budget_K"].tolist() == [cfg.data.frames]
    assert summary["mAP"].between(0, 100).all() and summary["gflops_per_video"].gt(0).all()
    assert summary["mAP_lo"].le(summary["mAP"] + 1e-9).all() and summary["mAP_hi"].ge(summary["mAP"] - 1e-9).all()
    deployable = summary["sampler"] != "oracle"
    assert summary.loc[deployable, "videos_per_s"].gt(0).all()
    assert summary.loc[~deployable, "videos_per_s"].isna().all()  # not measured -> empty, never invented
    fixed = summary["knob"].isna()
    assert summary.loc[fixed, "frames_mean"].eq(summary.loc[fixed, "budget_K"]).all()
    assert summary.loc[fixed, "frames_std"].eq(0).all()
    sweeps = pd.read_csv(folder / "adaptive.csv")
    assert list(sweeps.columns) == SUMMARY_COLUMNS and (folder / "adaptive.md").is_file()
    for name in ("frameexit", "confidence_exit"):
        points = sweeps[sweeps["sampler"] == name]
        assert points["knob_value"].tolist() == list(get_sampler(name).sweep), name
        assert points["frames_mean"].between(1, cfg.data.frames).all() and points["videos_per_s"].gt(0).all()
        assert points["frames_mean"].is_monotonic_increasing, name  # a higher knob never stops a video earlier
        rows = summary[summary["sampler"] == name]
        assert set(rows["knob_value"]) <= set(points["knob_value"])  # the main rows are sweep points
        belongs = points.set_index("knob_value")["budget_K"]  # the budget nearest each point's cost
        assert rows["budget_K"].is_unique, name
        assert (rows["budget_K"].to_numpy() == belongs[rows["knob_value"]].to_numpy()).all(), name
        assert set(rows["budget_K"]) == set(points["budget_K"]), name  # a row at each budget a point belongs to
    meta = json.loads((folder / "run.json").read_text())
    assert meta["seed"] == 0 and meta["config"]["preset"] == "tiny"
    assert {"torch", "decord", "fvcore"} <= set(meta["versions"])
    assert meta["machine"] and meta["stages"] and "skipped_videos" in meta
    assert "preset `tiny`" in (folder / "main.md").read_text()
    tables = meta["tables"]
    for row in tables["guiding"]:  # the synthetic set is annotated: pseudo-label agreement is measured
        assert 0 < row["pseudo_label_precision"] <= 100 and 0 < row["pseudo_label_recall"] <= 100
    assert all(0 <= row["fem_frame_top1"] <= 100 for row in tables["fem"])
    assert all(0 <= row["rec_frame_top1"] <= 100 for row in tables["recognizer"])
    saliency = meta["saliency"]
    ap = {level: saliency[level]["ap"] for level in ("easy", "middle", "hard")}  # per-class AP in %, as mAP is
    assert 0 <= ap["hard"] <= ap["middle"] <= ap["easy"] <= 100 and ap["easy"] > 1
    for rho in [*saliency["easy"]["rho"].values(), *saliency["all"]["rho"].values()]:  # per-video, against Guid.
        assert rho["lo"] <= rho["mean"] <= rho["hi"] and -1 <= rho["mean"] <= 1 and rho["videos"] > 0


def test_identical_rerun_reuses_every_stage(tiny):
    cfg, root, _ = tiny
    folder = run(cfg, out=root / "out2", cache_dir=root / "cache", quiet=True)
    stages = json.loads((folder / "run.json").read_text())["stages"]
    cacheable = [s for s in stages if s["stage"].split()[0].split("/")[0] in
                 ("decode", "train", "features", "fit", "throughput")]
    assert cacheable and all(s["cached"] for s in cacheable), [s for s in cacheable if not s["cached"]]


def test_run_json_repeats_the_run(tiny):
    """``--config <run>/run.json`` rebuilds the same config, hence (from the cache) the same numbers."""
    cfg, root, folder = tiny
    again = build_config(file_values=load_config_file(folder / "run.json"))
    assert again == cfg
    repeat = run(again, out=root / "out3", cache_dir=root / "cache", quiet=True)
    pd.testing.assert_frame_equal(pd.read_csv(folder / "summary.csv"), pd.read_csv(repeat / "summary.csv"))


def test_same_seed_same_numbers(tiny, tmp_path):
    _, _, folder = tiny
    again = build_config("tiny", seed=0, sampling={"samplers": ("uniform", "nsnet")},
                         report={"tables": ("main",), "export_predictions": True})
    other = run(again, out=tmp_path / "out", cache_dir=tmp_path / "cache", quiet=True)
    first, second = (pd.read_csv(f / "summary.csv").set_index(["sampler", "budget_K"]) for f in (folder, other))
    common = second.index
    pd.testing.assert_series_equal(first.loc[common, "mAP"], second["mAP"])
    exported = json.loads((other / "predictions" / "nsnet_w_o_ns_K2.json").read_text())
    meta = json.loads((other / "run.json").read_text())
    assert exported["version"] and "external_data" in exported
    assert len(exported["results"]) == meta["dataset"]["val_videos"]  # no video of the tiny set is skipped
    for ranked in exported["results"].values():
        assert len(ranked) == meta["dataset"]["classes"]  # a score for every class
        assert abs(sum(p["score"] for p in ranked) - 1.0) < 1e-3  # the mean of softmaxes sums to one


def test_a_smoke_test_says_so_in_every_table(tiny):
    cfg, _, folder = tiny
    for table in folder.glob("*.md"):
        text = table.read_text()
        assert text.split("\n\n")[1].startswith("**Smoke test** (preset `tiny`)"), table.name
        assert "paper (ActivityNet)" not in text and "The paper's oracle" not in text, table.name
    meta = json.loads((folder / "run.json").read_text())
    assert meta["smoke_test"] is True
    assert not [k for rows in meta["tables"].values() for r in rows for k in r if k.startswith("paper_")]
    assert meta["headline"]["K"] == cfg.sampling.main_budget
    assert meta["headline"]["sampler"] not in ("uniform", "oracle")


def test_a_rerun_with_fewer_tables_leaves_none_of_the_earlier(tiny, tmp_path):
    """The earlier tables, plot and checkpoints that the re-run does not write are gone; compare's seeds.md
    stays; the folder holds exactly what the new run.json lists, besides it."""
    cfg, root, folder = tiny
    earlier = tmp_path / "out" / folder.name
    shutil.copytree(folder, earlier)
    (earlier / "seeds.md").write_text("written by samplerbench compare\n")
    fewer = dataclasses.replace(cfg, sampling=dataclasses.replace(cfg.sampling, samplers=("uniform", "nsnet")),
                                report=dataclasses.replace(cfg.report, tables=("main",)))
    assert run(fewer, out=tmp_path / "out", cache_dir=root / "cache", quiet=True) == earlier
    meta = json.loads((earlier / "run.json").read_text())
    files = {p.relative_to(earlier).as_posix() for p in earlier.rglob("*") if p.is_file()}
    assert files == {*meta["files"], "seeds.md"} and not any(name.startswith("table") for name in files)
    assert "fig1_saliency.png" not in files and "checkpoints/scsampler.pt" not in files
    assert {r["sampler"] for r in meta["tables"]["main"]} == {"uniform", "nsnet", "nsnet (w/o NS)"}
    assert [p.name for p in (tmp_path / "out").iterdir()] == [folder.name]  # no staging folder left


def test_the_protocol_card_and_the_exported_selections(tiny):
    """main.md states the protocol above the table, run.json in full; every deployable row's selection of every
    val video is exported, the oracle's not (it picks with the labels and this run's recognizer)."""
    cfg, _, folder = tiny
    meta = json.loads((folder / "run.json").read_text())
    card = meta["protocol"]
    val = meta["dataset"]["val_videos"]
    assert card["videos"]["val"] == {"annotated": val, "listed": val, "found": val, "read": val, "missing": [],
                                     "unreadable": []}
    assert (card["T"], card["K"], card["main_K"], len(card["labels"])) == (8, [2, 4], 2, meta["dataset"]["classes"])
    main_md = (folder / "main.md").read_text()
    assert main_md.index("_Generated by") < main_md.index("| protocol |") < main_md.index("| sampler ")
    assert f"annotation lists 40 / {val}; found 40 / {val}; read 40 / {val}" in main_md
    assert "| mAP (ANet) | mean over the same classes" in main_md
    files = sorted(p.name for p in (folder / "selections").iterdir())
    expected = {f"{s}_K{k}.json" for s in ("uniform", "random", "nsnet", "nsnet_w_o_ns", "scsampler", "mgsampler")
                for k in cfg.sampling.budgets} | {"dense_K8.json"}
    assert expected <= set(files) and not [f for f in files if f.startswith("oracle")]
    assert {f"selections/{f}" for f in files} <= set(meta["files"])
    dense = json.loads((folder / "selections/dense_K8.json").read_text())
    assert len(dense) == val and all(e["positions"] == list(range(8)) and e["K"] == 8 for e in dense)
    (exported,) = sorted(folder.glob("selections/frameexit_K*.json"))[:1]
    exits = json.loads(exported.read_text())  # each video its own count
    assert len(exits) == val and all(1 <= e["K"] == len(e["positions"]) <= 8 for e in exits)
