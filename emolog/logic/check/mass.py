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

from ..bindings import PLACEHOLDER
from ..engine.dnnf import find_world
from ..engine.plan import free_values, table
from ..program import ProgramError

FIRED = "emolog_fired"  # fired(K, [Values]): rule K's body holds, its variables' values (instrumented copy)
BOUND = "emolog_bound"  # bound(X, V): V is X when X is ground, else the atom '_'
TOLERANCE = 1e-6


@dataclass
class MassFinding:
    """One structure whose answers over the labels do not sum to 1 on some examples."""

    structure: str  # the filled template, I for the image
    masses: list[tuple[int | None, float]]  # (example id or None, sum of the label answers)
    fault: str = ""  # "overlap": two labels at once; "no_label": none holds
    world: list[str] = field(default_factory=list)  # the choices that matter in the witness
    labels: list[str] = field(default_factory=list)  # the answers that hold together
    rules: list[str] = field(default_factory=list)  # "file:line: clause" firing together

    def message(self) -> str:
        lo = min(m for _, m in self.masses)
        hi = max(m for _, m in self.masses)
        ids = [i for i, _ in self.masses]
        total = f"{lo:.6g}" if lo == hi else f"{lo:.6g}..{hi:.6g}"
        head = f"{self.structure}: the answers over the labels sum to {total}, not 1"
        if ids != [None]:  # a plain program's query has no examples
            head += f", for {len(ids)} example(s) (ids {ids[:10]}{' ...' if len(ids) > 10 else ''})"
        if self.fault == "overlap":
            why = f"two labels hold at once ({', '.join(self.labels)})"
        elif self.fault == "no_label":
            why = "no label holds"
        else:
            return head
        where = f" when {', '.join(self.world)}" if self.world else ""
        rules = ("; rules firing together for the same call: " + " | ".join(self.rules)) if self.rules else ""
        return f"{head}: {why}{where}{rules}"


def answer_masses(
    prog, examples: Sequence, labels: Sequence[str] | None = None
) -> list[tuple[str, list[tuple[int, float]]]]:
    """[(structure key, [(example id, mass)])]: the sum of each example's answers whose last
    argument is one of ``labels`` (every answer when None)."""
    if not examples:
        return []
    with torch.no_grad():
        ans = prog(list(examples))
    wanted = None if labels is None else {str(v).strip("'") for v in labels}
    keep = torch.tensor([wanted is None or _last_arg(n) in wanted for n in ans.names], dtype=torch.bool)
    mass = (ans.probs[:, keep].sum(1) if len(ans.names) else torch.zeros(len(examples))).tolist()
    out: dict[str, list[tuple[int, float]]] = {}
    for ex, m in zip(examples, mass):
        out.setdefault(prog.structure_key(ex), []).append((ex.id, float(m)))
    return list(out.items())


def check_answer_mass(
    prog, examples: Sequence, labels: Sequence[str] | None = None, tol: float = TOLERANCE
) -> list[MassFinding]:
    """A finding per structure whose sampled examples' label answers do not sum to 1 (within
    ``tol``), each explained (``MassFinding.message``); [] when every one does."""
    findings = []
    for key, masses in answer_masses(prog, examples, labels):
        off = [(i, m) for i, m in masses if abs(m - 1) > tol]
        if off:
            ex = next(e for e in examples if e.id == off[0][0] and prog.structure_key(e) == key)
            findings.append(
                _explain(prog, prog._fill(ex)[1], MassFinding(key, off), labels, atom_probabilities(prog, ex))
            )
    return findings


def check_program_mass(prog, answers: Sequence[tuple[Term, float]], tol: float = TOLERANCE) -> list[MassFinding]:
    """For a plain ProbLog program answering its own query/1 (``answers``, as ``evaluate``
    lists them): a finding per non-ground query whose ground answers do not sum to 1."""
    from problog.engine_unify import unify_value

    findings = []
    for q in prog.translated.queries:
        if q.is_ground():
            continue
        total = 0.0
        for atom, p in answers:
            try:
                unify_value(q, atom, {})
            except Exception:  # noqa: BLE001 - problog's UnifyError: not an answer of q
                continue
            total += float(p)
        if abs(total - 1) > tol:
            findings.append(_explain(prog, q, MassFinding(str(q), [(None, total)]), None, {}))
    return findings


def atom_probabilities(prog, ex) -> dict[str, float]:
    """Each probabilistic atom's probability for one example (float64), keyed by its
    probability term as ProbLog writes it: ``nn(net,[tensor(scene(emolog_I))],3)``,
    ``nn(net,[...])``, ``t(2)`` (the witness avoids the example's impossible choices)."""
    from ..bindings import call_networks

    c = prog.compiled(ex)
    ids = torch.tensor([ex.id])
    outputs = call_networks(
        {u: ids for u, _, _ in c.plan.inputs}, prog._input_terms, prog._bindings, prog._sources, prog.nets, prog.path
    )
    tp = prog.tparams.probs().detach().double() if len(prog.tparams) else None
    with torch.no_grad():
        free = free_values(c.plan, outputs, torch.float64)
        p = table(c.plan, ids, outputs, tp, torch.float64, free)[:, 0].tolist()
    names = {
        "nn": lambda s: f"nn({s[1][0]},{s[1][1]},{s[2]})",
        "f": lambda s: f"nn({s[1][0]},{s[1][1]})",
        "t": lambda s: f"t({s[1]})",
        "c": lambda s: repr(s[1]),
    }
    return {names[spec[0]](spec): v for spec, v in zip(c.specs, p)}


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
    return name[cut + 1 : -1].strip().strip("'") if cut is not None else name.strip("'")


def _explain(prog, term: Term, finding: MassFinding, labels, probs: dict[str, float]) -> MassFinding:
    """Fill in a witness world for ``term``'s answers and the rules that fire together in it,
    among the worlds of positive probability (``probs``: DeepProgram.atom_probabilities of
    the example; numbers in the program weigh themselves)."""
    try:
        db, engine, marked = _instrumented(prog)
        dag = LogicDAG.create_from(db, engine=engine, database=db, queries=[term], keep_named=True)
    except Exception:  # noqa: BLE001 - an explanation must never turn a warning into a crash
        return finding
    wanted = None if labels is None else {str(v).strip("'") for v in labels}
    answers = [(n, k) for n, k, _ in dag.labeled() if wanted is None or _last_arg(str(n)) in wanted]
    found, holding = _witness(dag, answers, finding.masses[0][1] > 1, _weights(dag, probs))
    if found is None:
        return finding
    _, truth, chosen = found
    finding.fault = "overlap" if holding else "no_label"
    finding.labels = [_last_arg(str(n)) for n in holding]
    names = [_atom(dag.get_node(k).name) for k in chosen if truth.get(k)]
    finding.world = sorted(_shown(n) for n in names if n.functor != FIRED)
    finding.rules = _overlapping_rules(_fired(dag, truth), marked, prog)
    return finding


def _witness(dag, answers: list[tuple], overlap: bool, weights) -> tuple:
    """(``find_world``'s (root, truth, chosen) or None, the answers that hold in that world):
    with ``overlap`` (mass above 1) a world of the first pair of answers that can hold
    together, and that pair; else a world where no answer holds, and ``[]``."""
    ev = [dag.negate(k) if v < 0 else k for _, k, v in dag.evidence_all() if v]
    if not overlap:
        return find_world(dag, [[dag.negate(k) for _, k in answers] + ev], weights), []
    pairs = [(a, b) for i, a in enumerate(answers) for b in answers[i + 1 :]]
    found = find_world(dag, [[a[1], b[1]] + ev for a, b in pairs], weights)
    return found, ([pairs[found[0]][0][0], pairs[found[0]][1][0]] if found else [])


def _weights(dag, probs: dict[str, float]):
    """weight(atom key): the example's probability of an atom (a number in the program is
    its own); the instrumentation's marks are certain: a rule's mark holds when its body does."""
    from ..ground import number

    def weight(key: int) -> float:
        node = dag.get_node(key)
        if _atom(node.name).functor == FIRED:
            return 1.0
        p = node.probability
        text = str(p)
        return probs[text] if text in probs else number(p, "<answer-mass check>")

    return weight


def _instrumented(prog) -> tuple:
    """(database, engine, marked rules): the program with every rule of a predicate defined by
    two or more rules extended by ``emolog_fired(K, [V...])``, a probabilistic fact (0.5, so it
    stays in the ground formula) over the rule's variables, which holds when rule K fires. A
    variable still unbound when the body holds (``_`` in ``[F|_]``) is passed as the atom '_'
    (``emolog_bound/2``): a probabilistic fact takes ground arguments only. A marked rule is
    (clause, location, its variables' names)."""
    from problog.engine import DefaultEngine
    from problog.extern import problog_export
    from problog.logic import And, Not, list2term
    from problog.program import SimpleProgram

    from ..engine.deep import _det
    from ..translate import DET

    rules = [c for c in prog.translated.program if isinstance(c, Clause) and isinstance(c.head, Term)]
    count: dict[tuple, int] = {}
    for c in rules:
        count[c.head.signature] = count.get(c.head.signature, 0) + 1
    out, marked = SimpleProgram(), []
    for st in prog.translated.program:
        if isinstance(st, Clause) and isinstance(st.head, Term) and count.get(st.head.signature, 0) > 1:
            names = sorted({str(v) for v in st.head.variables() | st.body.variables()})
            bound = [Var(f"EmologB{i}") for i in range(len(names))]
            mark = Term(FIRED, Constant(len(marked)), list2term(bound))
            body = st.body
            for n, b in zip(names, bound):
                body = And(body, Term(BOUND, Var(n), b))
            marked.append((st, getattr(st, "location", None), names))
            st = Clause(st.head, And(body, mark))
        out.add_clause(st)
    out.add_clause(Term(FIRED, Var("K"), Var("H"), p=Constant(0.5)))
    out.add_clause(Clause(Term(BOUND, Var("X"), Var("X")), Term("ground", Var("X"))))
    out.add_clause(Clause(Term(BOUND, Var("X"), Term("'_'")), Not("\\+", Term("ground", Var("X")))))
    engine = DefaultEngine()
    db = engine.prepare(out)
    for name, net in prog.nets.items():
        if net.kind == "det":
            problog_export.database = db
            problog_export("+term", "-term")(_det(name), funcname=DET.format(name), modname=None)
    return db, engine, marked


def _overlapping_rules(fired: list[Term], marked, prog) -> list[str]:
    """Two rules of one predicate that fire in the witness for heads agreeing on their leading
    arguments (the call) and differing after: "file:line: head" for each."""
    from problog.logic import term2list

    by_pred: dict[tuple, list[tuple[int, Term]]] = {}
    for f in fired:
        k = int(f.args[0])
        clause, _, names = marked[k]
        head = clause.head.apply_term(dict(zip(map(Var, names), term2list(f.args[1], False))))
        by_pred.setdefault(head.signature, []).append((k, head))
    out: list[str] = []
    for items in by_pred.values():
        best = None
        for i, (k1, h1) in enumerate(items):
            for k2, h2 in items[i + 1 :]:
                same = _common_prefix(h1, h2)
                if k1 != k2 and same and (best is None or same > best[0]):
                    best = (same, k1, h1, k2, h2)
        if best:
            _, k1, h1, k2, h2 = best
            out += [f"{_where(prog, marked[k1][1])}: {_shown(h1)}", f"{_where(prog, marked[k2][1])}: {_shown(h2)}"]
    return out


def _fired(dag, truth: dict[int, bool]) -> list[Term]:
    """The marks ``emolog_fired(K, Head)`` whose rule's body holds in the world: a mark is the
    last conjunct its rule adds, so it fires where the rest of its conjunction holds (a rule
    whose body is deterministic leaves its mark alone, under an OR of the alternatives)."""
    memo: dict[int, bool] = {}

    def holds(key) -> bool:
        if key is None or key == 0:
            return key == 0
        if key < 0:
            return not holds(-key)
        if key not in memo:
            n = dag.get_node(key)
            kind = type(n).__name__
            memo[key] = (
                truth.get(key, False)
                if kind == "atom"
                else (all if kind == "conj" else any)(holds(c) for c in n.children)
            )
        return memo[key]

    out = []
    for key in range(1, len(dag) + 1):
        n = dag.get_node(key)
        kind = type(n).__name__
        if kind == "atom":
            continue
        marks = [
            c
            for c in n.children
            if c and c > 0 and type(dag.get_node(c)).__name__ == "atom" and _atom(dag.get_node(c).name).functor == FIRED
        ]
        # under an OR a mark stands alone: its rule's body was deterministic and holds
        if marks and (kind == "disj" or all(holds(c) for c in n.children if c not in marks)):
            out += [_atom(dag.get_node(c).name) for c in marks]
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
    return str(t).replace(str(PLACEHOLDER), "I").replace("'_'", "_")


def strict_error(findings: list[MassFinding], where: str) -> ProgramError:
    """The error ``--strict`` raises: every finding, one per line."""
    msg = "the answers over the labels do not sum to 1:\n" + "\n".join(f.message() for f in findings)
    return ProgramError(f"{where}: Error: {msg}", path=where, message="answer mass is not 1")
