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

from emolog import cli

DEMO_REGIMES = "logic-only,problog-em,nets-only,joint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    parser.add_argument("--n", type=int, default=5000, help="simulated images (default 5000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--regimes", default=DEMO_REGIMES)


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
          ["simulate", "--out", str(sim), "--n", str(args.n), "--seed", str(args.seed)], timings)
    _step("experiment: " + args.regimes,
          ["experiment", "--data", str(sim), "--regimes", args.regimes, "--seeds", str(args.seed),
           "--out", str(exp)], timings)
    _step("report", ["report", str(exp), "--out", str(out / "report.html")], timings)

    truth = json.loads((sim / "truth.json").read_text())
    print("\n=== learned vs true source weights (simulated data: the truth is known)")
    sources = ("scene", "face1", "face2", "face3")
    true_w = truth["source_weights"]
    print(f"{'regime':<14}" + "".join(f"{s:>9}" for s in sources) + f"{'test acc':>10}{'macro-F1':>10}")
    print(f"{'truth':<14}" + "".join(f"{true_w[s]:>9.3f}" for s in sources))
    experiment = json.loads((exp / "experiment.json").read_text())
    for run_dir in experiment["runs"]:
        res = json.loads((exp / run_dir / "results.json").read_text())
        w = res.get("source_weights") or {}
        test = res["metrics"]["test"]
        print(f"{res['regime']:<14}" + "".join(f"{w.get(s, float('nan')):>9.3f}" for s in sources)
              + f"{test['accuracy']:>10.3f}{test['macro_f1']:>10.3f}")

    print("\n=== timings")
    for title, secs in timings.items():
        print(f"{secs:8.1f} s  {title}")
    print(f"{time.perf_counter() - t_start:8.1f} s  total")
    print(f"\nreport: {(out / 'report.html').resolve()}")
    return 0
