"""The protocol card (which videos, labels, frames and definitions a run's numbers stand on), ``--video-list``
and the portable selection objects that ``samplerbench select`` and ``--export-selections`` share."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datasetfiles import make_list

from samplerbench.cli import main
from samplerbench.config import build_config
from samplerbench.core.errors import UserError
from samplerbench.core.stagelog import StageLog
from samplerbench.datasets.base import DatasetIndex, VideoRecord
from samplerbench.datasets.videolist import read_video_list, restrict
from samplerbench.evaluation.protocol import protocol_card, protocol_markdown
from samplerbench.formats.selections import dumps, video_selection
from samplerbench.measures.metrics import MAP_DEFINITIONS
from samplerbench.runs.benchmark import run
from samplerbench.stages.pipeline import Pipeline


def dataset(train: int = 3, val: int = 4) -> DatasetIndex:
    records = [VideoRecord(video_id=f"{subset}{i}", path=Path(f"/data/{subset}{i}.mp4"), labels=(i % 2,),
                           subset=subset) for subset, n in (("train", train), ("val", val)) for i in range(n)]
    return DatasetIndex(name="toy", classes=("run", "jump"), records=tuple(records))


def write_list(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_a_video_list_tolerates_bom_crlf_comments_and_repeats(tmp_path):
    listed = read_video_list(write_list(tmp_path / "ids.txt", "# the paper's list\r\nval1\r\n\r\n  val3 \r\nval1\r\n",
                                        "utf-8-sig"))
    assert listed.ids == ("val1", "val3") and listed.path == str(tmp_path / "ids.txt")


def binary(folder: Path) -> Path:
    (folder / "binary.txt").write_bytes(b"\xff\xfe\x00bad")
    return folder / "binary.txt"


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "absent.txt", "absent.txt: no such file"),
    (lambda d: d, ": not a file"),
    (lambda d: write_list(d / "blank.txt", "# only a comment\n\n"), "blank.txt: no video id in it"),
    (binary, "cannot read file"),
], ids=["missing", "folder", "empty", "not text"])
def test_a_bad_video_list_is_a_one_line_error_naming_it(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(UserError, match=message) as err:
        read_video_list(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_list_restricts_the_splits_it_names_and_reports_unknown_ids(tmp_path):
    data = dataset()
    kept, match = restrict(data, read_video_list(write_list(tmp_path / "ids", "val2\nnope\nval0\n")))
    assert [r.video_id for r in kept.split("val")] == ["val0", "val2"]  # record order, not list order
    assert len(kept.split("train")) == 3  # a split the list names none of stays whole
    assert (match.restricted, match.absent, match.listed) == (("val",), ("nope",), 3)
    assert (match.annotated, match.kept) == ({"train": 3, "val": 4}, {"train": 3, "val": 2})
    both, match = restrict(data, read_video_list(write_list(tmp_path / "ids", "train1\nval3\n")))
    assert [r.video_id for r in both.records] == ["train1", "val3"] and match.restricted == ("train", "val")
    with pytest.raises(UserError, match=r"ids: none of its 2 ids \('x', 'y'\) is a video of dataset 'toy'"):
        restrict(data, read_video_list(write_list(tmp_path / "ids", "x\ny\n")))


def test_the_pipeline_indexes_the_listed_videos_only(tmp_path):
    root = make_list(tmp_path / "data", videos=False)
    ids = write_list(tmp_path / "ids.txt", "clips/va2.mp4\nclips/va0.mp4\n")
    cfg = build_config("tiny", data={"dataset": "list", "root": str(root), "video_list": str(ids)})
    pipe = Pipeline(cfg, cache_dir=tmp_path / "cache", log=StageLog(quiet=True))
    assert [r.video_id for r in pipe.source.index().split("val")] == ["clips/va0.mp4", "clips/va2.mp4"]
    assert len(pipe.source.index().split("train")) == 4 and pipe.source.video_list().restricted == ("val",)
    assert Pipeline(build_config("tiny", data={"dataset": "list", "root": str(root)}), cache_dir=tmp_path / "cache",
                    log=StageLog(quiet=True)).source.video_list() is None


def test_a_bad_video_list_stops_the_run_with_exit_status_2(tmp_path, capsys):
    argv = ["--preset", "tiny", "--device", "cpu", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, "--video-list", str(tmp_path / "ids.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--video-list {tmp_path / 'ids.txt'}: no such file" in err


def test_the_card_counts_missing_and_unreadable_videos_per_split():
    data = dataset()
    skipped = {"train": [("train2", "/data/train2.mp4", "zero-byte file")],
               "val": [("val1", "/data/val1.mp4", "missing file"), ("val3", "/data/val3.mp4", "missing file")]}
    cfg = build_config("tiny")
    card = protocol_card(cfg, data=data, read={"train": 2, "val": 2}, skipped=skipped, video_list=None)
    assert card["videos"]["train"] == {"annotated": 3, "listed": 3, "found": 3, "read": 2, "missing": [],
                                       "unreadable": [["train2", "zero-byte file"]]}
    assert card["videos"]["val"] == {"annotated": 4, "listed": 4, "found": 2, "read": 2, "missing": ["val1", "val3"],
                                     "unreadable": []}
    assert (card["labels"], card["T"], card["K"], card["main_K"]) == (["run", "jump"], 8, [2, 4], 2)
    assert (card["short_side"], card["crop"], card["fem"]) == (40, 32, {"arch": "mobilenet_v2", "resolution": 32})
    assert card["metrics"] == MAP_DEFINITIONS and set(MAP_DEFINITIONS) == {"mAP", "mAP (ANet)"}
    assert "(index + 0.5) / fps" in card["timestamps"] and card["video_list"] is None
    json.dumps(card)  # JSON-ready as it is
    text = protocol_markdown(card, labels_file="labels.csv")
    assert "annotation lists 3 / 4; found 3 / 2; read 2 / 2; missing file 0 / 2; unreadable 1 / 0" in text
    assert "val1" not in text  # ids in run.json and skipped.csv, counts here
    assert "2 classes: 0 run, 1 jump" in text and "| mAP (ANet) |" in text and "--video-list" not in text
    many = protocol_markdown(card | {"labels": [f"c|{i}" for i in range(11)]}, labels_file="labels.csv")
    assert "11 classes: index → name in `labels.csv`" in many


def test_select_and_the_export_share_one_object():
    entry = video_selection("a.mp4", [2, 6], (32, 8.0), t=8)
    assert entry == {"video": "a.mp4", "num_frames": 32, "fps": 8.0, "T": 8, "K": 2, "positions": [2, 6],
                     "frame_indices": [10, 26], "times_s": [1.3125, 3.3125]}  # segment centres (2p+1)*32//16
    np.testing.assert_allclose(entry["times_s"], (np.array(entry["frame_indices"]) + 0.5) / 8.0)
    assert video_selection("b.mp4", (), "missing file", t=8) == {"video": "b.mp4", "skipped": "missing file"}
    assert json.loads(dumps([entry, entry])) == [entry, entry] and dumps([entry]).count("\n") == 2


@pytest.mark.slow
def test_a_listed_run_with_missing_videos_states_its_protocol(tmp_path):
    """A list naming three val videos (one of them deleted) and one the dataset lacks; a corrupt training
    video: the card, skipped.csv and the exported selections all say which."""
    root = make_list(tmp_path / "data")
    (root / "clips/va1.mp4").unlink()
    (root / "clips/tr3.mp4").write_bytes(b"not a video")
    ids = write_list(tmp_path / "ids.txt", "clips/va0.mp4\nclips/va1.mp4\nclips/va2.mp4\nclips/gone.mp4\n")
    cfg = build_config("tiny", data={"dataset": "list", "root": str(root), "video_list": str(ids), "frames": 4},
                       sampling={"samplers": ("uniform",), "budgets": (2,)},
                       report={"tables": ("main",), "bootstrap": 20, "export_selections": True},
                       recognizer={"epochs": 1}, fem={"epochs": 1}, cost={"iters": 1})
    folder = run(cfg, out=tmp_path / "out", cache_dir=tmp_path / "cache", quiet=True)
    meta = json.loads((folder / "run.json").read_text())
    card = meta["protocol"]
    assert card["video_list"] == {"file": str(ids), "ids": 4, "restricted_splits": ["val"],
                                  "not_in_dataset": ["clips/gone.mp4"]}
    assert card["videos"]["val"] == {"annotated": 3, "listed": 3, "found": 2, "read": 2,
                                     "missing": ["clips/va1.mp4"], "unreadable": []}
    train = card["videos"]["train"]
    assert (train["listed"], train["found"], train["read"], train["missing"]) == (4, 4, 3, [])
    assert [vid for vid, _ in train["unreadable"]] == ["clips/tr3.mp4"] and card["labels"] == ["Red", "Blue"]
    main_md = (folder / "main.md").read_text()
    assert "annotation lists 4 / 3; --video-list keeps 4 / 3; found 4 / 2; read 3 / 2" in main_md
    assert "restricts val; 1 not in the dataset (`clips/gone.mp4`)" in main_md
    assert main_md.index("| protocol |") < main_md.index("| sampler ")  # above the table
    assert (folder / "labels.csv").read_text().splitlines() == ["index,name", "0,Red", "1,Blue"]
    exported = json.loads((folder / "selections/uniform_K2.json").read_text())
    assert [e["video"] for e in exported] == ["clips/va0.mp4", "clips/va1.mp4", "clips/va2.mp4"]
    assert exported[1] == {"video": "clips/va1.mp4", "skipped": "missing file"}
    assert exported[0]["positions"] == [1, 3] and exported[0]["T"] == 4  # uniform: floor((i + 0.5) * T / K)
    assert {"labels.csv", "selections/uniform_K2.json"} <= set(meta["files"])
