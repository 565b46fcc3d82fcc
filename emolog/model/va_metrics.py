"""The regression metrics of a valence/arousal target (docs/model.md, "Valence and arousal").

MAE, RMSE, Spearman's rho, Pearson's r and Lin's CCC of the expected values against the
annotated ones, with bootstrap intervals; a run's majority-class warning; the comparison
table's columns and bootstrap.csv's MAE rows of an experiment.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from emolog.model.target import Target

VA_METRICS: tuple[str, ...] = ("mae", "rmse", "spearman", "pearson", "ccc")


def rank(x: np.ndarray) -> np.ndarray:
    """Ranks 1..N of ``x`` with ties averaged (scipy's ``rankdata``, in plain numpy: it runs
    once per bootstrap replicate)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]]
    starts = np.flatnonzero(np.r_[first, True])
    avg = (starts[:-1] + starts[1:] + 1) / 2  # mean 1-based rank of each run of ties
    out = np.empty(len(x))
    out[order] = avg[np.cumsum(first) - 1]
    return out


def corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation; NaN when either side is constant (or has fewer than 3 values)."""
    if len(a) < 3:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def regression_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, Spearman's rho, Pearson's r and Lin's concordance correlation (CCC) of
    ``pred`` against ``true`` (both [N])."""
    d = pred - true
    cov = float(np.mean((pred - pred.mean()) * (true - true.mean())))
    denom = pred.var() + true.var() + (pred.mean() - true.mean()) ** 2
    return {
        "mae": float(np.abs(d).mean()),
        "rmse": float(np.sqrt((d**2).mean())),
        "spearman": corr(rank(pred), rank(true)),
        "pearson": corr(pred, true),
        "ccc": float(2 * cov / denom) if denom > 0 else float("nan"),
    }


def regression_metrics(pred: np.ndarray, true: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """``regression_scores`` with a 95% bootstrap interval over the images for each
    (``emolog.metrics.classification.bootstrap_ci``; ``n_boot=0``: no intervals):
    ``{"mae", "mae_lo", "mae_hi", ..., "n"}``."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    from emolog.metrics.classification import bootstrap_ci

    out: dict = regression_scores(pred, true)
    if n_boot:

        def scores(idx: np.ndarray) -> np.ndarray:
            s = regression_scores(pred[idx], true[idx])
            return np.array([s[k] for k in VA_METRICS])

        ci = bootstrap_ci(scores, len(true), n_boot=n_boot, seed=seed)
        for k, name in enumerate(VA_METRICS):
            out[f"{name}_lo"], out[f"{name}_hi"] = float(ci["lo"][k]), float(ci["hi"][k])
    out["n"] = int(len(true))
    return out


def va_metrics(target: Target, probs: np.ndarray, values: np.ndarray, n_boot: int = 1000) -> dict:
    """Per variable of the target, ``regression_metrics`` of the expected values of ``probs``
    [N, C] against ``values`` [N, V]."""
    pred = target.expected(probs)
    return {
        var: regression_metrics(pred[:, j], np.asarray(values)[:, j], n_boot) for j, var in enumerate(target.variables)
    }


def va_sanity(metrics: dict, train_values: np.ndarray, test_values: np.ndarray, variables: Sequence[str]) -> str | None:
    """The majority-class warning of a valence/arousal run: a variable whose test MAE is not
    clearly (its 95% interval) below that of predicting the training mean."""
    bad = []
    for j, v in enumerate(variables):
        base = float(np.abs(test_values[:, j] - train_values[:, j].mean()).mean())
        m = metrics[v]
        if m.get("mae_hi", m["mae"]) >= base:
            bad.append(
                f"{v} MAE {m['mae']:.3f} [{m.get('mae_lo', m['mae']):.3f}, {m.get('mae_hi', m['mae']):.3f}] "
                f"vs {base:.3f} for the training mean"
            )
    if not bad:
        return None
    return (
        "WARNING: no better than predicting the training mean (" + "; ".join(bad) + "): check that the "
        "index's values belong to their images; with very few training images the model may also simply "
        "have learned nothing yet"
    )


def va_columns(results: dict) -> dict[str, float]:
    """A run's test regression scores as comparison-table columns ``<variable>_<metric>``."""
    va = ((results.get("metrics") or {}).get("test") or {}).get("va") or {}
    return {f"{var}_{k}": m[k] for var, m in va.items() for k in VA_METRICS}


def baseline_va_columns(target: Target, probs: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """``va_columns`` of a baseline's test predictions [N, C] against ``values`` [N, V]."""
    pred = target.expected(probs)
    return {
        f"{var}_{k}": v
        for j, var in enumerate(target.variables)
        for k, v in regression_scores(pred[:, j], values[:, j]).items()
    }


def va_bootstrap_rows(
    target: Target, systems: dict[str, list[np.ndarray]], reference: str, values: np.ndarray, n_boot: int, seed: int
) -> list[dict]:
    """Rows of bootstrap.csv for the mean absolute error of each variable: per system, the
    seed-averaged MAE minus the reference's with a 95% interval, seeds and test images
    resampled (``bootstrap_ci``, as ``paired_bootstrap_seeds`` does for the class metrics).
    ``systems``: per system, its seeds' test probabilities [N, C], rows aligned with ``values``."""
    from emolog.metrics.classification import bootstrap_ci

    err = {name: [np.abs(target.expected(p) - values) for p in ps] for name, ps in systems.items()}
    rows = []
    for name in systems:
        if name == reference:
            continue
        a, b = err[name], err[reference]
        paired = len(a) == len(b)
        for j, var in enumerate(target.variables):

            def diff(idx: np.ndarray, ta: np.ndarray, tb: np.ndarray | None = None, j: int = j) -> float:
                tb = ta if tb is None else tb
                return float(np.mean([a[s][idx, j].mean() for s in ta]) - np.mean([b[s][idx, j].mean() for s in tb]))

            r = bootstrap_ci(diff, len(values), (len(a),) if paired else (len(a), len(b)), n_boot=n_boot, seed=seed)
            rows.append(
                {
                    "system": name,
                    "reference": reference,
                    "metric": f"{var}_mae",
                    "diff": r["estimate"],
                    "lo": r["lo"],
                    "hi": r["hi"],
                    "n_seeds": len(a),
                    "n_images": len(values),
                }
            )
    return rows
