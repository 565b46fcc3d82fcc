"""Simulated FindingEmo-like data with known truth (`emolog simulate`).

The generative story is the logic program's own (docs/simulation.md has every number): each
image has a scene and 0..8 faces; the scene and every face carry an emotion drawn from
FindingEmo's basic-7 label distribution; one *source* (scene, face1, face2, face3) is chosen
with the original's learned weights (0.53, 0.18, 0.17, 0.12), renormalised over the sources
the image has; the label is the chosen source's emotion. The cache holds what perception
would have produced: a noisy scene feature vector and a noisy recogniser distribution per
face, Bayes-calibrated by default or, with ``face_calibration="overconfident"``, the same
logits sharpened x OVERCONFIDENCE_FACTOR (same top-1, like real deep nets). The truth is fixed here, not tuned to make any learner look good.

Everything is vectorised numpy (one pass over all images, no Python loop per image).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from emolog.data.atomic import atomic_write_text
from emolog.data.index import INDEX_COLUMNS, ImageIndex
from emolog.data.paths import image_id
from emolog.data.split import make_split, write_split
from emolog.labels import BASIC7, EMO8, SOURCES

from emolog.simulate.model import (
    BUCKETS,
    BUCKET_EMO8,
    CONFUSION_PAIRS,
    CONFUSION_RHO,
    DEFAULT_SNR,
    EMO8_EXPRESSION_PRIOR,
    EMO8_TRUTH_VERSION,
    EXPRESSION_BUCKET,
    FACE_AREA_CLIP,
    FACE_ASPECT,
    FACE_CALIBRATIONS,
    FACE_LOG10_AREA,
    FACE_MU,
    FACE_MU_EMO8,
    FACE_MU_LARGE,
    FACE_MU_SMALL,
    IMAGE_SIZES,
    IMAGE_SIZE_PROBS,
    K,
    LABEL_SETS,
    MAX_IMAGES,
    MISSPECIFIED_FRACTION,
    N_FACES_PROBS,
    OVERCONFIDENCE_FACTOR,
    SCENE_BOOST_NO_LARGE_FACE,
    SCENE_MEAN_SCALE,
    SHARD_SIZE,
    SIMULATOR_VERSION,
    SMALL_FACE_AREA,
    SMALL_FACE_WEIGHT,
    TRUE_WEIGHTS,
    VARIANTS,
    SimConfig,
    Simulation,
    SimulationError,
    emo8_labels,
    gaussian_log_posterior,
    label_prior,
    recogniser_means,
    source_weights,
    true_scene_posterior,
    true_t_values,
)
from emolog.simulate.model import _faces, _softmax
from emolog.simulate.truth import truth_dict
from emolog.simulate.va import VA_SOURCES, draw_va, va_truth

# the commands' functions and the generative model's names (emolog.simulate.model), re-exported
__all__ = [
    "simulate",
    "write_simulation",
    "fingerprint",
    "add_arguments",
    "run",
    "BUCKETS",
    "BUCKET_EMO8",
    "CONFUSION_PAIRS",
    "CONFUSION_RHO",
    "DEFAULT_SNR",
    "EMO8_EXPRESSION_PRIOR",
    "EMO8_TRUTH_VERSION",
    "EXPRESSION_BUCKET",
    "FACE_AREA_CLIP",
    "FACE_ASPECT",
    "FACE_CALIBRATIONS",
    "FACE_LOG10_AREA",
    "FACE_MU",
    "FACE_MU_EMO8",
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
    "SMALL_FACE_AREA",
    "SMALL_FACE_WEIGHT",
    "TRUE_WEIGHTS",
    "VARIANTS",
    "SimConfig",
    "Simulation",
    "SimulationError",
    "emo8_labels",
    "gaussian_log_posterior",
    "label_prior",
    "recogniser_means",
    "source_weights",
    "true_scene_posterior",
    "true_t_values",
]


def simulate(config: SimConfig) -> Simulation:
    """Draw one data set. Deterministic in ``config`` (independent streams per component)."""
    n, prior = config.n, label_prior(config.labels)
    # spawn(10): the first 8 children are those of spawn(8) and the first 9 those of spawn(9), so
    # basic-7 and Emo8 data sets are unchanged by the later streams
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(10)]
    rng_faces, rng_emo, rng_choice, rng_rec, rng_scene, rng_means, rng_misspec, rng_shuffle, rng_emo8, rng_va = streams

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
    expression = label_gen
    va = draw_va(rng_va, e_scene if config.va_source == "scene" else expression)
    if config.labels == "emo8":
        label_gen = emo8_labels(rng_emo8, label_gen)
    labels = rng_shuffle.permutation(label_gen) if config.shuffle_labels else label_gen.copy()

    # Recogniser: Gaussian evidence around each face's emotion, output its exact posterior.
    M = recogniser_means()
    if config.variant == "context":
        mu = np.where(area < SMALL_FACE_AREA, FACE_MU_SMALL, FACE_MU_LARGE)
    else:
        mu = np.full((n, K), FACE_MU)
    if config.labels == "emo8":  # a sharp recogniser: each face's bucket nearly known (model.py)
        mu = np.full((n, K), FACE_MU_EMO8)
    e_safe = np.maximum(e_face, 0)
    z = rng_rec.standard_normal((n, K, 7))  # drawn for every slot so streams do not depend on masks
    logits = np.empty((n, K, 7))
    for k in range(K):  # per slot: mu differs per face, so the posterior's means do too
        zk = mu[:, k : k + 1] * M[e_safe[:, k]] + z[:, k]
        lp = np.log(prior) + mu[:, k : k + 1] * (zk @ M.T) - 0.5 * mu[:, k : k + 1] ** 2 * (M**2).sum(1)
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
    tensors = {
        "scene": scene,
        "face_probs": probs.astype(np.float32),
        "face_logits": logits.astype(np.float32),
        **faces,
    }

    classes = EMO8 if config.labels == "emo8" else BASIC7
    src_names = np.array(("none",) + SOURCES)
    emo = np.array(("",) + BASIC7)
    truth_df = pd.DataFrame(
        {
            "image_id": ids,
            "rel_path": rel_paths,
            "label": np.asarray(classes)[labels],
            "label_generated": np.asarray(classes)[label_gen],
            "expression": np.asarray(BASIC7)[expression],
            "source": src_names[chosen + 1],
            **{f"p_{s}": w[:, j] for j, s in enumerate(SOURCES)},
            "e_scene": np.asarray(BASIC7)[e_scene],
            **{f"e_face{k + 1}": emo[e_face[:, k] + 1] for k in range(K)},
            "n_faces": faces["n_faces"],
            "valence": va["valence"],
            "arousal": va["arousal"],
        }
    )
    truth = truth_dict(config, prior, scene_means, e_face, probs, mask, area)
    if config.labels == "emo8":
        truth.update(
            classes=list(EMO8),
            emo8={
                "expression_bucket": EXPRESSION_BUCKET,
                "bucket_emotion": BUCKET_EMO8,
                "rule": "label ~ bucket_emotion[expression_bucket[chosen source's expression]]",
            },
        )
    truth["t_values"] = true_t_values(config.labels)
    truth["va"] = va_truth(config.va_source, TRUE_WEIGHTS)
    return Simulation(config, ids, rel_paths, labels, tensors, truth, truth_df)


def fingerprint(config: SimConfig) -> dict:
    """The cache fingerprint: the simulator marker, its version and the full config (incl. seed)."""
    fp = {"simulator": SIMULATOR_VERSION, **asdict(config)}
    del fp["va_source"]  # valence and arousal are in index.csv, not in the cache
    if config.labels == "basic7":  # the default leaves the fingerprints of earlier data sets as they were
        del fp["labels"]
    else:  # Emo8's generative truth was redesigned (identifiable buckets): data of the first design differ
        fp["emo8_truth"] = EMO8_TRUTH_VERSION
    return fp


OUR_FILES = ("index.csv", "split.json", "truth.json", "truth.csv", "cache")


def write_simulation(sim: Simulation, out_dir: str | Path, force: bool = False) -> Path:
    """Write the data directory: cache/, index.csv, split.json, truth.json, truth.csv.

    Refuses a directory that already holds any of these unless ``force`` (then they are
    replaced). The split is the data layer's stratified 70/10/20 split, seeded with the
    simulator's seed.
    """
    from emolog.cache.store import fingerprint_hash
    from emolog.cache.writer import CacheWriter  # torch: not needed by `simulate --help`

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

    labels = np.asarray(sim.truth["classes"])[sim.labels]
    size = sim.tensors["image_size"]
    df = pd.DataFrame(
        {
            "image_id": sim.ids,
            "rel_path": sim.rel_paths,
            "label": labels,
            "label_raw": labels,
            "valence": sim.truth_df["valence"],
            "arousal": sim.truth_df["arousal"],
            "ambiguity": np.nan,
            "dec_factors": "",
            "content_hash": "",
            "width": size[:, 0],
            "height": size[:, 1],
        }
    )
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
    parser.add_argument(
        "--snr",
        type=float,
        default=None,
        help="scene signal-to-noise ratio |m_e|^2 / (4 sigma^2); default "
        + ", ".join(f"{v:g} ({k})" for k, v in DEFAULT_SNR.items())
        + " (docs/simulation.md)",
    )
    parser.add_argument(
        "--shuffle-labels", action="store_true", help="permute labels against images: a deliberately broken data set"
    )
    parser.add_argument(
        "--face-calibration",
        choices=FACE_CALIBRATIONS,
        default="calibrated",
        help="recogniser outputs: exact posteriors, or the same logits x "
        f"{OVERCONFIDENCE_FACTOR:g} (same top-1, over-confident, as real deep nets)",
    )
    parser.add_argument(
        "--labels",
        choices=LABEL_SETS,
        default="basic7",
        help="label set: basic-7, or Emo8 drawn through valence/arousal buckets (docs/simulation.md, 'Emo8 labels')",
    )
    parser.add_argument(
        "--va-source",
        choices=VA_SOURCES,
        default="label",
        help="valence and arousal from the emotion that decided the label, or from the "
        "scene's own emotion (faces are then noise for them; docs/simulation.md)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing simulated data set")


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    # a SimulationError goes to the command line's handler (one line, exit 3: bad input)
    config = SimConfig(
        n=args.n,
        seed=args.seed,
        variant=args.variant,
        scene_dim=args.scene_dim,
        snr=args.snr,
        shuffle_labels=args.shuffle_labels,
        face_calibration=args.face_calibration,
        labels=args.labels,
        va_source=args.va_source,
    )
    sim = simulate(config)
    out = write_simulation(sim, args.out, force=args.force)
    src = sim.truth_df["source"].value_counts(normalize=True)
    print(
        f"wrote {len(sim.ids)} simulated images ({config.variant}"
        f"{', labels shuffled' if config.shuffle_labels else ''}) to {out} in {time.perf_counter() - t0:.1f} s"
    )
    print("chosen source: " + ", ".join(f"{s} {src.get(s, 0):.3f}" for s in ("none",) + SOURCES if s in src))
    rec = sim.truth["recogniser"]
    if rec["top1_accuracy"] is not None:  # None when no image has a face (tiny --n)
        print(
            f"face recogniser ({config.face_calibration}) top-1: {rec['top1_accuracy']:.3f}, "
            f"mean top probability {rec['mean_max_prob']:.3f}; scene snr {config.snr}"
        )
    return 0
