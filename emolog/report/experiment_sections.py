"""Sections about several runs (comparison of regimes, memorisation curve) and the gallery
of real photos."""

from __future__ import annotations

import numpy as np
import pandas as pd

from emolog.report import plots
from emolog.report.inputs import ExperimentInputs
from emolog.runs.record import RunFiles
from emolog.report.page import Cell, Figure, Preds, Section, Table, df_table, fmt, num, slug
from emolog.metrics.classification import interval_covers


def memorisation_section(df: pd.DataFrame | None, note: str) -> Section:
    """The memorisation curve of an experiment (memorisation.csv), or ``note`` when it is absent."""
    sec = Section(
        "memorisation",
        "Memorisation curve",
        "Learned scene weight (a program without a source choice: its t() values) and train / "
        "validation accuracy versus the number of training images. When the trainable scene "
        "net can memorise a small training set, the scene explains every training label, its "
        "weight rises and train accuracy far exceeds validation accuracy; the gap should close "
        "as the training set grows.",
    )
    if df is None:
        sec.notes.append(note)
    elif df.empty:
        sec.notes.append("memorisation.csv has no rows: the experiment ran no --memorisation sweep.")
    else:
        sec.figures.append(Figure(plots.memorisation(df), "memorisation curve", wide=True))
        agg = (
            df.groupby(["regime", "n_train"], sort=True)
            .mean(numeric_only=True)
            .reset_index()
            .drop(columns=["seed"], errors="ignore")
        )
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
        row = [Cell(str(r[key]))] + [
            num(r[c]) if isinstance(r[c], (int, float, np.number)) else Cell(fmt(r[c])) for c in extra
        ]
        for m in metrics:
            mean, std = r[f"{m}_mean"], r.get(f"{m}_std", np.nan)
            text = fmt(mean) if pd.isna(std) else f"{fmt(mean)} ± {fmt(std)}"
            row.append(
                Cell(text, None if pd.isna(mean) else float(mean), f"cmp-{slug(r[key])}-{slug(m)}", numeric=True)
            )
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
            row.append(
                Cell(f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]{star}", d, f"boot-{slug(system)}-{slug(m)}", numeric=True)
            )
        rows.append(row)
    ref = f" to {df['reference'].iloc[0]}" if "reference" in df.columns and len(df) else ""
    seeds = sorted({int(n) for n in df["n_seeds"].dropna()}) if "n_seeds" in df.columns else []
    covers = f"; the interval is a {interval_covers(max(seeds))}" if seeds else ""
    return Table(
        [key] + [f"Δ {m} [95% CI]" for m in metrics],
        rows,
        f"bootstrap.csv: paired difference{ref}; * = the interval excludes 0{covers}",
    )


def comparison_section(inp: ExperimentInputs) -> Section:
    sec = Section(
        "comparison",
        "Comparison of regimes",
        "Per regime and baseline, mean ± standard deviation over seeds of the test metrics "
        "and learned source weights (comparison.csv), and the paired bootstrap 95% CI of each "
        "one's difference to the reference regime, logic-only (bootstrap.csv): test images "
        "and seeds are resampled, so with several seeds the interval counts training "
        "variance (the caption says what it covers). An interval that contains 0 (no *) is "
        "no evidence of a difference. For NLL, lower is better.",
    )
    for name, make in (("comparison.csv", comparison_table), ("bootstrap.csv", bootstrap_table)):
        df = inp.get(name)
        if df is None:
            sec.notes.append(inp.note(name))
        else:
            sec.tables.append(make(df))
    return sec


def gallery_section(run: RunFiles | None, pr: Preds | None, classes: list[str], images: str | None) -> Section:
    sec = Section(
        "gallery",
        "Example images",
        "Test images with their detected face boxes (largest first, at most 3), each "
        "source's emotion distribution (rows) and the final prediction; the caption gives "
        "the source posterior, i.e. which source explained the true label.",
    )
    if run is None or pr is None:
        sec.notes.append("no run with a usable predictions.csv: no examples")
        return sec
    if run.data.get("kind") != "real":
        sec.notes.append(
            f"Data is {run.data.get('kind') or 'of unknown kind'}: there are no photos to show "
            "(simulated images exist only as cached feature tensors)."
        )
        return sec
    from emolog.report.gallery import gallery  # imports torch and the cache: only for real photos

    items, notes = gallery(run, pr.y, pr.p, classes, images=images)
    sec.notes.extend(notes)
    sec.figures.extend(Figure(it["uri"], f"example {it['image_id']}", caption=it["caption"]) for it in items)
    return sec


VA_SHOWN = ("mae", "rmse", "spearman", "pearson", "ccc")


def va_section(runs: list[RunFiles]) -> Section:
    """Valence/arousal runs: each run's test regression metrics with their 95% bootstrap
    intervals (results.json ``metrics.test.va``) and its predictions against the annotated values."""
    from emolog.analysis.error_plots import predicted_vs_true

    sec = Section(
        "va",
        "Valence and arousal",
        "The prediction is the expected value of the program's distribution over the target's "
        "bins. Mean absolute error and root mean squared error (lower is better), Spearman's "
        "rank correlation and Pearson's correlation with the annotated values, and Lin's "
        "concordance correlation (CCC: agreement, not only correlation), each with a 95% "
        "bootstrap interval over the test images; per annotated value, the spread of the "
        "predictions. The confusion matrices are those of the bins.",
    )
    rows = []
    for r in runs:
        va = ((r.results or {}).get("metrics") or {}).get("test", {}).get("va") or {}
        pr = r.get("predictions.csv")
        for var, m in va.items():
            rows.append(
                [Cell(r.name), Cell(var)]
                + [
                    Cell(
                        f"{fmt(m[k])} [{fmt(m.get(k + '_lo'))}, {fmt(m.get(k + '_hi'))}]",
                        m[k],
                        f"va-{slug(r.name)}-{var}-{k}",
                        numeric=True,
                    )
                    for k in VA_SHOWN
                ]
            )
            if pr is not None and {var, f"pred_{var}"} <= set(pr.columns):
                png = predicted_vs_true(pr[var].to_numpy(float), pr[f"pred_{var}"].to_numpy(float), var, r.name)
                sec.figures.append(Figure(_uri(png), f"predicted {var} {r.name}"))
    if not rows:
        sec.notes.append("no run records valence/arousal metrics (results.json metrics.test.va)")
    sec.tables.append(Table(["run", "variable", *[f"{k} [95% CI]" for k in VA_SHOWN]], rows, "test set"))
    return sec


def _uri(png: bytes) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def analysis_section(inp: ExperimentInputs | RunFiles) -> Section:
    """What ``emolog analyse DIR --out DIR/analysis`` found, when that folder exists: the
    error-vs-disagreement statistics and scatters, the runs' overlap, the most confused pairs,
    the meta-information ranking and the worst errors with their photos."""
    from emolog.analysis.analyse import ANALYSIS_DIR

    sec = Section(
        "analysis",
        "Which images it gets wrong, and why",
        "From emolog analyse (docs/analysis.md). Per image with a face, the scene's own error "
        "against how much face 1 and the scene disagree: a rising line (r > 0, interval above 0) "
        "means the faces matter where they disagree; t1 and t2 are suggested thresholds between "
        "small, medium and big disagreement. Then whether the runs err on the same images, the "
        "most confused pairs of classes, the meta-information that goes with large errors "
        "(ranked by mutual information) and the worst errors.",
    )
    adir = inp.dir / ANALYSIS_DIR
    if not (adir / "analysis.json").is_file():
        sec.notes.append(f"no error analysis in {adir}: `emolog analyse {inp.dir} --out {adir}` writes it")
        return sec
    cols = {
        "disagreement.csv": [
            "run",
            "target",
            "n",
            "slope",
            "pearson",
            "pearson_lo",
            "pearson_hi",
            "t1",
            "t2",
            "scene_error_small",
            "scene_error_medium",
            "scene_error_big",
        ],
        "confused_pairs.csv": ["run", "class_a", "class_b", "confusions", "a_as_b", "b_as_a"],
        "meta.csv": [
            "run",
            "target",
            "rank",
            "variable",
            "mutual_information",
            "spearman",
            "spearman_lo",
            "spearman_hi",
        ],
        "overlap.csv": None,
    }
    for name, keep in cols.items():
        if (adir / name).is_file():
            df = pd.read_csv(adir / name)
            if name == "meta.csv":
                df = df[df["rank"] <= 4]
            sec.tables.append(df_table(df[[c for c in (keep or df.columns) if c in df.columns]], f"analysis/{name}"))
    for png in sorted(adir.glob("disagreement-*.png")) + sorted(adir.glob("overlap.png")):
        sec.figures.append(Figure(_uri(png.read_bytes()), png.stem))
    gal = pd.read_csv(adir / "gallery.csv", keep_default_na=False) if (adir / "gallery.csv").is_file() else None
    shown = gal[gal["thumbnail"] != ""] if gal is not None else []
    for _, g in shown.iterrows() if len(shown) else []:
        sec.figures.append(
            Figure(
                _uri((adir / g["thumbnail"]).read_bytes()),
                f"worst {g['run']} {g['image_id']}",
                caption=f"#{g['rank']} {g['run']}: true {g['label']}, predicted {g['pred']}",
            )
        )
    if gal is not None and not len(shown):
        sec.notes.append(
            "the worst errors have no photo to show ("
            + (gal["note"].iat[0] if len(gal) else "none")
            + "); analysis/gallery.csv lists them"
        )
    return sec
