"""200 seeded random ProbLog programs, each answered by emolog as problog answers it (1e-9).

Programs are generated here (random probabilistic facts, annotated disjunctions with and
without bodies, probabilistic rules, positive recursion, stratified negation, evidence in all
three forms, ground / non-ground / rule-generated queries); problog itself answers them in the
test (tests/programs/problog_runner.py). Where problog refuses a program (e.g. evidence of
probability 0), emolog must refuse it too, with problog's words.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import emolog.logic as logic
from helpers.corpus import assert_same_answers, problog_reference

N_PROGRAMS = 200
VALUES = ["r", "g", "b"]


def _prob(rng: random.Random) -> str:
    return f"{rng.choice([0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0, 0.05, 0.95, 0.33])}"


def _ad_probs(rng: random.Random, k: int) -> list[str]:
    """k head probabilities summing to at most 1 (exactly 1 half of the time)."""
    cuts = sorted(rng.randint(1, 19) for _ in range(k - 1))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 20])]
    if rng.random() < 0.5:
        parts[-1] = max(parts[-1] - rng.randint(1, 3), 0)
    return [f"{p / 20:g}" for p in parts]


class _Gen:
    """Predicates are (name, kind, level); kind: '0' arity 0, 'x' one domain argument,
    'v' one value argument (an AD over VALUES), 'xv' both. Negation only refers to lower
    levels, so every program is stratified; positive references may recurse."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.consts = ["a", "b", "c"][: self.rng.randint(1, 3)]
        self.lines = [f"d({c})." for c in self.consts]
        self.preds: list[tuple[str, str, int]] = []
        self.uncertain: list[str] = []  # ground facts with 0 < p < 1 (always consistent evidence)

    def arg_atom(self, name: str, kind: str, bound: bool) -> str:
        rng = self.rng
        x = "X" if bound and rng.random() < 0.7 else rng.choice(self.consts)
        v = rng.choice(VALUES)
        return {"0": name, "x": f"{name}({x})", "v": f"{name}({v})", "xv": f"{name}({x},{v})"}[kind]

    def facts(self) -> None:
        rng = self.rng
        for i in range(rng.randint(2, 4)):
            kind = rng.choice(["0", "x"])
            name = f"f{i}"
            atoms = (
                [name]
                if kind == "0"
                else [f"{name}({c})" for j, c in enumerate(self.consts) if j == 0 or rng.random() < 0.7]
            )
            for atom in atoms:
                p = _prob(rng)
                self.lines.append(f"{p}::{atom}.")
                if p != "1.0":
                    self.uncertain.append(atom)
            self.preds.append((name, kind, 0))
        for i in range(rng.randint(0, 2)):
            k = rng.randint(2, 3)
            heads = "; ".join(f"{p}::c{i}({v})" for p, v in zip(_ad_probs(rng, k), VALUES))
            self.lines.append(heads + ".")
            self.preds.append((f"c{i}", "v", 0))

    def body(self, level: int, bound: bool) -> list[str]:
        rng = self.rng
        lits = ["d(X)"] if bound else []
        lower = [p for p in self.preds if p[2] < level]
        same = [p for p in self.preds if p[2] == level]
        for _ in range(rng.randint(1, 3)):
            if same and rng.random() < 0.15:
                name, kind, _lvl = rng.choice(same)
                lits.append(self.arg_atom(name, kind, bound))
            else:
                name, kind, _lvl = rng.choice(lower)
                atom = self.arg_atom(name, kind, bound)
                lits.append(f"\\+ {atom}" if rng.random() < 0.3 else atom)
        if all(lit.startswith("\\+") for lit in lits):  # keep every body able to succeed positively too
            name, kind, _lvl = rng.choice(lower)
            lits.insert(0, self.arg_atom(name, kind, bound))
        return lits

    def rules(self) -> None:
        rng = self.rng
        for level in range(1, rng.randint(2, 4)):
            for i in range(rng.randint(1, 3)):
                name = f"h{level}_{i}"
                shape = rng.random()
                if shape < 0.2:  # annotated disjunction with a body, one choice per X
                    k = rng.randint(2, 3)
                    heads = "; ".join(f"{p}::{name}(X,{v})" for p, v in zip(_ad_probs(rng, k), VALUES))
                    self.lines.append(f"{heads} :- {', '.join(self.body(level, True))}.")
                    self.preds.append((name, "xv", level))
                    continue
                kind = rng.choice(["0", "x"])
                self.preds.append((name, kind, level))
                for _ in range(rng.randint(1, 2)):
                    head = name if kind == "0" else f"{name}(X)"
                    prob = f"{_prob(rng)}::" if rng.random() < 0.35 else ""
                    self.lines.append(f"{prob}{head} :- {', '.join(self.body(level, kind == 'x'))}.")

    def queries_and_evidence(self) -> None:
        rng = self.rng
        for name, kind, _lvl in rng.sample(self.preds, min(len(self.preds), rng.randint(1, 4))):
            form = rng.random()
            if kind in ("x", "xv") and form < 0.3:
                atom = {"x": f"{name}(X)", "xv": f"{name}(X,_)"}[kind]
                self.lines.append(f"query({atom}).")
            elif kind == "x" and form < 0.5:
                self.lines.append(f"query({name}(X)) :- d(X).")
            else:
                self.lines.append(f"query({self.arg_atom(name, kind, False)}).")
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            if rng.random() < 0.5 or not self.uncertain:  # a derived atom: may be impossible, then problog refuses
                name, kind, _lvl = rng.choice(self.preds)
                atom = self.arg_atom(name, kind, False)
            else:
                atom = rng.choice(self.uncertain)
            self.lines.append(
                rng.choice(
                    [
                        f"evidence({atom}).",
                        f"evidence({atom}, false).",
                        f"evidence(\\+ {atom}).",
                        f"evidence({atom}, true).",
                    ]
                )
            )


def random_program(seed: int) -> str:
    gen = _Gen(seed)
    gen.facts()
    gen.rules()
    gen.queries_and_evidence()
    return "\n".join([f"% random program, seed {seed}", *gen.lines]) + "\n"


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[int, tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("random_programs")
    paths = {}
    for seed in range(N_PROGRAMS):
        paths[seed] = root / f"random_{seed:03d}.pl"
        paths[seed].write_text(random_program(seed))
    ref = problog_reference(list(paths.values()), cli=False)
    return {seed: (path, ref[str(path)]) for seed, path in paths.items()}


def test_generator_is_deterministic_and_varied(programs):
    assert random_program(7) == random_program(7)
    texts = [random_program(s) for s in range(N_PROGRAMS)]
    joined = "\n".join(texts)
    for construct in ["\\+ ", ":- d(X)", "evidence(", ", false).", "query(", ") :- d(X).", "; 0."]:
        assert construct in joined, construct
    answered = sum("answers" in ref for _path, ref in programs.values())
    assert answered >= 0.9 * N_PROGRAMS  # mostly answerable, a few refused (e.g. impossible evidence)


@pytest.mark.parametrize("seed", range(N_PROGRAMS))
def test_random_program_matches_problog(seed, programs):
    path, ref = programs[seed]
    if "answers" in ref:
        assert_same_answers(logic.evaluate(path), ref["answers"], f"seed {seed}:\n{path.read_text()}")
        return
    assert "error" in ref, ref  # problog refused it (no crash): emolog must refuse it the same way
    with pytest.raises(logic.ProgramError) as raised:
        logic.evaluate(path)
    assert (raised.value.problog_text or "").startswith(ref["error"][0]), (raised.value.problog_text, ref["error"])
