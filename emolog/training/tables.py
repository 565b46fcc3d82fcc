"""The experiment's comparison table: mean ± std over seeds, as a DataFrame, LaTeX and text.

Split from ``emolog.training.experiment`` (which re-exports these names): the table is a pure
function of the runs' metrics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emolog.labels import SOURCES
from emolog.training.metrics import accuracy, macro_f1, nll

METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "weighted_f1", "average_precision", "uar", "nll", "ece")
BOOTSTRAP_METRICS = {"macro_f1": macro_f1, "accuracy": accuracy, "nll": nll}


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), (float(a.std(ddof=1)) if len(a) > 1 else float("nan"))


def comparison_table(rows: list[dict]) -> pd.DataFrame:
    """Mean and std over seeds per system. ``rows``: one per run or baseline file, with
    system, kind, regime, sweep, seed, the test metrics and (for regimes) w_<source>."""
    df = pd.DataFrame(rows)
    out = []
    for system, g in df.groupby("system", sort=False):
        r = {"system": system, "kind": g["kind"].iat[0], "regime": g["regime"].iat[0],
             "sweep": g["sweep"].iat[0], "n_seeds": len(g)}
        for m in METRICS + tuple(f"w_{s}" for s in SOURCES):
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


def comparison_tex(table: pd.DataFrame) -> str:
    """A LaTeX tabular (booktabs) of the comparison table: mean ± std over seeds."""
    cols = [*METRICS, *(f"w_{s}" for s in SOURCES)]
    heads = ["Accuracy", "Macro-F1", "UAR", "NLL", "ECE", *(f"$w_\\mathrm{{{s}}}$" for s in SOURCES)]
    lines = ["\\begin{tabular}{l" + "r" * len(cols) + "}", "\\toprule",
             "System & " + " & ".join(heads) + " \\\\", "\\midrule"]
    for _, r in table.iterrows():
        name = str(r["system"]).replace("_", "\\_").replace("&", "\\&")
        lines.append(name + " & " + " & ".join(_pm(r[f"{c}_mean"], r[f"{c}_std"], True) for c in cols) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def format_table(table: pd.DataFrame) -> str:
    """The comparison table as plain text (what the command prints)."""
    cols = [*METRICS, *(f"w_{s}" for s in SOURCES)]
    width = max(len(str(s)) for s in table["system"]) + 2
    lines = [f"{'system':<{width}}{'n':>3}" + "".join(f"{c:>14}" for c in cols)]
    for _, r in table.iterrows():
        lines.append(f"{r['system']:<{width}}{r['n_seeds']:>3}"
                     + "".join(f"{_pm(r[f'{c}_mean'], r[f'{c}_std'], False):>14}" for c in cols))
    return "\n".join(lines)
