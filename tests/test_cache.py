from __future__ import annotations

import pytest
import torch

from samplerbench.cache import StageCache, atomic_write, stage_key
from samplerbench.config import SyntheticConfig


def test_stage_key_is_stable_and_sensitive():
    a = stage_key("decode", t=16, cfg=SyntheticConfig(), files=[("a", 1)])
    assert a == stage_key("decode", files=[("a", 1)], cfg=SyntheticConfig(), t=16)  # order-free
    assert a != stage_key("decode", t=8, cfg=SyntheticConfig(), files=[("a", 1)])
    assert a != stage_key("decode", t=16, cfg=SyntheticConfig(num_classes=3), files=[("a", 1)])
    assert a != stage_key("features", t=16, cfg=SyntheticConfig(), files=[("a", 1)])


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
