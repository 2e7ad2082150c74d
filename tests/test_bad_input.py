"""Bad input and a hostile environment, one class of case per row: each ends with exit status 2, exactly one
line on stderr, no traceback, and every file that existed before (earlier results, the cache) unchanged.

The cases run ``samplerbench.cli.main`` in-process (milliseconds each); one row goes through ``bench.py`` in
a subprocess, to cover the real entry point.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision
from runconfigs import MICRO

from samplerbench import cli
from samplerbench.cli import main
from samplerbench.core import errors, files
from samplerbench.formats import cache, store
from samplerbench.formats.store import FrameStore
from samplerbench.stages import preflight

ROOT = Path(__file__).resolve().parents[1]


def write(name: str, content: str | bytes) -> Callable[[Path], list[str]]:
    """A setup that writes ``tmp/name`` and passes its path where the argv says ``{file}``."""
    def setup(tmp: Path) -> list[str]:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return [str(path)]

    return setup


def config(name: str, content: str | bytes) -> Callable[[Path], list[str]]:
    return lambda tmp: ["--config", *write(name, content)(tmp)]


def run_folder(summary: bytes, run_json: str = '{"seed": 0}') -> Callable[[Path], list[str]]:
    """A ``compare`` argument: a run folder with the given ``summary.csv`` and ``run.json``."""
    def setup(tmp: Path) -> list[str]:
        folder = tmp / "run"
        write("run/summary.csv", summary)(tmp)
        write("run/run.json", run_json)(tmp)
        return [str(folder)]

    return setup


def frame_list(frames: int, says: int) -> Callable[[Path], list[str]]:
    """A ``--dataset list`` root whose one training line is a frame folder of ``frames`` files that ``says``
    it has that many."""
    def setup(tmp: Path) -> list[str]:
        for i in range(frames):
            write(f"frames/clips/a/img_{i + 1:05d}.jpg", b"jpeg")(tmp)
        write("frames/train_list.txt", f"clips/a {says} 0\n")(tmp)
        write("frames/val_list.txt", "")(tmp)
        return [str(tmp / "frames")]

    return setup


def read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe file of the output check fails as on a read-only mount (root ignores permission bits)."""
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(preflight.tempfile, "TemporaryFile", refuse)


def folder(name: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        (tmp / name).mkdir(parents=True)
        return [str(tmp / name)]

    return setup


def fifo(name: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        os.mkfifo(tmp / name)
        return [str(tmp / name)]

    return setup


def saved(name: str, value: Callable[[], object]) -> Callable[[Path], list[str]]:
    """A setup that ``torch.save``s ``value()`` as ``tmp/name``."""
    def setup(tmp: Path) -> list[str]:
        torch.save(value(), tmp / name)
        return [str(tmp / name)]

    return setup


def long_name(tmp: Path) -> list[str]:
    return [str(tmp / ("x" * 300))]


def symlink_loop(tmp: Path) -> list[str]:
    os.symlink(tmp / "loop", tmp / "loop")
    return [str(tmp / "loop")]


WEIGHTS = ["--preset", "tiny", "--weights", "fem={file}"]
SELECT = ["select", "-k", "2", "--checkpoint", "{file}", "v.mp4"]
GOOD_SUMMARY = (b"dataset,sampler,frames_T,budget_K,mAP,top1,salient_hit_rate,gflops_per_video\n"
                b"synthetic,uniform,8,2,50,40,30,1\n")

# (id, argv before the --out/--cache-dir flags, setup returning extra argv, fault injector, message)
CASES = [
    ("negative seed", ["--seed", "-1"], None, None, "seed = -1: must be at least 0"),
    ("seed too large", ["--seed", str(2**32)], None, None, "at most 4294967295"),
    ("empty budget list", ["--budget", ",,"], None, None, "argument --budget: expected comma-separated integers"),
    ("budget not a number", ["--budget", "2,x"], None, None, "expected comma-separated integers, got '2,x'"),
    ("empty sampler list", ["--sampler", ","], None, None, "argument --sampler: expected comma-separated names"),
    ("unknown device", ["--device", "nonsense"], None, None, "--device 'nonsense': expected cpu, cuda, cuda:N"),
    ("unknown preset", ["--preset", "huge"], None, None, "invalid choice: 'huge'"),
    ("workers zero", ["--workers", "0"], None, None, "workers = 0: must be at least 1"),
    ("frames beyond memory", ["--frames", "1000000"], None, None, "--frames 1000000: the per-frame features"),
    ("budget beyond memory", ["--frames", "1000000", "--budget", "4,999999"], None, None, "at most --frames"),
    ("malformed YAML", [], config("c.yaml", "frames: [1,\nseed: 2\n"), None, "not valid YAML"),
    ("YAML of the wrong shape", [], config("c.yaml", "- 1\n- 2\n"), None, "expected a table of settings"),
    ("JSON list", [], config("c.json", "[1, 2]"), None, "expected a table of settings"),
    ("binary config", [], config("c.toml", bytes(range(256))), None, "not valid TOML"),
    ("frames a string", [], config("c.toml", 'frames = "x"'), None, "frames = 'x': expected an integer"),
    ("budgets a number", [], config("c.toml", "budgets = 3"), None, "budgets = 3: expected a list, each an integer"),
    ("seed a fraction", [], config("c.toml", "seed = 1.5"), None, "seed = 1.5: expected an integer"),
    ("seed a boolean", [], config("c.yaml", "seed: true"), None, "seed = True: expected an integer"),
    ("nested type", [], config("c.toml", "[recognizer]\nepochs = \"3\""), None, "recognizer.epochs = '3': expected"),
    ("nested range", [], config("c.toml", "[fem]\nbatch = 0"), None, "fem.batch = 0: must be at least 1"),
    ("dataset option type", [], config("c.toml", "[synthetic]\nnum_classes = \"3\""), None,
     "c.toml: data.options.synthetic.num_classes = '3': expected an integer"),
    ("dataset option range", [], config("c.toml", "[synthetic]\nnum_classes = 0"), None, "num_classes = 0: must be at"),
    ("learning rate zero", [], config("c.toml", "rec_lr = 0"), None, "recognizer.lr = 0.0: must be above 0"),
    ("output setting type", [], config("c.toml", "quiet = 1"), None, "quiet = 1: expected true or false"),
    ("unknown backbone", [], config("c.toml", 'rec_arch = "resnet9000"'), None, "unknown backbone 'resnet9000'"),
    ("unknown sampler in file", [], config("c.yaml", "samplers: [nope]"), None, "unknown sampler 'nope'"),
    ("crop beyond resize", [], config("c.toml", "rec_res = 80"), None, "centre crop cannot exceed"),
    ("frame folder short of its line", ["--dataset", "list", "--data-root", "{file}"], frame_list(2, 3), None,
     "train_list.txt:1: frame folder"),
    ("template without a field", ["--dataset", "list", "--data-root", "{file}", "--filename-tmpl", "img.jpg"],
     frame_list(3, 3), None, "--filename-tmpl 'img.jpg': expected one integer field"),
    ("out is a file", ["--out", "{file}"], write("results", "a file"), None, "--out: cannot write"),
    ("out read-only", [], None, read_only, "--out: cannot write"),
    ("cache-dir is a file", ["--cache-dir", "{file}"], write("cachefile", "x"), None, "--cache-dir: cannot write"),
    ("compare: binary summary", ["compare"], run_folder(bytes(range(256)) * 8), None, "is not a summary table"),
    ("compare: foreign CSV", ["compare"], run_folder(b"a,b\n1,2\n"), None, "no column(s) dataset, sampler"),
    ("compare: text metrics", ["compare"], run_folder(GOOD_SUMMARY.replace(b",50,", b",high,")), None,
     "column(s) mAP hold text"),
    ("compare: broken run.json", ["compare"], run_folder(GOOD_SUMMARY, "{"), None, "is not a run's run.json"),
    ("compare: no run folder", ["compare", "--out", "x"], None, None, "the following arguments are required: runs"),
    # every file a run will load is checked before its first stage, and said truly what it is
    ("weights: a text file", WEIGHTS, write("w.txt", "hello\nweights\n"), None, "w.txt is not a PyTorch checkpoint"),
    ("weights: a directory", WEIGHTS, folder("w"), None, "weights file {tmp}/w is a directory, not a file"),
    ("weights: a FIFO", WEIGHTS, fifo("w.fifo"), None, "w.fifo is not a regular file (a FIFO, socket or device)"),
    ("weights: a pickled module", WEIGHTS, saved("w.pt", lambda: torch.nn.Linear(2, 2)), None,
     "w.pt holds Python objects besides tensors (torch.nn.modules.linear.Linear)"),
    ("weights: no tensor", WEIGHTS, saved("w.pt", lambda: {"epoch": 3}), None, "holds a dict without tensors"),
    ("weights: another architecture", WEIGHTS, saved("w.pt", lambda: torchvision.models.resnet18().state_dict()),
     None, "w.pt has no tensor that fits mobilenet_v2"),
    ("weights: an incomplete body", WEIGHTS, saved("w.pt", lambda: dict(list(
        torchvision.models.mobilenet_v2().state_dict().items())[:50])), None, "tensors of mobilenet_v2's body"),
    ("select: checkpoint a directory", SELECT, folder("ck"), None, "checkpoint {tmp}/ck is a directory, not a file"),
    ("select: checkpoint a text file", SELECT, write("ck.pt", "text"), None, "ck.pt is not a PyTorch checkpoint"),
    # environment faults of each errno kind: one line naming the path and the remedy
    ("out name too long", ["--out", "{file}"], long_name, None, "File name too long; a name on that path is longer"),
    ("cache under a pseudo-filesystem", ["--cache-dir", "/proc/sys/kernel/samplerbench"], None, None,
     "cannot write /proc/sys/kernel/samplerbench: No such file or directory; a folder on that path does not exist"),
    ("out a symbolic-link loop", ["--out", "{file}"], symlink_loop, None, "a symbolic link on that path leads back"),
    ("preview: no frames", ["preview", "{file}", "--frames", "0"], lambda tmp: [str(tmp / "p.png")], None,
     "argument --frames: 0: must be at least 1"),
    ("select: budget not a number", ["select", "--checkpoint", "x.pt", "-k", "two", "v.mp4"], None, None,
     "argument -k/--budget: invalid int value: 'two'"),
]


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Earlier results and a cache entry, which no failed command may touch."""
    (tmp_path / "out" / "synthetic").mkdir(parents=True)
    (tmp_path / "out" / "synthetic" / "main.md").write_text("earlier results\n")
    (tmp_path / "cache" / "stages" / "model").mkdir(parents=True)
    (tmp_path / "cache" / "stages" / "model" / "k.pt").write_bytes(b"an entry")
    return tmp_path


@pytest.mark.parametrize(("argv", "setup", "fault", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_loses_nothing(workspace, capsys, monkeypatch, argv, setup, fault, message):
    extra = setup(workspace) if setup else []
    if any("{file}" in a for a in argv):
        file = extra.pop()
        argv = [a.replace("{file}", file) for a in argv]
    before = snapshot(workspace)
    if fault:
        fault(monkeypatch)
    if argv[:1] in (["compare"], ["select"], ["preview"]):
        full = [*argv, *extra]
    else:
        full = ["--out", str(workspace / "out"), "--cache-dir", str(workspace / "cache"), "--device", "cpu",
                *argv, *extra]
    status = main(full)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("samplerbench: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message.format(tmp=workspace) in err, err
    after = snapshot(workspace)
    assert not [p for p in after if p not in before and "cache" in p.parts], "a stage ran before the check"
    assert {p: b for p, b in after.items() if p in before} == before  # nothing lost or changed


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    assert "samplerbench compare DIR..." in out and "samplerbench select --checkpoint" in out


def test_the_real_entry_point_prints_one_line(tmp_path):
    done = subprocess.run([sys.executable, "bench.py", "--seed", "-1", "--out", str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "seed = -1" in done.stderr, done.stderr




@pytest.mark.slow
def test_a_disk_that_fills_mid_run_is_named_and_loses_nothing(workspace, capsys, monkeypatch):
    """The disk fills while the recognizer is saved: one line naming the entry and the remedy, exit 2, the
    frame store already written intact, the earlier results untouched, no temporary file left."""
    (workspace / "run.toml").write_text(MICRO)
    save = cache.torch.save

    def full_disk_for_models(value, f, *args, **kwargs):
        if "/model/" in f.name:
            f.write(b"half an entry")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        save(value, f, *args, **kwargs)

    monkeypatch.setattr(cache.torch, "save", full_disk_for_models)
    before = snapshot(workspace)
    status = main(["--preset", "tiny", "--config", str(workspace / "run.toml"), "--device", "cpu", "--quiet",
                   "--out", str(workspace / "out"), "--cache-dir", str(workspace / "cache")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"cannot write {workspace / 'cache' / 'stages' / 'model'}" in err and "No space left on device" in err
    assert "free some space there" in err
    after = snapshot(workspace)
    assert {p: b for p, b in after.items() if p in before} == before
    decoded = list((workspace / "cache" / "frames").iterdir())
    assert len(decoded) == 2 and all(len(FrameStore(p)) and not store.verify(p) for p in decoded)
    assert not [p for p in after if p.name.endswith(".tmp")]


@pytest.mark.parametrize("code", sorted(errors._REMEDIES), ids=lambda c: errno.errorcode[c])
def test_every_environment_fault_is_one_line_naming_path_and_remedy(code):
    error = errors.environment_error(OSError(code, os.strerror(code)), "/some/where")
    assert isinstance(error, errors.UserError)
    text = str(error)
    assert "\n" not in text and text.startswith(f"cannot write /some/where: {os.strerror(code)}; "), text
    assert errors._REMEDIES[code] in text


def test_sigterm_ends_like_ctrl_c(workspace, capsys, monkeypatch):
    """A run sent SIGTERM says so in one line, exits 128+15, and leaves no temporary file."""
    def run_until_terminated(args) -> int:
        def write(tmp: Path) -> None:
            tmp.write_text("half a table")
            os.kill(os.getpid(), signal.SIGTERM)

        files.atomic_write(workspace / "out" / "synthetic" / "main.md", write)
        return 0

    monkeypatch.setattr(cli.COMMANDS["run"], "command", run_until_terminated)
    before = snapshot(workspace)
    assert cli.main(["--out", str(workspace / "out"), "--cache-dir", str(workspace / "cache")]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert err == "samplerbench: terminated (SIGTERM); completed stages are cached and a re-run resumes from them\n"
    assert snapshot(workspace) == before  # the earlier main.md kept, no temporary file left
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
