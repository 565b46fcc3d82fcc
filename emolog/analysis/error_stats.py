"""The statistics ``emolog analyse`` and the report draw from runs' error tables
(``emolog.analysis.errors.run_errors``; docs/analysis.md): which images several runs get wrong
(overlap, wrong-in-k), the scene's error against the face-scene disagreement, the error against
each meta-information variable, the confusion and its most confused pairs, and the worst images.

Split from ``emolog.analysis.errors``, which builds the table these read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emolog.analysis.errors import CATEGORICAL, META, RunErrors
from emolog.metrics.classification import bootstrap_ci
from emolog.model.va_metrics import corr, rank


def common_ids(errs: list[RunErrors]) -> list[str]:
    """The test images every run predicted, sorted."""
    ids = set(errs[0].table["image_id"])
    for e in errs[1:]:
        ids &= set(e.table["image_id"])
    return sorted(ids)


def wrong_sets(errs: list[RunErrors]) -> dict[str, set[str]]:
    """Per run, the misclassified test images (prediction != label; a valence/arousal run's
    bins), among the images every run predicted."""
    ids = set(common_ids(errs))
    return {e.name: set(e.table.loc[~e.table["correct"], "image_id"]) & ids for e in errs}


def overlap_table(errs: list[RunErrors]) -> pd.DataFrame:
    """Per pair of runs: images both got wrong, only one, neither, and the Jaccard index of
    their error sets."""
    wrong, n = wrong_sets(errs), len(common_ids(errs))
    rows = []
    for i, a in enumerate(errs):
        for b in errs[i + 1 :]:
            wa, wb = wrong[a.name], wrong[b.name]
            union = len(wa | wb)
            rows.append(
                {
                    "run_a": a.name,
                    "run_b": b.name,
                    "n_images": n,
                    "wrong_a": len(wa),
                    "wrong_b": len(wb),
                    "both": len(wa & wb),
                    "only_a": len(wa - wb),
                    "only_b": len(wb - wa),
                    "neither": n - union,
                    "jaccard": len(wa & wb) / union if union else float("nan"),
                }
            )
    return pd.DataFrame(
        rows,
        columns=["run_a", "run_b", "n_images", "wrong_a", "wrong_b", "both", "only_a", "only_b", "neither", "jaccard"],
    )


def wrong_in_k(errs: list[RunErrors]) -> pd.DataFrame:
    """How many images exactly k of the runs got wrong, k = 0 .. number of runs."""
    wrong = wrong_sets(errs)
    k = pd.Series({i: sum(i in w for w in wrong.values()) for i in common_ids(errs)}, dtype=int)
    counts = np.bincount(k.to_numpy(), minlength=len(errs) + 1)
    return pd.DataFrame({"k_runs_wrong": np.arange(len(errs) + 1), "n_images": counts})


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return corr(rank(x), rank(y))


def thresholds(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two disagreement thresholds read off the scatter: the splits of the least-squares fit of
    the error by a step function with three levels (a regression tree with three leaves of at
    least 10% of the images each), i.e. where the error changes most: small < t1 <= medium < t2 <= big."""
    from sklearn.tree import DecisionTreeRegressor

    tree = DecisionTreeRegressor(max_leaf_nodes=3, min_samples_leaf=max(2, len(x) // 10), random_state=0)
    tree.fit(x[:, None], y)
    cuts = sorted(float(v) for v, f in zip(tree.tree_.threshold, tree.tree_.feature) if f >= 0)
    cuts += [float("nan")] * (2 - len(cuts))
    return cuts[0], cuts[1]


def disagreement_stats(e: RunErrors, what: str, n_boot: int = 1000, seed: int = 0) -> dict | None:
    """The scene's error against the face-scene disagreement on ``what`` (``RunErrors.targets``),
    over the images with a face: least-squares line, Pearson's r and Spearman's rho with 95%
    bootstrap intervals (``bootstrap_ci``), ``thresholds`` and the mean scene error below, between
    and above them. A rising line (r > 0, its interval above 0) means the faces matter: where
    a face disagrees with the scene, the scene alone errs more. None without both sources."""
    xc, yc = e.disagreement(what), e.scene_error(what)
    if xc not in e.table or yc not in e.table:
        return None
    d = e.table[[xc, yc]].dropna()
    x, y = d[xc].to_numpy(float), d[yc].to_numpy(float)
    out: dict = {"run": e.name, "target": what, "x": xc, "y": yc, "n": len(x)}
    if len(x) < 10:
        return {**out, "note": "fewer than 10 test images with a face"}
    slope, intercept = np.polyfit(x, y, 1)
    ci = bootstrap_ci(lambda i: np.array([corr(x[i], y[i]), _spearman(x[i], y[i])]), len(x), n_boot=n_boot, seed=seed)
    t1, t2 = thresholds(x, y)
    groups = {"small": x < t1, "medium": (x >= t1) & (x < t2), "big": x >= t2}
    out.update(
        slope=float(slope),
        intercept=float(intercept),
        pearson=float(ci["estimate"][0]),
        pearson_lo=float(ci["lo"][0]),
        pearson_hi=float(ci["hi"][0]),
        spearman=float(ci["estimate"][1]),
        spearman_lo=float(ci["lo"][1]),
        spearman_hi=float(ci["hi"][1]),
        t1=t1,
        t2=t2,
    )
    for g, m in groups.items():
        out[f"n_{g}"] = int(m.sum())
        out[f"scene_error_{g}"] = float(y[m].mean()) if m.any() else float("nan")
    out["faces_matter"] = bool(out["pearson_lo"] > 0)
    return out


def meta_ranking(e: RunErrors, what: str, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The run's error on ``what`` against each meta-information variable (and the face-scene
    disagreement): Spearman's rho with a 95% bootstrap interval (numeric variables) and the
    mutual information (nats; scikit-learn's k-nearest-neighbour estimate, discrete for the
    scene's top class), ranked by mutual information."""
    from sklearn.feature_selection import mutual_info_regression

    err = e.error(what)
    rows = []
    for var in [*META, e.disagreement(what)]:
        if var not in e.table:
            continue
        d = e.table[[var, err]].replace("", np.nan).dropna()
        if len(d) < 10 or d[var].nunique() < 2:
            continue
        y = d[err].to_numpy(float)
        cat = var in CATEGORICAL
        x = pd.factorize(d[var])[0].astype(float) if cat else d[var].to_numpy(float)
        mi = float(mutual_info_regression(x[:, None], y, discrete_features=cat, random_state=seed)[0])
        row = {"run": e.name, "target": what, "variable": var, "n": len(d), "mutual_information": mi}
        if not cat:
            ci = bootstrap_ci(lambda i: _spearman(x[i], y[i]), len(x), n_boot=n_boot, seed=seed)
            row.update(spearman=ci["estimate"], spearman_lo=ci["lo"], spearman_hi=ci["hi"])
        rows.append(row)
    df = pd.DataFrame(
        rows, columns=["run", "target", "variable", "n", "mutual_information", "spearman", "spearman_lo", "spearman_hi"]
    )
    df = df.sort_values("mutual_information", ascending=False, kind="stable").reset_index(drop=True)
    df.insert(3, "rank", np.arange(1, len(df) + 1))
    return df


def confusion(e: RunErrors) -> np.ndarray:
    """[C, C] test confusion counts of the run (rows: true class)."""
    idx = {c: i for i, c in enumerate(e.classes)}
    cm = np.zeros((len(e.classes),) * 2, dtype=np.int64)
    np.add.at(cm, (e.table["label"].map(idx).to_numpy(), e.table["pred"].map(idx).to_numpy()), 1)
    return cm


def confused_pairs(e: RunErrors, top: int = 5) -> pd.DataFrame:
    """The ``top`` most confused pairs of classes (either direction), with both directions'
    counts and their share of the pair's test images."""
    cm = confusion(e)
    rows = []
    for i in range(len(cm)):
        for j in range(i + 1, len(cm)):
            n = int(cm[i, j] + cm[j, i])
            if n:
                rows.append(
                    {
                        "run": e.name,
                        "class_a": e.classes[i],
                        "class_b": e.classes[j],
                        "confusions": n,
                        "a_as_b": int(cm[i, j]),
                        "b_as_a": int(cm[j, i]),
                        "share_of_pair": n / int(cm[i].sum() + cm[j].sum()),
                    }
                )
    df = pd.DataFrame(rows, columns=["run", "class_a", "class_b", "confusions", "a_as_b", "b_as_a", "share_of_pair"])
    return df.sort_values(["confusions", "class_a", "class_b"], ascending=[False, True, True]).head(top)


def worst(e: RunErrors, n: int) -> pd.DataFrame:
    """The ``n`` test images with the largest error (the loss; for a valence/arousal run the
    summed absolute error of its variables), worst first, ties by image id."""
    score = e.table[[e.error(v) for v in e.variables]].sum(1) if e.variables else e.table["loss"]
    return (
        e.table.assign(_score=score)
        .sort_values(["_score", "image_id"], ascending=[False, True])
        .head(n)
        .drop(columns="_score")
    )
