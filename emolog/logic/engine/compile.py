"""Ground a program once, compile it to an SDD, and turn the SDD into a KLay torch circuit.

Pipeline (checked against ProbLog's own evaluation and DeepProbLog in the tests):

1. ProbLog grounds every query template, evidence atom and ``source`` atom with the image
   variable bound to the constant ``img`` (``DefaultEngine.ground``), then breaks cycles
   (``LogicDAG``).
2. Each ground probabilistic atom is one SDD variable. Its weight is a *placeholder term*
   (``nn(net, [img, ...], j)``, ``nn(net, [img, ...])``, ``t(i)`` or a number) that emolog
   fills in per image. Annotated disjunctions follow ProbLog's encoding exactly: every head
   is a variable with weights (p, 1), one extra "none of them" variable per disjunction has
   weights (1 - sum p, 1), and their exclusivity constraint C_g is conjoined into every
   root; single-head groups keep (p, 1 - p).
3. ``GroupedSdd`` (``sdd.py``) compiles the DAG with PySDD over a vtree in which each disjunction is one
   subtree (see its docstring). Roots: ``q_i & ev & C`` for every query, ``ev & C`` (the
   normaliser), and, for ``source_posterior``, ``q_i & ev & source_s & C``.
4. KLay's ``add_sdd`` does not smooth, and with (p, 1) weights an unsmoothed SDD gives wrong
   counts (a variable missing from a branch must contribute p + 1, not 1). So the SDD is
   walked and rebuilt with KLay's node API (``literal_node``/``and_node``/``or_node``),
   inserting ``(v | ~v)`` for every disjunction variable a branch omits (ordinary variables
   have weights summing to one and need none). Two exact simplifications: an unused
   disjunction's constraint C_g counts exactly 1, and a negated disjunction variable weighs
   exactly 1; both become the constant 1, which KLay folds away.
5. ``Circuit.to_torch_module(semiring="real", compile=False)`` gives a layered module that
   evaluates all roots for a whole batch at once; autograd gives exact gradients.

``Columns`` and ``klay_rows`` (at the end) lay out KLay's input table once per program:
``module.LogicModule`` fills it for every batch with one gather.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from problog.engine import DefaultEngine
from problog.errors import ProbLogError
from problog.formula import LogicDAG, LogicFormula
from problog.logic import Term, Var

from ..program import IMAGE, Program, ProgramError, atom_name
from .sdd import GroupedSdd, KlayBuilder, VarWeight


@dataclass
class Compiled:
    """The compiled program: circuits plus the layout of their inputs and outputs."""

    query_atoms: list[Term]
    query_names: list[str]
    sources: list[str]
    var_weights: list[VarWeight]  # one per circuit variable, in variable order
    groups: list[list[int]]  # non-trivial ADs: 0-based variable indices of heads
    main: object  # KLay module: [B, nq + 1] (queries, normaliser)
    posterior: object | None  # KLay module: [B, nq * ns] (query x source)
    nn_keys: dict[str, int] = field(default_factory=dict)  # key -> domain size
    fact_keys: list[str] = field(default_factory=list)


def compile_circuits(prog: Program) -> Compiled:
    """Ground, compile and convert ``prog``; see the module docstring for the steps."""
    lf, query_terms, ev_terms, source_template = _ground(prog)
    grounded = {name: key for name, key in lf.queries()}
    query_atoms = _query_atoms(grounded, query_terms, prog)
    source_atoms = [a for a in grounded if source_template is not None and _matches(a, source_template)]

    dag = LogicDAG.create_from(lf, keep_named=True)
    sdd = GroupedSdd(dag, prog)
    names = dict(dag.queries())
    ev = sdd.constraint
    for e, v in ev_terms:
        node = sdd.node(names[e])
        ev = ev.conjoin(node if v else node.negate())
    main_roots = [ev.conjoin(sdd.node(names[a])) for a in query_atoms] + [ev]
    post_roots = [r.conjoin(sdd.node(names[s])) for r in main_roots[:-1] for s in source_atoms]
    builder = KlayBuilder(sdd)
    main = builder.circuit(main_roots)
    posterior = builder.circuit(post_roots) if post_roots else None
    nn_keys, fact_keys = _input_keys(sdd.var_weights, prog)
    return Compiled(
        query_atoms=query_atoms,
        query_names=[atom_name(a) for a in query_atoms],
        sources=[str(s.args[-1]) for s in source_atoms],
        var_weights=sdd.var_weights,
        groups=sdd.groups,
        main=main,
        posterior=posterior,
        nn_keys=nn_keys,
        fact_keys=fact_keys,
    )


def _ground(prog: Program) -> tuple[LogicFormula, list[Term], list[tuple[Term, bool]], Term | None]:
    """(formula, query terms, evidence (term, value), source template): step 1, every query
    template, evidence atom and ``source`` atom grounded into one formula."""
    engine = DefaultEngine()
    try:
        db = engine.prepare(prog.simple_program())
    except ProbLogError as e:
        raise ProgramError(f"{prog.path}: {getattr(e, 'message', e)}") from None
    lf = LogicFormula()
    query_terms = [_bind(q, prog, "query") for q in prog.queries]
    ev_terms = [(_bind(e, prog, "evidence"), v) for e, v in prog.evidence]
    source_template = _source_template(prog)
    for t in query_terms + [e for e, _ in ev_terms] + ([source_template] if source_template else []):
        try:
            engine.ground(db, t, target=lf, label=LogicFormula.LABEL_QUERY)
        except ProbLogError as e:
            raise ProgramError(f"{prog.path}: {t} cannot be grounded: {getattr(e, 'message', e)}") from None
        except RecursionError:
            raise ProgramError(f"{prog.path}: grounding {t} does not terminate") from None
    return lf, query_terms, ev_terms, source_template


def _query_atoms(grounded: dict, query_terms: list[Term], prog: Program) -> list[Term]:
    """The ground atoms of every query template, in template order, each once; a template no
    rule derives, or one that grounds to a non-ground atom, is refused."""
    query_atoms: list[Term] = []
    for t in query_terms:
        found = [a for a in grounded if _matches(a, t)]
        if not found:
            raise ProgramError(f"{prog.path}: {t} cannot be grounded (no rule derives it)")
        for a in found:
            if not a.is_ground():
                raise ProgramError(f"{prog.path}: query {t} grounds to the non-ground {a}")
            if a not in query_atoms:
                query_atoms.append(a)
    return query_atoms


def _input_keys(var_weights: list[VarWeight], prog: Program) -> tuple[dict[str, int], list[str]]:
    """({neural key: domain size}, per-image fact keys), both sorted."""
    nn_keys: dict[str, int] = {}
    fact_keys: list[str] = []
    for w in var_weights:
        if w.kind == "nn":
            nn_keys[w.key] = len(prog.neural[w.key.split("(")[0]].domain or [])
        elif w.kind == "fact" and w.key not in fact_keys:
            fact_keys.append(w.key)
    return dict(sorted(nn_keys.items())), sorted(fact_keys)


def _bind(atom: Term, prog: Program, what: str) -> Term:
    """Bind the image (first argument) of a query/evidence template to ``img``."""
    first = atom.args[0]
    if isinstance(first, Var):
        return atom.apply_term({first: IMAGE})
    if first == IMAGE:
        return atom
    raise ProgramError(
        f"{prog.path}: {what}({atom}): the first argument must be the image variable (e.g. X), got {first}"
    )


def _source_template(prog: Program) -> Term | None:
    """``source(S)`` or ``source(img, S)`` when the program defines a source choice."""
    if ("source", 1) in prog.predicates:
        return Term("source", Var("S"))
    if ("source", 2) in prog.predicates:
        return Term("source", IMAGE, Var("S"))
    return None


def _matches(atom: Term, template: Term) -> bool:
    if atom.functor != template.functor or atom.arity != template.arity:
        return False
    return all(isinstance(t, Var) or t == a for a, t in zip(atom.args, template.args))


# ---- the layout of KLay's input (LogicModule builds it once per program) ----------------


@dataclass(frozen=True)
class Columns:
    """Where each kind of weight sits in ``full``'s rows (``module.LogicModule._layout``): row 0 holds
    ones, row 1 zeros, then each neural predicate's distribution, the per-image facts, the
    t() values, the distinct constants and one "none" row per annotated disjunction."""

    inputs: dict[str, int]  # first row of each neural predicate's domain
    facts: dict[str, int]
    t: int  # the first t() row
    consts: list[float]  # the distinct constant weights, sorted
    const_rows: dict[float, int]
    extra: int  # the first "none" row
    width: int  # rows of ``full``

    @staticmethod
    def of(input_sizes: dict[str, int], fact_keys: list[str], n_t: int, c: Compiled) -> "Columns":
        starts = list(itertools.accumulate(input_sizes.values(), initial=2))
        inputs = dict(zip(input_sizes, starts))
        facts = {k: starts[-1] + i for i, k in enumerate(fact_keys)}
        t = starts[-1] + len(fact_keys)
        consts = sorted({w.value for w in c.var_weights if w.kind == "const"})
        const_rows = {v: t + n_t + i for i, v in enumerate(consts)}
        extra = t + n_t + len(consts)
        return Columns(inputs, facts, t, consts, const_rows, extra, extra + len(c.groups))

    def row(self, w: VarWeight) -> int:
        """The row of ``full`` that holds the positive weight of variable ``w``."""
        return {
            "nn": lambda: self.inputs[w.key] + w.index,
            "fact": lambda: self.facts[w.key],
            "t": lambda: self.t + w.index,
            "const": lambda: self.const_rows[w.value],
            "extra": lambda: self.extra + w.group,
            "neutral": lambda: 0,
        }[w.kind]()

    def names(self, input_sizes: dict[str, int], fact_keys: list[str], t_names: list[str]) -> list[str]:
        """Which input each row up to the "none" rows holds, as error messages name it."""
        return (
            ["1", "0"]
            + [k for k, n in input_sizes.items() for _ in range(n)]
            + list(fact_keys)
            + [f"t({n})" for n in t_names]
            + [str(v) for v in self.consts]
        )


def klay_rows(weights: list[VarWeight], pos: list[int], width: int) -> tuple[list[int], list[int]]:
    """(KLay's input rows as indices into ``[full | complements]``, the rows of ``full`` whose
    complement is needed). A head of a disjunction, a "none" and a neutral variable have
    negative weight 1 (row ``width + 1``: 1 - the zero row); any other variable 1 - p."""
    neg = [width + 1 if (w.kind in ("extra", "neutral") or w.ad) else width + p for w, p in zip(weights, pos)]
    klay_idx = [1, 0] + [i for pn in zip(pos, neg) for i in pn]
    # Only the complements KLay actually reads are computed: remap them to rows after
    # ``full`` (row width + j holds 1 - full[needed[j]]).
    needed = sorted({i - width for i in klay_idx if i >= width})
    remap = {width + col: width + j for j, col in enumerate(needed)}
    return [remap.get(i, i) for i in klay_idx], needed
