"""Evaluation metrics shared by training runs, baselines, experiments and the report.

Definitions (docs/architecture.md section 4, "M"); every score except ECE and NLL is
scikit-learn's:

* accuracy: fraction of argmax predictions equal to the label.
* macro_f1: unweighted mean of per-class F1 over the classes that occur in the labels *or* the
  predictions (scikit-learn's default set); a class that occurs in neither cannot be scored.
* weighted_f1: per-class F1 weighted by the class's support in the labels (scikit-learn's
  ``average="weighted"``), the figure the FindingEmo paper and the original thesis report.
* average_precision: per class, the area under the one-vs-rest precision-recall curve of that
  class's predicted probability (scikit-learn's ``average_precision_score``); macro = the
  unweighted mean over the classes that occur in the labels (AP is undefined without a positive).
* uar: unweighted average recall over the classes that occur in the labels (= scikit-learn's
  ``balanced_accuracy_score``), the usual affective-computing figure.
* nll: mean -ln p(label), with p clipped to >= 1e-12 so one confident miss stays finite.
* ece: expected calibration error of the top-1 confidence with 15 equal-width bins on [0, 1]:
  sum_b (|B_b| / N) * |accuracy(B_b) - mean confidence(B_b)| (Guo et al., 2017).

Confidence intervals all come from ``bootstrap_ci``: percentile intervals over resampled test
images and, when a system was trained more than once, over resampled trainings as well
(``interval_covers`` says which in words).
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np
from scipy.stats import bootstrap as scipy_bootstrap
from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support

ECE_BINS = 15
NLL_EPS = 1e-12

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def _check(probs: np.ndarray, labels: np.ndarray, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2:
        raise ValueError(f"probs must be [N, C], got shape {probs.shape}")
    if labels.shape != (len(probs),):
        raise ValueError(f"labels must be [N] = [{len(probs)}] class indices, got shape {labels.shape}")
    if len(probs) == 0:
        raise ValueError("cannot evaluate zero predictions")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    C = probs.shape[1] if n_classes is None else n_classes
    if probs.shape[1] != C:
        raise ValueError(f"probs have {probs.shape[1]} columns but there are {C} classes")
    if labels.min() < 0 or labels.max() >= C:
        raise ValueError(f"labels must be in 0..{C - 1}, got {labels.min()}..{labels.max()}")
    if not np.isfinite(probs).all() or (probs < 0).any():
        bad = np.flatnonzero(~np.isfinite(probs).all(1) | (probs < 0).any(1))
        raise ValueError(f"probs must be finite and non-negative; bad rows {bad[:10].tolist()}")
    if not np.allclose(probs.sum(1), 1.0, atol=1e-3):
        bad = np.flatnonzero(~np.isclose(probs.sum(1), 1.0, atol=1e-3))
        raise ValueError(f"probs rows must sum to 1; rows {bad[:10].tolist()} do not")
    return probs, labels.astype(np.int64)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy; probs [N, C], labels [N] class indices."""
    return float((np.asarray(probs).argmax(1) == np.asarray(labels)).mean())


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (nats) of the labels."""
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.log(np.maximum(p, NLL_EPS)).mean())


def macro_f1(probs: np.ndarray, labels: np.ndarray) -> float:
    """Macro-F1 over classes present in labels or predictions: scikit-learn's
    ``f1_score(average="macro")``, counted by ``per_class_f1`` because every paired bootstrap
    calls it thousands of times (the demo's experiment spent most of its time in
    scikit-learn's input checks)."""
    probs, labels = np.asarray(probs), np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ValueError("macro_f1 needs at least one image")
    n_classes = max(probs.shape[1], int(labels.max()) + 1)
    return float(np.nanmean(per_class_f1(labels, probs.argmax(1), n_classes)))


def weighted_f1(probs: np.ndarray, labels: np.ndarray) -> float:
    """Support-weighted F1 (scikit-learn's ``f1_score(average="weighted")``)."""
    return float(f1_score(np.asarray(labels), np.asarray(probs).argmax(1), average="weighted", zero_division=0))


def per_class_f1(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """F1 per class [C] from true and predicted indices [N]: scikit-learn's ``f1_score``
    (``2 tp / (n_true + n_pred)``), counted with ``bincount`` because bootstraps call it
    thousands of times (scikit-learn's input checks cost 100x the counting).

    NaN for a class that is neither present nor predicted: its F1 is undefined, and counting
    it as 0 (or 1) would drag bootstrap intervals to a bound that no data supports.
    """
    labels, pred = np.asarray(labels, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    tp = np.bincount(labels[labels == pred], minlength=n_classes)[:n_classes]
    total = (np.bincount(labels, minlength=n_classes) + np.bincount(pred, minlength=n_classes))[:n_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * tp / total, np.nan)


def per_class_average_precision(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One-vs-rest average precision per class [C]; NaN for a class absent from ``labels``."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    out = np.full(probs.shape[1], np.nan)
    for k in np.unique(labels):
        out[k] = average_precision_score(labels == k, probs[:, k])
    return out


def average_precision(probs: np.ndarray, labels: np.ndarray) -> float:
    """Macro average precision: the mean of ``per_class_average_precision`` over present classes."""
    return float(np.nanmean(per_class_average_precision(probs, labels)))


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top-1 confidence, ``n_bins`` equal-width bins."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    conf = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(np.float64)
    # Bin b holds conf in (b/n, (b+1)/n]; conf = 0 cannot occur for a distribution.
    b = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    # Per bin |sum(correct) - sum(conf)| / N == (|B|/N) * |acc(B) - conf(B)|.
    gap = np.abs(np.bincount(b, correct, n_bins) - np.bincount(b, conf, n_bins))
    return float(gap.sum() / len(labels))


def _none_if_nan(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def evaluate(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> dict:
    """All metrics of docs/architecture.md's "M" dict, for any label set (Emo8: 8 classes).

    Args:
        probs: [N, C] predicted distributions (rows sum to 1), columns in ``classes`` order.
        labels: [N] integer class indices into ``classes``.
        classes: the C class names.
    Returns:
        {"accuracy", "macro_f1", "weighted_f1", "average_precision", "uar", "nll", "ece", "n",
         "classes", "per_class": {cls: {"precision", "recall", "f1", "support",
         "average_precision" (None when the class has no test image)}}, "confusion" (rows = true)}.
    """
    probs, labels = _check(probs, labels, len(classes))
    C = len(classes)
    pred = probs.argmax(1)
    p, r, f, s = precision_recall_fscore_support(labels, pred, labels=list(range(C)), zero_division=0)
    ap = per_class_average_precision(probs, labels)
    confusion = np.zeros((C, C), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    return {
        "accuracy": accuracy(probs, labels),
        "macro_f1": macro_f1(probs, labels),
        "weighted_f1": weighted_f1(probs, labels),
        "average_precision": float(np.nanmean(ap)),
        # = sklearn's balanced_accuracy_score, without its warning for predicted-only classes
        "uar": float(r[s > 0].mean()),
        "nll": nll(probs, labels),
        "ece": ece(probs, labels),
        "n": int(len(labels)),
        "classes": list(classes),
        "per_class": {
            c: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
                "average_precision": _none_if_nan(ap[i]),
            }
            for i, c in enumerate(classes)
        },
        "confusion": confusion.tolist(),
    }


# ----------------------------------------------------------------------------- intervals


def interval_covers(n_trainings: int, level: float = 0.95) -> str:
    """What a ``bootstrap_ci`` interval over ``n_trainings`` trainings per system covers, in words."""
    pct = f"{level:.0%}"
    if n_trainings > 1:
        return (
            f"{pct} percentile bootstrap over the {n_trainings} trainings (resampled) and the "
            "test images (resampled): covers training variance and test-set sampling"
        )
    return (
        f"{pct} percentile bootstrap over test images only: one training per system, so "
        "training variance (seeds, folds) is not in the interval"
    )


def bootstrap_ci(
    statistic: Callable[..., float | np.ndarray],
    n_images: int,
    trainings: Sequence[int] = (),
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, np.ndarray | float]:
    """The one bootstrap of emolog: a statistic's estimate and percentile interval.

    ``statistic(images, *draws)`` gets an index array into the ``n_images`` test images and,
    per entry of ``trainings`` (the number of trainings of one system, e.g. its seeds), an
    index array of trainings; it returns a float or an array (e.g. per class), NaN where
    undefined (ignored by the quantiles). Resampling:

    * ``groups`` (one training id per image: pooled test images, each predicted by one of
      several trainings, as in cross-fitting): two-stage cluster bootstrap, trainings drawn
      with replacement, then images within each drawn training;
    * ``trainings`` with any entry > 1: hierarchical bootstrap, each replicate draws the
      trainings of every entry and the test images, independently, with replacement;
    * otherwise test images only, through ``scipy.stats.bootstrap`` (percentile method).

    Seeded, deterministic. Returns ``{"estimate", "lo", "hi"}``.
    """
    if n_images < 1:
        raise ValueError("bootstrap_ci needs at least one test image")
    rng = np.random.default_rng(seed)
    all_images = np.arange(n_images)
    full = [np.arange(t) for t in trainings]
    estimate = np.asarray(statistic(all_images, *full), dtype=float)
    alpha = (1 - level) / 2
    with warnings.catch_warnings():
        # NaN replicates (a class absent from a resample) and degenerate distributions (two
        # identical systems) are expected: they give NaN or a zero-width interval, not an error
        warnings.simplefilter("ignore")
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (n_images,):
                raise ValueError(f"groups must hold one training id per image ({n_images}), got {groups.shape}")
            members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
            reps = []
            for _ in range(n_boot):
                drawn = rng.integers(0, len(members), len(members))
                idx = np.concatenate([members[g][rng.integers(0, len(members[g]), len(members[g]))] for g in drawn])
                reps.append(statistic(idx, *full))
            dist = np.moveaxis(np.asarray(reps, dtype=float), 0, -1)
        elif any(t > 1 for t in trainings):
            reps = [
                statistic(rng.integers(0, n_images, n_images), *(rng.integers(0, t, t) for t in trainings))
                for _ in range(n_boot)
            ]
            dist = np.moveaxis(np.asarray(reps, dtype=float), 0, -1)
        else:
            res = scipy_bootstrap(
                (all_images,),
                lambda idx: statistic(idx.astype(np.int64), *full),
                vectorized=False,
                n_resamples=n_boot,
                method="percentile",
                confidence_level=level,
                random_state=rng,
                batch=100,
            )  # resamples drawn 100 at a time: bounded memory on 25,000 images
            dist = np.asarray(res.bootstrap_distribution, dtype=float)
        lo, hi = np.nanquantile(dist, alpha, axis=-1), np.nanquantile(dist, 1 - alpha, axis=-1)
    if estimate.ndim == 0:
        return {"estimate": float(estimate), "lo": float(lo), "hi": float(hi)}
    return {"estimate": estimate, "lo": lo, "hi": hi}


def paired_bootstrap(
    metric_fn: MetricFn,
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    labels: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> dict[str, float]:
    """Paired bootstrap of metric(a) - metric(b) over the same images (``bootstrap_ci``).

    Both systems are scored on the same resampled images (rows of ``probs_a``, ``probs_b`` and
    ``labels`` must belong to the same image ids, in the same order), so image difficulty
    cancels. ``groups``: one training id per image when the pooled images were predicted by
    several trainings (e.g. cross-fitted folds of several seeds): trainings are resampled too,
    so the interval counts training variance. Returns ``{"diff", "lo", "hi"}``.
    """
    if np.shape(probs_a) != np.shape(probs_b):
        raise ValueError(f"probs_a {np.shape(probs_a)} and probs_b {np.shape(probs_b)} must describe the same images")
    probs_a, labels = _check(probs_a, labels)
    probs_b, _ = _check(probs_b, labels)
    r = bootstrap_ci(
        lambda idx: metric_fn(probs_a[idx], labels[idx]) - metric_fn(probs_b[idx], labels[idx]),
        len(labels),
        groups=groups,
        n_boot=n_boot,
        seed=seed,
    )
    return {"diff": r["estimate"], "lo": r["lo"], "hi": r["hi"]}


def paired_bootstrap_seeds(
    metric_fn: MetricFn,
    probs_a: Sequence[np.ndarray],
    probs_b: Sequence[np.ndarray],
    labels: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """``paired_bootstrap`` for systems trained with several seeds on the same test images:
    the difference of the seed-averaged metric, mean_s metric(a_s) - mean_s metric(b_s).

    A hierarchical bootstrap (``bootstrap_ci``): every replicate resamples the test images
    (jointly for both systems, so image difficulty cancels) and each system's seeds (paired by
    seed index when both have as many seeds, which share the data split; independently
    otherwise, e.g. against a deterministic baseline with one entry), so the interval counts
    training variance (``interval_covers`` words it). ``probs_a``/``probs_b``: lists of [N, C]
    arrays, rows aligned with ``labels``. Returns ``{"diff", "lo", "hi"}``.
    """
    if not probs_a or not probs_b:
        raise ValueError("paired_bootstrap_seeds needs at least one prediction array per system")
    shapes = {np.shape(p) for p in list(probs_a) + list(probs_b)}
    if len(shapes) != 1:
        raise ValueError(f"all prediction arrays must describe the same images; got shapes {sorted(shapes)}")
    A = [_check(p, labels)[0] for p in probs_a]
    B = [_check(p, labels)[0] for p in probs_b]
    labels = np.asarray(labels, dtype=np.int64)
    paired = len(A) == len(B)

    def diff(idx: np.ndarray, ta: np.ndarray, tb: np.ndarray | None = None) -> float:
        y = labels[idx]
        tb = ta if tb is None else tb
        return float(np.mean([metric_fn(A[s][idx], y) for s in ta])) - float(
            np.mean([metric_fn(B[s][idx], y) for s in tb])
        )

    trainings = (len(A),) if paired else (len(A), len(B))
    r = bootstrap_ci(diff, len(labels), trainings, n_boot=n_boot, seed=seed)
    return {"diff": r["estimate"], "lo": r["lo"], "hi": r["hi"]}


MAJORITY_WARNING = (
    "accuracy is at the majority-class level: check that the cache and the index are "
    "aligned (labels may not belong to their images); with very few training images "
    "the model may also simply have learned nothing yet"
)


def sanity_check(accuracy_: float, n: int, majority_accuracy: float, z: float = 1.96) -> str | None:
    """A loud warning when ``accuracy_`` is no better than always predicting the majority class.

    "No better" means below the majority rate plus the binomial 95% margin
    ``z * sqrt(p (1 - p) / n)`` with p = ``majority_accuracy`` on ``n`` test images; returns
    None when the accuracy is clearly above it.
    """
    if n <= 0:
        raise ValueError("sanity_check needs n > 0 test images")
    p = float(majority_accuracy)
    margin = z * np.sqrt(p * (1 - p) / n)
    if accuracy_ <= p + margin:
        return (
            f"WARNING: {MAJORITY_WARNING} (test accuracy {accuracy_:.3f} <= majority-class "
            f"{p:.3f} + 95% margin {margin:.3f}, n={n})"
        )
    return None
