"""``samplerbench compare DIR...``: mean ± std of several runs (seeds, machines) per sampler and budget.

Each DIR is a run folder holding ``summary.csv`` (``<out>/<dataset>/``). The table says how many runs
each cell aggregates and which seeds they came from, so a reader can tell a 3-seed mean from one run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from samplerbench.cache import atomic_write
from samplerbench.cli import ArgumentParser
from samplerbench.errors import UserError

METRICS = ("mAP", "top1", "salient_hit_rate", "gflops_per_video")
KEYS = ("dataset", "sampler", "frames_T", "budget_K")


def run_meta(folder: Path) -> dict:
    """A run's ``run.json`` (empty when the folder has none, e.g. a summary copied on its own)."""
    meta = folder / "run.json"
    if not meta.is_file():
        return {}
    try:
        values = json.loads(meta.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {meta}: {exc.strerror}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise UserError(f"{meta} is not a run's run.json: {' '.join(str(exc).split())}") from None
    if not isinstance(values, dict):
        raise UserError(f"{meta}: expected the JSON object a run writes")
    return values


def read_summary(path: Path) -> pd.DataFrame:
    """A run's ``summary.csv``, or a :class:`UserError` saying why the file is not one (not text, not a
    table, or without the columns and numbers ``compare`` aggregates)."""
    try:
        df = pd.read_csv(path)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:  # pandas' ParserError and EmptyDataError, UnicodeDecodeError
        raise UserError(f"{path} is not a summary table: {' '.join(str(exc).split())}") from None
    missing = [c for c in (*KEYS, *METRICS) if c not in df.columns]
    if missing:
        raise UserError(f"{path} is not a samplerbench summary.csv: no column(s) {', '.join(missing)}")
    text = [c for c in ("frames_T", "budget_K", *METRICS) if not pd.api.types.is_numeric_dtype(df[c])]
    if text:
        raise UserError(f"{path}: column(s) {', '.join(text)} hold text where numbers belong")
    return df


def load_runs(folders: list[Path]) -> pd.DataFrame:
    frames = []
    for folder in folders:
        summary = folder / "summary.csv"
        if not summary.is_file():
            raise UserError(f"{folder} is not a run folder: {summary} is missing")
        df = read_summary(summary)
        meta = run_meta(folder)
        df["seed"] = meta.get("seed")
        df["run"] = str(folder)
        df["made_by"] = (f"preset `{meta.get('preset', '?')}`, seed {meta.get('seed', '?')}, "
                         f"machine: {meta.get('machine', '?')}")
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def provenance(runs: pd.DataFrame) -> str:
    """One line per run: where it is and which preset, seed and machine made it, as far as run.json says."""
    return "\n".join(f"- {run}: {made_by}" for run, made_by in runs[["run", "made_by"]].drop_duplicates().values)


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, sampler, K): mean and sample std (ddof=1) of each metric, and the run count."""
    grouped = runs.groupby(list(KEYS), sort=False)
    out = grouped[list(METRICS)].agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out["runs"] = grouped.size()
    out["seeds"] = grouped["seed"].apply(lambda s: ",".join(str(x) for x in sorted(s.dropna().unique())))
    return out.reset_index()


def to_markdown(agg: pd.DataFrame) -> str:
    def pm(row, metric: str, digits: int = 1) -> str:
        std = row[f"{metric}_std"]
        return f"{row[f'{metric}_mean']:.{digits}f} ± {std:.{digits}f}" if pd.notna(std) else \
            f"{row[f'{metric}_mean']:.{digits}f}"

    table = [{"dataset": r["dataset"], "sampler": r["sampler"], "K": r["budget_K"], "mAP %": pm(r, "mAP"),
              "top-1 %": pm(r, "top1"), "salient-hit %": pm(r, "salient_hit_rate"),
              "GFLOPs/video": f"{r['gflops_per_video_mean']:.3f}", "runs": r["runs"], "seeds": r["seeds"]}
             for _, r in agg.iterrows()]
    return tabulate(table, headers="keys", tablefmt="github") + "\n"


def main(argv: list[str]) -> int:
    p = ArgumentParser(prog="samplerbench compare", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (each with summary.csv)")
    p.add_argument("--out", type=Path, default=None, help="also write OUT.md and OUT.csv")
    args = p.parse_args(argv)
    runs = load_runs(args.runs)
    agg = aggregate(runs)
    text = to_markdown(agg)
    print(text, end="")
    if args.out is not None:
        atomic_write(args.out.with_suffix(".md"), lambda tmp: tmp.write_text(
            "# Mean ± std over runs\n\nGenerated by `samplerbench compare` from these runs:\n\n"
            + provenance(runs) + "\n\n" + text))
        atomic_write(args.out.with_suffix(".csv"), lambda tmp: agg.to_csv(tmp, index=False, float_format="%.4f"))
    return 0
