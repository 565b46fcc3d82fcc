"""DeepProbLog 2.1's own example programs, as shipped, through ``emolog logic compare``.

Each program runs unchanged (from the installed ``deepproblog`` package) in emolog and in
DeepProbLog's ExactEngine (float64) on the same seeded random network outputs; query
probabilities and gradients (network outputs and ``t()``) must agree within 1e-9. The templates
are the query forms each example's own data code builds (``data/`` or ``__init__.py`` of the
example): ``I`` is the example's id, ``tensor(S(I, k))`` entry k of tensor source S.

Not run: CLUTRR's two programs. ``CLUTRR/model.pl`` is a fragment (it calls ``get_edges/2``,
which it does not define). ``CLUTRR/model_forward.pl`` is run by DeepProbLog's own script
(``clutrr.py``) with its *ApproximateEngine*, not the ExactEngine this comparison is about, and
its inputs are CLUTRR story texts encoded by an LSTM whose vocabulary comes from the data set
(``nn(encoder, [Text, Ent1, Ent2], Embeddings)``); the package ships only the loader, not the
stories, so there is nothing to give it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import deepproblog

EXAMPLES = Path(deepproblog.__file__).parent / "examples"
TOL = 1e-9

M = "tensor(mnist(I,{}))"
CASES: dict[str, list[str]] = {
    "minimal/addition.pl": [f"addition({M.format(0)},{M.format(1)},Z)"],
    "MNIST/models/addition.pl": [
        f"addition({M.format(0)},{M.format(1)},Z)",
        # training form (label bound, as its data code builds it): DeepProbLog needs ~15 s per
        # example to ground and differentiate all 199 sums of the scoring form
        f"multi_addition([{M.format(0)},{M.format(1)}],[{M.format(2)},{M.format(3)}],57)",
    ],
    "MNIST/models/all_digit_addition.pl": [f"addition({M.format(0)},{M.format(1)},{M.format(2)})"],
    "MNIST/models/any_sum.pl": [f"anysum([[{M.format(0)},{M.format(1)}],[{M.format(2)},{M.format(3)}]],9)"],
    "MNIST/models/noisy_addition.pl": [f"addition_noisy({M.format(0)},{M.format(1)},Z)"],
    "Coins/model.pl": ["game(tensor(coins(I)),Outcome)"],
    "Poker/model.pl": ["game([" + ",".join(f"tensor(cards(I,{k}))" for k in range(4)) + "],Outcome)"],
    "Forth/Add/choose.pl": ["add([7,3],[4,8],0,[1,2,1])"],  # data/extract.py: add(N1,N2,Carry,Result)
    "Forth/Sort/compare.pl": ["forth_sort([3,1,2],L)"],
    "Forth/Sort/quicksort.pl": ["forth_sort([3,1,2],L)"],
    "Forth/WAP/wap.pl": ["wap(tensor(text(I)),32,42,35,O)"],
    "HWF/model.pl": ["expression([tensor(hwf(I,0)),tensor(hwf(I,1)),tensor(hwf(I,2))],R)"],
}
NOT_RUN = {"CLUTRR/model.pl", "CLUTRR/model_forward.pl"}  # see the module docstring


def test_every_shipped_example_is_listed():
    shipped = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.pl") if "data" not in p.parts}
    assert shipped == set(CASES) | NOT_RUN


@pytest.mark.parametrize("program", sorted(CASES))
def test_example_matches_deepproblog(program):
    from emolog.logic.check.compare import compare_program

    result = compare_program(EXAMPLES / program, CASES[program], 1, 60.0, 0)
    assert result.dp_failed is None, result.dp_failed
    assert result.max_dp <= TOL, (program, result.max_dp)
    assert result.max_dgrad <= TOL, (program, result.max_dgrad)


def test_compare_command_prints_the_summary_line(capsys):
    from emolog.cli import main

    argv = [
        "logic",
        "compare",
        str(EXAMPLES / "minimal/addition.pl"),
        "--query",
        CASES["minimal/addition.pl"][0],
        "--examples",
        "1",
    ]
    assert main(argv) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(r"max \|dp\| \S+, max \|dgrad\| \S+, speed ratio \S+x", last), last
    # DeepProbLog out of time: said in one line, emolog's answers still printed, exit 0
    assert main([*argv, "--timeout", "0.001"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "DeepProbLog did not finish within 0.001 s: nothing to compare", out[-1]
    assert any(line.startswith("  0:0:addition(") for line in out)
