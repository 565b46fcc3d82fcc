"""The context-trust experiment's scores: each seed's test scores of the arms and references
(NLL, macro-F1 and, for the arms, the correlation of their per-image source probabilities with
the true ones), their summary over seeds with the paired cluster bootstrap against ``global``,
and the Markdown tables of the results.

Split from ``emolog.analysis.context_experiment``, which trains the arms and passes their
predictions here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emolog.config.run import SOURCES
from emolog.labels import BASIC7


def _probs(pred: pd.DataFrame) -> np.ndarray:
    p = pred[[f"p_{c}" for c in BASIC7]].to_numpy(np.float64)
    return p / p.sum(1, keepdims=True)  # predictions.csv rounds to 6 significant digits


def _conditioned(pred: pd.DataFrame) -> np.ndarray:
    """Per-image source probabilities [N, 4] given the sources present: predictions.csv's
    ``w_<source>`` renormalised over the scene and the filled face slots (a global run writes
    its unconditioned global weights there; a gated run's are already conditioned)."""
    w = pred[[f"w_{s}" for s in SOURCES]].to_numpy(np.float64)
    present = np.concatenate(
        [np.ones((len(w), 1), bool), pred["n_faces"].to_numpy()[:, None] > np.arange(len(SOURCES) - 1)[None]], 1
    )
    w = w * present
    return w / w.sum(1, keepdims=True)


def score_seed(
    data: Path,
    seed: int,
    preds: dict[str, pd.DataFrame],
    refs: dict[str, list[np.ndarray]],
    probs: dict[str, list[np.ndarray]],
    corr: dict[str, list[dict]],
) -> tuple[np.ndarray, dict]:
    """(test labels, per-seed row) of one seed; appends each arm's probabilities to ``probs``
    and its source correlations to ``corr``."""
    from emolog.model.gate import source_correlation
    from emolog.metrics.classification import macro_f1, nll

    ids = preds["global"]["image_id"].tolist()
    y = np.array([BASIC7.index(v) for v in preds["global"]["label"]])
    truth = pd.read_csv(data / "truth.csv", dtype={"image_id": str}).set_index("image_id").loc[ids]
    p_true = truth[[f"p_{s}" for s in SOURCES]].to_numpy(np.float64)
    row: dict = {"seed": seed}
    for arm, pred in preds.items():
        probs[arm].append(_probs(pred))
        c = source_correlation(_conditioned(pred), p_true)
        corr[arm].append(c)
        row[arm] = {"nll": nll(probs[arm][-1], y), "macro_f1": macro_f1(probs[arm][-1], y), **c}
    for name, parts_p in refs.items():
        p = np.concatenate(parts_p)
        probs[name].append(p)
        row[name] = {"nll": nll(p, y), "macro_f1": macro_f1(p, y)}
    return y, row


def summarise(
    arm: str,
    probs: dict[str, list[np.ndarray]],
    labels: list[np.ndarray],
    corr: dict[str, list[dict]],
    y_all: np.ndarray,
    groups: np.ndarray,
    n_boot: int,
) -> dict:
    """One arm's (or reference's) summary over the seeds, and its difference to the global arm."""
    from emolog.metrics.classification import accuracy, macro_f1, nll, paired_bootstrap

    a = np.array([(nll(p, y), macro_f1(p, y), accuracy(p, y)) for p, y in zip(probs[arm], labels)])
    entry = {
        "nll_mean": float(a[:, 0].mean()),
        "nll_sd": float(a[:, 0].std(ddof=1)) if len(a) > 1 else 0.0,
        "macro_f1_mean": float(a[:, 1].mean()),
        "macro_f1_sd": float(a[:, 1].std(ddof=1)) if len(a) > 1 else 0.0,
        "accuracy_mean": float(a[:, 2].mean()),
    }
    if arm in corr:
        entry["r_available_mean"] = float(np.mean([c["r_available"] for c in corr[arm]]))
        entry["r_scene_mean"] = float(np.mean([c["r_scene"] for c in corr[arm]]))
    if arm != "global":
        pa, pb = np.concatenate(probs[arm]), np.concatenate(probs["global"])
        # trainings resampled too (cluster bootstrap): the interval counts training variance
        entry["vs_global"] = {
            m: paired_bootstrap(fn, pa, pb, y_all, n_boot=n_boot, seed=0, groups=groups)
            for m, fn in (("nll", nll), ("macro_f1", macro_f1))
        }
    return entry


def format_markdown(result: dict) -> str:
    """The results as Markdown tables, one per variant."""
    c = result["config"]
    folds = c.get("folds", 1)
    testing = (
        "each data set's 20% test split"
        if folds == 1
        else f"{folds}-fold cross-fitting (every image tested once, by arms trained without it)"
    )
    lines = [
        f"Simulated data: {c['n']} images per seed, seeds {c['seeds']}, scene snr {c['snr']}, "
        f"{c.get('face_calibration', 'calibrated')} face recogniser; test images: {testing}; regime "
        f"{c['regime']}, logic optimiser {c['logic_optimizer']} lr {c['logic_lr']}, up to {c['epochs']} "
        f"epochs with early stopping. Δ = arm − global on the pooled test images of all seeds "
        f"(paired cluster bootstrap, {c['n_boot']} resamples, 95% CI: each resample draws the "
        f"trainings (seed x fold) and then their test images, so the interval counts training "
        f"variance); NLL lower is better.",
        "",
    ]
    for variant, v in result["variants"].items():
        lines += [
            f"**{variant}** ({v['n_test_pooled']} test images pooled)",
            "",
            "| arm | NLL | macro-F1 | accuracy | Δ NLL [95% CI] | Δ macro-F1 [95% CI] | r (sources present) | r (scene) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for arm, e in v["summary"].items():

            def ci(key: str) -> str:
                if "vs_global" not in e:
                    return "—"
                b = e["vs_global"][key]
                return f"{b['diff']:+.4f} [{b['lo']:+.4f}, {b['hi']:+.4f}]"

            r1 = f"{e['r_available_mean']:.3f}" if "r_available_mean" in e else "—"
            r2 = f"{e['r_scene_mean']:.3f}" if "r_scene_mean" in e else "—"
            lines.append(
                f"| {arm} | {e['nll_mean']:.4f} ± {e['nll_sd']:.4f} | {e['macro_f1_mean']:.4f} ± "
                f"{e['macro_f1_sd']:.4f} | {e['accuracy_mean']:.4f} | {ci('nll')} | {ci('macro_f1')} | {r1} | {r2} |"
            )
        lines.append("")
    lines.append(f"Wall time {result['wall_time_s']:.0f} s.")
    return "\n".join(lines) + "\n"
