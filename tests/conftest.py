"""Shared fixtures. Every test writes into its own tmp folders; nothing touches ~/.cache or results/."""

from __future__ import annotations

import os

import pytest
import torch

# Two cores on the reference machine: keep torch from oversubscribing them when pytest runs in parallel.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture(scope="module")
def one_thread():
    """For modules of tiny networks (``pytestmark = pytest.mark.usefixtures("one_thread")``): on a shared
    2-core machine intra-op threads only add synchronisation (35x slower under load), so such a module runs
    single-threaded and restores the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
