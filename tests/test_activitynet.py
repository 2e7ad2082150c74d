"""The ActivityNet v1.3 parser: records, classes, splits, video lookup, one clear error per bad entry."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from samplerbench.config import build_config
from samplerbench.core.errors import UserError
from samplerbench.datasets import get_dataset
from samplerbench.datasets.activitynet import parse_activitynet

TAXONOMY = [
    {"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None},
    {"nodeId": 1, "nodeName": "Archery", "parentId": 0, "parentName": "Root"},
    {"nodeId": 2, "nodeName": "Bowling", "parentId": 0, "parentName": "Root"},
    {"nodeId": 3, "nodeName": "Curling", "parentId": 0, "parentName": "Root"},
]
DATABASE = {
    "aaa": {
        "subset": "training",
        "duration": 10.0,
        "url": "",
        "annotations": [
            {"segment": [5.0, 7.0], "label": "Bowling"},
            {"segment": [1.0, 2.5], "label": "Archery"},
            {"segment": [3.0, 4.0], "label": "Bowling"},
        ],
    },
    "bbb": {
        "subset": "validation",
        "duration": 20.0,
        "url": "",
        "annotations": [{"segment": [0, 20.4], "label": "Curling"}],
    },
    "ccc": {
        "subset": "validation",
        "duration": 5.0,
        "url": "",
        "annotations": [{"segment": [1, 2], "label": "Archery"}],
    },
    "ttt": {"subset": "testing", "duration": 8.0, "url": "", "annotations": []},
}


def write(tmp_path: Path, database: dict | None = None, **top) -> Path:
    doc = {
        "version": "VERSION 1.3",
        "taxonomy": TAXONOMY,
        "database": DATABASE if database is None else database,
    }
    path = tmp_path / "anet.json"
    path.write_text(json.dumps({**doc, **top}))
    return path


@pytest.fixture
def video_dir(tmp_path: Path) -> Path:
    d = tmp_path / "videos"
    d.mkdir()
    (d / "v_aaa.mp4").touch()
    (d / "bbb.mkv").touch()  # plain id, another extension
    return d


def test_parses_records_classes_and_splits(tmp_path: Path, video_dir: Path) -> None:
    index = parse_activitynet(write(tmp_path), video_dir=video_dir)
    assert index.name == "activitynet" and index.metric == "mAP"
    assert index.classes == ("Archery", "Bowling", "Curling")  # labels used, sorted; "Root" is not one
    by_id = {r.video_id: r for r in index.records}
    assert set(by_id) == {"aaa", "bbb", "ccc"}  # testing left out
    a = by_id["aaa"]
    assert a.subset == "train" and a.labels == (0, 1)
    assert a.segments == ((1.0, 2.5), (3.0, 4.0), (5.0, 7.0))
    assert a.path == video_dir / "v_aaa.mp4"
    assert by_id["bbb"].subset == "val" and by_id["bbb"].labels == (2,)
    assert by_id["bbb"].path == video_dir / "bbb.mkv"
    assert by_id["ccc"].path == video_dir / "v_ccc.mp4"  # absent: the expected name, reported at decode
    assert [r.video_id for r in index.split("val")] == ["bbb", "ccc"]
    assert index.skipped == ()


def test_without_taxonomy_any_label_is_accepted(tmp_path: Path, video_dir: Path) -> None:
    db = {"x": {"subset": "training", "duration": 3.0, "annotations": [{"segment": [0, 1], "label": "Zorbing"}]}}
    index = parse_activitynet(write(tmp_path, db, taxonomy=[]), video_dir=video_dir)
    assert index.classes == ("Zorbing",)


def broken(video_id: str, change) -> dict:
    db = copy.deepcopy(DATABASE)
    change(db[video_id])
    return db


MALFORMED = {
    "missing subset": (broken("aaa", lambda e: e.pop("subset")), "missing key 'subset'"),
    "bad subset": (broken("aaa", lambda e: e.update(subset="train")), "unknown subset 'train'"),
    "missing duration": (broken("aaa", lambda e: e.pop("duration")), "missing key 'duration'"),
    "text duration": (broken("aaa", lambda e: e.update(duration="10")), "duration must be a finite number"),
    "missing annotations": (broken("aaa", lambda e: e.pop("annotations")), "missing key 'annotations'"),
    "no annotations": (broken("aaa", lambda e: e.update(annotations=[])), "non-empty list"),
    "missing segment": (broken("aaa", lambda e: e["annotations"][1].pop("segment")), "missing key 'segment'"),
    "missing label": (broken("aaa", lambda e: e["annotations"][0].pop("label")), "missing key 'label'"),
    "negative start": (
        broken("aaa", lambda e: e["annotations"][0].update(segment=[-1, 2])),
        "starts before 0",
    ),
    "empty segment": (
        broken("aaa", lambda e: e["annotations"][0].update(segment=[3, 3])),
        "does not end after",
    ),
    "past duration": (broken("aaa", lambda e: e["annotations"][0].update(segment=[3, 11.5])), "ends after"),
    "unknown label": (
        broken("aaa", lambda e: e["annotations"][0].update(label="Archry")),
        "unknown label 'Archry'",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_entry_names_file_and_entry(tmp_path: Path, video_dir: Path, case: str) -> None:
    database, expected = MALFORMED[case]
    path = write(tmp_path, database)
    with pytest.raises(UserError) as err:
        parse_activitynet(path, video_dir=video_dir)
    message = str(err.value)
    assert str(path) in message and "video 'aaa'" in message and expected in message, message


@pytest.mark.parametrize("case", ["missing subset", "unknown label", "past duration"])
def test_lenient_skips_and_lists_bad_entries(tmp_path: Path, video_dir: Path, case: str) -> None:
    database, expected = MALFORMED[case]
    index = parse_activitynet(write(tmp_path, database), video_dir=video_dir, lenient=True)
    assert {r.video_id for r in index.records} == {"bbb", "ccc"}
    assert len(index.skipped) == 1 and index.skipped[0][0] == "aaa" and expected in index.skipped[0][1]
    assert index.classes == ("Archery", "Curling")


def test_duplicate_ids(tmp_path: Path, video_dir: Path) -> None:
    entry = json.dumps(DATABASE["ccc"])
    path = tmp_path / "dup.json"
    path.write_text(f'{{"taxonomy": [], "database": {{"ccc": {entry}, "ddd": {entry}, "ccc": {entry}}}}}')
    with pytest.raises(UserError, match="video 'ccc': duplicate video id"):
        parse_activitynet(path, video_dir=video_dir)
    index = parse_activitynet(path, video_dir=video_dir, lenient=True)
    assert [r.video_id for r in index.records] == ["ddd"] and index.skipped == (("ccc", "duplicate video id"),)


def test_invalid_json_reports_line_and_column(tmp_path: Path, video_dir: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"database": {\n  "a": {"subset": "training",}\n}}')
    with pytest.raises(UserError, match=r"bad\.json: invalid JSON at line 2, column \d+"):
        parse_activitynet(path, video_dir=video_dir)


def test_missing_database(tmp_path: Path, video_dir: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"taxonomy": []}')
    with pytest.raises(UserError, match=r"other\.json: no 'database' object"):
        parse_activitynet(path, video_dir=video_dir)


def build(cfg, cache_dir: Path):
    return get_dataset("activitynet")(cfg, cache_dir)


def test_build_explains_the_expected_layout(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"needs --data-root .*activity_net\.v1-3\.min\.json.*videos/v_<id>\.mp4"):
        build(build_config(data={"dataset": "activitynet", "root": None}), tmp_path)
    with pytest.raises(UserError, match="not a folder"):
        build(build_config(data={"dataset": "activitynet", "root": str(tmp_path / "nowhere")}), tmp_path)
    with pytest.raises(UserError, match=r"activity_net\.v1-3\.min\.json not found"):
        build(build_config(data={"dataset": "activitynet", "root": str(tmp_path)}), tmp_path)


def test_build_reads_root_layout(tmp_path: Path, video_dir: Path) -> None:
    write(tmp_path).rename(tmp_path / "activity_net.v1-3.min.json")
    index = build(build_config(data={"dataset": "activitynet", "root": str(tmp_path)}), tmp_path / "cache")
    assert len(index.records) == 3 and index.records[0].path.parent == video_dir
    custom = write(tmp_path, broken("aaa", lambda e: e.pop("subset")))
    cfg = build_config(data={"dataset": "activitynet", "root": str(tmp_path), "lenient": True,
                             "options": {"activitynet": {"annotations": str(custom)}}})
    lenient = build(cfg, tmp_path)
    assert [vid for vid, _ in lenient.skipped] == ["aaa"]
