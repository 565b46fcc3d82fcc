"""The experiment's comparison table: mean ± std over seeds, as a DataFrame, LaTeX and text,
and the prediction files it pools.

Split from ``emolog.experiments.experiment`` (which re-exports these names): the table is a pure
function of the runs' metrics. Generic over the label set (the ``p_<class>`` columns of a
predictions file name its classes) and the program (source-weight columns ``w_<source>``
appear only for runs whose program has a source choice).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from emolog.data.artefacts import ArtefactError, read_csv
from emolog.data.atomic import atomic_write_text
from emolog.errors import InputError
from emolog.labels import VA_RANGES
from emolog.model.va_metrics import VA_METRICS

METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "weighted_f1", "average_precision", "uar", "nll", "ece")
# bootstrap.csv's metrics, by their function's name in emolog.metrics.classification (imported when the
# table is built: scipy and scikit-learn stay out of `emolog experiment --help`)
BOOTSTRAP_METRICS: tuple[str, ...] = ("macro_f1", "accuracy", "nll")
HEADS = {
    "accuracy": "Accuracy",
    "macro_f1": "Macro-F1",
    "weighted_f1": "Weighted-F1",
    "average_precision": "AP",
    "uar": "UAR",
    "nll": "NLL",
    "ece": "ECE",
}


class ExperimentError(InputError, ValueError):
    """An experiment request that cannot be run (the message names the argument)."""


def read_predictions(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(image ids sorted, labels [N] class indices, probs [N, C]) from a predictions CSV; the
    classes are its ``p_<class>`` columns, in file order (any label set)."""
    df = read_csv(path, ("image_id", "label"), dtype={"image_id": str}, keep_default_na=False).sort_values("image_id")
    classes = [c[2:] for c in df.columns if c.startswith("p_")]
    if not classes:
        raise ExperimentError(f"{path}: lacks columns ['p_<class>']")
    try:
        probs = df[[f"p_{c}" for c in classes]].to_numpy(np.float64)
    except ValueError:
        raise ExperimentError(f"{path}: p_<class> columns that are not numbers") from None
    probs /= probs.sum(1, keepdims=True)  # undo the CSV's 6-digit rounding
    labels = df["label"].map({c: i for i, c in enumerate(classes)})
    if labels.isna().any():
        raise ExperimentError(f"{path}: unknown labels {sorted(set(df['label'][labels.isna()]))}")
    return df["image_id"].tolist(), labels.to_numpy(np.int64), probs


def usable_baseline(path: Path, test_ids: list[str], classes: Sequence[str]) -> bool:
    """Whether a baseline's prediction file is there and whole (the split's test images, the
    classes, finite probabilities); a damaged one is recomputed, saying so."""
    if not path.exists():
        return False
    try:
        ids, _, probs = read_predictions(path)
        if ids != test_ids or probs.shape[1] != len(classes) or not np.isfinite(probs).all():
            raise ExperimentError(f"{path}: holds other test images or classes, or non-finite probabilities")
    except (ExperimentError, ArtefactError) as e:
        print(f"{e}; recomputing it", file=sys.stderr)
        return False
    return True


def bootstrap_table(
    systems: dict[str, list[Path]], reference: str, n_boot: int, seed: int, va: tuple[Any, dict] = (None, {})
) -> pd.DataFrame:
    """Paired bootstrap CI of each system's seed-averaged metric minus the reference's; with a
    fitted valence/arousal target and its test values by id (``va``), of each variable's MAE too."""
    from emolog.metrics import classification as metrics
    from emolog.metrics.classification import paired_bootstrap_seeds

    def load(paths: list[Path]) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
        loaded = [read_predictions(p) for p in paths]
        ids, labels = loaded[0][0], loaded[0][1]
        for p, (i, y, _) in zip(paths, loaded):
            if i != ids or not np.array_equal(y, labels):
                raise ExperimentError(f"{p}: test images or labels differ from {paths[0]}")
        return ids, labels, [probs for _, _, probs in loaded]

    ref_ids, labels, ref = load(systems[reference])
    rows = []
    for system, paths in systems.items():
        if system == reference:
            continue
        ids, y, probs = load(paths)
        if ids != ref_ids or not np.array_equal(y, labels):
            raise ExperimentError(f"{system}: its test images differ from {reference}'s; cannot pair them")
        for mname in BOOTSTRAP_METRICS:
            r = paired_bootstrap_seeds(getattr(metrics, mname), probs, ref, labels, n_boot=n_boot, seed=seed)
            rows.append(
                {
                    "system": system,
                    "reference": reference,
                    "metric": mname,
                    **r,
                    "n_seeds": len(paths),
                    "n_images": len(labels),
                }
            )
    if va[0] is not None:
        from emolog.model.va_metrics import va_bootstrap_rows

        rows += va_bootstrap_rows(
            va[0],
            {k: load(p)[2] for k, p in systems.items()},
            reference,
            np.stack([va[1][i] for i in ref_ids]),
            n_boot,
            seed,
        )
    return pd.DataFrame(rows, columns=["system", "reference", "metric", "diff", "lo", "hi", "n_seeds", "n_images"])


def write_predictions(
    path: Path, ids: list[str], labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]
) -> None:
    df = pd.DataFrame(
        {"image_id": ids, "label": [classes[i] for i in labels], "pred": [classes[i] for i in probs.argmax(1)]}
    )
    for k, c in enumerate(classes):
        df[f"p_{c}"] = probs[:, k]
    atomic_write_text(path, df.to_csv(index=False, float_format="%.8g"))


def va_metric_columns(columns: Sequence[str]) -> list[str]:
    """The ``<variable>_<metric>`` columns of a valence/arousal experiment (``va_metrics.va_columns``)."""
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
        r = {
            "system": system,
            "kind": g["kind"].iat[0],
            "regime": g["regime"].iat[0],
            "sweep": g["sweep"].iat[0],
            "n_seeds": len(g),
        }
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
    return [
        c[: -len("_mean")]
        for c in table.columns
        if c.startswith("w_") and c.endswith("_mean") and table[c].notna().any()
    ]


def comparison_tex(table: pd.DataFrame) -> str:
    """A LaTeX tabular (booktabs) of the comparison table: mean ± std over seeds."""
    weights, va = weight_columns(table), va_metric_columns(table.columns)
    cols = [*METRICS, *va, *weights]
    heads = (
        [HEADS[m] for m in METRICS] + [c.replace("_", " ") for c in va] + [f"$w_\\mathrm{{{w[2:]}}}$" for w in weights]
    )
    lines = [
        "\\begin{tabular}{l" + "r" * len(cols) + "}",
        "\\toprule",
        "System & " + " & ".join(heads) + " \\\\",
        "\\midrule",
    ]
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
        lines.append(
            f"{r['system']:<{width}}{r['n_seeds']:>3}"
            + "".join(f"{_pm(r[f'{c}_mean'], r[f'{c}_std'], False):>{w}}" for c, w in zip(cols, widths))
        )
    return "\n".join(lines)
