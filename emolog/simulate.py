"""Simulated FindingEmo-like data with known truth (`emolog simulate`).

The generative story is the logic program's own (docs/simulation.md has every number): each
image has a scene and 0..8 faces; the scene and every face carry an emotion drawn from
FindingEmo's basic-7 label distribution; one *source* (scene, face1, face2, face3) is chosen
with the original's learned weights (0.53, 0.18, 0.17, 0.12), renormalised over the sources
the image has; the label is the chosen source's emotion. The cache holds what perception
would have produced: a noisy scene feature vector and a noisy recogniser distribution per
face, Bayes-calibrated by default or, with ``face_calibration="overconfident"``, the same
logits sharpened x OVERCONFIDENCE_FACTOR (same top-1, like real deep nets). The truth is fixed here, not tuned to make any learner look good.

Everything is vectorised numpy; 5000 images take well under 5 s, the full 25,869 a few.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emolog.cache.store import CacheWriter, fingerprint_hash
from emolog.data.atomic import atomic_write_text
from emolog.data.findingemo import label_distribution
from emolog.data.index import INDEX_COLUMNS, ImageIndex
from emolog.data.paths import image_id
from emolog.data.split import make_split, write_split
from emolog.labels import BASIC7

SIMULATOR_VERSION = "emolog-simulator/1"
SOURCES: tuple[str, ...] = ("scene", "face1", "face2", "face3")
K = 3
MAX_IMAGES = 25_869  # FindingEmo's size
VARIANTS = ("standard", "misspecified", "context")

# The original's learned source probabilities (CONTEXT.md), used as the truth.
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
FACE_MU = 1.47        # ~0.65, FER-level (standard, misspecified)
FACE_MU_LARGE = 1.91  # ~0.75, large faces (context variant)
FACE_MU_SMALL = 0.31  # ~0.38, small faces (context); a calibrated recogniser cannot go below
#                       the prior's 0.355 (always "happy"), so ~0.35 is approached from above
SMALL_FACE_AREA = 0.02
SMALL_FACE_WEIGHT = 0.5       # context: a small face is chosen half as often
SCENE_BOOST_NO_LARGE_FACE = 2.0  # context: scene weight x2 when no slot holds a large face
MISSPECIFIED_FRACTION = 0.2   # misspecified: labels from none of the sources
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
SHARD_SIZE = 2048


class SimulationError(ValueError):
    """A simulator configuration that cannot be honoured."""


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulated data set (it is the cache fingerprint)."""

    n: int = 5000
    seed: int = 0
    variant: str = "standard"
    scene_dim: int = 512
    snr: float = 1.0
    shuffle_labels: bool = False
    face_calibration: str = "calibrated"

    def __post_init__(self) -> None:
        if not 1 <= self.n <= MAX_IMAGES:
            raise SimulationError(f"--n must be in 1..{MAX_IMAGES} (FindingEmo's size), got {self.n}")
        if self.variant not in VARIANTS:
            raise SimulationError(f"--variant must be one of {list(VARIANTS)}, got {self.variant!r}")
        if self.scene_dim < len(BASIC7):
            raise SimulationError(f"--scene-dim must be at least {len(BASIC7)}, got {self.scene_dim}")
        if not self.snr > 0:
            raise SimulationError(f"--snr must be positive, got {self.snr}")
        if self.face_calibration not in FACE_CALIBRATIONS:
            raise SimulationError(f"--face-calibration must be one of {list(FACE_CALIBRATIONS)}, "
                                  f"got {self.face_calibration!r}")


@dataclass
class Simulation:
    """A simulated data set in memory.

    ids/rel_paths/labels have length N (labels as BASIC7 indices, after any shuffle);
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


def label_prior() -> np.ndarray:
    """FindingEmo's basic-7 label distribution [7], BASIC7 order, summing to 1."""
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
    return np.log(prior) + z @ means.T - 0.5 * (means ** 2).sum(1)


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
    return {"n_faces": n_faces.astype(np.int64), "image_size": sizes, "face_mask": mask,
            "face_area": (bw * bh / (W * H)) * mask, "face_boxes": boxes, "face_conf": conf}


def simulate(config: SimConfig) -> Simulation:
    """Draw one data set. Deterministic in ``config`` (independent streams per component)."""
    n, prior = config.n, label_prior()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(8)]
    rng_faces, rng_emo, rng_choice, rng_rec, rng_scene, rng_means, rng_misspec, rng_shuffle = streams

    faces = _faces(rng_faces, n)
    mask, area = faces["face_mask"], faces["face_area"]

    # Every source's own emotion, iid from the label prior (no face: -1).
    e_scene = rng_emo.choice(7, size=n, p=prior)
    e_face = np.where(mask, rng_emo.choice(7, size=(n, K), p=prior), -1)

    # The chosen source, drawn from the per-image (conditioned) weights.
    w = source_weights(mask, area, config.variant)
    u = rng_choice.uniform(size=(n, 1))
    # Sources present are 0 .. n_slots (faces fill leading slots); the cap guards against a
    # cumulative sum that rounds to just below 1 selecting an absent face.
    chosen = np.minimum((u > np.cumsum(w, axis=1)).sum(1), mask.sum(1))
    emotions = np.concatenate([e_scene[:, None], e_face], axis=1)
    label_gen = emotions[np.arange(n), chosen]
    if config.variant == "misspecified":
        none = rng_misspec.uniform(size=n) < MISSPECIFIED_FRACTION
        label_gen = np.where(none, rng_misspec.choice(7, size=n, p=prior), label_gen)
        chosen = np.where(none, -1, chosen)
    labels = rng_shuffle.permutation(label_gen) if config.shuffle_labels else label_gen.copy()

    # Recogniser: Gaussian evidence around each face's emotion, output its exact posterior.
    M = recogniser_means()
    if config.variant == "context":
        mu = np.where(area < SMALL_FACE_AREA, FACE_MU_SMALL, FACE_MU_LARGE)
    else:
        mu = np.full((n, K), FACE_MU)
    e_safe = np.maximum(e_face, 0)
    z = rng_rec.standard_normal((n, K, 7))  # drawn for every slot so streams do not depend on masks
    logits = np.empty((n, K, 7))
    for k in range(K):  # per slot: mu differs per face, so the posterior's means do too
        zk = mu[:, k:k + 1] * M[e_safe[:, k]] + z[:, k]
        lp = np.log(prior) + mu[:, k:k + 1] * (zk @ M.T) - 0.5 * mu[:, k:k + 1] ** 2 * (M ** 2).sum(1)
        logits[:, k] = lp - lp.mean(1, keepdims=True)
    if config.face_calibration == "overconfident":
        logits *= OVERCONFIDENCE_FACTOR  # same argmax per face, sharper distribution
    logits *= mask[..., None]
    probs = _softmax(logits) * mask[..., None]

    # Scene: class-conditional Gaussian, means 2 sqrt(snr) * orthonormal directions, unit noise.
    q, _ = np.linalg.qr(rng_means.standard_normal((config.scene_dim, 7)))
    scene_means = SCENE_MEAN_SCALE * np.sqrt(config.snr) * q.T  # [7, D]
    scene = (scene_means[e_scene] + rng_scene.standard_normal((n, config.scene_dim))).astype(np.float32)

    rel_paths = [f"sim/{i:06d}.jpg" for i in range(n)]
    ids = [image_id(p) for p in rel_paths]
    tensors = {"scene": scene, "face_probs": probs.astype(np.float32),
               "face_logits": logits.astype(np.float32), **faces}

    src_names = np.array(("none",) + SOURCES)
    emo = np.array(("",) + BASIC7)
    truth_df = pd.DataFrame({
        "image_id": ids, "rel_path": rel_paths,
        "label": np.asarray(BASIC7)[labels], "label_generated": np.asarray(BASIC7)[label_gen],
        "source": src_names[chosen + 1],
        **{f"p_{s}": w[:, j] for j, s in enumerate(SOURCES)},
        "e_scene": np.asarray(BASIC7)[e_scene],
        **{f"e_face{k + 1}": emo[e_face[:, k] + 1] for k in range(K)},
        "n_faces": faces["n_faces"],
    })
    truth = _truth_dict(config, prior, scene_means, e_face, probs, mask, area)
    return Simulation(config, ids, rel_paths, labels, tensors, truth, truth_df)


def _truth_dict(config: SimConfig, prior: np.ndarray, scene_means: np.ndarray, e_face: np.ndarray,
                probs: np.ndarray, mask: np.ndarray, area: np.ndarray) -> dict:
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
        "calibration": config.face_calibration, "logit_factor": factor,
        "mean_max_prob": float(probs[mask].max(-1).mean()) if mask.any() else None,
        "nll": float(-np.log(np.maximum(p_true, 1e-12)).mean()) if mask.any() else None,
        "M": recogniser_means().tolist(), "confusion_pairs": [list(p) for p in CONFUSION_PAIRS],
        "rho": CONFUSION_RHO, "mu": FACE_MU, "top1_accuracy": acc_all,
        "confusion": cm_all, "confusion_rows": "true emotion (BASIC7 order), columns = top-1",
    }
    if config.variant == "context":
        small = mask & (area < SMALL_FACE_AREA)
        rec.update(mu_large=FACE_MU_LARGE, mu_small=FACE_MU_SMALL,
                   top1_accuracy_small=confusion(small)[1], top1_accuracy_large=confusion(mask & ~small)[1])
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
        "simulator": SIMULATOR_VERSION, "config": asdict(config), "variant": config.variant,
        "variant_rule": variant_rule, "shuffle_labels": config.shuffle_labels,
        "sources": list(SOURCES), "source_weights": dict(zip(SOURCES, TRUE_WEIGHTS)),
        "classes": list(BASIC7), "label_prior": dict(zip(BASIC7, prior.tolist())),
        "n_faces_distribution": {str(i): p for i, p in enumerate(N_FACES_PROBS)},
        "face_slots_filled": {str(i): int(c) for i, c in enumerate(counts)},
        "face_area": {"log10_mean": FACE_LOG10_AREA[0], "log10_sd": FACE_LOG10_AREA[1],
                      "clip": list(FACE_AREA_CLIP), "small_below": SMALL_FACE_AREA},
        "recogniser": rec,
        "scene": {"snr": config.snr, "dim": config.scene_dim,
                  "definition": "features = m[e_scene] + N(0, I_D); the 7 class means are orthogonal "
                                "with |m_e|^2 = 4 snr (noise variance 1 per dimension): "
                                "snr = |m_e|^2 / (4 sigma^2), two class means are sqrt(8 snr) sigma apart",
                  "class_means": np.round(scene_means, 7).tolist()},
        "snr": config.snr,
        "misspecified_fraction": MISSPECIFIED_FRACTION if config.variant == "misspecified" else 0.0,
    }


def fingerprint(config: SimConfig) -> dict:
    """The cache fingerprint: the simulator marker, its version and the full config (incl. seed)."""
    return {"simulator": SIMULATOR_VERSION, **asdict(config)}


OUR_FILES = ("index.csv", "split.json", "truth.json", "truth.csv", "cache")


def write_simulation(sim: Simulation, out_dir: str | Path, force: bool = False) -> Path:
    """Write the data directory: cache/, index.csv, split.json, truth.json, truth.csv.

    Refuses a directory that already holds any of these unless ``force`` (then they are
    replaced). The split is the data layer's stratified 70/10/20 split, seeded with the
    simulator's seed.
    """
    out = Path(out_dir)
    present = [f for f in OUR_FILES if (out / f).exists()]
    if present and not force:
        raise SimulationError(f"{out} already holds {present}; choose a new directory or pass --force")
    for f in present:
        shutil.rmtree(out / f) if (out / f).is_dir() else (out / f).unlink()
    out.mkdir(parents=True, exist_ok=True)

    writer = CacheWriter(out / "cache", fingerprint(sim.config), K=K, scene_dim=sim.config.scene_dim)
    for start in range(0, len(sim.ids), SHARD_SIZE):
        sl = slice(start, start + SHARD_SIZE)
        writer.write_shard(sim.ids[sl], {k: v[sl] for k, v in sim.tensors.items()})

    labels = np.asarray(BASIC7)[sim.labels]
    size = sim.tensors["image_size"]
    df = pd.DataFrame({"image_id": sim.ids, "rel_path": sim.rel_paths, "label": labels, "label_raw": labels,
                       "valence": np.nan, "arousal": np.nan, "ambiguity": np.nan, "dec_factors": "",
                       "content_hash": "", "width": size[:, 0], "height": size[:, 1]})
    ImageIndex(df[list(INDEX_COLUMNS)]).save(out / "index.csv")
    write_split(make_split(sim.ids, labels.tolist(), seed=sim.config.seed), out / "split.json")
    truth = {**sim.truth, "cache_fingerprint_hash": fingerprint_hash(fingerprint(sim.config))}
    atomic_write_text(out / "truth.json", json.dumps(truth, indent=1) + "\n")
    atomic_write_text(out / "truth.csv", sim.truth_df.to_csv(index=False, float_format="%.6g"))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="data directory to write")
    parser.add_argument("--n", type=int, default=5000, help=f"images (1..{MAX_IMAGES})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", choices=VARIANTS, default="standard")
    parser.add_argument("--scene-dim", type=int, default=512, help="scene feature length D")
    parser.add_argument("--snr", type=float, default=1.0,
                        help="scene signal-to-noise ratio |m_e|^2 / (4 sigma^2) (see docs/simulation.md)")
    parser.add_argument("--shuffle-labels", action="store_true",
                        help="permute labels against images: a deliberately broken data set")
    parser.add_argument("--face-calibration", choices=FACE_CALIBRATIONS, default="calibrated",
                        help="recogniser outputs: exact posteriors, or the same logits x "
                             f"{OVERCONFIDENCE_FACTOR:g} (same top-1, over-confident, as real deep nets)")
    parser.add_argument("--force", action="store_true", help="replace an existing simulated data set")


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    try:
        config = SimConfig(n=args.n, seed=args.seed, variant=args.variant, scene_dim=args.scene_dim,
                           snr=args.snr, shuffle_labels=args.shuffle_labels,
                           face_calibration=args.face_calibration)
        sim = simulate(config)
        out = write_simulation(sim, args.out, force=args.force)
    except SimulationError as e:
        print(f"emolog simulate: {e}", file=sys.stderr)
        return 2
    src = sim.truth_df["source"].value_counts(normalize=True)
    print(f"wrote {len(sim.ids)} simulated images ({config.variant}"
          f"{', labels shuffled' if config.shuffle_labels else ''}) to {out} in {time.perf_counter() - t0:.1f} s")
    print("chosen source: " + ", ".join(f"{s} {src.get(s, 0):.3f}" for s in ("none",) + SOURCES if s in src))
    rec = sim.truth["recogniser"]
    if rec["top1_accuracy"] is not None:  # None when no image has a face (tiny --n)
        print(f"face recogniser ({config.face_calibration}) top-1: {rec['top1_accuracy']:.3f}, "
              f"mean top probability {rec['mean_max_prob']:.3f}; scene snr {config.snr}")
    return 0
