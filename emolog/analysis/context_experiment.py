"""Does per-image context trust pay? Gated / rules programs vs the global disjunction.

``emolog context --out DIR [--snr 3] [--face-calibration overconfident]
[--folds 5]`` simulates, per variant
(``context``: the truth's source choice depends on face size; ``standard``: it does not) and
per seed, a FindingEmo-like data set (``emolog.simulate``), then trains on it, all in regime
logic-only with the same frozen, cross-fitted scene net and the same logic optimiser:

* ``global``: seed.pl, one learned source distribution for every image (``train_run``);
* ``gated``: gated.pl, a GateNet over per-image evidence (trained by ``train_run`` like any program);
* ``rules``: context_rules.pl, t() weights over discretised facts (likewise);

and scores the face-weighting baselines (``face_weighting``) and, as a reference, ``oracle``:
the true per-image source probabilities (truth.csv) mixing the same scene and face
distributions. The oracle is a ceiling only while those distributions are calibrated: with an
over-confident recogniser a learner that discounts the faces beyond their true choice rate
beats it (docs/context-trust.md). Reported per variant: test NLL / macro-F1 /
accuracy (mean and sd over seeds), the paired bootstrap 95% CI of each arm minus ``global``
on the test images of all seeds pooled (``metrics.paired_bootstrap`` with the trainings as
clusters, so the interval counts training variance): each data set's 20% test
split, or with ``--folds K`` all its images, each predicted by arms trained on the other folds
(``fold_data``; K times the training for 5x the test images at K = 5), and the Pearson r of
the learned per-image source probabilities with the true ones (``gate.source_correlation``).
Writes DIR/context_experiment.json and DIR/context_experiment.md (also printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emolog.data.atomic import atomic_write_text
from emolog.errors import EmologError, InputError, UsageError
from emolog.config.run import SOURCES
from emolog.experiments.runner import Arm, RunOptions, run_arms
from emolog.analysis.context_scores import format_markdown, score_seed, summarise

ARMS: tuple[str, ...] = ("global", "gated", "rules")
PROGRAMS = {"global": "seed", "gated": "gated", "rules": "context_rules"}
REFERENCES: tuple[str, ...] = ("size-weighted", "confidence-weighted", "learned-weighting", "oracle")
# Logic optimiser for every arm: softmax logits with Adam at 1e-2 converge within 12 epochs for
# both a 4-number disjunction and a small gate (a gate net has no projected parameterisation).
DEFAULT_LOGIC = {"logic_param": "softmax", "logic_optimizer": "adam", "logic_lr": 1e-2}


def simulate_data(out: Path, variant: str, seed: int, n: int, snr: float, face_calibration: str = "calibrated") -> Path:
    """The data directory of one (variant, seed); reused when it already exists with the same
    simulator config (a folder drawn with other settings is refused, not silently reused)."""
    from emolog.simulate import SimConfig, simulate, write_simulation

    config = SimConfig(n=n, seed=seed, variant=variant, snr=snr, face_calibration=face_calibration)
    d = out / "data" / f"{variant}-s{seed}"
    if (d / "truth.csv").exists():
        # truth.json written before face_calibration existed lacks it: those were calibrated
        stored = {"face_calibration": "calibrated", **json.loads((d / "truth.json").read_text())["config"]}
        if stored != asdict(config):
            raise ValueError(f"{d} holds data simulated with {stored}, not {asdict(config)}: use a new --out folder")
    else:
        write_simulation(simulate(config), d, force=True)
    return d


def fold_data(data: Path, folds: int, k: int, seed: int) -> Path:
    """``data``-fold<k>of<folds>: the same index, cache and truth (symbolic links) with a split
    whose test set is fold ``k`` of a stratified ``folds``-fold partition (seeded by ``seed``);
    of the rest, a stratified 1/8 is validation and 7/8 training (at 5 folds: 70/10/20, the
    default split's proportions). Over k = 0..folds-1 every image is a test image exactly once,
    so the comparison scores all ``n`` images per seed instead of one 20% test split."""
    from sklearn.model_selection import StratifiedKFold
    from emolog.data.split import write_split

    d = data.parent / f"{data.name}-fold{k}of{folds}"
    if (d / "split.json").exists():
        return d
    index = pd.read_csv(data / "index.csv", dtype={"image_id": str})
    ids, labels = index["image_id"].to_numpy(), index["label"].to_numpy()
    with warnings.catch_warnings():
        # a class with fewer images than folds is spread as evenly as it can be; no need to warn
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        rest, test = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(ids, labels))[k]
        fit, val = next(StratifiedKFold(8, shuffle=True, random_state=seed).split(ids[rest], labels[rest]))
    train = ids[rest][fit]
    # train in a seeded order, as make_split writes it (pretraining's folds take every 5th image)
    train = train[np.random.default_rng(seed).permutation(len(train))]
    d.mkdir(parents=True, exist_ok=True)
    for name in ("index.csv", "cache", "truth.csv", "truth.json"):
        if not (d / name).exists():
            (d / name).symlink_to((data / name).resolve())
    write_split(
        {
            "seed": seed,
            "fold": k,
            "folds": folds,
            "train": train.tolist(),
            "val": sorted(ids[rest][val].tolist()),
            "test": sorted(ids[test].tolist()),
        },
        d / "split.json",
    )
    return d


def arm_config(program: str, data: Path, seed: int, epochs: int = 12, logic: dict | None = None) -> dict:
    """The run config every arm of the comparison trains with (logic-only, one logic optimiser)."""
    return {
        "regime": "logic-only",
        "program": program,
        "data": str(data),
        "seed": seed,
        "train.epochs": epochs,
        **logic_keys(DEFAULT_LOGIC if logic is None else logic),
    }


def logic_keys(logic: dict) -> dict:
    """This experiment's logic settings (recorded under its own names, ``logic_lr``, ...) as
    config keys (``logic.lr``, ...)."""
    return {f"logic.{k.removeprefix('logic_')}": v for k, v in logic.items()}


def context_arms(data: Path, seed: int, epochs: int, logic: Mapping[str, Any]) -> list[Arm]:
    """The compared arms on ``data``: global, gated and rules, each ``arm_config`` of its program."""
    return [Arm(arm, arm_config(PROGRAMS[arm], data, seed, epochs, dict(logic))) for arm in ARMS]


def train_arms(data: Path, runs: Path, seed: int, plan: ContextPlan, progress: bool) -> dict[str, pd.DataFrame]:
    """Train (or read) the arms on ``data`` in ``runs/<arm>``; returns each arm's predictions.csv
    table. (``train_run`` trains every program in the same fit loop.)"""
    run_arms(context_arms(data, seed, plan.epochs, plan.logic), runs, RunOptions(progress=progress))
    return {arm: pd.read_csv(runs / arm / "predictions.csv", dtype={"image_id": str}) for arm in ARMS}


def reference_probs(data: Path, seed: int, logic: dict) -> dict[str, np.ndarray]:
    """Test probabilities [N, 7] of the face-weighting baselines and the oracle, with the same
    (cached) pretrained scene net and out-of-fold training-split scene probabilities."""
    import torch

    from emolog.cache.store import load_cache
    from emolog.model.data import load_data
    from emolog.config.run import RunConfig
    from emolog.experiments.face_weighting import face_weighting_probs
    from emolog.learn.pretrain import shared_pretrained

    cfg = RunConfig.from_dict({"regime": "logic-only", "data": str(data), "seed": seed, **logic_keys(logic)})
    device = torch.device("cpu")
    splits, manifest, _ = load_data(cfg, device, prelast=False)
    pre = shared_pretrained(cfg, splits, manifest, device, cfg.semantics)
    arrays = {}
    for name, s in splits.items():
        with torch.no_grad():
            scene = pre.oof if name == "train" and pre.oof is not None else torch.softmax(pre.net(s.scene), 1)
        c = load_cache(data / "cache", ids=s.ids)
        arrays[name] = {
            "scene_probs": scene.double().numpy(),
            "face_probs": c.face_probs.numpy(),
            "face_mask": c.face_mask.numpy(),
            "face_area": c.face_area.numpy(),
            "face_boxes": c.face_boxes.numpy(),
            "image_size": c.image_size.numpy(),
            "labels": s.labels.numpy(),
        }
    out = {
        name: face_weighting_probs(name, arrays["test"], arrays["train"], arrays["val"], seed=seed)
        for name in REFERENCES
        if name != "oracle"
    }
    te = arrays["test"]
    truth = pd.read_csv(data / "truth.csv", dtype={"image_id": str}).set_index("image_id").loc[splits["test"].ids]
    w = truth[[f"p_{s}" for s in SOURCES]].to_numpy(np.float64)
    per_source = np.concatenate([te["scene_probs"][:, None], te["face_probs"]], 1)  # [N, 4, 7]
    out["oracle"] = (w[..., None] * per_source).sum(1)
    return out


@dataclass(frozen=True)
class ContextPlan:
    """What the comparison runs: ``variants`` x ``seeds`` simulated data sets of ``n`` images
    (scene ``snr``, the recogniser's ``face_calibration``), tested on each one's split
    (``folds`` 1) or by K-fold cross-fitting (``folds`` K > 1: ``fold_data``, every image tested
    once by arms trained without it); each arm trains up to ``epochs`` epochs with the logic
    optimiser ``logic`` (``DEFAULT_LOGIC``'s keys); ``n_boot`` bootstrap resamples."""

    n: int = 5000
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    variants: tuple[str, ...] = ("context", "standard")
    snr: float = 1.0
    epochs: int = 12
    logic: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_LOGIC))
    n_boot: int = 1000
    face_calibration: str = "calibrated"
    folds: int = 1

    def config(self) -> dict[str, Any]:
        """The results' ``config``."""
        return {
            "n": self.n,
            "seeds": list(self.seeds),
            "variants": list(self.variants),
            "snr": self.snr,
            "face_calibration": self.face_calibration,
            "folds": self.folds,
            "epochs": self.epochs,
            "regime": "logic-only",
            **self.logic,
            "n_boot": self.n_boot,
        }


def run_experiment(out: str | Path, plan: ContextPlan = ContextPlan(), progress: bool = True) -> dict:
    """Run the whole comparison; returns (and writes) the results dict (see the module docstring)."""
    if plan.folds < 1:
        raise ValueError(f"--folds must be >= 1, got {plan.folds}")
    out = Path(out)
    t0 = time.perf_counter()
    result = {"config": plan.config(), "variants": {}}
    for variant in plan.variants:
        probs: dict[str, list[np.ndarray]] = {a: [] for a in ARMS + REFERENCES}
        labels, per_seed, corr = [], [], {a: [] for a in ARMS}
        units: list[np.ndarray] = []  # per test image: which training (seed, fold) predicted it
        for seed in plan.seeds:
            data = simulate_data(out, variant, seed, plan.n, plan.snr, plan.face_calibration)
            preds, refs = _predict_parts(_parts(data, out, variant, seed, plan.folds), seed, plan, progress, units)
            y, row = score_seed(data, seed, preds, refs, probs, corr)
            labels.append(y)
            per_seed.append(row)
        y_all, groups = np.concatenate(labels), np.concatenate(units)
        summary = {arm: summarise(arm, probs, labels, corr, y_all, groups, plan.n_boot) for arm in ARMS + REFERENCES}
        result["variants"][variant] = {"summary": summary, "per_seed": per_seed, "n_test_pooled": int(len(y_all))}
    result["wall_time_s"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "context_experiment.json", json.dumps(result, indent=1))
    atomic_write_text(out / "context_experiment.md", format_markdown(result))
    return result


def _parts(data: Path, out: Path, variant: str, seed: int, folds: int) -> list[tuple[Path, Path]]:
    """(data folder, runs folder) of each training of one seed: the data set itself, or its K folds."""
    if folds == 1:
        return [(data, out / "runs" / f"{variant}-s{seed}")]
    return [
        (fold_data(data, folds, k, seed), out / "runs" / f"{variant}-s{seed}-fold{k}of{folds}") for k in range(folds)
    ]


def _predict_parts(
    parts: list[tuple[Path, Path]], seed: int, plan: ContextPlan, progress: bool, units: list[np.ndarray]
) -> tuple[dict[str, pd.DataFrame], dict[str, list[np.ndarray]]]:
    """The arms' test predictions (pooled over the parts) and the references' probabilities
    (per part); appends each part's test-image unit to ``units``."""
    preds: dict[str, list[pd.DataFrame]] = {a: [] for a in ARMS}
    refs: dict[str, list[np.ndarray]] = {a: [] for a in REFERENCES}
    for fdata, runs in parts:  # one part, or the K folds (their test sets partition the data)
        fold_preds = train_arms(fdata, runs, seed, plan, progress)
        ids = fold_preds["global"]["image_id"].tolist()
        units.append(np.full(len(ids), len(units)))
        if any(p["image_id"].tolist() != ids for p in fold_preds.values()):
            raise RuntimeError(f"{runs}: the arms' predictions are not for the same test images")
        for arm, pred in fold_preds.items():
            preds[arm].append(pred)
        for name, p in reference_probs(fdata, seed, dict(plan.logic)).items():
            refs[name].append(p)
    return {arm: pd.concat(v, ignore_index=True) for arm, v in preds.items()}, refs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="experiment folder (data/, runs/, results)")
    parser.add_argument("--n", type=int, default=5000, help="images per simulated data set")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (data and training)")
    parser.add_argument("--variants", default="context,standard", help="simulator variants to compare on")
    parser.add_argument("--snr", type=float, default=1.0, help="scene signal-to-noise ratio of the simulator")
    parser.add_argument(
        "--face-calibration",
        choices=("calibrated", "overconfident"),
        default="calibrated",
        help="the simulated recogniser's calibration (emolog.simulate.FACE_CALIBRATIONS)",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=1,
        help="1: test on each data set's 20%% split; K > 1: K-fold cross-fitting, every "
        "image tested once (K times the training)",
    )
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--logic-lr", type=float, default=DEFAULT_LOGIC["logic_lr"])
    parser.add_argument("--logic-optimizer", choices=("adam", "sgd"), default=DEFAULT_LOGIC["logic_optimizer"])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (the circuits are many small ops: more threads mostly contend)",
    )


def run(args: argparse.Namespace) -> int:
    import torch  # here, not at import time: `emolog context --help` stays instant

    torch.set_num_threads(args.threads)
    try:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        raise UsageError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    try:
        plan = ContextPlan(
            n=args.n,
            seeds=seeds,
            variants=tuple(args.variants.split(",")),
            snr=args.snr,
            epochs=args.epochs,
            face_calibration=args.face_calibration,
            folds=args.folds,
            logic={"logic_param": "softmax", "logic_optimizer": args.logic_optimizer, "logic_lr": args.logic_lr},
        )
        result = run_experiment(args.out, plan)
    except ValueError as e:  # e.g. an --out folder holding data drawn with other settings
        if isinstance(e, EmologError):
            raise
        raise InputError(str(e)) from e
    print(format_markdown(result))
    print(f"wrote {args.out / 'context_experiment.md'} and {args.out / 'context_experiment.json'}")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(
        prog="python -m emolog.analysis.context_experiment", description=__doc__.splitlines()[0]
    )
    add_arguments(p)
    sys.exit(run(p.parse_args()))
