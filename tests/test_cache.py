from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess

import pytest
import torch

from samplerbench.core.errors import UserError
from samplerbench.core.files import atomic_write
from samplerbench.datasets.synthetic import SyntheticConfig
from samplerbench.formats import cache
from samplerbench.formats.cache import StageCache, code_modules, source_hash, stage_key


def test_stage_key_is_stable_and_sensitive():
    a = stage_key("decode", t=16, cfg=SyntheticConfig(), files=[("a", 1)])
    assert a == stage_key("decode", files=[("a", 1)], cfg=SyntheticConfig(), t=16)  # order-free
    assert a != stage_key("decode", t=8, cfg=SyntheticConfig(), files=[("a", 1)])
    assert a != stage_key("decode", t=16, cfg=SyntheticConfig(num_classes=3), files=[("a", 1)])
    assert a != stage_key("features", t=16, cfg=SyntheticConfig(), files=[("a", 1)])


def _edited(monkeypatch, module: str) -> None:
    """Make ``module``'s source read as if a line had been added to it."""
    original = cache.module_source
    monkeypatch.setattr(cache, "module_source", lambda name: original(name) + ("\n# edited" if name == module else ""))


def test_source_hash_follows_the_code_a_stage_runs(monkeypatch):
    """Editing a sampler's loss changes its key alone; editing the shared training code changes every
    trainable sampler's and the frame classifiers'; a settings module changes none."""
    from samplerbench.recognizers import train
    from samplerbench.samplers import nsnet, scsampler, uniform

    stages = (nsnet, scsampler, uniform, train)
    before = [source_hash(m) for m in stages]
    assert before == [source_hash(m) for m in stages]  # stable
    for edited, changed in (("samplerbench.samplers.nsnet", {nsnet}), ("samplerbench.samplers.training",
                            {nsnet, scsampler}), ("samplerbench.core.sgd", {nsnet, scsampler, train}),
                            ("samplerbench.recognizers.backbones", {train}), ("samplerbench.config", set())):
        with monkeypatch.context() as m:
            _edited(m, edited)
            after = [source_hash(module) for module in stages]
        assert [a != b for a, b in zip(after, before, strict=True)] == [s in changed for s in stages], edited


def test_code_modules_reach_what_a_sampler_imports():
    from samplerbench.samplers import nsnet

    names = code_modules(nsnet)
    assert {"samplerbench.samplers.nsnet", "samplerbench.samplers.guiding", "samplerbench.samplers.training",
            "samplerbench.core.sgd"} <= set(names)
    assert "samplerbench.config" not in names and "samplerbench.samplers.uniform" not in names


def test_round_trip(tmp_path):
    cache = StageCache(tmp_path)
    assert cache.load("s", "k") is None
    value = {"x": torch.arange(3), "names": ["a", "b"], "n": 2.5}
    cache.save("s", "k", value)
    back = cache.load("s", "k")
    assert torch.equal(back["x"], value["x"]) and back["names"] == ["a", "b"] and back["n"] == 2.5


def test_interrupted_write_leaves_nothing_that_looks_complete(tmp_path):
    target = tmp_path / "stage" / "key.pt"

    def dies_halfway(tmp):
        tmp.write_bytes(b"half a tensor")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, dies_halfway)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    """mkstemp creates 0600; what lands under the final name has the mode of any new file of the user."""
    umask(mask)
    atomic_write(tmp_path / "a" / "table.md", lambda tmp: tmp.write_text("x"))
    StageCache(tmp_path / "cache").save("model", "k", {"w": torch.ones(2)})
    for path in (tmp_path / "a" / "table.md", tmp_path / "cache" / "model" / "k.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


@pytest.mark.parametrize(
    ("fault", "message"),
    [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system"),
     (errno.EACCES, "Permission denied")],
)
def test_environment_faults_are_one_line_and_keep_the_old_file(tmp_path, fault, message):
    target = tmp_path / "stage" / "key.pt"
    atomic_write(target, lambda tmp: tmp.write_bytes(b"finished"))

    def fails(tmp):
        tmp.write_bytes(b"half")
        raise OSError(fault, os.strerror(fault))

    with pytest.raises(UserError) as err:
        atomic_write(target, fails)
    text = str(err.value)
    assert f"cannot write {target}: {message};" in text and "\n" not in text
    assert target.read_bytes() == b"finished" and sorted(p.name for p in target.parent.iterdir()) == ["key.pt"]


def test_a_file_in_the_way_of_the_folder_is_named(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(UserError, match="a file stands where a folder is needed"):
        atomic_write(tmp_path / "out" / "x" / "main.md", lambda tmp: tmp.write_text("x"))


def test_other_os_errors_keep_their_traceback(tmp_path):
    def fails(tmp):
        raise OSError(errno.EBADF, "Bad file descriptor")  # a bug, not the environment

    with pytest.raises(OSError, match="Bad file descriptor"):
        atomic_write(tmp_path / "x", fails)


@pytest.fixture
def small_filesystem(tmp_path):
    """A 256 kB tmpfs, where the machine lets this process mount one (root in a container); else skipped."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small filesystem needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_named_not_unexpected_pos(small_filesystem):
    """On a real full filesystem torch.save to a path says "unexpected pos N vs M"; the cache says ENOSPC."""
    cache = StageCache(small_filesystem)
    cache.save("decode", "small", torch.zeros(1000))
    with pytest.raises(UserError) as err:
        cache.save("decode", "big", torch.zeros(1_000_000))
    assert f"cannot write {cache.path('decode', 'big')}: No space left on device;" in str(err.value)
    assert torch.equal(cache.load("decode", "small"), torch.zeros(1000))  # finished work is kept
    assert sorted(p.name for p in (small_filesystem / "decode").iterdir()) == ["small.pt"]  # no temporary left
