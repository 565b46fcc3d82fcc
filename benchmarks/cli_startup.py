"""How long `emolog COMMAND --help` takes, against the cost it avoids (importing torch).

Each measurement is a fresh interpreter running ``emolog.cli.main([COMMAND, "--help"])``; the
CPU time of that call (imports of the command module included) is taken inside the process,
the median of ``--repeats`` runs. The reference, measured the same way in the same run, is
``import torch``: what `--help` must not pay (tests/test_cli.py asserts the import set, not
these seconds, which a shared machine inflates).

    .venv/bin/python benchmarks/cli_startup.py [--repeats 3]

Goal: every command's `--help` well under the reference (ratio < 0.5).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emolog.cli import COMMANDS  # noqa: E402

HELP = """
import contextlib, io, json, sys, time
t0 = time.process_time()
from emolog.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main([sys.argv[1], "--help"])
    except SystemExit:
        pass
print(json.dumps(time.process_time() - t0))
"""
TORCH = "import time; t0 = time.process_time(); import torch; print(time.process_time() - t0)"


def cpu_seconds(code: str, *args: str, repeats: int) -> float:
    """Median CPU seconds a fresh interpreter reports for ``code``."""
    out = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, check=True)
        out.append(float(json.loads(done.stdout.strip().splitlines()[-1])))
    return statistics.median(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    ref = cpu_seconds(TORCH, repeats=args.repeats)
    print(f"reference: import torch {ref:.3f} s CPU (median of {args.repeats})")
    for name in sorted(COMMANDS):
        s = cpu_seconds(HELP, name, repeats=args.repeats)
        print(f"emolog {name + ' --help':<22} {s:6.3f} s CPU  {s / ref:5.2f}x of importing torch")


if __name__ == "__main__":
    main()
