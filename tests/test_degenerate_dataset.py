"""A dataset whose scores mean nothing (one class, a class without validation or training video) is said so
in the console and at the top of every table, and listed in run.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from datasetfiles import make_list

from samplerbench.config import build_config
from samplerbench.evaluation.evaluator import dataset_warnings
from samplerbench.runs.benchmark import run

CLASSES = ("run", "jump", "swim")


def targets(*rows: tuple[int, ...]) -> torch.Tensor:
    out = torch.zeros(len(rows), len(CLASSES))
    for i, labels in enumerate(rows):
        out[i, list(labels)] = 1.0
    return out


@pytest.mark.parametrize(
    ("train", "val", "expected"),
    [
        (targets((0,), (1,), (2,)), targets((0,), (1,), (2,)), []),
        (targets((0,), (1,), (2,)), targets((0,), (0,)),
         ["the validation videos show 1 class(es) ('run') of 3: every sampler scores a trivially perfect mAP"]),
        (targets((0,), (1,), (2,)), targets((0,), (1,)),
         ["1 class(es) without a validation video ('swim'): no AP, left out of the mAP"]),
        (targets((0,), (0, 1)), targets((0,), (1,), (2,)),
         ["1 class(es) without a training video ('swim'): never learned"]),
        (targets((0,), (1,), (2,)), targets((0, 1, 2), (0, 1, 2)),
         ["every class shown is positive in every validation video ('run', 'jump', 'swim'): every sampler scores a "
          "trivially perfect mAP"]),
        (targets((0,), (1,), (2,)), targets((0, 1), (0, 2)),
         ["1 class(es) positive in every validation video ('run'): no negative to rank"]),
    ],
    ids=["sound", "one class in validation", "class without validation video", "class without training video",
         "every class positive everywhere", "a class without a negative"],
)
def test_dataset_warnings(train, val, expected):
    lines = dataset_warnings(CLASSES, train=train, val=val)
    assert len(lines) == len(expected) and all(line.startswith(e) for line, e in zip(lines, expected, strict=True))


@pytest.mark.slow
def test_a_one_class_dataset_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = make_list(tmp_path / "data")
    (root / "classes.txt").write_text("Red\n")
    for name in ("train_list.txt", "val_list.txt"):  # every video labelled 0
        lines = (root / name).read_text().splitlines()
        (root / name).write_text("".join(line.split()[0] + " 0\n" for line in lines))
    cfg = build_config("tiny", data={"dataset": "list", "root": str(root), "frames": 4},
                       sampling={"samplers": ("uniform",), "budgets": (2,)},
                       report={"tables": ("main",), "bootstrap": 20}, recognizer={"epochs": 1}, fem={"epochs": 1},
                       cost={"iters": 1})
    folder = run(cfg, out=tmp_path / "out", cache_dir=tmp_path / "cache", quiet=True)
    warning = "the validation videos show 1 class(es) ('Red') of 1: every sampler scores a trivially perfect mAP"
    assert f"warning: {warning}" in capsys.readouterr().err
    assert f"**Warning:** {warning}" in (folder / "main.md").read_text()
    assert json.loads((folder / "run.json").read_text())["warnings"][0].startswith(warning)
