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
