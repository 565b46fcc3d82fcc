"""The experiment's comparison table: mean ± std over seeds, as a DataFrame, LaTeX and text,
and the prediction files it pools.

Split from ``emolog.training.experiment`` (which re-exports these names): the table is a pure
function of the runs' metrics. Generic over the label set (the ``p_<class>`` columns of a
predictions file name its classes) and the program (source-weight columns ``w_<source>``
appear only for runs whose program has a source choice).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from emolog.data.atomic import atomic_write_text
from emolog.errors import InputError
from emolog.labels import VA_RANGES
from emolog.training.target import VA_METRICS

METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "weighted_f1", "average_precision", "uar", "nll", "ece")
# bootstrap.csv's metrics, by their function's name in emolog.training.metrics (imported when the
# table is built: scipy and scikit-learn stay out of `emolog experiment --help`)
BOOTSTRAP_METRICS: tuple[str, ...] = ("macro_f1", "accuracy", "nll")
HEADS = {"accuracy": "Accuracy", "macro_f1": "Macro-F1", "weighted_f1": "Weighted-F1",
         "average_precision": "AP", "uar": "UAR", "nll": "NLL", "ece": "ECE"}


class ExperimentError(InputError, ValueError):
    """An experiment request that cannot be run (the message names the argument)."""


def read_predictions(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(image ids sorted, labels [N] class indices, probs [N, C]) from a predictions CSV; the
    classes are its ``p_<class>`` columns, in file order (any label set)."""
    df = pd.read_csv(path, dtype={"image_id": str}, keep_default_na=False).sort_values("image_id")
    classes = [c[2:] for c in df.columns if c.startswith("p_")]
    missing = [c for c in ["image_id", "label"] if c not in df.columns] + ([] if classes else ["p_<class>"])
    if missing:
        raise ExperimentError(f"{path}: lacks columns {missing}")
    probs = df[[f"p_{c}" for c in classes]].to_numpy(np.float64)
    probs /= probs.sum(1, keepdims=True)  # undo the CSV's 6-digit rounding
    labels = df["label"].map({c: i for i, c in enumerate(classes)})
    if labels.isna().any():
        raise ExperimentError(f"{path}: unknown labels {sorted(set(df['label'][labels.isna()]))}")
    return df["image_id"].tolist(), labels.to_numpy(np.int64), probs


def write_predictions(path: Path, ids: list[str], labels: np.ndarray, probs: np.ndarray,
                      classes: Sequence[str]) -> None:
    df = pd.DataFrame({"image_id": ids, "label": [classes[i] for i in labels],
                       "pred": [classes[i] for i in probs.argmax(1)]})
    for k, c in enumerate(classes):
        df[f"p_{c}"] = probs[:, k]
    atomic_write_text(path, df.to_csv(index=False, float_format="%.8g"))


def va_metric_columns(columns: Sequence[str]) -> list[str]:
    """The ``<variable>_<metric>`` columns of a valence/arousal experiment (``target.va_columns``)."""
    return [f"{v}_{m}" for v in VA_RANGES for m in VA_METRICS if f"{v}_{m}" in columns or f"{v}_{m}_mean" in columns]


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), (float(a.std(ddof=1)) if len(a) > 1 else float("nan"))


def comparison_table(rows: list[dict]) -> pd.DataFrame:
    """Mean and std over seeds per system. ``rows``: one per run or baseline file, with
    system, kind, regime, sweep, seed, the test metrics and (for runs of a program with a
    source choice) w_<source>, whichever sources the rows name."""
    df = pd.DataFrame(rows)
    weights = tuple(c for c in df.columns if c.startswith("w_"))
    out = []
    for system, g in df.groupby("system", sort=False):
        r = {"system": system, "kind": g["kind"].iat[0], "regime": g["regime"].iat[0],
             "sweep": g["sweep"].iat[0], "n_seeds": len(g)}
        for m in METRICS + tuple(va_metric_columns(df.columns)) + weights:
            vals = g[m].dropna().tolist() if m in g else []
            r[f"{m}_mean"], r[f"{m}_std"] = _mean_std(vals) if vals else (float("nan"), float("nan"))
        out.append(r)
    return pd.DataFrame(out)


def _pm(mean: float, std: float, tex: bool) -> str:
    if np.isnan(mean):
        return "--" if tex else "-"
    if np.isnan(std):
        return f"{mean:.3f}"
    return f"${mean:.3f} \\pm {std:.3f}$" if tex else f"{mean:.3f}±{std:.3f}"


def weight_columns(table: pd.DataFrame) -> list[str]:
    """The w_<source> columns of a comparison table that hold a value (none for programs
    without a source choice)."""
    return [c[: -len("_mean")] for c in table.columns
            if c.startswith("w_") and c.endswith("_mean") and table[c].notna().any()]


def comparison_tex(table: pd.DataFrame) -> str:
    """A LaTeX tabular (booktabs) of the comparison table: mean ± std over seeds."""
    weights, va = weight_columns(table), va_metric_columns(table.columns)
    cols = [*METRICS, *va, *weights]
    heads = [HEADS[m] for m in METRICS] + [c.replace("_", " ") for c in va] \
        + [f"$w_\\mathrm{{{w[2:]}}}$" for w in weights]
    lines = ["\\begin{tabular}{l" + "r" * len(cols) + "}", "\\toprule",
             "System & " + " & ".join(heads) + " \\\\", "\\midrule"]
    for _, r in table.iterrows():
        name = str(r["system"]).replace("_", "\\_").replace("&", "\\&")
        lines.append(name + " & " + " & ".join(_pm(r[f"{c}_mean"], r[f"{c}_std"], True) for c in cols) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def format_table(table: pd.DataFrame) -> str:
    """The comparison table as plain text (what the command prints)."""
    cols = [*METRICS, *va_metric_columns(table.columns), *weight_columns(table)]
    width = max(len(str(s)) for s in table["system"]) + 2
    widths = [max(14, len(c) + 2) for c in cols]
    lines = [f"{'system':<{width}}{'n':>3}" + "".join(f"{c:>{w}}" for c, w in zip(cols, widths))]
    for _, r in table.iterrows():
        lines.append(f"{r['system']:<{width}}{r['n_seeds']:>3}"
                     + "".join(f"{_pm(r[f'{c}_mean'], r[f'{c}_std'], False):>{w}}" for c, w in zip(cols, widths)))
    return "\n".join(lines)
