"""What a run prints: one summary line per pipeline stage, with its time and whether it came from the cache,
and progress bars for the long loops."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm

_BARS = contextvars.ContextVar("samplerbench_progress_bars", default=True)


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """Progress bars on or off inside the block: off for ``--quiet``, and on torchrun ranks other than 0,
    whose W copies of every bar would interleave."""
    token = _BARS.set(enabled)
    try:
        yield
    finally:
        _BARS.reset(token)


def progress(iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar that vanishes when done, unless :func:`progress_bars` turned them off. Plain ``tqdm``:
    ``tqdm.auto`` would start a DataLoader's workers twice."""
    return tqdm(iterable, leave=False, disable=not _BARS.get(), **kwargs)


def warn(line: str) -> None:
    """One ``warning:`` line on stderr, between the progress bars; printed even with ``--quiet``, because it
    says something about the results (a damaged cache entry, a degenerate dataset)."""
    tqdm.write(f"warning: {line}", file=sys.stderr)


@dataclasses.dataclass
class StageLog:
    """Collects ``(stage, seconds, cached)`` for ``run.json`` and prints a line as each stage ends."""

    records: list[dict] = dataclasses.field(default_factory=list)
    quiet: bool = False
    # stage name -> seconds it is expected to take (one "run" entry for a whole-run figure), or None for no
    # estimate; each line then says the time elapsed since the log began against the time expected in all,
    # updated as stages end (a stage that takes longer or shorter than expected moves it)
    expected: dict[str, float] | None = None
    began: float = dataclasses.field(default_factory=time.perf_counter)

    def expected_total(self) -> float:
        """Seconds since the log began plus what the stages not yet run are expected to take (a whole-run figure:
        what is left of it)."""
        elapsed = time.perf_counter() - self.began
        expected = self.expected or {}
        left = sum(v for k, v in expected.items() if k != "run")
        return elapsed + left + max(expected.get("run", 0.0) - elapsed, 0.0)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[dict]:
        """``with log.stage("decode/train") as st: ...; st["cached"] = True`` when the cache answered; a
        computed stage that set ``st["videos"]`` or ``st["frames"]`` is also recorded with its rate."""
        info = {"stage": name, "cached": False}
        start = time.perf_counter()
        yield info
        seconds = time.perf_counter() - start
        info["seconds"] = round(seconds, 3)
        rates = {unit: round(info[unit] / seconds, 1) for unit in ("videos", "frames") if unit in info and seconds}
        info.update({f"{unit}_per_s": rate for unit, rate in rates.items()})
        self.records.append(info)
        if self.expected is not None:
            self.expected.pop(name, None)
        if not self.quiet:
            origin = "cache" if info["cached"] else ", ".join(["computed", *(f"{r:,} {u}/s" for u, r in rates.items())])
            clock = (f"  [{clock_time(time.perf_counter() - self.began)} of ~{clock_time(self.expected_total())}]"
                     if self.expected is not None else "")
            tqdm.write(f"[{name:<28}] {info['seconds']:8.2f} s  ({origin}){clock}")


def clock_time(seconds: float) -> str:
    """``m:ss``."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
