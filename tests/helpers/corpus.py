"""The ProbLog corpus (tests/programs/) and problog's own answers for it, shared by the corpus,
neural-predicate and random-program tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parents[1] / "programs"
RUNNER = CORPUS_DIR / "problog_runner.py"
TOL = 1e-9  # emolog's probabilities against problog's


def problog_reference(paths: list[Path], cli: bool = True) -> dict[str, dict]:
    """problog's answers for each path and, with ``cli``, its exact stdout and exit status
    (see tests/programs/problog_runner.py)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    flags = [] if cli else ["--answers-only"]
    out = subprocess.run(
        [sys.executable, str(RUNNER), *flags, *map(str, paths)], check=True, capture_output=True, text=True, env=env
    ).stdout
    return json.loads(out)


def assert_same_answers(got: list[tuple[str, float]], want: dict[str, float], where: str) -> None:
    """emolog's answers ``got`` are problog's ``want``: the same atoms, each within TOL."""
    atoms = [a for a, _ in got]
    assert atoms == sorted(want), f"{where}: emolog answers {atoms}, problog {sorted(want)}"
    for atom, p in got:
        assert abs(p - want[atom]) <= TOL, f"{where}: P({atom}) = {p!r}, problog {want[atom]!r}"
