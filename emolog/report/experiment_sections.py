"""Sections about several runs (comparison of regimes, memorisation curve) and the gallery
of real photos."""

from __future__ import annotations

import numpy as np
import pandas as pd

from emolog.report import plots
from emolog.report.inputs import ExperimentInputs, RunInputs
from emolog.report.page import Cell, Figure, Preds, Section, Table, df_table, fmt, num, slug
from emolog.training.metrics import interval_covers


def memorisation_section(df: pd.DataFrame | None, note: str) -> Section:
    """The memorisation curve of an experiment (memorisation.csv), or ``note`` when it is absent."""
    sec = Section("memorisation", "Memorisation curve",
                  "Learned scene weight (a program without a source choice: its t() values) and train / "
                  "validation accuracy versus the number of training images. When the trainable scene "
                  "net can memorise a small training set, the scene explains every training label, its "
                  "weight rises and train accuracy far exceeds validation accuracy; the gap should close "
                  "as the training set grows.")
    if df is None:
        sec.notes.append(note)
    elif df.empty:
        sec.notes.append("memorisation.csv has no rows: the experiment ran no --memorisation sweep.")
    else:
        sec.figures.append(Figure(plots.memorisation(df), "memorisation curve", wide=True))
        agg = df.groupby(["regime", "n_train"], sort=True).mean(numeric_only=True).reset_index().drop(columns=["seed"], errors="ignore")
        sec.tables.append(df_table(agg, "mean over seeds"))
    return sec


def _key_column(df: pd.DataFrame) -> str:
    """The column naming each row: ``system`` (regimes and baselines) or ``regime``."""
    return "system" if "system" in df.columns else "regime"


def comparison_table(df: pd.DataFrame) -> Table:
    """comparison.csv with each ``<m>_mean`` / ``<m>_std`` pair merged into one "mean ± std" cell
    (id ``cmp-<system>-<m>``, data-value the mean); bookkeeping columns and the source weights
    (the weights section shows them) are left out."""
    key = _key_column(df)
    metrics = [c[: -len("_mean")] for c in df.columns if c.endswith("_mean") and not c.startswith("w_")]
    if key not in df.columns or not metrics:
        return df_table(df, "comparison.csv", "cmp", key if key in df.columns else None)
    skip = {key, "kind", "regime"} | {c for c in df.columns if c.endswith(("_mean", "_std"))}
    extra = [c for c in df.columns if c not in skip and df[c].notna().any()]
    rows = []
    for _, r in df.iterrows():
        row = [Cell(str(r[key]))] + [num(r[c]) if isinstance(r[c], (int, float, np.number)) else Cell(fmt(r[c]))
                                     for c in extra]
        for m in metrics:
            mean, std = r[f"{m}_mean"], r.get(f"{m}_std", np.nan)
            text = fmt(mean) if pd.isna(std) else f"{fmt(mean)} ± {fmt(std)}"
            row.append(Cell(text, None if pd.isna(mean) else float(mean), f"cmp-{slug(r[key])}-{slug(m)}", numeric=True))
        rows.append(row)
    return Table([key] + extra + metrics, rows, "comparison.csv: test metrics, mean ± std over seeds")


def bootstrap_table(df: pd.DataFrame) -> Table:
    """bootstrap.csv (one row per system and metric) as systems x metrics, each cell
    "diff [lo, hi]" with a * when the interval excludes 0 (id ``boot-<system>-<metric>``)."""
    key = _key_column(df)
    if not {key, "metric", "diff", "lo", "hi"} <= set(df.columns):
        return df_table(df, "bootstrap.csv", "boot", key if key in df.columns else None)
    metrics = list(dict.fromkeys(df["metric"]))
    rows = []
    for system, g in df.groupby(key, sort=False):
        by = g.set_index("metric")
        row = [Cell(str(system))]
        for m in metrics:
            if m not in by.index:
                row.append(Cell("–", numeric=True))
                continue
            d, lo, hi = (float(by.at[m, c]) for c in ("diff", "lo", "hi"))
            star = " *" if lo > 0 or hi < 0 else ""
            row.append(Cell(f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]{star}", d, f"boot-{slug(system)}-{slug(m)}", numeric=True))
        rows.append(row)
    ref = f" to {df['reference'].iloc[0]}" if "reference" in df.columns and len(df) else ""
    seeds = sorted({int(n) for n in df["n_seeds"].dropna()}) if "n_seeds" in df.columns else []
    covers = (f"; the interval is a {interval_covers(max(seeds))}" if seeds else "")
    return Table([key] + [f"Δ {m} [95% CI]" for m in metrics], rows,
                 f"bootstrap.csv: paired difference{ref}; * = the interval excludes 0{covers}")


def comparison_section(inp: ExperimentInputs) -> Section:
    sec = Section("comparison", "Comparison of regimes",
                  "Per regime and baseline, mean ± standard deviation over seeds of the test metrics "
                  "and learned source weights (comparison.csv), and the paired bootstrap 95% CI of each "
                  "one's difference to the reference regime, logic-only (bootstrap.csv): test images "
                  "and seeds are resampled, so with several seeds the interval counts training "
                  "variance (the caption says what it covers). An interval that contains 0 (no *) is "
                  "no evidence of a difference. For NLL, lower is better.")
    for name, make in (("comparison.csv", comparison_table), ("bootstrap.csv", bootstrap_table)):
        df = inp.get(name)
        if df is None:
            sec.notes.append(inp.note(name))
        else:
            sec.tables.append(make(df))
    return sec


def gallery_section(run: RunInputs | None, pr: Preds | None, classes: list[str], images: str | None) -> Section:
    sec = Section("gallery", "Example images",
                  "Test images with their detected face boxes (largest first, at most 3), each "
                  "source's emotion distribution (rows) and the final prediction; the caption gives "
                  "the source posterior, i.e. which source explained the true label.")
    if run is None or pr is None:
        sec.notes.append("no run with a usable predictions.csv: no examples")
        return sec
    if run.data.get("kind") != "real":
        sec.notes.append(f"Data is {run.data.get('kind') or 'of unknown kind'}: there are no photos to show "
                         "(simulated images exist only as cached feature tensors).")
        return sec
    from emolog.report.gallery import gallery  # imports torch and the cache: only for real photos
    items, notes = gallery(run, pr.y, pr.p, classes, images=images)
    sec.notes.extend(notes)
    sec.figures.extend(Figure(it["uri"], f"example {it['image_id']}", caption=it["caption"]) for it in items)
    return sec
