"""The embedded end-to-end demo that ``make demo`` runs.

It is honest about what is real and what is simulated:

1. **Real perception** on photos that ship offline (scikit-image): faces, expressions, scene
   classes; a PNG per photo.
2. **The research-question experiment on simulated FindingEmo data** with known truth
   (logic-only, ProbLog-EM, nets-only, joint): learned vs true source weights.
3. **Valence and arousal** on the same images (FindingEmo's second task): the shipped
   va_valence / va_arousal programs, logic-only, printed beside the emotion result.
4. **The HTML report** of that experiment; its first line says the data are simulated.

Every step goes through the same public commands a user would type. Run again on the same
``--out``, it reuses what the first run computed (the simulated data when its settings match,
the experiment's finished runs) and says so; other settings replace the demo's own folders.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from emolog import cli
from emolog.labels import SOURCES
from emolog.runs.record import read_results

DEMO_REGIMES = "logic-only,problog-em,nets-only,joint"
VA_VARIABLES = ("valence", "arousal")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    parser.add_argument("--n", type=int, default=5000, help="simulated images (default 5000)")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds (the data use the first)")
    parser.add_argument(
        "--memorisation", default="250,1000,3500", help="training-set sizes for the memorisation curve ('' to skip)"
    )
    parser.add_argument("--regimes", default=DEMO_REGIMES)


def _pm(row: pd.Series, col: str) -> str:
    mean, std = row[f"{col}_mean"], row[f"{col}_std"]
    return f"{mean:.3f}" + ("" if pd.isna(std) else f" ± {std:.3f}")


def _photos(out: Path) -> list[Path]:
    """Write the offline real photos used by the perception step."""
    from PIL import Image
    from skimage import data

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("astronaut", "coffee"):
        p = out / f"{name}.png"
        if not p.exists():
            Image.fromarray(getattr(data, name)()).save(p)
        paths.append(p)
    return paths


def simulate_step(out: Path, n: int, seed: int, timings: dict[str, float]) -> tuple[Path, Path]:
    """Simulate into OUT/sim, or reuse what an earlier demo simulated with the same settings;
    returns (data directory, experiment directory)."""
    sim, exp = out / "sim", out / "experiment"
    if _same_simulation(sim, n, seed):
        print(f"\n=== simulate: reusing {sim} (simulated by an earlier demo with the same settings)")
    else:
        # other settings (or an interrupted earlier demo): the old data and the runs trained on
        # it are all stale; these folders belong to the demo
        force = ["--force"] if sim.exists() else []
        for stale in (exp, out / "va"):
            if stale.exists():
                print(f"\n=== removing {stale}: it was trained on other simulated data")
                shutil.rmtree(stale)
        _step(
            "simulate FindingEmo-like data with known truth",
            ["simulate", "--out", str(sim), "--n", str(n), "--seed", str(seed), *force],
            timings,
        )
    if (exp / "experiment.json").exists():
        print(f"\n(the experiment in {exp} resumes: runs an earlier demo finished are read, not retrained)")
    return sim, exp


def _same_simulation(sim: Path, n: int, seed: int) -> bool:
    """Whether ``sim`` holds a complete simulation with exactly the settings the demo asks for
    (truth.json and truth.csv are written last: their presence means the rest is there)."""
    from emolog.simulate import SimConfig

    truth = sim / "truth.json"
    if not (truth.is_file() and (sim / "truth.csv").is_file()):
        return False
    try:
        recorded = json.loads(truth.read_text()).get("config")
    except json.JSONDecodeError:
        return False
    return recorded == json.loads(json.dumps(asdict(SimConfig(n=n, seed=seed))))


def va_step(sim: Path, out: Path, timings: dict[str, float]) -> dict[str, dict]:
    """Valence and arousal, logic-only, on the simulated images (an earlier demo's finished
    runs are read; an interrupted one resumes); returns each run's results."""
    results = {}
    for var in VA_VARIABLES:
        run = out / "va" / var
        if (run / "results.json").exists():
            print(f"\n=== valence/arousal: reusing {run}")
        else:
            _step(
                f"valence/arousal: {var}",
                [
                    "train",
                    "--data",
                    str(sim),
                    "--spec",
                    f"va_{var}",
                    "--regime",
                    "logic-only",
                    "--out",
                    str(run),
                    "--quiet",
                    *(["--resume"] if (run / "checkpoint.pt").exists() else []),
                ],
                timings,
            )
        results[var] = read_results(run)
    return results


def print_va(results: dict[str, dict], emotion: pd.Series, truth: dict[str, float]) -> None:
    """The valence/arousal results beside the emotion one: logic-only, seed 0 for valence and
    arousal, the experiment's mean over seeds for the emotion (``emotion``: its comparison row);
    ``truth``: the true source weights of valence and arousal."""
    print(
        "\n=== valence and arousal beside the emotion label (logic-only; a valence/arousal prediction is "
        "the expected value over 7 bins)"
    )
    print(f"{'target':<9}{'test':>34}{'Spearman [95% CI]':>25}" + "".join(f"{s:>9}" for s in SOURCES))
    print(f"{'truth':<9}{'':>34}{'':>25}" + "".join(f"{truth[s]:>9.3f}" for s in SOURCES))
    print(
        f"{'emotion':<9}{'accuracy ' + _pm(emotion, 'accuracy'):>34}{'':>25}"
        + "".join(f"{emotion[f'w_{s}_mean']:>9.3f}" for s in SOURCES)
    )
    for var, res in results.items():
        m, w = res["metrics"]["test"]["va"][var], res["source_weights"]
        mae = f"MAE {m['mae']:.3f} [{m['mae_lo']:.3f}, {m['mae_hi']:.3f}]"
        rho = f"{m['spearman']:.3f} [{m['spearman_lo']:.3f}, {m['spearman_hi']:.3f}]"
        print(f"{var:<9}{mae:>34}{rho:>25}" + "".join(f"{w[s]:>9.3f}" for s in SOURCES))


def _step(title: str, argv: list[str], timings: dict[str, float]) -> None:
    print(f"\n=== {title}\n$ emolog {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    rc = cli.main(argv)
    timings[title] = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"demo step failed ({title}): `emolog {' '.join(argv)}` exited {rc}")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    for photo in _photos(out / "photos"):
        _step(
            f"real perception: {photo.name}",
            ["explain", str(photo), "--out", str(out / f"explain-{photo.stem}.png")],
            timings,
        )

    sim, exp = simulate_step(out, args.n, int(args.seeds.split(",")[0]), timings)
    memorisation = ["--memorisation", args.memorisation] if args.memorisation else []
    _step(
        "experiment: " + args.regimes,
        [
            "experiment",
            "--data",
            str(sim),
            "--regimes",
            args.regimes,
            "--seeds",
            args.seeds,
            *memorisation,
            "--out",
            str(exp),
        ],
        timings,
    )
    va = va_step(sim, out, timings)
    _step("report", ["report", str(exp), "--out", str(out / "report.html")], timings)

    print("\n=== learned vs true source weights, mean ± std over seeds (simulated data: the truth is known)")
    truth = json.loads((sim / "truth.json").read_text())["source_weights"]
    table = pd.read_csv(exp / "comparison.csv")
    table = table[(table["kind"] == "regime") & table["sweep"].isna()]
    print(f"{'regime':<12}" + "".join(f"{s:>15}" for s in SOURCES) + f"{'test acc':>15}{'macro-F1':>15}")
    print(f"{'truth':<12}" + "".join(f"{truth[s]:>15.3f}" for s in SOURCES))
    for _, row in table.iterrows():
        cols = [f"w_{s}" for s in SOURCES] + ["accuracy", "macro_f1"]
        print(f"{row['regime']:<12}" + "".join(f"{_pm(row, c):>15}" for c in cols))

    emotion = table[table["regime"] == "logic-only"]
    print_va(
        va,
        (emotion if len(emotion) else table).iloc[0],
        json.loads((sim / "truth.json").read_text())["va"]["source_weights"],
    )

    print("\n=== timings")
    for title, secs in timings.items():
        print(f"{secs:8.1f} s  {title}")
    print(f"{time.perf_counter() - t_start:8.1f} s  total")
    print(f"\nreport: {(out / 'report.html').resolve()}")
    return 0
