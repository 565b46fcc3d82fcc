"""Valence/arousal truth recovery: the shipped va_valence / va_arousal programs on simulated data.

    OMP_NUM_THREADS=1 python benchmarks/va_truth.py [--n 20000] [--seed 0] [--snr 4] [--out DIR]

Simulates ``--n`` images (``emolog simulate``; valence and arousal from the emotion that
decided each label, docs/simulation.md), trains each program by EM (problog-em, 300
iterations) and by gradient to convergence (logic-only, softmax t() with full-batch Adam, as
docs/simulation.md's Emo8 recovery), and prints per run the largest |learned - true| over the
t() (the source weights), the test MAE with its 95% bootstrap interval next to the oracle's
(the Bayes prediction: true weights, Bayes scene posterior, calibrated recogniser;
``emolog.simulate.va.oracle_va``) and Spearman's rho with its interval.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from emolog.cache.store import load_cache
from emolog.data.split import load_split
from emolog.simulate import SimConfig, simulate, true_scene_posterior, write_simulation
from emolog.simulate.va import oracle_va
from emolog.model.va_metrics import regression_metrics
from emolog.runs.train import train_run

LEARNERS = {
    "problog-em": {"regime": "problog-em", "train.em_iterations": 300, "train.patience": None},
    "logic-only": {
        "regime": "logic-only",
        "logic.param": "softmax",
        "logic.optimizer": "adam",
        "logic.lr": 0.05,
        "train.batch_size": 16384,
        "train.epochs": 400,
        "train.patience": None,
    },
}


def oracle_mae(data: Path) -> dict[str, dict]:
    """The oracle's test regression metrics per variable."""
    truth = json.loads((data / "truth.json").read_text())
    tdf = pd.read_csv(data / "truth.csv", dtype={"image_id": str}).set_index("image_id")
    test = load_split(data / "split.json")["test"]
    c = load_cache(data / "cache", ids=test)
    w = tdf.loc[test, [f"p_{s}" for s in ("scene", "face1", "face2", "face3")]].to_numpy()
    pred = oracle_va(
        truth, w, true_scene_posterior(c.scene.numpy(), truth), c.face_probs.double().numpy(), c.face_mask.numpy()
    )
    return {v: regression_metrics(pred[v], tdf.loc[test, v].to_numpy(float)) for v in pred}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snr", type=float, default=4.0)
    ap.add_argument("--out", type=Path, default=None, help="keep the data and runs here (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        data = out / "data"
        if not (data / "truth.json").is_file():
            write_simulation(simulate(SimConfig(n=args.n, seed=args.seed, snr=args.snr)), data)
        oracle = oracle_mae(data)
        print(
            f"valence/arousal truth recovery: n {args.n}, seed {args.seed}, snr {args.snr}; test images "
            f"{oracle['valence']['n']}"
        )
        print(
            f"{'run':<22}{'max|t-true|':>12}  {'worst t()':<22}{'test MAE [95% CI]':>26}{'oracle MAE':>12}"
            f"{'ratio':>8}{'Spearman [95% CI]':>26}"
        )
        for var in ("valence", "arousal"):
            for name, cfg in LEARNERS.items():
                run = out / f"{var}-{name}"
                t0 = time.perf_counter()
                res = (
                    json.loads((run / "results.json").read_text())
                    if (run / "results.json").is_file()
                    else train_run(
                        {"data": str(data), "spec": f"va_{var}", "seed": args.seed, **cfg}, run, progress=False
                    )
                )
                err = {k: abs(v - res["true_t_values"][k]) for k, v in res["t_values"].items()}
                worst = max(err, key=err.get)
                m, o = res["metrics"]["test"]["va"][var], oracle[var]
                print(
                    f"{var + ' ' + name:<22}{err[worst]:>12.3f}  {worst:<22}"
                    f"{m['mae']:>10.3f} [{m['mae_lo']:.3f}, {m['mae_hi']:.3f}]{o['mae']:>12.3f}"
                    f"{m['mae'] / o['mae']:>8.3f}{m['spearman']:>10.3f} [{m['spearman_lo']:.3f}, "
                    f"{m['spearman_hi']:.3f}]   ({time.perf_counter() - t0:.0f} s)"
                )
        print(
            "oracle Spearman: "
            + ", ".join(
                f"{v} {o['spearman']:.3f} [{o['spearman_lo']:.3f}, {o['spearman_hi']:.3f}]" for v, o in oracle.items()
            )
        )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
