"""The answer-mass check: do a classification program's answers over its labels sum to 1?

A program that predicts a class should, in every possible world, derive exactly one label.
Where two rules fire for the same case (two labels at once) the answers sum to more than 1;
where none fires, to less. ProbLog answers such a program exactly as written, and DeepProbLog
trains on it without a word, so ``check_answer_mass`` looks, per structure, at a sample of
examples and, where the mass is off, explains why: a world (one choice per disjunction) in
which two labels hold or none does, and the program's rules that fire together in that world
for the same call (file:line). A common cause is float arithmetic at a rule's boundary:
ProbLog rounds float constants to 15 decimals, so ``D is abs(5.4 - 2.4), D =< 3`` holds
(D = 3.0) while the inline ``abs(5.4 - 2.4) > 3`` holds too (3.0000000000000004).

The answers themselves are never changed: they stay equal to ProbLog's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from problog.formula import LogicDAG
from problog.logic import Clause, Constant, Term, Var

from .bindings import PLACEHOLDER
from .dnnf import find_world
from .program import ProgramError

FIRED = "emolog_fired"   # fired(K, Head): clause K's body holds for Head (instrumented copy)
TOLERANCE = 1e-6


@dataclass
class MassFinding:
    """One structure whose answers over the labels do not sum to 1 on some examples."""

    structure: str                                 # the filled template, I for the image
    masses: list[tuple[int, float]]                # (example id, sum of the label answers)
    kind: str = ""                                 # "overlap": two labels at once; "none": no label
    world: list[str] = field(default_factory=list)      # the choices that matter in the witness
    labels: list[str] = field(default_factory=list)     # the answers that hold together
    rules: list[str] = field(default_factory=list)      # "file:line: clause" firing together

    def message(self) -> str:
        lo = min(m for _, m in self.masses)
        hi = max(m for _, m in self.masses)
        ids = [i for i, _ in self.masses]
        head = (f"{self.structure}: the answers over the labels sum to {lo:.6g}..{hi:.6g}, not 1, "
                f"for {len(ids)} example(s) (ids {ids[:10]}{' ...' if len(ids) > 10 else ''})")
        if self.kind == "overlap":
            why = f"two labels hold at once ({', '.join(self.labels)})"
        elif self.kind == "none":
            why = "no label holds"
        else:
            return head
        where = f" when {', '.join(self.world)}" if self.world else ""
        rules = ("; rules firing together for the same call: " + " | ".join(self.rules)) if self.rules else ""
        return f"{head}: {why}{where}{rules}"


def answer_masses(prog, examples: Sequence, labels: Sequence[str] | None = None
                  ) -> list[tuple[str, list[tuple[int, float]]]]:
    """[(structure key, [(example id, mass)])]: the sum of each example's answers whose last
    argument is one of ``labels`` (every answer when None)."""
    if not examples:
        return []
    with torch.no_grad():
        ans = prog(list(examples))
    keep = torch.tensor([labels is None or _last_arg(n) in set(labels) for n in ans.names], dtype=torch.bool)
    mass = (ans.probs[:, keep].sum(1) if len(ans.names) else torch.zeros(len(examples))).tolist()
    out: dict[str, list[tuple[int, float]]] = {}
    for ex, m in zip(examples, mass):
        out.setdefault(prog.structure_key(ex), []).append((ex.id, float(m)))
    return list(out.items())


def check_answer_mass(prog, examples: Sequence, labels: Sequence[str] | None = None,
                      tol: float = TOLERANCE) -> list[MassFinding]:
    """A finding per structure whose sampled examples' label answers do not sum to 1 (within
    ``tol``), each explained (``MassFinding.message``); [] when every one does."""
    findings = []
    for key, masses in answer_masses(prog, examples, labels):
        off = [(i, m) for i, m in masses if abs(m - 1) > tol]
        if off:
            ex = next(e for e in examples if e.id == off[0][0] and prog.structure_key(e) == key)
            findings.append(_explain(prog, ex, MassFinding(key, off), labels))
    return findings


def _last_arg(name: str) -> str:
    """The last argument of an answer's text, ``joy`` for ``final_emotion(..., joy)``."""
    depth, cut = 0, None
    for i, ch in enumerate(name):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 1:
            cut = i
    return name[cut + 1:-1].strip().strip("'") if cut is not None else name.strip("'")


def _explain(prog, ex, finding: MassFinding, labels) -> MassFinding:
    """Fill in a witness world and the rules that fire together in it."""
    _, term = prog._fill(ex)
    if term is None:   # the program's own query/1: nothing to instrument per structure
        return finding
    try:
        db, engine, marked = _instrumented(prog)
        dag = LogicDAG.create_from(db, engine=engine, database=db, queries=[term], keep_named=True)
    except Exception:   # noqa: BLE001 - an explanation must never turn a warning into a crash
        return finding
    answers = [(n, k) for n, k, _ in dag.labeled() if labels is None or _last_arg(str(n)) in set(labels)]
    ev = [dag.negate(k) if v < 0 else k for _, k, v in dag.evidence_all() if v]
    if finding.masses[0][1] > 1:   # two labels at once: the first pair that can hold together
        pairs = [(a, b) for i, a in enumerate(answers) for b in answers[i + 1:]]
        found = find_world(dag, [[a[1], b[1]] + ev for a, b in pairs])
        holding = [pairs[found[0]][0][0], pairs[found[0]][1][0]] if found else []
    else:                          # no label at all
        found = find_world(dag, [[dag.negate(k) for _, k in answers] + ev])
        holding = []
    if found is None:
        return finding
    _, truth, chosen = found
    finding.kind = "overlap" if holding else "none"
    finding.labels = [_last_arg(str(n)) for n in holding]
    names = [_atom(dag.get_node(k).name) for k in chosen if truth.get(k)]
    fired = [n for n in names if n.functor == FIRED]
    finding.world = sorted(_shown(n) for n in names if n.functor != FIRED)
    finding.rules = _overlapping_rules(fired, marked, prog)
    return finding


def _instrumented(prog) -> tuple:
    """(database, engine, marked clauses): the program with every rule of a predicate defined
    by two or more rules extended by ``emolog_fired(K, Head)``, a probabilistic fact (0.5, so
    it stays in the ground formula) that holds when rule K fires for Head."""
    from problog.engine import DefaultEngine
    from problog.extern import problog_export
    from problog.logic import And
    from problog.program import SimpleProgram

    from .deep import _det
    from .translate import DET

    rules = [c for c in prog.translated.program if isinstance(c, Clause) and isinstance(c.head, Term)]
    count: dict[tuple, int] = {}
    for c in rules:
        count[c.head.signature] = count.get(c.head.signature, 0) + 1
    out, marked = SimpleProgram(), []
    for st in prog.translated.program:
        if isinstance(st, Clause) and isinstance(st.head, Term) and count.get(st.head.signature, 0) > 1:
            st = Clause(st.head, And(st.body, Term(FIRED, Constant(len(marked)), st.head)))
            marked.append(st)
        out.add_clause(st)
    out.add_clause(Term(FIRED, Var("K"), Var("H"), p=Constant(0.5)))
    engine = DefaultEngine()
    db = engine.prepare(out)
    for name, net in prog.nets.items():
        if net.kind == "det":
            problog_export.database = db
            problog_export("+term", "-term")(_det(name), funcname=DET.format(name), modname=None)
    return db, engine, [(c, getattr(c, "location", None)) for c in rules if count[c.head.signature] > 1]


def _overlapping_rules(fired: list[Term], marked, prog) -> list[str]:
    """Two rules of one predicate that fire in the witness for heads agreeing on their leading
    arguments (the call) and differing after: "file:line: head" for each."""
    by_pred: dict[tuple, list[tuple[int, Term]]] = {}
    for f in fired:
        by_pred.setdefault(f.args[1].signature, []).append((int(f.args[0]), f.args[1]))
    out: list[str] = []
    for items in by_pred.values():
        best = None
        for i, (k1, h1) in enumerate(items):
            for k2, h2 in items[i + 1:]:
                same = _common_prefix(h1, h2)
                if k1 != k2 and same and (best is None or same > best[0]):
                    best = (same, k1, h1, k2, h2)
        if best:
            _, k1, h1, k2, h2 = best
            out += [f"{_where(prog, marked[k1][1])}: {_shown(h1)}", f"{_where(prog, marked[k2][1])}: {_shown(h2)}"]
    return out


def _atom(name: Term) -> Term:
    """The atom of a ground node's name (ProbLog names a probabilistic choice
    ``choice(group, index, atom, ...)``)."""
    return name.args[2] if name.functor == "choice" and name.arity >= 3 else name


def _common_prefix(a: Term, b: Term) -> int:
    n = 0
    for x, y in zip(a.args, b.args):
        if x != y:
            break
        n += 1
    return n if n < len(a.args) else 0


def _where(prog, location) -> str:
    line = prog.params_program.line_of(location)
    return f"{prog.path}:{line}" if line else str(prog.path)


def _shown(t) -> str:
    return str(t).replace(str(PLACEHOLDER), "I")


def strict_error(findings: list[MassFinding], where: str) -> ProgramError:
    """The error ``--strict`` raises: every finding, one per line."""
    msg = "the answers over the labels do not sum to 1:\n" + "\n".join(f.message() for f in findings)
    return ProgramError(f"{where}: Error: {msg}", path=where, message="answer mass is not 1")
