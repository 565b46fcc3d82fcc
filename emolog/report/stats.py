"""The numbers the report derives from predictions.csv: F1 with bootstrap CIs, trust tables.

F1 is scikit-learn's and the interval ``metrics.bootstrap_ci``, the bootstrap the training
metrics use too.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from emolog.metrics.classification import bootstrap_ci, per_class_f1

# max_face_area = largest face box area / image area; edges chosen so that a "small" face
# (< 1% of the image, a crowd in the distance) and a portrait (> 10%) land in different bins.
FACE_SIZE_EDGES: tuple[float, ...] = (0.0, 0.01, 0.03, 0.10, 1.0)


def class_indices(values: pd.Series | Sequence, classes: Sequence[str], where: str) -> np.ndarray:
    """Labels given as class names or as integer indices -> int array [N].

    Raises ValueError naming ``where`` and the offending values when any value is neither.
    """
    s = pd.Series(list(values))
    pos = {c: i for i, c in enumerate(classes)}
    as_name = s.astype(str).map(pos)
    if as_name.notna().all():
        return as_name.to_numpy(dtype=np.int64)
    as_int = pd.to_numeric(s, errors="coerce")
    ok = as_int.notna() & (as_int >= 0) & (as_int < len(classes)) & (as_int == as_int.round())
    if ok.all():
        return as_int.to_numpy(dtype=np.int64)
    bad = sorted(set(s[~ok & as_name.isna()].astype(str)))[:5]
    raise ValueError(f"{where}: values that are neither a class of {list(classes)} nor an index: {bad}")


def bootstrap_per_class_f1(
    runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_classes: int,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, np.ndarray]:
    """Per-class F1 averaged over runs (seeds), with a percentile bootstrap CI
    (``metrics.bootstrap_ci``).

    ``runs``: one ``(image_ids [N], y [N], pred [N])`` per seed. When every run holds the same
    test images, each replicate resamples the seeds and the images (the same images for every
    drawn seed): a hierarchical bootstrap whose interval counts training variance. Otherwise
    each run's images are its own group (a cluster bootstrap over runs and their images).
    F1 of a class neither present nor predicted is NaN and left out of means and quantiles.
    Returns ``{"f1": [C], "lo": [C], "hi": [C]}``.
    """
    if not runs:
        raise ValueError("bootstrap_per_class_f1: no runs")
    ordered = []
    for ids, y, p in runs:
        o = np.argsort(ids, kind="stable")
        ordered.append((np.asarray(ids)[o], np.asarray(y)[o], np.asarray(p)[o]))
    shared = all(len(r[0]) == len(ordered[0][0]) and np.array_equal(r[0], ordered[0][0]) for r in ordered)

    def mean_f1(parts: list[np.ndarray]) -> np.ndarray:
        # a class absent from every run is NaN in all of them: reported missing, not a warning
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(parts, axis=0)

    if shared:

        def stat(idx: np.ndarray, seeds: np.ndarray) -> np.ndarray:
            return mean_f1([per_class_f1(ordered[s][1][idx], ordered[s][2][idx], n_classes) for s in seeds])

        r = bootstrap_ci(stat, len(ordered[0][0]), (len(ordered),), n_boot=n_boot, seed=seed, level=level)
    else:
        y = np.concatenate([r[1] for r in ordered])
        p = np.concatenate([r[2] for r in ordered])
        groups = np.concatenate([np.full(len(r[1]), k) for k, r in enumerate(ordered)])

        def stat(idx: np.ndarray) -> np.ndarray:
            return mean_f1(
                [
                    per_class_f1(y[idx][groups[idx] == g], p[idx][groups[idx] == g], n_classes)
                    for g in np.unique(groups[idx])
                ]
            )

        r = bootstrap_ci(
            stat, len(y), groups=groups if len(ordered) > 1 else None, n_boot=n_boot, seed=seed, level=level
        )
    return {"f1": r["estimate"], "lo": r["lo"], "hi": r["hi"]}


def _faces(df: pd.DataFrame, prefix: str) -> pd.Series:
    # every source but the scene: the face slots, however many the program has
    cols = [c for c in df.columns if c.startswith(prefix) and c != f"{prefix}scene"]
    return df[cols].sum(axis=1)


def _trust_table(df: pd.DataFrame, group: pd.Series, correct: np.ndarray) -> pd.DataFrame:
    """Per group: images, accuracy, mean scene/faces posterior and per-image weight."""
    # keep the categorical dtype: groups come out in bin order (1%-3% before 10%-100%)
    work = pd.DataFrame({"group": group.reset_index(drop=True), "correct": correct})
    for prefix, what in (("post_", "posterior"), ("w_", "weight")):
        if f"{prefix}scene" in df.columns:
            work[f"scene {what}"] = df[f"{prefix}scene"].to_numpy()
            work[f"faces {what}"] = _faces(df, prefix).to_numpy()
    g = work.groupby("group", observed=True, sort=True)
    out = g.mean(numeric_only=True).rename(columns={"correct": "accuracy"})
    out.insert(0, "images", g.size())
    return out.reset_index()


def trust_by_face_count(df: pd.DataFrame, y: np.ndarray, p: np.ndarray, K: int = 3) -> pd.DataFrame:
    """One row per detected-face count (0, 1, ..., K, with ``K+`` for K or more faces).

    Columns: group, images, accuracy, scene/faces posterior (mean P(source | label, evidence))
    and scene/faces weight (mean per-image source probability); faces = sum over face slots.
    """
    n = pd.to_numeric(df["n_faces"], errors="raise").astype(int).clip(upper=K)
    labels = pd.Categorical(
        [f"{k}+" if k == K else str(k) for k in n], categories=[str(k) for k in range(K)] + [f"{K}+"], ordered=True
    )
    return _trust_table(df, pd.Series(labels), (y == p).astype(float))


def trust_by_face_size(df: pd.DataFrame, y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """As ``trust_by_face_count``, grouped by the largest face's share of the image area
    (bins ``FACE_SIZE_EDGES``; images without a face form their own group)."""
    area = pd.to_numeric(df["max_face_area"], errors="coerce")
    has_face = pd.to_numeric(df["n_faces"], errors="raise") > 0
    names = [f"{lo:.0%}-{hi:.0%}" for lo, hi in zip(FACE_SIZE_EDGES[:-1], FACE_SIZE_EDGES[1:])]
    bins = pd.cut(area.where(has_face), bins=list(FACE_SIZE_EDGES), labels=names, include_lowest=True)
    labels = pd.Categorical(
        np.where(has_face, bins.astype(str), "no face"), categories=["no face"] + names, ordered=True
    )
    return _trust_table(df, pd.Series(labels), (y == p).astype(float))
