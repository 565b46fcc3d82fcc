"""truth.json's record of one simulated data set: the true parameters of the generative model
(source weights, label prior, face areas, the scene's class means, the variant's rule) and the
recogniser's measured confusion on this data.

Split from ``emolog.simulate``, whose ``simulate`` draws the data and calls ``truth_dict``.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from emolog.labels import BASIC7, SOURCES
from emolog.simulate.model import (
    CONFUSION_PAIRS,
    CONFUSION_RHO,
    FACE_AREA_CLIP,
    FACE_LOG10_AREA,
    FACE_MU,
    FACE_MU_EMO8,
    FACE_MU_LARGE,
    FACE_MU_SMALL,
    K,
    MISSPECIFIED_FRACTION,
    N_FACES_PROBS,
    OVERCONFIDENCE_FACTOR,
    SCENE_BOOST_NO_LARGE_FACE,
    SIMULATOR_VERSION,
    SMALL_FACE_AREA,
    SMALL_FACE_WEIGHT,
    TRUE_WEIGHTS,
    SimConfig,
    recogniser_means,
)


def truth_dict(
    config: SimConfig,
    prior: np.ndarray,
    scene_means: np.ndarray,
    e_face: np.ndarray,
    probs: np.ndarray,
    mask: np.ndarray,
    area: np.ndarray,
) -> dict:
    """truth.json: the true parameters plus the recogniser's measured confusion on this data."""

    def confusion(sel: np.ndarray) -> tuple[list[list[int]], float | None]:
        t, p = e_face[sel], probs[sel].argmax(-1)
        cm = np.zeros((7, 7), dtype=np.int64)
        np.add.at(cm, (t, p), 1)
        return cm.tolist(), (float((t == p).mean()) if len(t) else None)

    cm_all, acc_all = confusion(mask)
    factor = OVERCONFIDENCE_FACTOR if config.face_calibration == "overconfident" else 1.0
    p_true = probs[mask, e_face[mask]]
    rec = {
        "model": "z = mu * M[e] + N(0, I_7); output = softmax(c * (log prior + mu z.M^T - mu^2 |M_c|^2 / 2)); "
        "c = 1 is the exact posterior P(e | z) (Bayes-calibrated for this population), "
        "c > 1 the same argmax, over-confident",
        "calibration": config.face_calibration,
        "logit_factor": factor,
        "mean_max_prob": float(probs[mask].max(-1).mean()) if mask.any() else None,
        "nll": float(-np.log(np.maximum(p_true, 1e-12)).mean()) if mask.any() else None,
        "M": recogniser_means().tolist(),
        "confusion_pairs": [list(p) for p in CONFUSION_PAIRS],
        "rho": CONFUSION_RHO,
        "mu": FACE_MU_EMO8 if config.labels == "emo8" else FACE_MU,
        "top1_accuracy": acc_all,
        "confusion": cm_all,
        "confusion_rows": "true emotion (BASIC7 order), columns = top-1",
    }
    if config.variant == "context":
        small = mask & (area < SMALL_FACE_AREA)
        rec.update(
            mu_large=FACE_MU_LARGE,
            mu_small=FACE_MU_SMALL,
            top1_accuracy_small=confusion(small)[1],
            top1_accuracy_large=confusion(mask & ~small)[1],
        )
        del rec["mu"]
    variant_rule = {
        "standard": "chosen source ~ source_weights renormalised over the sources present",
        "misspecified": f"as standard, but with probability {MISSPECIFIED_FRACTION} the label is drawn "
        "from label_prior independently of every source (truth.csv source = 'none')",
        "context": f"a face with area < {SMALL_FACE_AREA} of the image has its weight x {SMALL_FACE_WEIGHT} "
        f"and recogniser mu {FACE_MU_SMALL} (large faces: mu {FACE_MU_LARGE}); the scene's "
        f"weight is x {SCENE_BOOST_NO_LARGE_FACE} when no face slot holds a large face "
        "(also when there is no face); then renormalised over the sources present",
    }[config.variant]
    counts = np.bincount(mask.sum(1), minlength=K + 1)
    return {
        "simulator": SIMULATOR_VERSION,
        "config": asdict(config),
        "variant": config.variant,
        "variant_rule": variant_rule,
        "shuffle_labels": config.shuffle_labels,
        "sources": list(SOURCES),
        "source_weights": dict(zip(SOURCES, TRUE_WEIGHTS)),
        "classes": list(BASIC7),
        "label_prior": dict(zip(BASIC7, prior.tolist())),
        "n_faces_distribution": {str(i): p for i, p in enumerate(N_FACES_PROBS)},
        "face_slots_filled": {str(i): int(c) for i, c in enumerate(counts)},
        "face_area": {
            "log10_mean": FACE_LOG10_AREA[0],
            "log10_sd": FACE_LOG10_AREA[1],
            "clip": list(FACE_AREA_CLIP),
            "small_below": SMALL_FACE_AREA,
        },
        "recogniser": rec,
        "scene": {
            "snr": config.snr,
            "dim": config.scene_dim,
            "definition": "features = m[e_scene] + N(0, I_D); the 7 class means are orthogonal "
            "with |m_e|^2 = 4 snr (noise variance 1 per dimension): "
            "snr = |m_e|^2 / (4 sigma^2), two class means are sqrt(8 snr) sigma apart",
            "class_means": np.round(scene_means, 7).tolist(),
        },
        "snr": config.snr,
        "misspecified_fraction": MISSPECIFIED_FRACTION if config.variant == "misspecified" else 0.0,
    }
