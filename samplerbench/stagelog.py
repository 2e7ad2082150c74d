"""One summary line per pipeline stage, with its time and whether it came from the cache."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator

from tqdm.auto import tqdm


@dataclasses.dataclass
class StageLog:
    """Collects ``(stage, seconds, cached)`` for ``run.json`` and prints a line as each stage ends."""

    records: list[dict] = dataclasses.field(default_factory=list)
    quiet: bool = False

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[dict]:
        """``with log.stage("decode/train") as st: ...; st["cached"] = True`` when the cache answered."""
        info = {"stage": name, "cached": False}
        start = time.perf_counter()
        yield info
        info["seconds"] = round(time.perf_counter() - start, 3)
        self.records.append(info)
        if not self.quiet:
            origin = "cache" if info["cached"] else "computed"
            tqdm.write(f"[{name:<28}] {info['seconds']:8.2f} s  ({origin})")
