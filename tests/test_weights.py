"""Where the recognizer and FEM start: ImageNet for the paper preset, checked before a run does any work."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from samplerbench.cli import build_parser, config_from_args, main
from samplerbench.config import build_config, load_config_file
from samplerbench.core.errors import UserError
from samplerbench.recognizers.backbones import (
    FrameClassifier,
    fetch_command,
    imagenet_file,
    load_weights,
    require_weights,
    weights_identity,
)
from samplerbench.runs.benchmark import weight_digests
from samplerbench.tables import run_tables, trained_backbones

RESNET18_FILE = "resnet18-f37072fd.pth"  # the name torchvision gives ResNet-18's ImageNet weights


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TORCH_HOME holding a fabricated (randomly initialised) resnet18 ImageNet file, and nothing else."""
    home = tmp_path / "torch-home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), home / "hub" / "checkpoints" / RESNET18_FILE)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def test_paper_preset_starts_from_imagenet_and_the_others_from_scratch() -> None:
    def weights(cfg) -> tuple[str | None, str | None]:
        return cfg.recognizer.weights, cfg.fem.weights

    assert weights(build_config("paper")) == ("imagenet", "imagenet")
    assert weights(build_config("tiny")) == weights(build_config("default")) == (None, None)


def test_none_trains_from_scratch_from_a_flag_or_a_file(tmp_path: Path) -> None:
    def flags(*argv: str) -> tuple[str | None, str | None]:
        cfg = config_from_args(build_parser().parse_args(["--preset", "paper", "--device", "cpu", *argv]))
        return cfg.recognizer.weights, cfg.fem.weights

    def file(name: str) -> tuple[str | None, str | None]:
        cfg = build_config(file_values=load_config_file(tmp_path / name))
        return cfg.recognizer.weights, cfg.fem.weights

    assert flags("--weights", "none") == (None, None)
    assert flags("--weights", "recognizer=none,fem=imagenet") == (None, "imagenet")
    assert flags("--weights", "fem=f.pt") == (None, "f.pt")  # a role left out starts from scratch
    assert flags("--weights", "recognizer=r.pt,fem=f.pt") == ("r.pt", "f.pt")
    (tmp_path / "all.toml").write_text('preset = "paper"\nweights = "none"\n')
    (tmp_path / "role.toml").write_text('preset = "paper"\n[weights]\nrecognizer = "none"\nfem = "imagenet"\n')
    (tmp_path / "nested.toml").write_text('preset = "paper"\n[recognizer]\nweights = "none"\n')
    assert file("all.toml") == (None, None)
    assert file("role.toml") == file("nested.toml") == (None, "imagenet")
    with pytest.raises(UserError, match="expected 'none' or a table of role = source"):
        build_config("paper", weights="imagenet")


def test_run_json_tells_imagenet_from_scratch() -> None:
    """The training stages' keys take ``weights`` from the config, as run.json does."""
    paper, scratch = build_config("paper"), build_config("paper", weights="none")
    assert dataclasses.asdict(paper)["recognizer"]["weights"] != dataclasses.asdict(scratch)["recognizer"]["weights"]


def test_every_backbone_a_run_trains_is_checked() -> None:
    """With "imagenet", each architecture loads its own file: Table 3's FEMs and Table 4's recognizers too."""
    cfg = build_config("paper")
    every = trained_backbones(cfg, run_tables(cfg, ["uniform", "oracle", "nsnet"]))
    assert every == {"recognizer": ["resnet101", "resnet101", "resnet101", "resnet152"],
                     "fem": ["mobilenet_v2", "shufflenet_v2_x1_0", "mobilenet_v2", "efficientnet_b0"]}
    assert trained_backbones(cfg, run_tables(cfg, ["uniform"])) == {"recognizer": ["resnet101"],
                                                                        "fem": ["mobilenet_v2"]}
    main_only = dataclasses.replace(cfg, report=dataclasses.replace(cfg.report, tables=("main",)))
    assert trained_backbones(main_only, run_tables(main_only, ["nsnet"]))["recognizer"] == ["resnet101"]


def test_missing_imagenet_files_stop_the_run_before_any_work(torch_home: Path, tmp_path: Path, capsys) -> None:
    cache = tmp_path / "cache"
    status = main(["--preset", "tiny", "--weights", "recognizer=imagenet,fem=imagenet", "--device", "cpu",
                   "--out", str(tmp_path / "out"), "--cache-dir", str(cache)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    mobilenet = torch_home / "hub" / "checkpoints" / imagenet_file("mobilenet_v2").name
    assert f"ImageNet weights {mobilenet} not found" in err  # the FEM's file is missing ...
    assert RESNET18_FILE not in err  # ... the recognizer's is there
    assert (f'TORCH_HOME={torch_home} python -c "import torchvision; '
            f"torchvision.models.get_model('mobilenet_v2', weights='DEFAULT')\"") in err
    assert "--weights none" in err
    # nothing generated, decoded or written (the folders were made by the check that they are writable)
    assert not [p for folder in (cache, tmp_path / "out") for p in folder.rglob("*") if p.is_file()]


def test_missing_local_and_imagenet_files_share_one_line(torch_home: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        require_weights([("resnet18", str(tmp_path / "rec.pt")), ("resnet18", "imagenet"),
                         ("mobilenet_v2", "imagenet"), ("efficientnet_b0", "imagenet")])
    message = str(err.value)
    assert "\n" not in message and f"{tmp_path / 'rec.pt'} not found (resnet18)" in message
    assert "mobilenet_v2-" in message and "efficientnet_b0_" in message and RESNET18_FILE not in message
    require_weights([("resnet18", "imagenet")])  # present: no error


def test_imagenet_loads_the_architectures_own_file(torch_home: Path) -> None:
    reference = torch.load(torch_home / "hub" / "checkpoints" / RESNET18_FILE, weights_only=True)
    model = FrameClassifier(arch="resnet18", num_classes=5)
    assert load_weights(model, "imagenet") == ["head.bias", "head.weight"]  # the 1000-class head does not fit
    assert torch.equal(model.body.conv1.weight, reference["conv1.weight"])


def test_the_fetch_command_reads_and_writes_the_checked_file(torch_home: Path) -> None:
    """torchvision loads an ImageNet file already in place instead of downloading it, so the printed command
    succeeds offline exactly when it points at the file the check looks for."""
    assert imagenet_file("resnet18") == torch_home / "hub" / "checkpoints" / RESNET18_FILE
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("TORCH_HOME")  # the command sets it itself
    done = subprocess.run(fetch_command(["resnet18"]), shell=True, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_training_keys_follow_the_weights_file_not_just_its_name(tmp_path):
    """ImageNet: torchvision's file name (its DEFAULT moves between releases); a local file: its contents'
    identity, so retraining a checkpoint under the same name retrains what starts from it."""
    assert weights_identity("resnet101", None) is None
    assert weights_identity("resnet101", "imagenet") == f"imagenet:{imagenet_file('resnet101').name}"
    ckpt = tmp_path / "rec.pt"
    ckpt.write_bytes(b"1")
    first = weights_identity("resnet18", str(ckpt))
    ckpt.write_bytes(b"22")
    assert weights_identity("resnet18", str(ckpt)) != first


def test_run_json_records_the_weights_by_content(tmp_path):
    """run.json's ``weights`` (what ``compare`` requires runs to share) follow the file's bytes, not its name."""
    first, copy = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save({"w": torch.zeros(3)}, first)
    copy.write_bytes(first.read_bytes())
    digests = [weight_digests(build_config("tiny", weights={"recognizer": str(p), "fem": "imagenet"}))
               for p in (first, copy)]
    assert digests[0] == digests[1] and digests[0]["fem"] == "imagenet" and len(digests[0]["recognizer"]) == 16
    torch.save({"w": torch.ones(3)}, first)
    assert weight_digests(build_config("tiny", weights={"recognizer": str(first)}))["recognizer"] != \
        digests[1]["recognizer"]
    assert weight_digests(build_config("tiny")) == {}
