"""The simulator's generative model: its constants, config and per-component draws.

Split from ``emolog.simulate`` (which re-exports every name); docs/simulation.md has every number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emolog.errors import InputError
from emolog.data.findingemo import label_distribution
from emolog.labels import BASIC7, EMO8, SOURCES
from emolog.simulate.va import VA_SOURCES

__all__ = [
    "BUCKETS",
    "BUCKET_EMO8",
    "EMO8_EXPRESSION_PRIOR",
    "FACE_MU_EMO8",
    "CONFUSION_PAIRS",
    "DEFAULT_SNR",
    "CONFUSION_RHO",
    "EXPRESSION_BUCKET",
    "FACE_AREA_CLIP",
    "FACE_ASPECT",
    "FACE_CALIBRATIONS",
    "FACE_LOG10_AREA",
    "FACE_MU",
    "FACE_MU_LARGE",
    "FACE_MU_SMALL",
    "IMAGE_SIZES",
    "IMAGE_SIZE_PROBS",
    "K",
    "LABEL_SETS",
    "MAX_IMAGES",
    "MISSPECIFIED_FRACTION",
    "N_FACES_PROBS",
    "OVERCONFIDENCE_FACTOR",
    "SCENE_BOOST_NO_LARGE_FACE",
    "SCENE_MEAN_SCALE",
    "SHARD_SIZE",
    "SIMULATOR_VERSION",
    "EMO8_TRUTH_VERSION",
    "SMALL_FACE_AREA",
    "SMALL_FACE_WEIGHT",
    "SimConfig",
    "Simulation",
    "SimulationError",
    "TRUE_WEIGHTS",
    "VARIANTS",
    "emo8_labels",
    "gaussian_log_posterior",
    "label_prior",
    "recogniser_means",
    "source_weights",
    "true_scene_posterior",
    "true_t_values",
]

SIMULATOR_VERSION = "emolog-simulator/1"
EMO8_TRUTH_VERSION = 2  # bumped when the Emo8 truth (BUCKET_EMO8, EMO8_EXPRESSION_PRIOR, FACE_MU_EMO8) changes
K = 3
MAX_IMAGES = 25_869  # FindingEmo's size
VARIANTS = ("standard", "misspecified", "context")

# The original's learned source probabilities (the original thesis notes), used as the truth.
TRUE_WEIGHTS: tuple[float, ...] = (0.53, 0.18, 0.17, 0.12)
# Faces detected per image: about 15% without a face, a long tail of crowds (up to 8).
N_FACES_PROBS: tuple[float, ...] = (0.15, 0.30, 0.20, 0.12, 0.08, 0.05, 0.04, 0.03, 0.03)
# log10(face box area / image area) ~ N(mean, sd), clipped: the median face covers ~2.5%.
FACE_LOG10_AREA = (-1.6, 0.55)
FACE_AREA_CLIP = (5e-4, 0.4)
FACE_ASPECT = 1.25  # box height / width
# Recogniser: z = mu * M[e] + N(0, I_7), output = exact posterior P(e | z) under the label
# prior. M = I + rho * (pair swaps) makes the classic FER confusions likelier.
CONFUSION_PAIRS: tuple[tuple[str, str], ...] = (("angry", "disgust"), ("fear", "surprise"), ("sad", "neutral"))
CONFUSION_RHO = 0.5
# mu values solved numerically (400k draws, FindingEmo prior) for top-1 accuracy:
FACE_MU = 1.47  # ~0.65, FER-level (standard, misspecified)
FACE_MU_LARGE = 1.91  # ~0.75, large faces (context variant)
FACE_MU_SMALL = 0.31  # ~0.38, small faces (context); a calibrated recogniser cannot go below
#                       the prior's 0.355 (always "happy"), so ~0.35 is approached from above
SMALL_FACE_AREA = 0.02
SMALL_FACE_WEIGHT = 0.5  # context: a small face is chosen half as often
SCENE_BOOST_NO_LARGE_FACE = 2.0  # context: scene weight x2 when no slot holds a large face
MISSPECIFIED_FRACTION = 0.2  # misspecified: labels from none of the sources
# Recogniser calibration. "calibrated": the exact posterior above. "overconfident": the same
# logits multiplied by OVERCONFIDENCE_FACTOR for every face (softmax(FACTOR * logits), i.e.
# temperature 1/3 in Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, who
# found modern deep nets overconfident and undo it by dividing logits by a fitted T > 1).
# Scaling logits keeps every argmax, so top-1 accuracy is unchanged; the factor is one stated
# constant, deliberately not a function of face size (that would tune the data to the gate).
FACE_CALIBRATIONS = ("calibrated", "overconfident")
OVERCONFIDENCE_FACTOR = 3.0
IMAGE_SIZES: tuple[tuple[int, int], ...] = ((1000, 667), (667, 1000), (1024, 768), (800, 800))
IMAGE_SIZE_PROBS: tuple[float, ...] = (0.55, 0.2, 0.15, 0.1)
# Scene: snr = |m_e|^2 / (4 sigma^2), i.e. |m_e| = 2 sqrt(snr) noise stds and two class means
# are d' = sqrt(8 snr) noise stds apart. Bayes accuracy on the scene's own emotion (7 classes,
# FindingEmo prior): 0.53 at snr 0.25, 0.77 at snr 1, 0.93 at snr 2. At snr 1 a Scene2EmotionNet
# trained on 3500 labels in D = 512 reaches ~0.59 of it (estimating 7 means in 512-d is hard).
SCENE_MEAN_SCALE = 2.0
# The default snr per label set. Emo8 data default to a readable scene, as they default to a
# sharp recogniser: at snr 1 the frozen scene net, pretrained on every image's label, is softer
# than the scene path's true Emo8 distribution, and the learned bucket table absorbs the
# difference (max |learned - true| 0.047 at n = 20,000; 0.016 at snr 4; docs/simulation.md).
DEFAULT_SNR: dict[str, float] = {"basic7": 1.0, "emo8": 4.0}
SHARD_SIZE = 2048
# labels="emo8": the chosen source's basic-7 expression goes to a valence/arousal bucket by
# this fixed table (the table of emolog/model/specs/emo8_buckets.pl), and the Emo8 label is drawn
# from that bucket's distribution BUCKET_EMO8 (the truth a bucket program must recover).
# Identifiability (docs/simulation.md, "Emo8 truth recovery"): each bucket chooses between two
# Emo8 emotions of its own (0.8 / 0.2; every Emo8 emotion belongs to one bucket, so a label names
# its bucket), the sources' expressions are drawn bucket-balanced (EMO8_EXPRESSION_PRIOR: each
# bucket 1/4, split evenly over its expressions, so no bucket is rare) and every face is read
# by a sharp recogniser (FACE_MU_EMO8, top-1 ~0.99 instead of ~0.65): a face's bucket is then
# nearly known, and the bucket -> Emo8 table is what the labels of face-chosen images count.
LABEL_SETS = ("basic7", "emo8")
EXPRESSION_BUCKET: dict[str, str] = {
    "happy": "pos_high",
    "surprise": "pos_high",
    "neutral": "pos_low",
    "angry": "neg_high",
    "fear": "neg_high",
    "disgust": "neg_low",
    "sad": "neg_low",
}
BUCKETS: tuple[str, ...] = ("pos_high", "pos_low", "neg_high", "neg_low")
BUCKET_EMO8: dict[str, dict[str, float]] = {
    "pos_high": {"joy": 0.8, "surprise": 0.2},
    "pos_low": {"trust": 0.8, "anticipation": 0.2},
    "neg_high": {"anger": 0.8, "fear": 0.2},
    "neg_low": {"sadness": 0.8, "disgust": 0.2},
}
EMO8_EXPRESSION_PRIOR: tuple[float, ...] = tuple(
    0.25 / sum(1 for x in BASIC7 if EXPRESSION_BUCKET[x] == EXPRESSION_BUCKET[e]) for e in BASIC7
)
FACE_MU_EMO8 = 6.0


class SimulationError(InputError, ValueError):
    """A simulator configuration that cannot be honoured."""


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulated data set (it is the cache fingerprint)."""

    n: int = 5000
    seed: int = 0
    variant: str = "standard"
    scene_dim: int = 512
    snr: float | None = None  # None: DEFAULT_SNR of the label set
    shuffle_labels: bool = False
    face_calibration: str = "calibrated"
    labels: str = "basic7"  # basic7 | emo8 (through EXPRESSION_BUCKET and BUCKET_EMO8)
    va_source: str = "label"  # valence/arousal from the label's emotion, or the scene's (simulate.va)

    def __post_init__(self) -> None:
        if not 1 <= self.n <= MAX_IMAGES:
            raise SimulationError(f"--n must be in 1..{MAX_IMAGES} (FindingEmo's size), got {self.n}")
        if self.variant not in VARIANTS:
            raise SimulationError(f"--variant must be one of {list(VARIANTS)}, got {self.variant!r}")
        if self.scene_dim < len(BASIC7):
            raise SimulationError(f"--scene-dim must be at least {len(BASIC7)}, got {self.scene_dim}")
        if self.labels not in LABEL_SETS:
            raise SimulationError(f"--labels must be one of {list(LABEL_SETS)}, got {self.labels!r}")
        if self.snr is None:
            object.__setattr__(self, "snr", DEFAULT_SNR[self.labels])
        if not self.snr > 0:
            raise SimulationError(f"--snr must be positive, got {self.snr}")
        if self.va_source not in VA_SOURCES:
            raise SimulationError(f"--va-source must be one of {list(VA_SOURCES)}, got {self.va_source!r}")
        if self.face_calibration not in FACE_CALIBRATIONS:
            raise SimulationError(
                f"--face-calibration must be one of {list(FACE_CALIBRATIONS)}, got {self.face_calibration!r}"
            )


@dataclass
class Simulation:
    """A simulated data set in memory.

    ids/rel_paths/labels have length N (labels as indices into ``truth["classes"]``: BASIC7,
    or EMO8 with ``labels="emo8"``, after any shuffle);
    ``tensors`` follows the cache's TENSOR_SPEC; ``truth`` is truth.json's dict and
    ``truth_df`` truth.csv's table.
    """

    config: SimConfig
    ids: list[str]
    rel_paths: list[str]
    labels: np.ndarray
    tensors: dict[str, np.ndarray]
    truth: dict
    truth_df: pd.DataFrame


def label_prior(labels: str = "basic7") -> np.ndarray:
    """FindingEmo's basic-7 label distribution [7], BASIC7 order, summing to 1; for
    ``labels="emo8"`` the bucket-balanced expression prior ``EMO8_EXPRESSION_PRIOR``."""
    if labels == "emo8":
        return np.asarray(EMO8_EXPRESSION_PRIOR, dtype=np.float64)
    dist = label_distribution()
    p = np.array([dist[c] for c in BASIC7], dtype=np.float64)
    return p / p.sum()


def recogniser_means() -> np.ndarray:
    """M [7, 7]: row e is the direction of the recogniser evidence for true emotion e."""
    m = np.eye(len(BASIC7))
    for a, b in CONFUSION_PAIRS:
        i, j = BASIC7.index(a), BASIC7.index(b)
        m[i, j] = m[j, i] = CONFUSION_RHO
    return m


def gaussian_log_posterior(z: np.ndarray, means: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """log P(e | z) up to a per-row constant for z ~ N(means[e], I): [N, d] -> [N, C]."""
    return np.log(prior) + z @ means.T - 0.5 * (means**2).sum(1)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def true_scene_posterior(scene: np.ndarray, truth: dict) -> np.ndarray:
    """The Bayes posterior P(scene emotion | scene features) [N, 7] from truth.json's dict.

    The best any scene net can do; ``scene`` is [N, D] as stored in the cache.
    """
    means = np.asarray(truth["scene"]["class_means"], dtype=np.float64)
    prior = np.asarray([truth["label_prior"][c] for c in BASIC7])
    return _softmax(gaussian_log_posterior(np.asarray(scene, dtype=np.float64), means, prior))


def source_weights(face_mask: np.ndarray, face_area: np.ndarray, variant: str) -> np.ndarray:
    """Per-image true source probabilities [N, 4] (scene, face1..3), conditioned on availability.

    standard/misspecified: TRUE_WEIGHTS renormalised over the sources present.
    context: a face with area < SMALL_FACE_AREA has its weight x SMALL_FACE_WEIGHT, and the
    scene's weight is x SCENE_BOOST_NO_LARGE_FACE when no slot holds a large face; then renormalised.
    """
    n = len(face_mask)
    w = np.tile(np.asarray(TRUE_WEIGHTS), (n, 1))
    w[:, 1:] *= face_mask
    if variant == "context":
        small = face_mask & (face_area < SMALL_FACE_AREA)
        w[:, 1:] *= np.where(small, SMALL_FACE_WEIGHT, 1.0)
        no_large = ~(face_mask & ~small).any(1)
        w[:, 0] *= np.where(no_large, SCENE_BOOST_NO_LARGE_FACE, 1.0)
    return w / w.sum(1, keepdims=True)


def _faces(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Face counts, boxes, areas, confidences and image sizes for n images (largest face first)."""
    max_faces = len(N_FACES_PROBS) - 1
    n_faces = rng.choice(len(N_FACES_PROBS), size=n, p=N_FACES_PROBS)
    size_idx = rng.choice(len(IMAGE_SIZES), size=n, p=IMAGE_SIZE_PROBS)
    sizes = np.asarray(IMAGE_SIZES, dtype=np.int64)[size_idx]
    areas = 10.0 ** rng.normal(*FACE_LOG10_AREA, size=(n, max_faces))
    areas = np.clip(areas, *FACE_AREA_CLIP)
    areas[np.arange(max_faces)[None, :] >= n_faces[:, None]] = 0.0
    areas = -np.sort(-areas, axis=1)[:, :K]  # the detector's K largest faces
    mask = areas > 0
    W = sizes[:, :1].astype(np.float64)
    H = sizes[:, 1:].astype(np.float64)
    bw = np.sqrt(areas * W * H / FACE_ASPECT)
    bh = bw * FACE_ASPECT
    x1 = rng.uniform(size=(n, K)) * (W - bw)
    y1 = rng.uniform(size=(n, K)) * (H - bh)
    boxes = np.stack([x1, y1, x1 + bw, y1 + bh], axis=-1) * mask[..., None]
    # Small faces are detected less confidently; conf stays in the MTCNN-like 0.9..1 range.
    drop = rng.exponential(size=(n, K)) * np.where(areas < SMALL_FACE_AREA, 0.02, 0.002)
    conf = np.clip(1.0 - drop, 0.9, 1.0) * mask
    return {
        "n_faces": n_faces.astype(np.int64),
        "image_size": sizes,
        "face_mask": mask,
        "face_area": (bw * bh / (W * H)) * mask,
        "face_boxes": boxes,
        "face_conf": conf,
    }


def emo8_labels(rng: np.random.Generator, expression: np.ndarray) -> np.ndarray:
    """EMO8 indices [N]: per image, an Emo8 emotion drawn from the bucket of its basic-7
    ``expression`` [N] (BASIC7 indices; -1, no source, stays -1)."""
    table = np.zeros((len(BASIC7), len(EMO8)))
    for e, b in EXPRESSION_BUCKET.items():
        for emo, p in BUCKET_EMO8[b].items():
            table[BASIC7.index(e), EMO8.index(emo)] = p
    cum = np.cumsum(table[np.maximum(expression, 0)], axis=1)
    out = np.minimum((rng.uniform(size=(len(expression), 1)) > cum).sum(1), len(EMO8) - 1)
    return np.where(expression < 0, -1, out)


def true_t_values(labels: str) -> dict[str, float]:
    """The true value of every t() of the matching shipped program, by readable name:
    ``t(source(scene))`` ... and, for Emo8, ``t(bucket_emotion(pos_high,joy))`` ..."""
    out = {f"t(source({s}))": w for s, w in zip(SOURCES, TRUE_WEIGHTS)}
    if labels == "emo8":
        out.update({f"t(bucket_emotion({b},{e}))": BUCKET_EMO8[b].get(e, 0.0) for b in BUCKETS for e in EMO8})
    return out
