"""Run folders: one per preset, refused to a run of another identity, replaced whole by a re-run of the same.

The refusals run ``samplerbench.cli.main`` in-process on a fabricated earlier run (milliseconds each): each
ends with exit status 2, one line, no traceback, and every file unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samplerbench.cli import main
from samplerbench.config import build_config
from samplerbench.core.errors import UserError
from samplerbench.formats import runfolder

DEFAULT_RUN = {"preset": "default", "dataset": "synthetic", "frames": 16, "budgets": [1, 2, 4, 8], "seed": 0}


def earlier_run(folder: Path, files: dict[str, str], **config) -> Path:
    """A run folder as a finished run leaves it: ``files`` and a run.json listing them."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    meta = {"config": {**DEFAULT_RUN, **config}, "files": [*files, "run.json"]}
    (folder / "run.json").write_text(json.dumps(meta))
    return folder


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("preset", "dataset", "folder"), [
    ("default", "synthetic", "synthetic"),  # the committed results/synthetic/ and the README's commands
    ("tiny", "synthetic", "synthetic-tiny"),
    ("paper", "activitynet", "activitynet-paper"),
])
def test_one_folder_per_preset(preset, dataset, folder):
    assert runfolder.run_folder(Path("out"), build_config(preset, data={"dataset": dataset})) == Path("out") / folder


# (id, flags, folder under out/, what it holds: run.json config changes or a file map, message)
REFUSALS = [
    ("another seed", ["--seed", "1"], "synthetic", {}, "(seed 0; this run: seed 1)"),
    ("another T", ["--frames", "8"], "synthetic", {}, "(T=16; this run: T=8)"),
    ("another K set", ["--budget", "2,4"], "synthetic", {}, "(K=1,2,4,8; this run: K=2,4)"),
    ("another dataset", [], "synthetic", {"dataset": "activitynet"},
     "(dataset activitynet; this run: dataset synthetic)"),
    ("another preset", ["--preset", "tiny"], "synthetic-tiny", {},
     "(preset default, T=16, K=1,2,4,8; this run: preset tiny, T=8, K=2,4)"),
    ("files without run.json", [], "synthetic", None, "holds files but no run.json saying which run wrote them"),
    ("broken run.json", [], "synthetic", "{", "holds files but no run.json saying which run wrote them"),
]


@pytest.mark.parametrize(("flags", "name", "holds", "message"), [c[1:] for c in REFUSALS],
                         ids=[c[0] for c in REFUSALS])
def test_a_folder_of_another_run_is_refused(tmp_path, capsys, flags, name, holds, message):
    folder = tmp_path / "out" / name
    if isinstance(holds, dict):
        earlier_run(folder, {"main.md": "earlier tables\n", "checkpoints/nsnet.pt": "weights"}, **holds)
    else:
        folder.mkdir(parents=True)
        (folder / "main.md").write_text("earlier tables\n")
        if holds is not None:
            (folder / "run.json").write_text(holds)
    before = snapshot(tmp_path)
    status = main(["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--device", "cpu",
                   *flags])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith(f"samplerbench: error: --out: {folder} ") and message in err, err
    assert "--overwrite" in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("how", ["flag", "config file"])
def test_overwrite_lets_a_run_past_the_door(tmp_path, monkeypatch, capsys, how):
    """``--overwrite`` (or ``overwrite = true`` in a config file) reaches the run, which may then replace
    another run's tables."""
    folder = earlier_run(tmp_path / "out" / "synthetic", {"main.md": "seed 0's"})
    reached = {}

    def run(cfg, *, out, cache_dir, quiet, overwrite):
        reached.update(seed=cfg.seed, overwrite=overwrite)
        return folder

    monkeypatch.setattr("samplerbench.runs.benchmark.run", run)
    monkeypatch.setattr("samplerbench.report.write.final_line", lambda folder: f"results written to {folder}/")
    (tmp_path / "c.toml").write_text("overwrite = true\n")
    given = ["--overwrite"] if how == "flag" else ["--config", str(tmp_path / "c.toml")]
    assert main(["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--device", "cpu",
                 "--seed", "1", *given]) == 0, capsys.readouterr().err
    assert reached == {"seed": 1, "overwrite": True}


def test_a_run_of_the_same_identity_or_overwrite_may_write(tmp_path):
    folder = earlier_run(tmp_path / "synthetic", {"main.md": "x"})
    same = build_config(sampling={"budgets": (8, 4, 2, 1)})
    runfolder.check(folder, same, overwrite=False)  # the same K set, reordered
    runfolder.check(folder, build_config(seed=1), overwrite=True)
    runfolder.check(tmp_path / "missing", build_config(seed=1), overwrite=False)
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    runfolder.check(tmp_path / "empty", build_config(seed=1), overwrite=False)


def test_a_run_json_of_the_flat_config_keeps_its_identity(tmp_path):
    """A run.json written before the config was nested, holding a key since removed, is still the same run."""
    folder = tmp_path / "synthetic"
    folder.mkdir()
    (folder / "main.md").write_text("x")
    flat = {"preset": "default", "dataset": "synthetic", "frames": 16, "budgets": [1, 2, 4, 8], "seed": 0,
            "rec_tsn_epochs": 2, "synthetic": {"confuser_strength": 0.35}}
    (folder / "run.json").write_text(json.dumps({"config": flat, "files": ["main.md", "run.json"]}))
    runfolder.check(folder, build_config(), overwrite=False)
    with pytest.raises(UserError, match="seed 1"):
        runfolder.check(folder, build_config(seed=1), overwrite=False)


def write_staged(staging: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text(text)


def test_a_rerun_replaces_the_earlier_runs_files_and_keeps_the_others(tmp_path):
    """The earlier run's tables, predictions and checkpoints that the re-run does not write go (with the
    subfolders they leave empty); compare's seeds.md and a user's files stay; nothing is staged beside."""
    folder = earlier_run(tmp_path / "synthetic", {
        "main.md": "old main", "table1_guiding.md": "old table", "predictions/nsnet_K4.json": "{}",
        "checkpoints/nsnet.pt": "old"})
    (folder / "seeds.md").write_text("compare's")
    (folder / "notes" / "mine.txt").parent.mkdir()
    (folder / "notes" / "mine.txt").write_text("a user's")
    (folder / "checkpoints" / "scsampler.pt").write_text("left by a run before the earlier one")
    cfg = build_config(report={"tables": ("main",)})
    with runfolder.staged(folder, cfg, overwrite=False) as staging:
        assert staging.parent == folder.parent and not any(staging.iterdir())
        write_staged(staging, {"main.md": "new main", "checkpoints/uniform.pt": "new", "run.json": json.dumps(
            {"config": DEFAULT_RUN, "files": ["main.md", "run.json", "checkpoints/uniform.pt"]})})
    assert {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()} == {
        "main.md": "new main", "checkpoints/uniform.pt": "new", "seeds.md": "compare's", "notes/mine.txt": "a user's",
        "run.json": (folder / "run.json").read_text()}
    assert json.loads((folder / "run.json").read_text())["files"] == ["main.md", "run.json", "checkpoints/uniform.pt"]
    assert not (folder / "predictions").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic"]


def test_a_failed_report_leaves_the_earlier_run_whole(tmp_path):
    folder = earlier_run(tmp_path / "synthetic", {"main.md": "old main", "table1_guiding.md": "old table"})
    before = snapshot(tmp_path)
    with pytest.raises(OSError), runfolder.staged(folder, build_config(), overwrite=False) as staging:
        write_staged(staging, {"main.md": "new main"})
        raise OSError("the disk failed half-way")
    assert snapshot(tmp_path) == before and [p.name for p in tmp_path.iterdir()] == ["synthetic"]


def test_publishing_never_deletes_outside_the_folder(tmp_path):
    """A run.json listing paths outside its folder (edited, or foreign) gets nothing there deleted."""
    (tmp_path / "outside.txt").write_text("keep")
    folder = earlier_run(tmp_path / "synthetic", {"main.md": "old"})
    meta = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**meta, "files": ["../outside.txt", str(tmp_path / "outside.txt")]}))
    with runfolder.staged(folder, build_config(), overwrite=False) as staging:
        write_staged(staging, {"main.md": "new"})
    assert (tmp_path / "outside.txt").read_text() == "keep"


def test_another_run_that_wrote_the_folder_meanwhile_is_not_clobbered(tmp_path):
    """Checked at the door, and again before the run's files are moved in."""
    folder = earlier_run(tmp_path / "synthetic", {"main.md": "seed 1's"}, seed=1)
    with pytest.raises(UserError, match=r"seed 1; this run: seed 0"), \
            runfolder.staged(folder, build_config(), overwrite=False):
        pass
    assert (folder / "main.md").read_text() == "seed 1's"
