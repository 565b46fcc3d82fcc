"""Metrics against hand-computed cases and scikit-learn; the paired bootstrap; the sanity check."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, balanced_accuracy_score, f1_score, log_loss

from emolog.labels import EMO8
from emolog.metrics.classification import (
    ECE_BINS,
    MAJORITY_WARNING,
    accuracy,
    bootstrap_ci,
    ece,
    evaluate,
    interval_covers,
    macro_f1,
    nll,
    paired_bootstrap,
    paired_bootstrap_seeds,
    sanity_check,
)

CLASSES = ("a", "b", "c")


def test_hand_computed_case():
    # labels a a b c; predictions a b b a (argmax), confidences 0.8 0.5 0.6 0.4
    probs = np.array([[0.8, 0.1, 0.1], [0.3, 0.5, 0.2], [0.2, 0.6, 0.2], [0.4, 0.3, 0.3]])
    labels = np.array([0, 0, 1, 2])
    m = evaluate(probs, labels, CLASSES)
    assert m["accuracy"] == pytest.approx(0.5)
    # per class: a: P=1/2 R=1/2 F=1/2; b: P=1/2 R=1 F=2/3; c: P=0 R=0 F=0
    # AP, one-vs-rest: a's scores rank 0.8 (a), 0.4 (c), 0.3 (a), 0.2 (b): precision 1 and 2/3 at
    # its two hits; b's highest score 0.6 and c's 0.3 are their own images: AP 1
    assert m["per_class"]["a"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "average_precision": (1 + 2 / 3) / 2}
    )
    assert m["per_class"]["b"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1, "average_precision": 1.0}
    )
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "average_precision": 1.0}
    assert m["average_precision"] == pytest.approx(((1 + 2 / 3) / 2 + 1 + 1) / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert m["weighted_f1"] == pytest.approx((2 * 0.5 + 2 / 3 + 0) / 4)
    assert m["uar"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert m["nll"] == pytest.approx(-np.mean(np.log([0.8, 0.3, 0.6, 0.3])))
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert m["n"] == 4 and m["classes"] == list(CLASSES)
    # ECE, 15 bins of width 1/15: 0.8 -> bin 11, 0.5 -> bin 7, 0.6 -> bin 8, 0.4 -> bin 5;
    # one item per bin: mean |correct - conf| = (0.2 + 0.5 + 0.4 + 0.4) / 4
    assert m["ece"] == pytest.approx((0.2 + 0.5 + 0.4 + 0.4) / 4)


def test_ece_pools_items_in_a_bin():
    # two items at confidence 0.7 (same bin), one right and one wrong: |0.5 - 0.7| = 0.2
    probs = np.array([[0.7, 0.3], [0.7, 0.3]])
    assert ece(probs, np.array([0, 1])) == pytest.approx(0.2)
    assert ECE_BINS == 15
    # perfectly calibrated: confidence 1 and always right
    assert ece(np.eye(2)[[0, 1, 1]], np.array([0, 1, 1])) == 0.0


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_against_sklearn():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(7) * 0.7, size=400)
    labels = rng.integers(0, 7, 400)
    labels[:5] = 6  # make sure every class occurs... except class 5
    labels[labels == 5] = 4
    pred = probs.argmax(1)
    m = evaluate(probs, labels, tuple("abcdefg"))
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(labels, pred, average="macro"))
    assert macro_f1(probs, labels) == pytest.approx(m["macro_f1"])  # fast version used by the bootstrap
    assert m["weighted_f1"] == pytest.approx(f1_score(labels, pred, average="weighted"))
    assert m["uar"] == pytest.approx(balanced_accuracy_score(labels, pred))
    for k in (0, 3, 6):
        assert m["per_class"]["abcdefg"[k]]["average_precision"] == pytest.approx(
            average_precision_score(labels == k, probs[:, k])
        )
    assert m["per_class"]["f"]["average_precision"] is None  # class 5 has no test image: undefined
    assert m["nll"] == pytest.approx(log_loss(labels, probs, labels=list(range(7))))
    assert np.array(m["confusion"]).sum() == 400 and np.trace(m["confusion"]) == (pred == labels).sum()


def test_bad_input_is_refused_with_the_reason():
    good = np.array([[0.5, 0.5]])
    with pytest.raises(ValueError, match="sum to 1"):
        evaluate(np.array([[0.5, 0.6]]), np.array([0]), ("x", "y"))
    with pytest.raises(ValueError, match="labels must be in 0..1"):
        evaluate(good, np.array([2]), ("x", "y"))
    with pytest.raises(ValueError, match="3 classes"):
        evaluate(good, np.array([0]), ("x", "y", "z"))
    with pytest.raises(ValueError, match="bad rows \\[1\\]"):
        evaluate(np.array([[0.5, 0.5], [np.nan, 1.0]]), np.array([0, 1]), ("x", "y"))
    with pytest.raises(ValueError, match="integer"):
        evaluate(good, np.array([0.0]), ("x", "y"))


def test_nll_stays_finite_on_a_confident_miss():
    assert np.isfinite(nll(np.array([[1.0, 0.0]]), np.array([1])))


def _constructed(n: int, acc_a: float, acc_b: float, seed: int):
    """Two systems with known true accuracies on n images (independent errors)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)

    def system(acc):
        right = rng.uniform(size=n) < acc
        pred = np.where(right, labels, (labels + rng.integers(1, 4, n)) % 4)
        return np.eye(4)[pred] * 0.7 + 0.075

    return system(acc_a), system(acc_b), labels


def test_paired_bootstrap_covers_the_true_difference():
    # True difference 0.70 - 0.60 = 0.10; a 95% interval should contain it in ~95% of data
    # sets. With 20 independent data sets, at least 16 must cover (P(fewer) < 0.002).
    covered = 0
    for s in range(20):
        a, b, y = _constructed(800, 0.70, 0.60, seed=s)
        r = paired_bootstrap(accuracy, a, b, y, n_boot=300, seed=s)
        assert r["lo"] <= r["diff"] <= r["hi"]
        assert r["diff"] == pytest.approx(accuracy(a, y) - accuracy(b, y))
        covered += r["lo"] <= 0.10 <= r["hi"]
    assert covered >= 16
    # the interval excludes 0 for a real difference, and straddles it for identical systems
    a, b, y = _constructed(2000, 0.70, 0.60, seed=99)
    assert paired_bootstrap(accuracy, a, b, y, n_boot=300)["lo"] > 0
    same = paired_bootstrap(macro_f1, a, a, y, n_boot=100)
    assert same == {"diff": 0.0, "lo": 0.0, "hi": 0.0}


def test_paired_bootstrap_is_seeded():
    a, b, y = _constructed(300, 0.6, 0.5, seed=1)
    assert paired_bootstrap(nll, a, b, y, seed=3) == paired_bootstrap(nll, a, b, y, seed=3)
    with pytest.raises(ValueError, match="same images"):
        paired_bootstrap(accuracy, a, b[:10], y)


def test_evaluate_is_generic_over_the_label_set():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(len(EMO8)), size=300)
    m = evaluate(probs, rng.integers(0, len(EMO8), 300), EMO8)
    assert list(m["per_class"]) == list(EMO8) and np.shape(m["confusion"]) == (8, 8)


def _seed_noise(n_seeds: int, spread: float, seed: int = 0):
    """One test set; system a's seeds differ in accuracy by ``spread`` around 0.65, b is 0.6."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 3000)

    def system(acc):
        right = rng.uniform(size=len(y)) < acc
        return np.eye(4)[np.where(right, y, (y + 1) % 4)] * 0.7 + 0.075

    a = [system(0.65 + spread * (s - (n_seeds - 1) / 2)) for s in range(n_seeds)]
    return a, [system(0.6) for _ in range(n_seeds)], y


def test_hierarchical_bootstrap_counts_training_variance():
    quiet_a, quiet_b, y = _seed_noise(4, 0.0)
    noisy_a, noisy_b, _ = _seed_noise(4, 0.06)
    quiet = paired_bootstrap_seeds(accuracy, quiet_a, quiet_b, y, n_boot=300)
    noisy = paired_bootstrap_seeds(accuracy, noisy_a, noisy_b, y, n_boot=300)
    # same mean difference, but seeds that disagree widen the interval
    assert (noisy["hi"] - noisy["lo"]) > 1.5 * (quiet["hi"] - quiet["lo"])
    assert "trainings" in interval_covers(4) and "not in the interval" in interval_covers(1)


def test_cluster_bootstrap_resamples_the_trainings_of_pooled_images():
    a, b, y = _seed_noise(1, 0.0)
    pooled = paired_bootstrap(accuracy, a[0], b[0], y, n_boot=300)
    # the first 1500 images predicted by one training that is far better, the rest by a worse one
    groups = np.repeat([0, 1], 1500)
    a2 = a[0].copy()
    a2[1500:] = b[0][1500:]
    clustered = paired_bootstrap(accuracy, a2, b[0], y, n_boot=300, groups=groups)
    image_only = paired_bootstrap(accuracy, a2, b[0], y, n_boot=300)
    assert clustered["diff"] == image_only["diff"]
    assert clustered["hi"] - clustered["lo"] > 2 * (image_only["hi"] - image_only["lo"])
    assert pooled["lo"] <= pooled["diff"] <= pooled["hi"]


def test_bootstrap_ci_vector_statistic_and_nan():
    y = np.array([0, 0, 1, 1, 2])
    r = bootstrap_ci(lambda idx: np.array([np.mean(y[idx] == 0), np.nan]), len(y), n_boot=200)
    assert r["lo"][0] <= r["estimate"][0] <= r["hi"][0] and np.isnan(r["hi"][1])


def test_sanity_check():
    # majority 0.355 on 1000 images: margin 1.96*sqrt(.355*.645/1000) = 0.0297
    msg = sanity_check(0.37, 1000, 0.355)
    assert msg is not None and MAJORITY_WARNING in msg
    assert sanity_check(0.40, 1000, 0.355) is None
    assert sanity_check(0.30, 1000, 0.355) is not None  # worse than majority: also loud


def test_macro_f1_is_scikit_learns_on_resamples_with_absent_and_unpredicted_classes():
    """The bootstrap's counted macro-F1 equals ``f1_score(average="macro")`` (classes present in
    the labels or the predictions) on draws where some classes are absent, never predicted, or
    predicted without being present."""
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 40, 300):
        for _ in range(20):
            probs = rng.dirichlet(np.full(7, 0.3), n)
            labels = rng.choice([0, 2, 3, 6], n)  # classes 1, 4, 5 never true
            want = f1_score(labels, probs.argmax(1), average="macro", zero_division=0)
            assert macro_f1(probs, labels) == pytest.approx(want, abs=1e-15)
    with pytest.raises(ValueError, match="at least one image"):
        macro_f1(np.zeros((0, 7)), np.zeros(0, dtype=int))
