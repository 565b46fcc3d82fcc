"""The bad-spec corpus (tests/programs/research/bad/): every spec or binding mistake is refused by
``emolog train`` with exit 3 and one line naming the spec file and the network (or the key),
what was expected and the fix; no traceback and no run written.

Each case is a spec file whose first comment lines say what the refusal must contain
(``# expect:``), which network it names (``# net:``, ``-`` for none) and which data it runs on
(``# data:``: the research photos as Emo8 by default, ``basic7``, or ``simulated``: a cache
without face features or a scene classifier). Most are refused while the spec is read or
checked against the program and the cache; the few that only the program's own inputs reveal
(a face field read per image, an atom argument without a domain, a function's output, a
foreign predicate that raises) at the first batches, before any training.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from emolog.cli import main
from emolog.simulate import SimConfig, simulate, write_simulation
from helpers.paths import REPO, TESTS

BAD = TESTS / "programs" / "research" / "bad"
CASES = sorted(BAD.glob("*.toml"))


def _meta(path: Path) -> dict[str, str]:
    meta = {"data": "emo8"}
    for line in path.read_text().splitlines():
        if line.startswith("# ") and ":" in line:
            key, value = line[2:].split(":", 1)
            meta[key.strip()] = value.strip()
    return meta


@pytest.fixture(scope="module")
def data(research_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "D"
    write_simulation(simulate(SimConfig(n=60, seed=5, scene_dim=16, labels="emo8")), d)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOLOG_LOGIC_CACHE", str(tmp_path_factory.mktemp("logic")))
        yield {**research_data, "simulated": d}


def test_the_corpus_has_the_cases_of_the_issue():
    assert len(CASES) >= 15
    assert all({"expect", "net"} <= set(_meta(c)) for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_a_bad_spec_is_refused_in_one_line(case, data, tmp_path, capsys):
    meta = _meta(case)
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--data",
            str(data[meta["data"]]),
            "--spec",
            str(case),
            "--regime",
            "joint",
            "--out",
            str(out),
            "--quiet",
            "--set",
            "train.epochs=1",
            "--set",
            "train.batch_size=4",
        ]
    )
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 3 and len(lines) == 1 and "Traceback" not in err, err
    assert str(case) in lines[0] and meta["expect"] in lines[0], lines[0]
    if meta["net"] != "-":
        assert any(
            f in lines[0] for f in (f"[nets.{meta['net']}]", f"[foreign.{meta['net']}]", f"['{meta['net']}']")
        ), lines[0]
    assert not (out / "results.json").exists() and not (out / "checkpoint.pt").exists()


def test_refused_through_the_command_itself(data, tmp_path):
    """As a user runs it: `python -m emolog train` in its own process (a foreign predicate that
    raises while the program is grounded)."""
    case = BAD / "foreign_raises.toml"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "emolog",
            "train",
            "--data",
            str(data["emo8"]),
            "--spec",
            str(case),
            "--regime",
            "joint",
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 3 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and _meta(case)["expect"] in p.stderr
