"""The ProbLog corpus (tests/programs/): emolog answers every program as problog 2.3.0 does.

problog itself runs in the test (tests/programs/problog_runner.py, one forked process per
program): its full-precision answers are compared with ``emolog.logic.evaluate`` (1e-9), and
its exact stdout and exit status with ``emolog logic FILE`` (byte for byte), error cases
included.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import emolog.logic as logic
from emolog.cli import main as emolog_main
from helpers.corpus import CORPUS_DIR, assert_same_answers, problog_reference

VENV_BIN = Path(sys.executable).parent
PROGRAMS = sorted(CORPUS_DIR.glob("*.pl"))
ERRORS = sorted((CORPUS_DIR / "errors").glob("*.pl"))


@pytest.fixture(scope="module")
def reference() -> dict[str, dict]:
    return problog_reference(PROGRAMS + ERRORS)


def test_corpus_size_and_constructs():
    texts = {p.name: p.read_text() for p in PROGRAMS}
    assert len(PROGRAMS) + len(ERRORS) >= 60
    every = "\n".join(texts.values())
    for construct in [
        "query(p(X)) :- a(X).",
        "P::",
        "\\+",
        "findall(",
        "<V>",
        "library(cut)",
        "consult(",
        "evidence(",
        ", false).",
        "evidence(\\+",
        "is abs(",
        "; 0.",
        ":- \\+ cloudy",
    ]:
        assert construct in every, construct
    kinds = {p.stem for p in ERRORS}
    assert {
        "unknown_clause",
        "nonground_prob_clause",
        "negative_cycle",
        "inconsistent_evidence",
        "callmode_is",
    } <= kinds


def test_problog_answers_every_corpus_program(reference):
    """The corpus is meaningful: problog answers each program (no crash, no error)."""
    bad = [Path(k).name for k, v in reference.items() if Path(k) in PROGRAMS and (v["cli_rc"] or "answers" not in v)]
    assert bad == []
    bad = [Path(k).name for k, v in reference.items() if Path(k) in ERRORS and (v["cli_rc"] != 1 or "error" not in v)]
    assert bad == []


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_evaluate_matches_problog(path, reference):
    assert_same_answers(logic.evaluate(path), reference[str(path)]["answers"], path.name)


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_emolog_logic_stdout_is_problogs(path, reference, capsys):
    rc = emolog_main(["logic", str(path)])
    assert (rc, capsys.readouterr().out) == (0, reference[str(path)]["cli_stdout"])


@pytest.mark.parametrize("path", ERRORS, ids=lambda p: p.stem)
def test_error_is_reported_as_problog_does(path, reference, capsys):
    ref = reference[str(path)]
    rc = emolog_main(["logic", str(path)])
    out, err = capsys.readouterr()
    assert (rc, out) == (1, ref["cli_stdout"])
    assert err.startswith(f"{path}:") and ": Error: " in err.splitlines()[0], err
    with pytest.raises(logic.ProgramError) as raised:
        logic.evaluate(path)
    at = re.search(r" at (\d+):(\d+)\.$", ref["error"][1])
    if at:  # problog knows where: so must emolog
        assert (raised.value.line, raised.value.column) == (int(at[1]), int(at[2]))
        assert err.startswith(f"{path}:{at[1]}:{at[2]}: Error: "), err


def test_installed_command_exits_as_problog(reference):
    """The real executable (one run: importing torch makes it the slowest check here)."""
    path = CORPUS_DIR / "errors" / "negative_cycle.pl"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ours = subprocess.run([VENV_BIN / "emolog", "logic", str(path)], capture_output=True, text=True, env=env)
    assert (ours.returncode, ours.stdout) == (1, reference[str(path)]["cli_stdout"])


def test_command_line_forms(capsys, tmp_path):
    path = CORPUS_DIR / "fact.pl"
    assert emolog_main(["logic", str(path), "--timing"]) == 0
    out, err = capsys.readouterr()
    assert out == "rain:\t0.3       \n" and "queries answered in" in err
    assert emolog_main(["logic", "--timing", str(path)]) == 0
    capsys.readouterr()
    for argv in (["logic"], ["logic", str(path), "--bogus"], ["logic", "compare", str(path)]):
        with pytest.raises(SystemExit) as usage:
            emolog_main(argv)
        assert usage.value.code == 2, argv
    assert emolog_main(["logic", str(tmp_path / "missing.pl")]) == 1
    assert capsys.readouterr().out.startswith("ProbLogError: [Errno 2] No such file or directory")
