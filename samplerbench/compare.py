"""``samplerbench compare DIR...``: mean ± std of several runs (seeds, machines) per sampler and budget.

Each DIR is a run folder holding ``summary.csv`` (``<out>/<dataset>/``). The table says how many runs
each cell aggregates and which seeds they came from, so a reader can tell a 3-seed mean from one run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from samplerbench.cache import atomic_write
from samplerbench.errors import UserError

METRICS = ("mAP", "top1", "salient_hit_rate", "gflops_per_video")


def load_runs(folders: list[Path]) -> pd.DataFrame:
    frames = []
    for folder in folders:
        summary = folder / "summary.csv"
        if not summary.is_file():
            raise UserError(f"{folder} is not a run folder: {summary} is missing")
        df = pd.read_csv(summary)
        meta = folder / "run.json"
        df["seed"] = json.loads(meta.read_text())["seed"] if meta.is_file() else None
        df["run"] = str(folder)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, sampler, K): mean and sample std (ddof=1) of each metric, and the run count."""
    keys = ["dataset", "sampler", "frames_T", "budget_K"]
    grouped = runs.groupby(keys, sort=False)
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
    p = argparse.ArgumentParser(prog="samplerbench compare", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (each with summary.csv)")
    p.add_argument("--out", type=Path, default=None, help="also write OUT.md and OUT.csv")
    args = p.parse_args(argv)
    agg = aggregate(load_runs(args.runs))
    text = to_markdown(agg)
    print(text, end="")
    if args.out is not None:
        atomic_write(args.out.with_suffix(".md"), lambda tmp: tmp.write_text(
            "# Mean ± std over runs\n\nRuns: " + ", ".join(str(r) for r in args.runs) + "\n\n" + text))
        atomic_write(args.out.with_suffix(".csv"), lambda tmp: agg.to_csv(tmp, index=False, float_format="%.4f"))
    return 0
