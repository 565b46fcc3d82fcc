"""The experiment directory's tables, written from its finished runs and baseline prediction files:
``comparison.csv`` and ``comparison.tex`` (mean ± std over seeds), ``bootstrap.csv`` (paired
bootstrap 95% CI of the difference to logic-only) and ``memorisation.csv`` (the program's learned
parameters against ``n_train``).

Split from ``emolog.experiments.experiment``, which runs the experiment and calls ``write_tables``
once its runs and baselines are on disk; the tables themselves are built by
``emolog.experiments.tables``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emolog.data.atomic import atomic_write_text
from emolog.experiments.plan import RunSpec
from emolog.experiments.tables import METRICS, bootstrap_table, comparison_table, comparison_tex, read_predictions
from emolog.model.va_metrics import baseline_va_columns, va_columns

REFERENCE = "logic-only"
MEMO_COLUMNS = ["regime", "n_train", "seed", "val_accuracy", "train_accuracy"]  # with no run yet
TABLES = ("comparison.csv", "comparison.tex", "bootstrap.csv", "memorisation.csv")  # recorded in experiment.json


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6g")
    atomic_write_text(path, buf.getvalue())


def write_tables(
    out: Path,
    main: list[RunSpec],
    memo_specs: list[RunSpec],
    results: dict[str, dict],
    baseline_files: dict[tuple[str, int], Path],
    classes: tuple[str, ...],
    va: tuple[Any, dict] | None,
    n_boot: int,
) -> tuple[pd.DataFrame, str | None]:
    """Write comparison.csv/.tex, bootstrap.csv and memorisation.csv; (the comparison table,
    the bootstrap's reference system)."""
    rows, pred_files = _regime_rows(main, results, out)
    _add_baseline_rows(rows, pred_files, baseline_files, classes, va)
    table = comparison_table(rows) if rows else pd.DataFrame()
    _write_csv(table, out / "comparison.csv")
    atomic_write_text(out / "comparison.tex", comparison_tex(table) if rows else "")
    reference = REFERENCE if REFERENCE in pred_files else (next(iter(pred_files)) if pred_files else None)
    boot = bootstrap_table(pred_files, reference, n_boot, seed=0, va=va or (None, {})) if reference else pd.DataFrame()
    _write_csv(boot, out / "bootstrap.csv")
    _write_memorisation(memo_specs, results, out)
    return table, reference


def _regime_rows(main: list[RunSpec], results: dict[str, dict], out: Path) -> tuple[list[dict], dict[str, list[Path]]]:
    """Comparison rows of the finished runs, and their prediction files by system."""
    rows: list[dict] = []
    pred_files: dict[str, list[Path]] = {}
    for spec in main:
        if spec.name not in results:
            continue
        r = results[spec.name]
        m = r["metrics"]["test"]
        rows.append(
            {
                "system": spec.system,
                "kind": "regime",
                "regime": spec.regime,
                "sweep": spec.sweep_label,
                "seed": spec.seed,
                **{k: m[k] for k in METRICS},
                **va_columns(r),
                **{f"w_{s}": w for s, w in (r.get("source_weights") or {}).items()},
            }
        )
        pred_files.setdefault(spec.system, []).append(out / "runs" / spec.name / "predictions.csv")
    return rows, pred_files


def _add_baseline_rows(
    rows: list[dict],
    pred_files: dict[str, list[Path]],
    baseline_files: dict[tuple[str, int], Path],
    classes: tuple[str, ...],
    va: tuple[Any, dict] | None,
) -> None:
    """Append the baselines' comparison rows; ``va``: (fitted target, values by id) when the spec has one."""
    from emolog.metrics.classification import evaluate

    for (name, seed), path in baseline_files.items():
        ids, y, probs = read_predictions(path)
        m = evaluate(probs, y, classes)
        system = f"baseline: {name}"
        rows.append(
            {
                "system": system,
                "kind": "baseline",
                "regime": name,
                "sweep": "",
                "seed": seed,
                **{k: m[k] for k in METRICS},
                **(baseline_va_columns(va[0], probs, np.stack([va[1][i] for i in ids])) if va else {}),
            }
        )
        pred_files.setdefault(system, []).append(path)


def _write_memorisation(memo_specs: list[RunSpec], results: dict[str, dict], out: Path) -> None:
    memo = []
    for spec in memo_specs:
        if spec.name not in results:
            continue
        r = results[spec.name]
        # the program's parameters: its source weights where it chooses a source, else every t() by name
        params = (
            {f"w_{k}": w for k, w in r["source_weights"].items()}
            if r.get("source_weights")
            else dict(r.get("t_values") or {})
        )
        memo.append(
            {
                "regime": spec.regime,
                "n_train": spec.sweep[1],
                "seed": spec.seed,
                **params,
                "val_accuracy": r["metrics"]["val"]["accuracy"],
                "train_accuracy": r.get("train_accuracy"),
            }
        )
    columns = list(dict.fromkeys(k for row in memo for k in row)) or MEMO_COLUMNS
    _write_csv(pd.DataFrame(memo, columns=columns).sort_values(["regime", "n_train", "seed"]), out / "memorisation.csv")
