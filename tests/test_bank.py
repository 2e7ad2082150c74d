"""Frame banks (:mod:`samplerbench.formats.bank`): written and read back memory-mapped, and every way a bank can be
wrong is one line naming the file and the entry (or, with ``lenient``, a skip list)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from samplerbench.cli import main
from samplerbench.core.errors import UserError
from samplerbench.datasets.bank import bank_index
from samplerbench.formats.bank import SPLITS, BankSplit, read_bank, write_bank

N, T, DF, DR, C = 6, 4, 5, 3, 2


def bank_split(n: int, prefix: str, seed: int) -> BankSplit:
    gen = np.random.default_rng(seed)
    return BankSplit(fem_features=gen.normal(size=(n, T, DF)).astype(np.float16),
                     rec_logits=gen.normal(size=(n, T, C)).astype(np.float32),
                     rec_features=gen.normal(size=(n, T, DR)).astype(np.float32),
                     labels=np.eye(C, dtype=np.uint8)[np.arange(n) % C], salient=gen.random((n, T)) > 0.5,
                     video_ids=tuple(f"{prefix}{i // 2 if prefix == 't' else i}" for i in range(n)))


@pytest.fixture
def bank(tmp_path: Path) -> Path:
    write_bank(tmp_path / "bank", classes=("a", "b"), splits={s: bank_split(N, s[0], i) for i, s in enumerate(SPLITS)},
               producer={"tool": "test"})
    return tmp_path / "bank"


def test_a_bank_reads_back_memory_mapped_as_written(bank: Path) -> None:
    read = read_bank(bank)
    assert read.classes == ("a", "b") and read.frames == T and not read.skipped
    for i, split in enumerate(SPLITS):
        written, got = bank_split(N, split[0], i), read.splits[split]
        assert isinstance(got.fem_features, np.memmap) and got.fem_features.dtype == np.float16
        for name in ("fem_features", "rec_logits", "rec_features", "labels", "salient"):
            np.testing.assert_array_equal(getattr(got, name), getattr(written, name))
        assert got.video_ids == written.video_ids
    index = bank_index(read)  # a training video's consecutive rows (its views) are one record
    assert len(index.split("train")) == N // 2 and len(index.split("val")) == N
    assert index.split("val")[1].labels == (1,)


@pytest.fixture
def motion_bank(tmp_path: Path) -> Path:
    """A bank that carries per-frame motion, as ``--export-bank`` writes one."""
    gen = np.random.default_rng(7)
    splits = {s: dataclasses.replace(bank_split(N, s[0], i), motion=gen.random((N, T)).astype(np.float32))
              for i, s in enumerate(SPLITS)}
    write_bank(tmp_path / "mbank", classes=("a", "b"), splits=splits, producer={"tool": "test"})
    return tmp_path / "mbank"


def test_motion_is_optional_and_reads_back_when_written(bank: Path, motion_bank: Path) -> None:
    assert not read_bank(bank).has_motion and read_bank(bank).splits["val"].motion is None
    read = read_bank(motion_bank)
    assert read.has_motion and read.splits["val"].motion.shape == (N, T)
    assert json.loads((motion_bank / "index.json").read_text())["splits"]["val"]["files"]["motion"]["shape"] == [N, T]


def test_a_damaged_motion_array_is_one_line(motion_bank: Path) -> None:
    np.save(motion_bank / "val" / "motion.npy", np.zeros((N, T + 1), dtype=np.float32))
    with pytest.raises(UserError, match=r"val/motion\.npy: shape \(6, 5\) disagrees with index\.json"):
        read_bank(motion_bank)


def test_mgsampler_runs_on_a_bank_that_carries_motion(motion_bank: Path, tmp_path: Path) -> None:
    argv = ["--dataset", "bank", "--data-root", str(motion_bank), "--preset", "tiny", "--frames", str(T), "--budget",
            "2", "--sampler", "uniform,mgsampler", "--tables", "main", "--device", "cpu", "--cache-dir",
            str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    summary = (tmp_path / "out" / "bank-tiny" / "summary.csv").read_text()
    assert "mgsampler" in summary


def test_an_array_whose_shape_disagrees_with_the_index_is_named(bank: Path) -> None:
    np.save(bank / "val" / "rec_features.npy", np.zeros((N, T, DR + 1), dtype=np.float32))
    with pytest.raises(UserError, match=r"val/rec_features\.npy: shape \(6, 4, 4\) disagrees with index\.json"):
        read_bank(bank)


def test_rows_that_disagree_with_the_index_are_named(bank: Path) -> None:
    index = json.loads((bank / "index.json").read_text())
    index["splits"]["train"]["rows"] = N + 1
    (bank / "index.json").write_text(json.dumps(index))
    with pytest.raises(UserError, match=r"train/fem_features\.npy: shape .* rows × frames × fem_dim = \(7, 4, 5\)"):
        read_bank(bank)


def test_nan_is_named_by_file_row_and_video_and_lenient_skips_the_row(bank: Path) -> None:
    fem = np.load(bank / "train" / "fem_features.npy")
    fem[3, 1, 2] = np.nan
    np.save(bank / "train" / "fem_features.npy", fem)
    with pytest.raises(UserError, match=r"train/fem_features\.npy: row 3 \(video 't1'\) holds NaN or inf"):
        read_bank(bank)
    read = read_bank(bank, lenient=True)
    assert len(read.splits["train"]) == N - 1 and read.splits["train"].video_ids == ("t0", "t0", "t1", "t2", "t2")
    (entry, reason), = read.skipped
    assert "fem_features.npy row 3 (video 't1')" in entry and reason == "NaN or inf"
    assert bank_index(read).skipped == read.skipped


def _ids(bank: Path, split: str, ids: list[str]) -> None:
    (bank / split / "video_ids.json").write_text(json.dumps(ids))


def _index_field(bank: Path, key: str, value) -> None:
    index = json.loads((bank / "index.json").read_text())
    (bank / "index.json").write_text(json.dumps({**index, key: value}))


@pytest.mark.parametrize("damage, message", [
    (lambda b: (b / "index.json").unlink(), r"index\.json: missing"),
    (lambda b: (b / "index.json").write_text("{"), r"index\.json: not readable JSON"),
    (lambda b: (b / "val" / "labels.npy").unlink(), r"val/labels\.npy: missing \(listed as index\.json"),
    (lambda b: (b / "val" / "labels.npy").write_bytes(b"nonsense"), r"val/labels\.npy: not a \.npy array"),
    (lambda b: np.save(b / "val" / "salient.npy", np.zeros((N, T), dtype=np.uint8)), r"salient\.npy: dtype uint8"),
    (lambda b: np.save(b / "val" / "labels.npy", np.full((N, C), 2, dtype=np.uint8)), r"labels\.npy: row 0 .*0 or 1"),
    (lambda b: (b / "train" / "video_ids.json").write_text("[]"), r"video_ids\.json: expected a list of 6"),
    # banks whose scores would mean nothing: a video counted twice or leaked, a row without label, classes mixed
    (lambda b: _ids(b, "val", ["v0", "v1", "v0", "v3", "v4", "v5"]),
     r"val/video_ids\.json: video 'v0' is at rows 0 and 2; a validation video has one row"),
    (lambda b: _ids(b, "train", ["t0", "t0", "t1", "t1", "t0", "t2"]),
     r"train/video_ids\.json: video 't0' is at rows 0 and 4; a training video's rows \(its views\) must be consec"),
    (lambda b: _ids(b, "val", ["v0", "v1", "t1", "v3", "v4", "v5"]), r"bank: video 't1' is in both splits"),
    (lambda b: np.save(b / "val" / "labels.npy", np.eye(C, dtype=np.uint8)[[0, 1, 0, 1, 0, 1]] * np.array(
        [[1], [0], [1], [1], [1], [1]], dtype=np.uint8)), r"val/labels\.npy: row 1 \(video 'v1'\) holds no label"),
    (lambda b: _index_field(b, "classes", ["a", "a"]), r"index\.json: class 'a' is listed twice in 'classes'"),
])
def test_a_damaged_bank_is_one_line(bank: Path, damage, message: str) -> None:
    damage(bank)
    with pytest.raises(UserError, match=message):
        read_bank(bank)


def test_the_cli_refuses_a_bad_bank_in_one_line_with_status_2(bank: Path, tmp_path: Path, capsys) -> None:
    np.save(bank / "val" / "rec_logits.npy", np.zeros((N, T, C + 1), dtype=np.float32))
    argv = ["--dataset", "bank", "--data-root", str(bank), "--preset", "tiny", "--frames", str(T), "--device", "cpu",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "val/rec_logits.npy: shape" in err


def test_a_bank_without_motion_refuses_a_sampler_that_reads_it(bank: Path, tmp_path: Path, capsys) -> None:
    argv = ["--dataset", "bank", "--data-root", str(bank), "--preset", "tiny", "--frames", str(T), "--budget", "2",
            "--sampler", "uniform,mgsampler", "--device", "cpu", "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 2
    assert "--sampler mgsampler: reads per-frame motion, which the bank" in capsys.readouterr().err


def test_lenient_skips_an_unlabelled_validation_row_and_the_card_counts_the_rest(bank: Path) -> None:
    labels = np.load(bank / "val" / "labels.npy")
    labels[4] = 0
    np.save(bank / "val" / "labels.npy", labels)
    read = read_bank(bank, lenient=True)
    assert read.splits["val"].video_ids == ("v0", "v1", "v2", "v3", "v5")
    assert [reason for _, reason in read.skipped] == ["no label"]
    assert len(bank_index(read).split("val")) == len(read.splits["val"].video_ids) == N - 1
