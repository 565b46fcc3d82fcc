"""Reading an emolog logic program: ProbLog syntax plus DeepProbLog's ``nn`` and ``t``.

An emolog program is a ProbLog program in which

* ``nn(net, [X, A...], Y, [d1, ..., dn]) :: head.`` declares a *neural annotated
  disjunction*: for each ground ``A...`` one distribution over the domain ``d1..dn``, given
  per image as a tensor ``[B, n]`` under the key ``net`` (no extra inputs) or
  ``net(a1,...)`` (extra inputs ``A...`` ground to ``a1,...``);
* ``nn(net, [X, A...]) :: head.`` declares a *per-image fact*: its probability is given per
  image as a tensor ``[B]`` under the key ``net`` / ``net(a1,...)`` (e.g. face availability);
* ``t(_)`` / ``t(0.3)`` annotate trainable probabilities (facts or annotated disjunctions);
* ``query(q(X, ...)).`` names the queries and ``evidence(e(X)).`` the condition; the first
  argument of every neural input list, query and evidence atom is the image (write a
  variable there: one circuit serves every image).

``parse_program`` turns this into a ProbLog program whose probabilities are placeholder
terms (``nn(net, inputs, j)``, ``nn(net, inputs)``, ``t(i)``), the form DeepProbLog also uses,
so that ProbLog grounds it and emolog fills in the weights per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from problog.errors import ProbLogError
from problog.logic import AnnotatedDisjunction, Clause, Constant, Or, Term, Var, term2list
from problog.program import PrologString, SimpleProgram

from emolog.errors import EmologError

PROGRAMS_DIR = Path(__file__).parent / "programs"
IMAGE = Term("img")  # the constant the image variable is bound to when grounding


class ProgramError(EmologError, ValueError):
    """A logic program does not parse, does not ground, or does not fit its inputs.

    ``path``, ``line``, ``column`` locate the problem where known (None otherwise),
    ``message`` is the bare reason, and ``problog_text`` is what ``problog FILE`` itself prints
    for the same program (``UnknownClause: No clauses found for 'b/0' at 2:7.``) when the error
    came from ProbLog.
    """

    def __init__(
        self,
        text: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        message: str | None = None,
        problog_text: str | None = None,
    ):
        super().__init__(text)
        self.path, self.line, self.column = path, line, column
        self.message = message if message is not None else text
        self.problog_text = problog_text


@dataclass
class NeuralDecl:
    """One ``nn`` declaration: ``domain`` is None for a per-image fact (``nn/2``)."""

    net: str
    domain: list[str] | None
    line: int


@dataclass
class TParam:
    """A trainable probability ``t(...)``; ``init`` None means ``t(_)``."""

    index: int  # DeepProbLog's parameter index (order of appearance)
    head: Term  # the annotated head (for names such as source(face1))
    init: float | None
    group: int | None  # index into Program.groups when part of an annotated disjunction


@dataclass
class Program:
    """A parsed program: translated clauses plus what emolog needs to know about them."""

    source: str  # program text
    path: str  # file name (or "<string>") for messages
    clauses: list = field(default_factory=list)  # translated ProbLog statements
    neural: dict[str, NeuralDecl] = field(default_factory=dict)
    params: list[TParam] = field(default_factory=list)
    groups: list[list[int]] = field(default_factory=list)  # t-parameter indices per AD
    queries: list[Term] = field(default_factory=list)  # templates, image arg first
    evidence: list[tuple[Term, bool]] = field(default_factory=list)
    predicates: set[tuple[str, int]] = field(default_factory=set)  # defined functor/arity

    def line_of(self, location: tuple | None) -> int:
        """1-based line of a ProbLog location (file index, char offset)."""
        if not location or location[1] is None:
            return 0
        return self.source.count("\n", 0, location[1]) + 1

    def simple_program(self) -> SimpleProgram:
        prog = SimpleProgram()
        for c in self.clauses:
            prog.add_clause(c)
        return prog

    def initial_probs(self) -> list[float]:
        """Initial value of every t parameter (index order).

        ``t(_)`` starts uniform over the unset members of its disjunction (what is left after
        the given ones), or 0.5 for a lone fact. DeepProbLog draws ``random()`` instead; a fixed
        start keeps runs reproducible without a seed.
        """
        out = [p.init for p in self.params]
        for p in self.params:
            if p.init is not None:
                continue
            if p.group is None:
                out[p.index] = 0.5
            else:
                members = self.groups[p.group]
                fixed = sum(init for i in members if (init := self.params[i].init) is not None)
                unset = sum(1 for i in members if self.params[i].init is None)
                out[p.index] = max(0.0, 1.0 - fixed) / unset
        return out  # type: ignore[return-value]


def resolve_program(name_or_path: str | Path) -> tuple[str, str]:
    """Program text and display path for a shipped name (``programs/<name>.pl``) or a path."""
    p = Path(name_or_path)
    candidates = [p] if p.suffix == ".pl" or p.exists() else []
    candidates.append(PROGRAMS_DIR / f"{name_or_path}.pl")
    for c in candidates:
        if c.is_file():
            return c.read_text(), str(c)
    shipped = sorted(q.stem for q in PROGRAMS_DIR.glob("*.pl"))
    raise ProgramError(
        f"no logic program {str(name_or_path)!r}: not a file and not one of the shipped programs {shipped}"
    )


def parse_program(text: str, path: str = "<string>") -> Program:
    """Parse and translate a program; raises ProgramError with file:line on any problem."""
    prog = Program(source=text, path=path)
    try:
        statements = list(PrologString(text))
    except ProbLogError as e:
        loc = getattr(e, "location", None)
        line = loc[1] if loc and len(loc) > 2 else "?"
        col = loc[2] if loc and len(loc) > 2 else "?"
        raise ProgramError(f"{path}:{line}:{col}: does not parse: {_msg(e)}") from None
    for st in statements:
        line = prog.line_of(getattr(st, "location", None))
        try:
            _translate(prog, st, line)
        except ProgramError:
            raise
        except (ProbLogError, ValueError, TypeError, AttributeError) as e:
            raise ProgramError(f"{path}:{line}: cannot read {st}: {_msg(e)}") from None
    if not prog.queries:
        raise ProgramError(f"{path}: declares no query; add e.g. 'query(emotion(X, E)).'")
    return prog


def _msg(e: Exception) -> str:
    return getattr(e, "message", None) or str(e)


def _translate(prog: Program, st: Term, line: int) -> None:
    where = f"{prog.path}:{line}"
    if (
        isinstance(st, Term)
        and not isinstance(st, (Clause, Or))
        and st.probability is None
        and st.functor in ("query", "evidence")
    ):
        _directive(prog, st, where)
        return
    if isinstance(st, Or):
        heads = st.to_list()
        group: list[int] = []
        new_heads = []
        for h in heads:
            if _is_t(h.probability):
                group.append(len(prog.params))
                h = _t_head(prog, h, where, group_id=len(prog.groups))
            elif _is_nn(h.probability):
                raise ProgramError(f"{where}: nn(...) cannot be one head of a disjunction")
            new_heads.append(h)
            prog.predicates.add((h.functor, h.arity))
        if group:
            prog.groups.append(group)
        prog.clauses.append(Or.from_list(new_heads))
        return
    if isinstance(st, AnnotatedDisjunction):
        raise ProgramError(
            f"{where}: annotated disjunctions with a body are not supported; "
            "write the disjunction as facts and add the body as a rule"
        )
    head, body = (st.head, st.body) if isinstance(st, Clause) else (st, None)
    prog.predicates.add((head.functor, head.arity))
    p = head.probability
    if _is_nn(p):
        prog.clauses.extend(_neural(prog, head, body, where, line))
        return
    if _is_t(p):
        head = _t_head(prog, head, where, group_id=None)
    prog.clauses.append(head if body is None else Clause(head, body))


def _directive(prog: Program, st: Term, where: str) -> None:
    atom = st.args[0]
    if not isinstance(atom, Term) or atom.arity < 1:
        raise ProgramError(f"{where}: {st.functor}({atom}) needs the image as first argument, e.g. {st.functor}(ok(X))")
    if st.functor == "query":
        prog.queries.append(atom)
    else:
        value = True
        if st.arity > 1:
            value = str(st.args[1]) not in ("false", "0")
        prog.evidence.append((atom, value))


def _is_nn(p: object) -> bool:
    return isinstance(p, Term) and p.functor == "nn"


def _is_t(p: object) -> bool:
    return isinstance(p, Term) and p.functor == "t"


def _t_head(prog: Program, head: Term, where: str, group_id: int | None) -> Term:
    arg = head.probability.args[0] if head.probability.arity else None
    init: float | None
    if arg is None or isinstance(arg, Var):
        init = None
    else:
        try:
            init = float(arg.compute_value() if isinstance(arg, Term) else arg)
        except Exception:
            raise ProgramError(f"{where}: t({arg}) must hold a number or '_'") from None
        if not 0.0 <= init <= 1.0:
            raise ProgramError(f"{where}: t({init}) is not a probability")
    idx = len(prog.params)
    prog.params.append(TParam(idx, head.with_probability(None), init, group_id))
    return head.with_probability(Term("t", Constant(idx)))


def _neural(prog: Program, head: Term, body: Term | None, where: str, line: int) -> list:
    p = head.probability
    if p.arity not in (2, 4):
        raise ProgramError(
            f"{where}: nn/{p.arity} is not supported; use nn(net, [X, ...], Y, [domain]) or nn(net, [X, ...])"
        )
    net = str(p.args[0])
    try:
        inputs = term2list(p.args[1], False)
    except Exception:
        raise ProgramError(f"{where}: the inputs of {p} must be a list [X, ...]") from None
    if not inputs:
        raise ProgramError(f"{where}: {p} needs the image as first input")
    domain = None
    if p.arity == 4:
        try:
            domain_terms = term2list(p.args[3], False)
            domain = [str(d) for d in domain_terms]
        except Exception:
            raise ProgramError(f"{where}: the domain of {p} must be a list") from None
        if len(set(domain)) != len(domain) or not domain:
            raise ProgramError(f"{where}: the domain of {p} must be a non-empty list of distinct values")
    old = prog.neural.get(net)
    if old is not None and old.domain != domain:
        raise ProgramError(f"{where}: network {net!r} is declared again with another domain (first on line {old.line})")
    prog.neural[net] = NeuralDecl(net, domain, line)
    bare = head.with_probability(None)
    if domain is None:
        fact = bare.with_probability(Term("nn", p.args[0], p.args[1]))
        return [fact if body is None else Clause(fact, body)]
    out_var = p.args[2]
    heads = [
        bare.apply_term({out_var: d}).with_probability(Term("nn", p.args[0], p.args[1], Constant(j)))
        for j, d in enumerate(domain_terms)
    ]
    if body is None:
        return [Or.from_list(heads)]
    return [AnnotatedDisjunction(heads, body)]


def input_key(net: str, inputs: Term) -> str:
    """The tensor key of a ground neural input list ``[img, a1, ...]``: ``net`` or ``net(a1,...)``."""
    rest = term2list(inputs, False)[1:]
    return net if not rest else f"{net}({','.join(str(a) for a in rest)})"


def atom_name(atom: Term) -> str:
    """Display name of a ground atom without its image argument: emotion(img,angry) -> emotion(angry)."""
    rest = atom.args[1:]
    return atom.functor if not rest else f"{atom.functor}({','.join(str(a) for a in rest)})"
