"""The numbers the report derives from predictions.csv: F1 with bootstrap CIs, trust tables."""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from emolog.report.inputs import SOURCES

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


def per_class_f1(y: np.ndarray, p: np.ndarray, n_classes: int) -> np.ndarray:
    """F1 per class [C] from true and predicted indices [N].

    NaN for a class that is neither present nor predicted: its F1 is undefined, and counting
    it as 0 (or 1) would drag bootstrap intervals to a bound that no data supports.
    """
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y, p), 1)
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)  # predicted + true = 2 tp + fp + fn
    return np.divide(2 * tp, denom, out=np.full(n_classes, np.nan), where=denom > 0)


def bootstrap_per_class_f1(runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_classes: int,
                           n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, np.ndarray]:
    """Per-class F1 averaged over runs (seeds), with a percentile bootstrap CI over test images.

    ``runs``: one ``(image_ids [N], y [N], pred [N])`` per seed. When every run holds the same
    test images, each bootstrap replicate resamples the same images in every run (so the CI
    reflects image sampling, not seed noise twice); otherwise each run is resampled on its own.
    Returns ``{"f1": [C], "lo": [C], "hi": [C]}``.
    """
    if not runs:
        raise ValueError("bootstrap_per_class_f1: no runs")
    rng = np.random.default_rng(seed)
    ordered = []
    for ids, y, p in runs:
        o = np.argsort(ids, kind="stable")
        ordered.append((np.asarray(ids)[o], y[o], p[o]))
    shared = all(len(r[0]) == len(ordered[0][0]) and np.array_equal(r[0], ordered[0][0]) for r in ordered)
    n0 = len(ordered[0][0])
    reps = np.empty((n_boot, n_classes))
    # nanmean / nanquantile over a class absent from every run warn "all-NaN": expected, it is
    # reported as a missing value, not an error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        point = np.nanmean([per_class_f1(y, p, n_classes) for _, y, p in ordered], axis=0)
        for b in range(n_boot):
            shared_idx = rng.integers(0, n0, n0) if shared else None
            vals = [per_class_f1(y[i], p[i], n_classes)
                    for _, y, p in ordered
                    for i in [shared_idx if shared else rng.integers(0, len(y), len(y))]]
            reps[b] = np.nanmean(vals, axis=0)
        alpha = (1 - level) / 2
        lo, hi = np.nanquantile(reps, alpha, axis=0), np.nanquantile(reps, 1 - alpha, axis=0)
    return {"f1": point, "lo": lo, "hi": hi}


def _faces(df: pd.DataFrame, prefix: str) -> pd.Series:
    cols = [f"{prefix}{s}" for s in SOURCES[1:] if f"{prefix}{s}" in df.columns]
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
    labels = pd.Categorical([f"{k}+" if k == K else str(k) for k in n],
                            categories=[str(k) for k in range(K)] + [f"{K}+"], ordered=True)
    return _trust_table(df, pd.Series(labels), (y == p).astype(float))


def trust_by_face_size(df: pd.DataFrame, y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """As ``trust_by_face_count``, grouped by the largest face's share of the image area
    (bins ``FACE_SIZE_EDGES``; images without a face form their own group)."""
    area = pd.to_numeric(df["max_face_area"], errors="coerce")
    has_face = pd.to_numeric(df["n_faces"], errors="raise") > 0
    names = [f"{lo:.0%}-{hi:.0%}" for lo, hi in zip(FACE_SIZE_EDGES[:-1], FACE_SIZE_EDGES[1:])]
    bins = pd.cut(area.where(has_face), bins=list(FACE_SIZE_EDGES), labels=names, include_lowest=True)
    labels = pd.Categorical(np.where(has_face, bins.astype(str), "no face"),
                            categories=["no face"] + names, ordered=True)
    return _trust_table(df, pd.Series(labels), (y == p).astype(float))
