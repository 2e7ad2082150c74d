"""The memo and the stage cache behind every stage of a run: :meth:`Stages.cached` computes a stage once (per
process, and across runs through the :class:`~samplerbench.formats.cache.StageCache`), with one stage line each.
Under torchrun every rank runs the same stages in the same order and only rank 0 writes the cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from samplerbench.config import RunConfig
from samplerbench.core import distributed
from samplerbench.core.errors import UserError
from samplerbench.core.stagelog import StageLog
from samplerbench.formats.cache import StageCache


class Stages:
    """A run's config, its stage cache under ``cache_dir`` and its stage log."""

    def __init__(self, cfg: RunConfig, *, cache_dir: Path, log: StageLog) -> None:
        self.cfg = cfg
        self.cache_dir = Path(cache_dir)
        self.cache = StageCache(self.cache_dir / "stages")
        self.log = log
        self._memo: dict[tuple, object] = {}

    def once(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """``compute()``, once per ``key`` in this process."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def cached(self, label: str, stage: str, key: str, compute: Callable[[], Any], *,
               work: dict[str, int] | Callable[[Any], dict[str, int]] | None = None,
               summary: Callable[[Any], dict] | None = None) -> Any:
        """Entry ``key`` of the cache's ``stage``, else ``compute()`` saved there; one stage line ``label`` with the
        rate of ``work`` when it ran, and ``summary(value)`` in the stage's run.json record.

        Under torchrun rank 0 decides hit or miss for every rank (a rank loading while another computes would hang
        in the collectives); ``compute`` runs on every rank and must return the same value. An entry that does not
        load is a miss (:meth:`StageCache.load`)."""
        path = self.cache.path(stage, key)
        with self.log.stage(label) as st:
            value = self.cache.load(stage, key) if distributed.is_main() else None
            st["cached"] = distributed.broadcast(value is not None)
            if not st["cached"]:
                value = compute()
                st.update((work(value) if callable(work) else work) or {})
                if distributed.is_main():
                    self.cache.save(stage, key, value)
            else:
                if not distributed.is_main():
                    value = self.cache.load(stage, key, heal=False)
                if value is None:
                    raise UserError(f"rank {distributed.rank()} cannot load {path}, which rank 0 loaded: with "
                                    f"several nodes, --cache-dir must be on a filesystem that all of them share")
            st.update(summary(value) if summary else {})
            return value

