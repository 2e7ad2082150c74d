"""Checkpoints of a run, and selecting frames of new videos with them (``load_sampler``, ``samplerbench select``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from samplerbench.cli import main
from samplerbench.config import build_config
from samplerbench.core.errors import UserError
from samplerbench.core.stagelog import StageLog
from samplerbench.core.timeline import presample_indices
from samplerbench.runs.benchmark import run
from samplerbench.runs.select import load_sampler
from samplerbench.stages.checkpoint import FRAME_CLASSIFIER, SAMPLER
from samplerbench.stages.decode import probe
from samplerbench.stages.pipeline import Pipeline

pytestmark = pytest.mark.slow

SAMPLER_FILES = ("nsnet.pt", "nsnet_no_ns_true.pt", "uniform.pt", "mgsampler.pt")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run of NSNet, uniform and MGSampler, and the pipeline that re-reads its cached stages.

    One budget and one timed throughput iteration: what is tested here is what the run saved, not the table.
    """
    root = tmp_path_factory.mktemp("select")
    cfg = build_config("tiny", sampling={"samplers": ("nsnet", "uniform", "mgsampler"), "budgets": (2,)},
                       report={"tables": ("main",), "export_predictions": True, "export_selections": True},
                       cost={"iters": 1}, device="cpu")
    folder = run(cfg, out=root / "out", cache_dir=root / "cache", quiet=True)
    pipe = Pipeline(cfg, cache_dir=root / "cache", log=StageLog(quiet=True))
    videos = {r.video_id: r.path for r in pipe.source.index().split("val")}
    lengths = {vid: probe(path)[0] for vid, path in videos.items()}
    return SimpleNamespace(cfg=cfg, root=root, folder=folder, pipe=pipe, videos=videos, lengths=lengths)


def test_run_lists_self_describing_checkpoints(trained):
    meta = json.loads((trained.folder / "run.json").read_text())
    listed = {e["file"]: e for e in meta["checkpoints"]}
    expected = {f"checkpoints/{n}" for n in ("fem_mobilenet_v2.pt", "recognizer_resnet18.pt", *SAMPLER_FILES)}
    assert set(listed) == expected and expected <= set(meta["files"])
    assert listed["checkpoints/nsnet_no_ns_true.pt"]["fields"] == {"no_ns": True}
    rec = torch.load(trained.folder / "checkpoints/recognizer_resnet18.pt", weights_only=True)
    assert (rec["format"], rec["role"], rec["arch"], rec["tsn"]) == (FRAME_CLASSIFIER, "recognizer", "resnet18", False)
    assert rec["num_classes"] == len(rec["classes"]) == 4  # the tiny preset's synthetic classes
    assert {k: rec["preprocessing"][k] for k in ("frames", "short_side", "crop", "resolution")} == \
        {"frames": 8, "short_side": 40, "crop": 32, "resolution": 32}
    assert rec["state_dict"]["head.weight"].shape == (4, 512)  # resnet18's pooled features -> 4 classes
    fem = torch.load(trained.folder / "checkpoints/fem_mobilenet_v2.pt", weights_only=True)
    assert (fem["role"], fem["classes"], fem["preprocessing"]["resolution"]) == ("fem", rec["classes"], 32)
    nsnet = torch.load(trained.folder / "checkpoints/nsnet.pt", weights_only=True)
    assert (nsnet["format"], nsnet["sampler"]) == (SAMPLER, "nsnet")
    assert (nsnet["fields"]["fusion"], nsnet["fields"]["alpha"], nsnet["fields"]["epochs"]) == ("union", 0.6, 30)
    assert (nsnet["fem"], nsnet["recognizer"]) == ("fem_mobilenet_v2.pt", "recognizer_resnet18.pt")
    assert nsnet["state"]["dims"] == [1280, 4] and nsnet["state"]["net"]  # mobilenet_v2 features, 4 classes
    assert torch.load(trained.folder / "checkpoints/uniform.pt", weights_only=True)["state"] == {}


def test_rerun_rewrites_no_checkpoint_and_removes_stale_ones(trained):
    ckpts = trained.folder / "checkpoints"
    before = {p.name: p.stat().st_mtime_ns for p in ckpts.glob("*.pt")}
    (ckpts / "scsampler.pt").write_bytes(b"left over from an earlier run")
    run(trained.cfg, out=trained.root / "out", cache_dir=trained.root / "cache", quiet=True)
    assert {p.name: p.stat().st_mtime_ns for p in ckpts.glob("*.pt")} == before
    stages = json.loads((trained.folder / "run.json").read_text())["stages"]
    assert next(s for s in stages if s["stage"] == "checkpoints")["cached"]


def test_selection_on_new_videos(trained, tmp_path):
    long_ids = [vid for vid, n in trained.lengths.items() if n >= 8][:2]
    short_id = next(vid for vid, n in trained.lengths.items() if n < 8)
    paths = [trained.videos[v] for v in (*long_ids, short_id)]
    (tmp_path / "broken.mp4").write_bytes(trained.videos[long_ids[0]].read_bytes()[:300])
    for name in SAMPLER_FILES:
        trained_sampler = load_sampler(trained.folder / "checkpoints" / name)
        out = trained_sampler.select_videos([*paths, tmp_path / "broken.mp4"], 2)
        assert out[-1]["video"] == str(tmp_path / "broken.mp4") and "corrupt" in out[-1]["skipped"]
        for vid, entry in zip((*long_ids, short_id), out, strict=False):
            n, idx = trained.lengths[vid], entry["frame_indices"]
            assert (entry["num_frames"], entry["T"], entry["K"], entry["fps"]) == (n, 8, 2, 8.0)
            assert all(0 <= i < n for i in idx) and idx == sorted(idx), (name, entry)
            assert len(set(idx)) == 2 or n < 8, (name, entry)  # a video shorter than T repeats frames
            np.testing.assert_allclose(entry["times_s"], (np.array(idx) + 0.5) / 8.0, atol=1e-4)
        if name == "uniform":
            # Positions floor((i + 0.5) * T / K) = 2 and 6 of T = 8; segment centres floor((2p + 1) n / 16).
            assert [e["frame_indices"] for e in out[:3]] == [
                [5 * trained.lengths[v] // 16, 13 * trained.lengths[v] // 16] for v in (*long_ids, short_id)]


@pytest.mark.parametrize("name", ["nsnet", "mgsampler"])
def test_a_checkpoint_selects_what_the_benchmark_selected(trained, name):
    """Same frames and same recognizer scores as the run, for every validation video: NSNet from its FEM
    features, MGSampler from the motion it measures while decoding the new videos. The run's
    ``--export-selections`` file holds the same objects, named by video id instead of path."""
    pipe, cfg = trained.pipe, trained.cfg
    sampler, bank = pipe.sampler(name, fem=pipe.source.outputs("fem", cfg.fem.arch),
                                 rec=pipe.source.outputs("recognizer", cfg.recognizer.arch))
    positions = sampler.select(bank, 2).numpy()
    val_ids = pipe.source.split("val").video_ids
    trained_sampler = load_sampler(trained.folder / f"checkpoints/{name}.pt")
    out = trained_sampler.select_videos([trained.videos[v] for v in val_ids], 2, top5=True)
    predictions = json.loads((trained.folder / f"predictions/{name}_K2.json").read_text())["results"]
    exported = json.loads((trained.folder / f"selections/{name}_K2.json").read_text())
    for vid, pos, entry, saved in zip(val_ids, positions, out, exported, strict=True):
        assert entry["frame_indices"] == presample_indices(trained.lengths[vid], 8)[pos].tolist(), vid
        assert saved == {k: v for k, v in entry.items() if k != "top5"} | {"video": vid}
        assert entry["positions"] == pos.tolist(), vid
        # each label's score as the run exported it, and the highest scores: order-free among ties (a tiny
        # recognizer's softmax saturates to 1 and 0)
        exported = {p["label"]: p["score"] for p in predictions[vid]}
        top = entry["top5"]
        np.testing.assert_allclose([p["score"] for p in top], [exported[p["label"]] for p in top], atol=1e-5)
        np.testing.assert_allclose([p["score"] for p in top], sorted(exported.values(), reverse=True)[:len(top)],
                                   atol=1e-5)


def test_cli_prints_json_and_exits_by_outcome(trained, tmp_path, capsys):
    nsnet, video = str(trained.folder / "checkpoints/nsnet.pt"), str(next(iter(trained.videos.values())))
    (tmp_path / "empty.mp4").touch()
    assert main(["select", "--checkpoint", nsnet, "-k", "3", "--top5", video, str(tmp_path / "empty.mp4")]) == 0
    first, second = json.loads(capsys.readouterr().out)
    assert first["video"] == video and first["K"] == 3 and len(first["top5"]) == 4  # min(5, 4 classes)
    assert abs(sum(p["score"] for p in first["top5"]) - 1.0) < 1e-4  # every class, a mean of softmaxes
    assert second == {"video": str(tmp_path / "empty.mp4"), "skipped": "zero-byte file"}
    assert main(["select", "--checkpoint", nsnet, "-k", "2", str(tmp_path / "empty.mp4")]) == 1  # none readable
    capsys.readouterr()
    assert main(["select", "--checkpoint", nsnet, "-k", "9", video]) == 2
    assert "K=9 must satisfy 1 <= K <= T=8" in capsys.readouterr().err


def test_unusable_checkpoints_are_user_errors(trained, tmp_path):
    with pytest.raises(UserError, match="is not a samplerbench sampler checkpoint"):
        load_sampler(trained.folder / "checkpoints/recognizer_resnet18.pt")
    with pytest.raises(UserError, match=r"nope\.pt not found"):
        load_sampler(tmp_path / "nope.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"checkpoint .*garbage\.pt is not a PyTorch checkpoint file"):
        load_sampler(tmp_path / "garbage.pt")
    oracle = torch.load(trained.folder / "checkpoints/uniform.pt", weights_only=True) | {
        "sampler": "oracle", "state": {"prototypes": None}}
    torch.save(oracle, tmp_path / "oracle.pt")
    with pytest.raises(UserError, match="cannot select frames of new videos"):
        load_sampler(tmp_path / "oracle.pt")


def _edit(name: str, change) -> callable:
    """A tampering: ``checkpoints/name`` loaded, changed by ``change(ckpt, folder)`` and saved again."""
    def tamper(folder):
        path = folder / name
        ckpt = torch.load(path, weights_only=True)
        torch.save(change(ckpt, folder) or ckpt, path)

    return tamper


def _other_fem(ckpt, folder):  # another run's FEM: same file name and architecture, other weights
    ckpt["state_dict"] = {k: v + 1 if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}


def _recognizer_as_fem(ckpt, folder):
    return torch.load(folder / "recognizer_resnet18.pt", weights_only=True)


# (id, the tampering, what the one line says)
FOREIGN = [
    ("FEM of another run", _edit("fem_mobilenet_v2.pt", _other_fem), "nsnet.pt was trained with a fem of digest"),
    ("recognizer named fem_*.pt", _edit("fem_mobilenet_v2.pt", _recognizer_as_fem),
     "fem_mobilenet_v2.pt is a 'recognizer' checkpoint where a fem is needed"),
    ("sampler name edited", _edit("nsnet.pt", lambda c, f: c.update(sampler="uniform")),
     "its fields and state do not make a 'uniform' sampler"),
    ("unknown sampler name", _edit("nsnet.pt", lambda c, f: c.update(sampler="nope")), "unknown sampler 'nope'"),
    ("no record of its training", _edit("nsnet.pt", lambda c, f: c.__delitem__("trained_with")),
     "does not record the FEM and recognizer it was trained with"),
    ("T edited", _edit("nsnet.pt", lambda c, f: c["trained_with"].update(frames=99)), "was trained with T = 99"),
    ("fields of the wrong type", _edit("nsnet.pt", lambda c, f: c.update(fields={"d": [1]})), "nsnet.pt: "),
    ("no FEM named", _edit("nsnet.pt", lambda c, f: c.update(fem=None)), "no fem checkpoint named"),
]


@pytest.mark.parametrize(("tamper", "says"), [c[1:] for c in FOREIGN], ids=[c[0] for c in FOREIGN])
def test_select_refuses_a_foreign_or_edited_checkpoint_in_one_line(trained, tmp_path, capsys, tamper, says):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("nsnet.pt", "fem_mobilenet_v2.pt", "recognizer_resnet18.pt"):
        (folder / name).write_bytes((trained.folder / "checkpoints" / name).read_bytes())
    tamper(folder)
    video = str(next(iter(trained.videos.values())))
    assert main(["select", "--checkpoint", str(folder / "nsnet.pt"), "-k", "2", video]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and says in err, err
