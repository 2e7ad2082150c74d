"""The list-based adapters (fcvid, list, ucf101, minikinetics): records, classes, splits, and one clear error
(``file:line``) per malformed line, or a skip list with ``--lenient``."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasetfiles import MAKERS, make_list, make_minikinetics, make_ucf101

from samplerbench.config import build_config
from samplerbench.core.errors import UserError
from samplerbench.datasets import get_dataset, preset_layer
from samplerbench.datasets.parsing import BadEntry, parse_class_list, split_labels


def index(dataset: str, root: Path, **overrides):
    return get_dataset(dataset)(build_config(data={"dataset": dataset, "root": str(root)}, **overrides), root / "cache")


def test_fcvid_multi_label_lines_and_class_names(tmp_path: Path) -> None:
    data = index("fcvid", make_list(tmp_path, videos=False))
    assert data.name == "fcvid" and data.metric == "mAP" and data.classes == ("Red", "Blue")
    by_id = {r.video_id: r for r in data.records}
    assert by_id["clips/va0.mp4"].labels == (0, 1) and by_id["clips/va0.mp4"].subset == "val"
    assert by_id["clips/tr1.mp4"].labels == (1,) and by_id["clips/tr1.mp4"].path == tmp_path / "clips/tr1.mp4"
    assert len(data.split("train")) == 4 and len(data.split("val")) == 3 and data.skipped == ()


def test_list_without_class_names_numbers_the_classes(tmp_path: Path) -> None:
    data = index("list", make_list(tmp_path, videos=False, classes=False))
    assert data.classes == ("0", "1")
    with pytest.raises(UserError, match=r"class list .*classes\.txt not found"):
        index("fcvid", tmp_path)  # fcvid needs its class names


def test_list_files_from_flags(tmp_path: Path) -> None:
    make_list(tmp_path, videos=False)
    (tmp_path / "val_list.txt").rename(tmp_path / "other.txt")
    with pytest.raises(UserError, match=r"validation list .*val_list\.txt not found \(expected <root>/train_list"):
        index("list", tmp_path)
    assert len(index("list", tmp_path, val_list=str(tmp_path / "other.txt")).split("val")) == 3


BAD_LINES = {
    "text label": ("clips/x.mp4 red", "expected 'path label [label ...]' with integer labels at the end, got "
                                      "'clips/x.mp4 red'"),
    "label out of range": ("clips/x.mp4 2", "label 2 out of range (0..1)"),
    "no label": ("clips/x.mp4", "expected 'path label [label ...]'"),
    "no path": ("3 1", "no path before the label(s) in '3 1'"),
    "duplicate": ("clips/tr0.mp4 0", "duplicate video 'clips/tr0.mp4' (first at "),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_malformed_line_names_file_and_line(tmp_path: Path, case: str) -> None:
    line, expected = BAD_LINES[case]
    make_list(tmp_path, videos=False)
    val = tmp_path / "val_list.txt"
    val.write_text(val.read_text() + line + "\n")  # line 4
    with pytest.raises(UserError) as err:
        index("fcvid", tmp_path)
    assert f"{val}:4: {expected}" in str(err.value) and "--lenient" in str(err.value)
    lenient = index("fcvid", tmp_path, lenient=True)
    assert [entry for entry, _ in lenient.skipped] == [f"{val}:4"] and len(lenient.split("val")) == 3


def test_class_list_numbering_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "classInd.txt"
    path.write_text("1 Archery\n2 Bowling\n")
    assert parse_class_list(path) == ("Archery", "Bowling")
    path.write_text("1 Archery\n3 Bowling\n")
    with pytest.raises(UserError, match=r"classInd\.txt:2: class number 3 out of sequence \(expected 2"):
        parse_class_list(path)
    path.write_text("Archery\nBowling\nArchery\n")
    with pytest.raises(UserError, match=r"classInd\.txt:3: class 'Archery' listed twice"):
        parse_class_list(path)


def test_ucf101_split_lists(tmp_path: Path) -> None:
    data = index("ucf101", make_ucf101(tmp_path, videos=False))
    assert data.metric == "top1" and data.classes == ("ApplyEyeMakeup", "Archery")
    by_id = {r.video_id: r for r in data.records}
    assert by_id["v_Archery_tr1"].labels == (1,) and by_id["v_Archery_tr1"].subset == "train"
    assert by_id["v_ApplyEyeMakeup_va2"].subset == "val"
    assert by_id["v_ApplyEyeMakeup_va2"].path == tmp_path / "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_va2.avi"
    with pytest.raises(UserError, match=r"trainlist02\.txt not found"):
        index("ucf101", tmp_path, split=2)


def test_ucf101_label_must_match_the_folder(tmp_path: Path) -> None:
    make_ucf101(tmp_path, videos=False)
    train = tmp_path / "ucfTrainTestlist" / "trainlist01.txt"
    train.write_text(train.read_text() + "Archery/v_Archery_x.avi 1\nBowling/v_Bowling_x.avi 3\n")
    with pytest.raises(UserError) as err:
        index("ucf101", tmp_path)
    message = str(err.value)
    assert f"{train}:5: class number 1 does not match the folder 'Archery' (class 2)" in message
    assert f"{train}:6: unknown class 'Bowling'" in message and "2 malformed entries" in message


def test_minikinetics_restricts_kinetics_to_the_id_lists(tmp_path: Path) -> None:
    data = index("minikinetics", make_minikinetics(tmp_path))
    assert data.metric == "top1"
    assert data.classes == ("abseiling", "passing American football (in game)")  # csv quoting undone
    assert {r.video_id for r in data.records} == {"tr0", "tr1", "tr2", "tr3", "va0", "va1", "va2"}  # no zzz
    va0 = next(r for r in data.records if r.video_id == "va0")
    assert va0.labels == (1,) and va0.subset == "val"  # the second class, sorted
    assert va0.path == tmp_path / "videos/passing American football (in game)/va0_000000_000010.mp4"


def test_minikinetics_bad_rows_and_unknown_ids(tmp_path: Path) -> None:
    make_minikinetics(tmp_path, videos=False)
    ids = tmp_path / "val_ytid_list.txt"
    ids.write_text(ids.read_text() + "nope\n")
    train_csv = tmp_path / "train.csv"
    train_csv.write_text(train_csv.read_text().replace("tr2,20,30", "tr2,20,15") + "abseiling,zzz,5,x,train\n")
    with pytest.raises(UserError) as err:
        index("minikinetics", tmp_path)
    message = str(err.value)
    assert f"{ids}:4: id 'nope': not in the Kinetics CSV" in message
    assert f"id 'tr2': {train_csv}:4: time_end 15 is not after time_start 20" in message
    assert "zzz" not in message  # a broken row outside Mini-Kinetics does not matter
    lenient = index("minikinetics", tmp_path, lenient=True)
    assert len(lenient.skipped) == 2 and "tr2" not in {r.video_id for r in lenient.records}


def test_minikinetics_csv_needs_the_kinetics_header(tmp_path: Path) -> None:
    make_minikinetics(tmp_path, videos=False)
    (tmp_path / "validate.csv").write_text("label,id,start,end\n")
    with pytest.raises(UserError, match=r"validate\.csv: no column\(s\) youtube_id, time_start, time_end"):
        index("minikinetics", tmp_path)


@pytest.mark.parametrize("dataset", ["fcvid", "list", "ucf101", "minikinetics", "activitynet"])
def test_missing_data_root_explains_the_layout(dataset: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"--dataset {dataset} needs --data-root \\(expected <root>/"):
        get_dataset(dataset)(build_config(data={"dataset": dataset}), tmp_path)


@pytest.mark.parametrize(("dataset", "fem_res"), [("minikinetics", 112), ("activitynet", 224), ("fcvid", 224),
                                                  ("ucf101", 224), ("synthetic", 224)])
def test_paper_preset_takes_the_datasets_fem_resolution(dataset: str, fem_res: int) -> None:
    def res(preset: str, **values) -> int:
        return build_config(preset, data={"dataset": dataset}, dataset_layer=preset_layer, **values).fem.res

    assert res("paper") == fem_res  # supplementary A.1
    assert res("paper", fem={"res": 160}) == 160  # a flag still wins
    assert res("paper", file_values={"fem": {"res": 96}}) == 96
    assert res("tiny") == 32  # other presets are the preset's own


@pytest.mark.parametrize("dataset", list(MAKERS))
def test_byte_order_marks_and_crlf_read_like_plain_files(dataset: str, tmp_path: Path) -> None:
    """Every list, class, CSV and JSON file an adapter reads, saved by a Windows editor (UTF-8 with a BOM,
    CRLF line ends), gives the same index as the plain file."""
    plain = index(dataset, MAKERS[dataset](tmp_path / "plain", videos=False))
    root = MAKERS[dataset](tmp_path / "windows", videos=False)
    for path in [p for p in root.rglob("*") if p.suffix in (".txt", ".csv", ".json")]:
        path.write_bytes(b"\xef\xbb\xbf" + path.read_text().replace("\n", "\r\n").encode())
    windows = index(dataset, root)
    assert windows.classes == plain.classes and not any("\ufeff" in c for c in windows.classes)
    strip = str(root)
    assert [(r.video_id, r.labels, r.subset, str(r.path).replace(strip, "")) for r in windows.records] == \
        [(r.video_id, r.labels, r.subset, str(r.path).replace(str(tmp_path / "plain"), "")) for r in plain.records]


@pytest.mark.parametrize(
    ("line", "max_labels", "expected"),
    [
        ("my clips/take one.mp4 3", None, ("my clips/take one.mp4", [3])),
        ("clip.mp4 0 2", None, ("clip.mp4", [0, 2])),
        ("a\tb  c.mp4\t1", None, ("a\tb  c.mp4", [1])),  # inner whitespace kept as written
        ("take 2 5", None, ("take", [2, 5])),  # ambiguous: every trailing integer is a label
        ("take 2 5", 1, ("take 2", [5])),  # ... unless one label at most is allowed (UCF101)
        ("clip.mp4", None, ("clip.mp4", [])),
        ("clip.mp4 -1", None, ("clip.mp4", [-1])),  # a negative label, for the range check to name
    ],
)
def test_labels_are_the_trailing_integers(line: str, max_labels: int | None, expected: tuple) -> None:
    assert split_labels(line, max_labels=max_labels) == expected


def test_a_line_of_numbers_has_no_path() -> None:
    with pytest.raises(BadEntry, match="no path before the label"):
        split_labels("3 4")


def test_paths_with_spaces(tmp_path: Path) -> None:
    make_list(tmp_path, videos=False)
    (tmp_path / "train_list.txt").write_text("my clips/red one.mp4 0\nmy clips/blue  two.mp4 1\n")
    data = index("fcvid", tmp_path)
    by_id = {r.video_id: r for r in data.records}
    assert by_id["my clips/red one.mp4"].labels == (0,)
    assert by_id["my clips/blue  two.mp4"].path == tmp_path / "my clips/blue  two.mp4"
    make_ucf101(tmp_path / "ucf", videos=False)
    train = tmp_path / "ucf" / "ucfTrainTestlist" / "trainlist01.txt"
    train.write_text(train.read_text() + "Archery/v_Archery 2 take.avi 2\n")
    test = tmp_path / "ucf" / "ucfTrainTestlist" / "testlist01.txt"
    test.write_text(test.read_text() + "Archery/v_Archery 3.avi\n")
    ucf = {r.video_id: r for r in index("ucf101", tmp_path / "ucf").records}
    assert ucf["v_Archery 2 take"].labels == (1,) and ucf["v_Archery 3"].subset == "val"
