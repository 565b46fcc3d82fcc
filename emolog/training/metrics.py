"""Evaluation metrics shared by training runs, baselines, experiments and the report.

Definitions (docs/architecture.md section 4, "M"):

* accuracy: fraction of argmax predictions equal to the label.
* macro_f1: unweighted mean of per-class F1 over the classes that occur in the labels *or* the
  predictions (scikit-learn's default set); a class that occurs in neither cannot be scored.
* uar: unweighted average recall over the classes that occur in the labels (= scikit-learn's
  ``balanced_accuracy_score``), the usual affective-computing figure.
* nll: mean -ln p(label), with p clipped to >= 1e-12 so one confident miss stays finite.
* ece: expected calibration error of the top-1 confidence with 15 equal-width bins on [0, 1]:
  sum_b (|B_b| / N) * |accuracy(B_b) - mean confidence(B_b)| (Guo et al., 2017).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

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
    """Macro-F1 over classes present in labels or predictions (fast; equals sklearn's default)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    C = probs.shape[1]
    pred = probs.argmax(1)
    tp = np.bincount(labels[pred == labels], minlength=C).astype(np.float64)
    n_true = np.bincount(labels, minlength=C)
    n_pred = np.bincount(pred, minlength=C)
    present = (n_true + n_pred) > 0
    f1 = np.divide(2 * tp, n_true + n_pred, out=np.zeros(C), where=present)
    return float(f1[present].mean())


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


def evaluate(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> dict:
    """All metrics of docs/architecture.md's "M" dict.

    Args:
        probs: [N, C] predicted distributions (rows sum to 1), columns in ``classes`` order.
        labels: [N] integer class indices into ``classes``.
        classes: the C class names.
    Returns:
        {"accuracy", "macro_f1", "uar", "nll", "ece", "n", "classes",
         "per_class": {cls: {"precision", "recall", "f1", "support"}}, "confusion" (rows = true)}.
    """
    probs, labels = _check(probs, labels, len(classes))
    C = len(classes)
    pred = probs.argmax(1)
    p, r, f, s = precision_recall_fscore_support(labels, pred, labels=list(range(C)), zero_division=0)
    confusion = np.zeros((C, C), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    return {
        "accuracy": accuracy(probs, labels),
        "macro_f1": float(f1_score(labels, pred, average="macro", zero_division=0)),
        # = sklearn's balanced_accuracy_score, without its warning for predicted-only classes
        "uar": float(r[s > 0].mean()),
        "nll": nll(probs, labels),
        "ece": ece(probs, labels),
        "n": int(len(labels)),
        "classes": list(classes),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                          "support": int(s[i])} for i, c in enumerate(classes)},
        "confusion": confusion.tolist(),
    }


def paired_bootstrap(metric_fn: MetricFn, probs_a: np.ndarray, probs_b: np.ndarray, labels: np.ndarray,
                     n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Paired bootstrap of metric(a) - metric(b) over images.

    Both systems are scored on the same resampled images (rows of ``probs_a``, ``probs_b`` and
    ``labels`` must belong to the same image ids, in the same order), so image difficulty
    cancels. Returns the observed difference and the 2.5/97.5 percentiles of ``n_boot``
    resampled differences: ``{"diff", "lo", "hi"}``. Seeded, deterministic.
    """
    if np.shape(probs_a) != np.shape(probs_b):
        raise ValueError(f"probs_a {np.shape(probs_a)} and probs_b {np.shape(probs_b)} must describe the same images")
    probs_a, labels = _check(probs_a, labels)
    probs_b, _ = _check(probs_b, labels)
    rng = np.random.default_rng(seed)
    n = len(labels)
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, n, n)
        diffs[i] = metric_fn(probs_a[idx], labels[idx]) - metric_fn(probs_b[idx], labels[idx])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"diff": float(metric_fn(probs_a, labels) - metric_fn(probs_b, labels)),
            "lo": float(lo), "hi": float(hi)}


def paired_bootstrap_seeds(metric_fn: MetricFn, probs_a: Sequence[np.ndarray], probs_b: Sequence[np.ndarray],
                           labels: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """``paired_bootstrap`` for systems run with several seeds: the difference of the
    seed-averaged metric, mean_s metric(a_s) - mean_s metric(b_s), with images resampled
    jointly for every seed (so image difficulty cancels and seed noise is averaged).

    ``probs_a``/``probs_b`` are lists of [N, C] arrays (one per seed; the two lists may differ
    in length, e.g. a deterministic baseline with one entry), rows aligned with ``labels``.
    """
    if not probs_a or not probs_b:
        raise ValueError("paired_bootstrap_seeds needs at least one prediction array per system")
    shapes = {np.shape(p) for p in list(probs_a) + list(probs_b)}
    if len(shapes) != 1:
        raise ValueError(f"all prediction arrays must describe the same images; got shapes {sorted(shapes)}")
    A = [_check(p, labels)[0] for p in probs_a]
    B = [_check(p, labels)[0] for p in probs_b]
    labels = np.asarray(labels, dtype=np.int64)

    def diff(idx: np.ndarray | slice) -> float:
        y = labels[idx]
        return (float(np.mean([metric_fn(p[idx], y) for p in A]))
                - float(np.mean([metric_fn(p[idx], y) for p in B])))

    rng = np.random.default_rng(seed)
    n = len(labels)
    diffs = np.array([diff(rng.integers(0, n, n)) for _ in range(n_boot)])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"diff": diff(slice(None)), "lo": float(lo), "hi": float(hi)}


MAJORITY_WARNING = ("accuracy is at the majority-class level: check that the cache and the index are "
                    "aligned (labels may not belong to their images); with very few training images "
                    "the model may also simply have learned nothing yet")


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
        return (f"WARNING: {MAJORITY_WARNING} (test accuracy {accuracy_:.3f} <= majority-class "
                f"{p:.3f} + 95% margin {margin:.3f}, n={n})")
    return None
