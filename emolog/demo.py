"""The embedded end-to-end demo that ``make demo`` runs.

It is honest about what is real and what is simulated:

1. **Real perception** on photos that ship offline (scikit-image): faces, expressions, scene
   classes; a PNG per photo.
2. **The research-question experiment on simulated FindingEmo data** with known truth
   (logic-only, ProbLog-EM, nets-only, joint): learned vs true source weights.
3. **The HTML report** of that experiment; its first line says the data are simulated.

Every step goes through the same public commands a user would type.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from emolog import cli

DEMO_REGIMES = "logic-only,problog-em,nets-only,joint"
SOURCES = ("scene", "face1", "face2", "face3")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    parser.add_argument("--n", type=int, default=5000, help="simulated images (default 5000)")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds (the data use the first)")
    parser.add_argument("--memorisation", default="250,1000,3500",
                        help="training-set sizes for the memorisation curve ('' to skip)")
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
        _step(f"real perception: {photo.name}",
              ["explain", str(photo), "--out", str(out / f"explain-{photo.stem}.png")], timings)

    sim, exp = out / "sim", out / "experiment"
    _step("simulate FindingEmo-like data with known truth",
          ["simulate", "--out", str(sim), "--n", str(args.n), "--seed", args.seeds.split(",")[0]], timings)
    memorisation = ["--memorisation", args.memorisation] if args.memorisation else []
    _step("experiment: " + args.regimes,
          ["experiment", "--data", str(sim), "--regimes", args.regimes, "--seeds", args.seeds,
           *memorisation, "--out", str(exp)], timings)
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

    print("\n=== timings")
    for title, secs in timings.items():
        print(f"{secs:8.1f} s  {title}")
    print(f"{time.perf_counter() - t_start:8.1f} s  total")
    print(f"\nreport: {(out / 'report.html').resolve()}")
    return 0
