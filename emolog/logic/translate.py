"""A DeepProbLog 2.1 program as written, translated for ProbLog's grounder as DeepProbLog does.

* ``nn(net, Inputs, Y, [d1..dn]) :: head [:- body].`` becomes the annotated disjunction
  ``nn(net, Inputs, 0)::head[Y=d1]; ...`` (with the body, if any), as
  ``ExactEngine.create_nn_predicate_ad``;
* ``nn(net, Inputs) :: head.`` stays a fact whose probability is the network's one output;
* ``nn(net, Inputs, Out) :: head.`` (a deterministic network) becomes
  ``head :- <net>_emolog_det_(Inputs, Out)``, a builtin that binds ``Out`` to the symbolic
  tensor ``tensor(nn(net, Inputs))`` (DeepProbLog binds the same name to the computed tensor);
* ``t(...)`` annotations are numbered in order of appearance (``Model._extract_parameters``);
  ``t(_)`` in an annotated disjunction *with a body* (DeepProbLog leaves it untranslated and
  fails when evaluating) is numbered the same way and grouped like a body-less disjunction.

Refused, with file:line: ``nn`` of another arity, ``nn`` as one head among others, ``t(_, X)``
(ProbLog LFI), a disjunction mixing fixed and ``t`` heads (DeepProbLog renormalises its ``t``
heads to sum to 1 on their own, which leaves the disjunction summing to more than 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from problog.logic import AnnotatedDisjunction, Clause, Constant, Or, Term, Var, term2list
from problog.program import SimpleProgram

from .program import Program, ProgramError, TParam

DET = "{}_emolog_det_"


@dataclass
class Net:
    """One neural predicate: ``kind`` "ad" (nn/4), "fact" (nn/2) or "det" (nn/3)."""

    name: str
    kind: str
    domain: list[Term] | None
    line: int


@dataclass
class Translated:
    program: SimpleProgram
    nets: dict[str, Net] = field(default_factory=dict)
    params: Program = None  # t() parameters (emolog's Program shape, for TParams)
    queries: list[Term] = field(default_factory=list)
    evidence: list[tuple[Term, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # where emolog differs from DeepProbLog


def translate(statements, path: str, source: str) -> Translated:
    """Translate parsed statements (a ProbLog LogicProgram) as DeepProbLog's Model + ExactEngine."""
    out = SimpleProgram()
    tr = Translated(out, params=Program(source=source, path=path))
    for st in statements:
        where = f"{path}:{tr.params.line_of(getattr(st, 'location', None))}"
        if type(st) is Term and st.probability is None and st.functor in ("query", "evidence"):
            _directive(tr, st)
            out.add_clause(st)
            continue
        for new in _statement(tr, st, where):
            out.add_clause(new)
    out.add_clause(Clause(Term("_directive"), Term("use_module", Term("library", Term("lists.pl")))))
    return tr


def _directive(tr: Translated, st: Term) -> None:
    if st.functor == "query":
        tr.queries.append(st.args[0])
    else:
        value = st.arity < 2 or str(st.args[1]) not in ("false", "0")
        tr.evidence.append((st.args[0], value))


def _statement(tr: Translated, st, where: str) -> list:
    if isinstance(st, (Or, AnnotatedDisjunction)):
        heads = st.to_list() if isinstance(st, Or) else list(st.heads)
        if any(_is(h.probability, "nn") for h in heads):
            raise _refuse(
                where,
                "nn(...) as one head of a disjunction",
                "a neural predicate is its own disjunction over its domain",
            )
        group = []
        new = []
        for h in heads:
            if _is(h.probability, "t"):
                group.append(len(tr.params.params))
                h = _t_head(tr, h, where, len(tr.params.groups))
            new.append(h)
        if group and len(group) != len(heads):
            raise _refuse(
                where,
                "a disjunction mixing fixed and t(...) heads",
                "DeepProbLog renormalises only the t heads (to sum 1 on their own), so "
                "the disjunction would sum to more than 1; make every head t(...)",
            )
        if group:
            tr.params.groups.append(group)
            if isinstance(st, AnnotatedDisjunction):
                tr.notes.append(
                    f"{where}: t(...) in a disjunction with a body: DeepProbLog leaves "
                    "it untranslated (and fails); emolog learns it as one disjunction"
                )
        return [Or.from_list(new) if isinstance(st, Or) else AnnotatedDisjunction(new, st.body)]
    head, body = (st.head, st.body) if isinstance(st, Clause) else (st, None)
    if not isinstance(head, Term):
        return [st]
    p = head.probability
    if _is(p, "nn"):
        return _neural(tr, head, body, where)
    if _is(p, "t"):
        head = _t_head(tr, head, where, None)
        return [head if body is None else Clause(head, body)]
    return [st]


def _is(p, functor: str) -> bool:
    return isinstance(p, Term) and not isinstance(p, Constant) and p.functor == functor


def _refuse(where: str, construct: str, why: str) -> ProgramError:
    path, _, line = where.rpartition(":")
    msg = f"{construct} is not supported: {why}"
    return ProgramError(f"{where}: Error: {msg}", path=path, line=int(line) if line.isdigit() else None, message=msg)


def _t_head(tr: Translated, head: Term, where: str, group: int | None) -> Term:
    p = head.probability
    if p.arity != 1:
        raise _refuse(where, f"{p} (ProbLog LFI's t(_, X))", "DeepProbLog learns t/1 only; write t(_) or t(0.3)")
    arg = p.args[0]
    init = None
    if not isinstance(arg, Var):
        try:
            init = float(arg.compute_value() if isinstance(arg, Term) else arg)
        except Exception:
            raise _refuse(where, f"{p}", "t(...) must hold a number or '_'") from None
        if not 0.0 <= init <= 1.0:
            raise _refuse(where, f"{p}", "its start value is not a probability")
    idx = len(tr.params.params)
    tr.params.params.append(TParam(idx, head.with_probability(None), init, group))
    return head.with_probability(Term("t", Constant(idx)))


def _neural(tr: Translated, head: Term, body, where: str) -> list:
    p = head.probability
    line = int(where.rpartition(":")[2] or 0)
    name = str(p.args[0])
    if p.arity == 4:
        net, inputs, output, domain = p.args
        try:
            values = term2list(domain, False)
        except Exception:
            raise _refuse(where, f"{p}", "the domain of nn/4 must be a list") from None
        _declare(tr, Net(name, "ad", values, line), where)
        heads = [
            head.with_probability(p.with_args(net, inputs, Constant(j))).apply_term({output: d})
            for j, d in enumerate(values)
        ]
        return [AnnotatedDisjunction(heads, body) if body is not None else Or.from_list(heads)]
    if p.arity == 3:
        net, inputs, output = p.args
        _declare(tr, Net(name, "det", None, line), where)
        call = Term(DET.format(name), inputs, output)
        new_body = call if body is None else body & call
        return [Clause(head.with_probability(None), new_body)]
    if p.arity == 2:
        _declare(tr, Net(name, "fact", None, line), where)
        return [head if body is None else Clause(head, body)]
    raise _refuse(where, f"nn/{p.arity}", "DeepProbLog has nn/2, nn/3 and nn/4")


def _declare(tr: Translated, net: Net, where: str) -> None:
    old = tr.nets.get(net.name)
    if old is not None and (old.kind != net.kind or old.domain != net.domain):
        raise _refuse(where, f"network {net.name!r} declared again differently", f"first declared on line {old.line}")
    tr.nets.setdefault(net.name, net)
