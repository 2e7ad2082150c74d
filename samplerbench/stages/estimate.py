"""How long a run will take, said before its first stage: from the stage times this machine measured on earlier
runs of the same setting (kept in the cache folder, ``timings.json``), else from the preset's reference figures.

A setting is the run's config less its seed (which changes no cost); a run of the same setting *and* seed on the
same source code finds every stage in the cache, so it is expected to take what its stages took when they were
read from the cache. The figures are per machine (its name, as the tables state it)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import samplerbench
import samplerbench.datasets
import samplerbench.recognizers
import samplerbench.samplers
from samplerbench.config import RunConfig
from samplerbench.core.files import atomic_write
from samplerbench.formats.cache import stage_key

HISTORY_FILE = "timings.json"
# The whole default and tiny runs on the synthetic dataset, on the reference machine (2 CPU cores, docs/performance.md,
# "Whole runs and the test suite"): from an empty cache, and again with every stage cached.
REFERENCE_SECONDS = {"default": {"computed": 595.0, "cached": 12.0}, "tiny": {"computed": 27.0, "cached": 5.0}}
REFERENCE_MACHINE = "the reference machine (2 CPU cores)"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Estimate:
    """What a run is expected to take: ``stages`` maps a stage name to its expected seconds (one entry ``"run"``
    when only a whole-run figure is known), ``source`` says where the figures come from."""

    stages: dict[str, float]
    source: str

    @property
    def total(self) -> float:
        return sum(self.stages.values())


def source_fingerprint() -> str:
    """A hash of the installed package's Python source: a change to it may invalidate cached stages."""
    digest = hashlib.sha256()
    for package in (samplerbench, samplerbench.samplers, samplerbench.recognizers, samplerbench.datasets):
        for path in sorted(Path(package.__path__[0]).glob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def setting_key(cfg: RunConfig) -> str:
    """The run's config less what changes no cost (seed, whether to re-time)."""
    return stage_key("setting", config=dataclasses.replace(cfg, seed=0, remeasure=False))


def run_key(cfg: RunConfig, source: str) -> str:
    """The config and the source: an equal key means every stage of the run is in the cache already."""
    return stage_key("run", config=dataclasses.replace(cfg, remeasure=False), source=source)


def _history(cache_dir: Path) -> dict:
    try:
        return json.loads((Path(cache_dir) / HISTORY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: no estimate from it (rewritten at the end of the run)


def estimate(cfg: RunConfig, *, cache_dir: Path, machine: str, source: str) -> Estimate | None:
    """The expected stage times of ``cfg`` on ``machine``; ``None`` when neither this machine nor the preset's
    reference has a figure for this setting."""
    seen = _history(cache_dir).get(machine, {}).get(setting_key(cfg))
    reference = REFERENCE_SECONDS.get(cfg.preset) if cfg.data.dataset == "synthetic" else None
    if seen and run_key(cfg, source) in seen["completed"]:  # every stage is in the cache
        if seen["cached"]:
            return Estimate(stages=dict(seen["cached"]), source="this machine's last run of it from the cache")
        if reference:
            return Estimate(stages={"run": reference["cached"]},
                            source=f"the {cfg.preset} preset's re-run on {REFERENCE_MACHINE}")
    if seen:
        return Estimate(stages=dict(seen["computed"]), source="this machine's stage times for this setting")
    if reference is None:
        return None
    return Estimate(stages={"run": reference["computed"]}, source=f"the {cfg.preset} preset on {REFERENCE_MACHINE}")


def record(cfg: RunConfig, *, cache_dir: Path, machine: str, source: str, stages: list[dict]) -> None:
    """Add a completed run's stage times (``StageLog.records``) to ``cache_dir``'s history: for a run of this config
    and source that completed before (so read from the cache), its stage times as the re-run's; else, per stage
    name, the seconds of the latest run that computed it (or read it from the cache, if none did)."""
    history = _history(cache_dir)
    seen = history.setdefault(machine, {}).setdefault(setting_key(cfg), {"computed": {}, "cached": {}, "completed": []})
    took = {True: {}, False: {}}
    for s in stages:
        took[s["cached"]][s["stage"]] = took[s["cached"]].get(s["stage"], 0.0) + s["seconds"]
    key = run_key(cfg, source)
    if key in seen["completed"]:
        seen["cached"] = {name: took[True].get(name, 0.0) + took[False].get(name, 0.0)
                          for name in took[True] | took[False]}
    else:
        seen["computed"].update(took[False])
        for name, seconds in took[True].items():
            seen["computed"].setdefault(name, seconds)
    seen["completed"] = [*[k for k in seen["completed"] if k != key][-19:], key]
    text = json.dumps(history, indent=1, sort_keys=True)
    atomic_write(Path(cache_dir) / HISTORY_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def minutes(seconds: float) -> str:
    """``1 min 05 s`` or ``42 s``."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"{whole} s"
