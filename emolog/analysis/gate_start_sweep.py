"""How should a gate start and learn? The sweep behind ``extra.gate.init: global``.

``emolog gate-sweep --out DIR [--face-calibration overconfident]`` (or ``python -m emolog.analysis.gate_start_sweep``)

For each variant (context, standard) and seed it simulates the data of
``context_experiment`` (same folders, so the two can share ``--out``), trains the global
disjunction once and the gate under several settings, all logic-only with the same frozen
scene net, and prints each setting's mean validation and test NLL minus global's. The choice
is made on **validation** NLL (the test column is shown, not used): a setting should gain on
``context`` and lose nothing on ``standard``. Writes DIR/gate_start_sweep.csv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from emolog.analysis.context_experiment import PROGRAMS, arm_config, simulate_data
from emolog.data.atomic import atomic_write_text
from emolog.errors import UsageError
from emolog.experiments.runner import Arm, RunOptions, run_arms

# name -> config overrides of the gated run (the rest as in context_experiment)
SETTINGS: dict[str, dict] = {
    "uniform start": {"gate.init": "uniform"},
    "uniform start, lr 3e-3 x 30 epochs": {"gate.init": "uniform", "logic.lr": 3e-3, "train.epochs": 30},
    "uniform start, linear gate": {"gate.init": "uniform", "gate.hidden": 0},
    "global start (default)": {},
    "global start, lr 3e-3 x 30 epochs": {"logic.lr": 3e-3, "train.epochs": 30},
    "global start, weight decay 1e-3": {"logic.weight_decay": 1e-3},
    "global start, weight decay 1e-2": {"logic.weight_decay": 1e-2},
    "global start, 8 hidden units": {"gate.hidden": 8},
}


def sweep(out: Path, n: int, seeds: tuple[int, ...], snr: float, face_calibration: str) -> pd.DataFrame:
    """One row per (variant, seed, setting): validation and test NLL minus the global run's."""
    rows = []
    for variant in ("context", "standard"):
        for seed in seeds:
            data = simulate_data(out, variant, seed, n, snr, face_calibration)
            settings = {"global": {}, **SETTINGS}
            arms = {
                name: Arm(
                    name.replace(" ", "_").replace(",", ""),
                    {**arm_config(PROGRAMS["global" if name == "global" else "gated"], data, seed), **over},
                )
                for name, over in settings.items()
            }
            done, _ = run_arms(
                list(arms.values()), out / "sweep-runs" / f"{variant}-s{seed}", RunOptions(progress=False)
            )
            results = {name: done[arm.name]["metrics"] for name, arm in arms.items()}
            g = results.pop("global")
            rows += [
                {
                    "variant": variant,
                    "seed": seed,
                    "setting": name,
                    "d_val_nll": m["val"]["nll"] - g["val"]["nll"],
                    "d_test_nll": m["test"]["nll"] - g["test"]["nll"],
                }
                for name, m in results.items()
            ]
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> str:
    """Mean over seeds, one row per setting, variants side by side (Markdown)."""
    t = df.groupby(["setting", "variant"], sort=False)[["d_val_nll", "d_test_nll"]].mean().unstack("variant")
    lines = [
        "| gate setting | Δ val NLL context | Δ val NLL standard | Δ test NLL context | Δ test NLL standard |",
        "|---|---|---|---|---|",
    ]
    for name, r in t.iterrows():
        lines.append(
            f"| {name} | {r[('d_val_nll', 'context')]:+.4f} | {r[('d_val_nll', 'standard')]:+.4f} | "
            f"{r[('d_test_nll', 'context')]:+.4f} | {r[('d_test_nll', 'standard')]:+.4f} |"
        )
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, help="folder (shared with `emolog context --out`: the same simulated data)"
    )
    parser.add_argument("--n", type=int, default=5000, help="images per simulated data set")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (data and training)")
    parser.add_argument("--snr", type=float, default=1.0, help="scene signal-to-noise ratio of the simulator")
    parser.add_argument(
        "--face-calibration",
        choices=("calibrated", "overconfident"),
        default="calibrated",
        help="the simulated recogniser's calibration",
    )


def run(args: argparse.Namespace) -> int:
    import torch  # here, not at import time: `emolog gate-sweep --help` stays instant

    torch.set_num_threads(1)  # many small ops: more threads only contend
    try:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        raise UsageError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    df = sweep(args.out, args.n, seeds, args.snr, args.face_calibration)
    buf = df.to_csv(index=False)
    atomic_write_text(args.out / "gate_start_sweep.csv", buf)
    print(
        f"{args.n} images, seeds {list(seeds)}, snr {args.snr}, {args.face_calibration} recogniser; "
        f"Δ = gated - global, mean over seeds\n"
    )
    print(summary(df))
    print(f"wrote {args.out / 'gate_start_sweep.csv'}")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m emolog.analysis.gate_start_sweep", description=__doc__.splitlines()[0])
    add_arguments(p)
    sys.exit(run(p.parse_args()))
