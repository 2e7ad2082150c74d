"""Mean ± std of several runs (seeds, machines) per sampler and budget: ``samplerbench compare DIR...``.

Each run is a folder holding ``summary.csv``; cells say how many runs and which seeds they aggregate. Only
runs of one identity (:func:`identity`: every setting in run.json but the seed, plus the code that made the
numbers) are averaged; several identities are refused naming the setting that differs, or with ``separate``
tabulated apart. One run given twice, or two runs of one identity and seed, are refused: they are not seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from samplerbench.config import SMOKE_TEST_PRESETS, run_config
from samplerbench.core.errors import UserError
from samplerbench.core.files import atomic_write
from samplerbench.evaluation.result import COLUMN
from samplerbench.report.write import SMOKE_TEST_NOTE

# summary.csv's columns that compare reads, named by the main table's row type (evaluation.result.MainRow)
METRICS = (COLUMN.mAP, COLUMN.top1, COLUMN.salient_hit_rate, COLUMN.gflops_per_video)
KEYS = (COLUMN.dataset, COLUMN.sampler, COLUMN.frames_T, COLUMN.budget_K)
# An adaptive sampler's operating point: rows average over runs only at the same knob value (empty for fixed-K rows,
# and in summaries written before adaptive samplers existed)
POINT = (COLUMN.knob, COLUMN.knob_value)
SETTING = ("preset", COLUMN.dataset, COLUMN.frames_T, "budgets")  # the part of a run's identity every heading names
# Settings that change no number compare averages: where the run ran and how fast (device, processes, workers,
# timing), which samplers and tables it wrote, how its intervals were drawn. The seed is what runs vary.
NOT_IDENTITY = ("seed", "device", "workers", "remeasure", "report", "cost", "sampling.samplers")
# The identity's entries that SETTING shows already
SHOWN = ("preset", "data.dataset", "data.frames", "sampling.budgets")


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
    text = [c for c in (COLUMN.frames_T, COLUMN.budget_K, *METRICS) if not pd.api.types.is_numeric_dtype(df[c])]
    if text:
        raise UserError(f"{path}: column(s) {', '.join(text)} hold text where numbers belong")
    return df.assign(**{c: float("nan") for c in POINT if c not in df.columns})


def k_set(meta: dict, summary: pd.DataFrame) -> str:
    """A run's budgets, ``"1,2,4,8"``: run.json's ``config.sampling.budgets`` (``config.budgets`` in a flat
    run.json), else (a summary copied on its own) every K of the summary, dense's K = T included."""
    sampling = (run_config(meta["config"]) if isinstance(meta.get("config"), dict) else {}).get("sampling")
    budgets = sampling.get("budgets") if isinstance(sampling, dict) else None
    if not (isinstance(budgets, list) and budgets and all(isinstance(k, int) for k in budgets)):
        budgets = summary[COLUMN.budget_K].tolist()
    return ",".join(str(k) for k in sorted(set(budgets)))


def _flatten(values: dict, prefix: str = "") -> dict[str, object]:
    """Nested settings as dotted path -> value; an empty table (no sampler options) leaves no entry."""
    out: dict[str, object] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def identity(meta: dict) -> dict[str, str]:
    """Every setting of a run but those of :data:`NOT_IDENTITY`, as dotted path -> JSON value, its weights files by
    content (run.json's ``weights`` digests, where recorded) and ``code`` (run.json's digest of the code that
    computed the numbers; ``"?"`` for runs written before it was recorded). Runs average only with runs of the
    same identity."""
    config = run_config(meta["config"]) if isinstance(meta.get("config"), dict) else {}
    flat = {path: json.dumps(value, sort_keys=True) for path, value in _flatten(config).items()
            if not any(path == skip or path.startswith(f"{skip}.") for skip in NOT_IDENTITY)}
    weights = meta.get("weights") if isinstance(meta.get("weights"), dict) else {}
    flat.update({f"{role}.weights": json.dumps(digest) for role, digest in weights.items()})  # content, not path
    return {**flat, "code": str(meta.get("code", "?"))} if meta else flat


def check_distinct(folders: list[Path], metas: list[dict]) -> None:
    """A :class:`UserError` when one folder is given twice, or two folders hold one run (same identity and
    seed): averaging them would count one result as two seeds."""
    seen: dict[object, Path] = {}
    for folder, meta in zip(folders, metas, strict=True):
        where = folder.resolve()
        if where in seen:
            spelled = f" (also as {seen[where]})" if str(seen[where]) != str(folder) else ""
            raise UserError(f"{folder} is given twice{spelled}; each run counts once: give it once")
        seen[where] = folder
        if meta.get("seed") is not None:
            same = ("seed", meta["seed"], json.dumps(identity(meta), sort_keys=True))
            if same in seen:
                raise UserError(f"{seen[same]} and {folder} are both seed {meta['seed']} of one setting, the same "
                                "run twice rather than two seeds; give one of them")
            seen[same] = folder


def load_runs(folders: list[Path]) -> pd.DataFrame:
    frames, metas = [], []
    for folder in folders:
        summary = folder / "summary.csv"
        if not summary.is_file():
            raise UserError(f"{folder} is not a run folder: {summary} is missing")
        df = read_summary(summary)
        meta = run_meta(folder)
        metas.append(meta)
        df["identity"] = json.dumps(identity(meta), sort_keys=True)
        df["seed"] = meta.get("seed")
        df["preset"] = str(meta.get("preset", "?"))
        df["budgets"] = k_set(meta, df)
        df["run"] = str(folder)
        df["made_by"] = (f"preset `{meta.get('preset', '?')}`, seed {meta.get('seed', '?')}, "
                         f"machine: {meta.get('machine', '?')}")
        frames.append(df)
    check_distinct(folders, metas)
    runs = pd.concat(frames, ignore_index=True)
    runs["setting"] = describe_settings(runs)
    return runs


def describe_settings(runs: pd.DataFrame, *, most: int = 4) -> pd.Series:
    """Each row's setting in words: ``preset `default`, dataset synthetic, T=16, K=1,2,4,8``, then the identity
    entries in which the runs' identities differ (``sampling.aggregation="max_features"``; ``—`` where a run
    has no such entry), at most ``most`` of them."""
    ids = {text: json.loads(text) for text in runs["identity"].unique()}
    keys = sorted({k for ident in ids.values() for k in ident} - set(SHOWN))
    differ = [k for k in keys if len({ident.get(k) for ident in ids.values()}) > 1]

    def words(row) -> str:
        ident = ids[row["identity"]]
        extra = [f"{k}={ident.get(k, '—')}" for k in differ[:most]]
        extra += [f"and {len(differ) - most} more"] if len(differ) > most else []
        return ", ".join([f"preset `{row['preset']}`, dataset {row[COLUMN.dataset]}, T={row[COLUMN.frames_T]}, "
                          f"K={row['budgets']}", *extra])

    return runs.apply(words, axis=1)


def settings(runs: pd.DataFrame) -> dict[str, list[str]]:
    """Each setting (:func:`describe_settings`) among ``runs`` -> the run folders of it, in the order given."""
    out: dict[str, list[str]] = {}
    for run, setting in runs[["run", "setting"]].drop_duplicates().itertuples(index=False):
        out.setdefault(setting, []).append(run)
    return out


def check_one_setting(runs: pd.DataFrame) -> None:
    """A :class:`UserError` naming two runs of different settings, when ``runs`` hold more than one."""
    found = list(settings(runs).items())
    if len(found) > 1:
        (first, [a, *_]), (second, [b, *_]) = found[:2]
        raise UserError(f"runs of different settings cannot be averaged: {a} is {first}, but {b} is {second}; "
                        "compare the runs of one setting, or pass --separate for a table per setting")


def provenance(runs: pd.DataFrame) -> str:
    """One line per run: where it is and which preset, seed and machine made it, as far as run.json says."""
    return "\n".join(f"- {run}: {made_by}" for run, made_by in runs[["run", "made_by"]].drop_duplicates().values)


def paired_to_uniform(runs: pd.DataFrame) -> pd.Series:
    """Each row's mAP minus uniform's in the same run at the same K (NaN where the run has no uniform row): across
    seeds the data and backbones change and every sampler moves with them, so this paired difference varies far
    less between seeds than the mAP itself."""
    uniform = runs[runs[COLUMN.sampler] == "uniform"].set_index(["run", COLUMN.budget_K])[COLUMN.mAP]
    keys = pd.MultiIndex.from_frame(runs[["run", COLUMN.budget_K]])
    return runs[COLUMN.mAP] - uniform.reindex(keys).to_numpy()


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per setting, sampler, operating point (:data:`POINT`) and K: mean and sample std (ddof=1) of each
    metric and of the per-run difference to uniform (:func:`paired_to_uniform`), and the run count. An adaptive
    sampler's row at K in one run may be another knob value than in the next: those are separate rows, each with
    its own count of runs, never averaged into one."""
    runs = runs.assign(**{COLUMN.dmAP_vs_uniform: paired_to_uniform(runs)})
    grouped = runs.groupby(["setting", *SETTING, COLUMN.sampler, *POINT, COLUMN.budget_K], sort=False, dropna=False)
    out = grouped[[*METRICS, COLUMN.dmAP_vs_uniform]].agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out["runs"] = grouped.size()
    out["seeds"] = grouped["seed"].apply(lambda s: ",".join(str(x) for x in sorted(s.dropna().unique())))
    return out.reset_index()


def point_name(row: pd.Series) -> str:
    """A row's sampler, with its knob value for an adaptive sampler's: ``frameexit (exit_threshold=0.5)``."""
    if pd.isna(row[COLUMN.knob]):
        return row[COLUMN.sampler]
    return f"{row[COLUMN.sampler]} ({row[COLUMN.knob]}={row[COLUMN.knob_value]:g})"


def table_markdown(agg: pd.DataFrame) -> str:
    def pm(row, metric: str, digits: int = 1) -> str:
        std = row[f"{metric}_std"]
        return f"{row[f'{metric}_mean']:.{digits}f} ± {std:.{digits}f}" if pd.notna(std) else \
            f"{row[f'{metric}_mean']:.{digits}f}"

    delta = COLUMN.dmAP_vs_uniform
    table = [{"dataset": r[COLUMN.dataset], "sampler": point_name(r), "K": r[COLUMN.budget_K],
              "mAP %": pm(r, COLUMN.mAP),
              "ΔmAP vs uniform, per run": pm(r, delta) if pd.notna(r[f"{delta}_mean"]) else "",
              "top-1 %": pm(r, COLUMN.top1), "salient-hit %": pm(r, COLUMN.salient_hit_rate),
              "GFLOPs/video": f"{r[f'{COLUMN.gflops_per_video}_mean']:.3f}", "runs": r["runs"], "seeds": r["seeds"]}
             for _, r in agg.iterrows()]
    return tabulate(table, headers="keys", tablefmt="github") + "\n"


def to_markdown(agg: pd.DataFrame) -> str:
    """The aggregated table; with several settings (``--separate``), one table per setting under its own
    heading. Runs of a smoke-test preset are said to be one above their table."""
    groups = list(agg.groupby("setting", sort=False))
    parts = []
    for setting, group in groups:
        preset = group["preset"].iloc[0]
        smoke = [SMOKE_TEST_NOTE.format(preset=preset)] if preset in SMOKE_TEST_PRESETS else []
        heading = [f"## {setting}"] if len(groups) > 1 else []
        parts.append("\n\n".join([*heading, *smoke, table_markdown(group)]))
    return "\n".join(parts)


def compare(folders: list[Path], *, separate: bool = False, out: Path | None = None) -> str:
    """The Markdown table(s) of the runs in ``folders`` (one setting, or with ``separate`` one table per
    setting); with ``out``, also written to ``OUT.md`` (under a list of the runs) and ``OUT.csv``."""
    runs = load_runs(folders)
    if not separate:
        check_one_setting(runs)
    agg = aggregate(runs)
    text = to_markdown(agg)
    if out is not None:
        page = ("# Mean ± std over runs\n\nGenerated by `samplerbench compare` from these runs:\n\n"
                + provenance(runs) + "\n\n" + text)
        atomic_write(out.with_suffix(".md"), lambda tmp: tmp.write_text(page, encoding="utf-8"))
        atomic_write(out.with_suffix(".csv"), lambda tmp: agg.to_csv(tmp, index=False, float_format="%.4f"))
    return text
