"""ProbLog's own answer for one image: the network outputs written in as numbers.

This is the ground truth emolog's circuits are tested against: it shares nothing with
``engine/compile.py`` beyond the parsed program. Every neural disjunction becomes a ground
annotated disjunction with numeric probabilities, every per-image fact a numeric fact, every
``t(...)`` its current value, and ProbLog's ``get_evaluatable().create_from(...).evaluate()``
answers the queries (with ``evidence`` for "condition", through a conjunction for "fail").
"""

from __future__ import annotations

from problog import get_evaluatable
from problog.logic import AnnotatedDisjunction, Clause, Constant, Or, Term, Var, term2list
from problog.program import SimpleProgram

from ..program import IMAGE, Program, atom_name

_JOINT = "emolog_joint_"  # helper head: q and the evidence, for "fail" semantics


def problog_reference(
    prog: Program,
    inputs: dict[str, list[float]],
    facts: dict[str, float],
    t_probs: list[float],
    semantics: str = "condition",
) -> dict[str, float]:
    """{query name: probability} for ONE image. inputs: key -> n floats; facts: key -> float.

    semantics "condition": P(q | evidence); "fail"/"original": P(q and evidence).
    """
    out = SimpleProgram()
    for c in prog.clauses:
        for s in _numeric(c, inputs, facts, t_probs):
            out.add_clause(s)
    queries = [q.apply_term({q.args[0]: IMAGE}) for q in prog.queries]
    evidence = [(e.apply_term({e.args[0]: IMAGE}), v) for e, v in prog.evidence]
    if semantics == "condition" or not evidence:
        for q in queries:
            out.add_clause(Term("query", q))
        for e, v in evidence:
            out.add_clause(Term("evidence", e, Term("true" if v else "false")))
    else:
        for q in queries:
            body = [q] + [e if v else ~e for e, v in evidence]
            head = Term(_JOINT + q.functor, *q.args)
            conj = body[0]
            for b in body[1:]:
                conj = conj & b
            out.add_clause(Clause(head, conj))
            out.add_clause(Term("query", head))
    result = get_evaluatable("sdd").create_from(out).evaluate()
    return {atom_name(Term(k.functor.removeprefix(_JOINT), *k.args)): float(v) for k, v in result.items()}


def _numeric(c, inputs, facts, t_probs) -> list:
    """The statement with every placeholder probability replaced by its number."""
    if isinstance(c, (Or, AnnotatedDisjunction)):
        heads = c.heads if isinstance(c, AnnotatedDisjunction) else c.to_list()
        body = c.body if isinstance(c, AnnotatedDisjunction) else None
        p0 = heads[0].probability
        if isinstance(p0, Term) and p0.functor == "nn":
            return _neural_ad(heads, body, inputs)
        new = [h.with_probability(_value(h.probability, t_probs)) for h in heads]
        return [AnnotatedDisjunction(new, body) if body is not None else Or.from_list(new)]
    head, body = (c.head, c.body) if isinstance(c, Clause) else (c, None)
    p = head.probability
    if isinstance(p, Term) and p.functor == "nn":  # per-image fact, one per known key
        out = []
        net, ins = str(p.args[0]), p.args[1]
        for key, value in facts.items():
            subst = _match(net, ins, key)
            if subst is None:
                continue
            h = head.apply_term(subst).with_probability(Constant(value))
            out.append(h if body is None else Clause(h, body.apply_term(subst)))
        return out
    if isinstance(p, Term) and p.functor == "t":
        head = head.with_probability(_value(p, t_probs))
    return [head if body is None else Clause(head, body)]


def _neural_ad(heads, body, inputs) -> list:
    p0 = heads[0].probability
    net, ins = str(p0.args[0]), p0.args[1]
    out = []
    for key, values in inputs.items():
        subst = _match(net, ins, key)
        if subst is None:
            continue
        new = [h.apply_term(subst).with_probability(Constant(values[int(h.probability.args[2])])) for h in heads]
        out.append(AnnotatedDisjunction(new, body.apply_term(subst)) if body is not None else Or.from_list(new))
    return out


def _match(net: str, ins: Term, key: str) -> dict | None:
    """Substitution that makes the input list ``[X, A...]`` give ``key`` with X = img, or None."""
    args = term2list(ins, False)
    if key == net:
        rest: list[str] = []
    elif key.startswith(net + "(") and key.endswith(")"):
        rest = key[len(net) + 1 : -1].split(",")
    else:
        return None
    if len(rest) != len(args) - 1 or not isinstance(args[0], Var):
        return None
    subst = {args[0]: IMAGE}
    for a, r in zip(args[1:], rest):
        if isinstance(a, Var):
            subst[a] = Term(r)
        elif str(a) != r:
            return None
    return subst


def _value(p, t_probs) -> Constant:
    if isinstance(p, Term) and p.functor == "t":
        return Constant(t_probs[int(p.args[0])])
    return p
