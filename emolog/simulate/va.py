"""Valence and arousal of simulated images: a known truth tied to the emotions and the sources.

Each image's valence and arousal are drawn from one basic-7 emotion through a fixed table per
emotion (``va_table``): a Gaussian around the emotion's place in the valence/arousal plane
(``EMOTION_VA``), discretised on FindingEmo's integer scales (valence -3..3, arousal 0..6,
``emolog.labels.VA_RANGES``) with standard deviation ``VA_SD``. Which emotion:

* ``va_source="label"`` (default): the emotion that decided the label, i.e. the chosen
  source's emotion (the annotator judged one thing, and rated it). A valence/arousal program
  with the seed's source choice then has the seed's truth, the source weights (0.53, 0.18,
  0.17, 0.12), to recover from valence or arousal alone;
* ``va_source="scene"``: the scene's own emotion, whatever source decided the label: faces
  carry no information about valence and arousal (true source weights 1, 0, 0, 0). This is
  the "faces are noise" data set of ``emolog analyse``'s error-vs-disagreement check.

Valence and arousal are drawn independently given the emotion, from their own random stream,
so a data set's cache and labels do not depend on them. ``oracle_va`` is the Bayes prediction
(the expected value under the true source weights, the Bayes scene posterior and the
recogniser's calibrated outputs): the best any model can do, for tests and docs.
"""

from __future__ import annotations

import numpy as np

from emolog.labels import BASIC7, SOURCES, VA_RANGES

__all__ = ["EMOTION_VA", "VA_BINS", "VA_SD", "VA_SOURCES", "draw_va", "oracle_va", "va_table", "va_truth"]

VA_SOURCES: tuple[str, ...] = ("label", "scene")
# Each emotion's place in the valence/arousal plane on FindingEmo's scales (valence -3..3,
# arousal 0..6), after Russell's circumplex (J. Russell, "A circumplex model of affect", 1980):
# pleasant-unpleasant x activated-deactivated. Several unpleasant emotions share a valence and
# differ in arousal, as in the circumplex.
EMOTION_VA: dict[str, tuple[float, float]] = {
    "angry": (-2.0, 5.0),
    "disgust": (-2.0, 3.5),
    "fear": (-2.0, 4.5),
    "happy": (2.0, 4.0),
    "sad": (-2.0, 1.5),
    "surprise": (0.5, 5.0),
    "neutral": (0.0, 2.0),
}
VA_SD = 0.7  # per emotion, on the integer scale: the annotators' spread
# The bin names of the shipped valence / arousal programs (emolog/model/specs/va_*.pl), one per
# integer value, low to high
VA_BINS: dict[str, tuple[str, ...]] = {
    "valence": ("vm3", "vm2", "vm1", "v0", "vp1", "vp2", "vp3"),
    "arousal": ("a0", "a1", "a2", "a3", "a4", "a5", "a6"),
}


def va_values(variable: str) -> np.ndarray:
    """The integer values of ``variable``'s scale, low to high."""
    lo, hi = VA_RANGES[variable]
    return np.arange(int(lo), int(hi) + 1, dtype=np.float64)


def va_table(variable: str) -> np.ndarray:
    """P(value | emotion) [7, V]: rows in BASIC7 order, columns the scale's integer values."""
    k = 0 if variable == "valence" else 1
    v = va_values(variable)
    t = np.exp(-0.5 * ((v[None, :] - np.array([[EMOTION_VA[e][k]] for e in BASIC7])) / VA_SD) ** 2)
    return t / t.sum(1, keepdims=True)


def draw_va(rng: np.random.Generator, emotion: np.ndarray) -> dict[str, np.ndarray]:
    """Valence and arousal [N] (integers as floats) of images whose deciding emotion is
    ``emotion`` [N] (BASIC7 indices)."""
    out = {}
    for variable in VA_RANGES:
        cum = np.cumsum(va_table(variable)[emotion], axis=1)
        k = np.minimum((rng.uniform(size=(len(emotion), 1)) > cum).sum(1), cum.shape[1] - 1)
        out[variable] = va_values(variable)[k]
    return out


def va_weights(va_source: str, label_weights: tuple[float, ...]) -> dict[str, float]:
    """The true global source weights of valence and arousal."""
    if va_source == "scene":
        return {s: float(s == "scene") for s in SOURCES}
    return dict(zip(SOURCES, map(float, label_weights)))


def va_truth(va_source: str, label_weights: tuple[float, ...]) -> dict:
    """truth.json's ``va`` entry."""
    weights = va_weights(va_source, label_weights)
    rule = {
        "label": "valence ~ table[chosen source's emotion] (the emotion that decided the label), "
        "arousal likewise, independently",
        "scene": "valence ~ table[scene's emotion], arousal likewise, whatever decided the label: "
        "faces carry no valence/arousal information",
    }[va_source]
    return {
        "source": va_source,
        "rule": rule,
        "sd": VA_SD,
        "ranges": {k: list(v) for k, v in VA_RANGES.items()},
        "emotion_va": {e: list(v) for e, v in EMOTION_VA.items()},
        "bins": {k: list(v) for k, v in VA_BINS.items()},
        "tables": {
            var: {e: np.round(va_table(var)[i], 12).tolist() for i, e in enumerate(BASIC7)} for var in VA_RANGES
        },
        "source_weights": weights,
        "t_values": {f"t(source({s}))": w for s, w in weights.items()},
    }


def oracle_va(
    truth: dict, source_probs: np.ndarray, scene_posterior: np.ndarray, face_probs: np.ndarray, face_mask: np.ndarray
) -> dict[str, np.ndarray]:
    """The Bayes expected valence and arousal [N] of each image.

    ``source_probs`` [N, 4]: the true per-image source probabilities of the label (truth.csv's
    ``p_<source>``; the misspecified variant's "none" share is added from truth.json);
    ``scene_posterior`` [N, 7] the Bayes scene posterior (``true_scene_posterior``);
    ``face_probs`` [N, K, 7] the recogniser's outputs, the exact posteriors of calibrated data.
    """
    va = truth["va"]
    prior = np.array([truth["label_prior"][e] for e in BASIC7])
    if va["source"] == "scene":
        w = np.zeros_like(source_probs)
        w[:, 0] = 1.0
        none = 0.0
    else:
        none = float(truth.get("misspecified_fraction") or 0.0)
        w = source_probs
    mask = np.asarray(face_mask, dtype=np.float64)
    emo = w[:, :1] * scene_posterior + (w[:, 1:, None] * mask[..., None] * face_probs).sum(1)
    emo = (1 - none) * emo + none * prior[None, :]
    return {var: emo @ va_table(var) @ va_values(var) for var in VA_RANGES}
