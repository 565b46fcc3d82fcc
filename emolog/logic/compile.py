"""Ground a program once, compile it to an SDD, and turn the SDD into a KLay torch circuit.

Pipeline (checked step by step against ProbLog's own ``SDD.evaluate``):

1. ProbLog grounds every query template, evidence atom and ``source`` atom with the image
   variable bound to the constant ``img`` (``DefaultEngine.ground``), then breaks cycles
   (``LogicDAG``) and compiles with PySDD (``problog.sdd_formula.SDD``).
2. Each SDD variable is one ground probabilistic atom. Its weight is a *placeholder term*
   (``nn(net, [img, ...], j)``, ``nn(net, [img, ...])``, ``t(i)`` or a number) that emolog
   fills in per image. Annotated disjunctions follow ProbLog's encoding exactly: every head
   is a variable with weights (p, 1), one extra "none of them" variable per disjunction has
   weights (1 - sum p, 1), and an exclusivity constraint over them (``get_constraint_inode``)
   is conjoined into every root; single-head groups keep (p, 1 - p).
3. Roots: ``q_i & ev & C`` for every query, ``ev & C`` (the normaliser), and, for
   ``source_posterior``, ``q_i & ev & source_s & C``.
4. KLay's ``add_sdd`` does not smooth, and with (p, 1) weights an unsmoothed SDD gives wrong
   counts (a variable missing from a branch must contribute p + 1, not 1). So the SDD is
   walked here and rebuilt with KLay's node API (``literal_node``/``and_node``/``or_node``),
   inserting ``(v | ~v)`` for every annotated-disjunction variable a branch omits. Ordinary
   variables have weights (p, 1 - p), which sum to one, so they need no smoothing.
5. ``Circuit.to_torch_module(semiring="real", compile=False)`` gives a layered module that
   evaluates all roots for a whole batch at once; autograd gives exact gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import klay
from problog.engine import DefaultEngine
from problog.errors import ProbLogError
from problog.formula import LogicDAG, LogicFormula
from problog.logic import Constant, Term, Var, term2list
from problog.sdd_formula import SDD

from .program import IMAGE, Program, ProgramError, atom_name, input_key


@dataclass
class VarWeight:
    """Where the (positive, negative) weights of one circuit variable come from.

    kind: "nn" (key, index), "fact" (key), "t" (index), "const" (value), "extra" (group),
    "neutral". ``ad`` is True for a head of a non-trivial annotated disjunction, whose
    negative weight is 1 (ProbLog's ``ad_negate``) instead of 1 - p.
    """

    kind: str
    key: str = ""
    index: int = 0
    value: float = 0.0
    ad: bool = False
    group: int = -1


@dataclass
class Compiled:
    """The compiled program: circuits plus the layout of their inputs and outputs."""

    query_atoms: list[Term]
    query_names: list[str]
    sources: list[str]
    var_weights: list[VarWeight]           # one per circuit variable, in variable order
    groups: list[list[int]]                # non-trivial ADs: 0-based variable indices of heads
    main: object                           # KLay module: [B, nq + 1] (queries, normaliser)
    posterior: object | None               # KLay module: [B, nq * ns] (query x source)
    nn_keys: dict[str, int] = field(default_factory=dict)    # key -> domain size
    fact_keys: list[str] = field(default_factory=list)


def compile_circuits(prog: Program) -> Compiled:
    """Ground, compile and convert ``prog``; see the module docstring for the steps."""
    engine = DefaultEngine()
    try:
        db = engine.prepare(prog.simple_program())
    except ProbLogError as e:
        raise ProgramError(f"{prog.path}: {getattr(e, 'message', e)}") from None
    lf = LogicFormula()
    query_terms = [_bind(q, prog, "query") for q in prog.queries]
    ev_terms = [(_bind(e, prog, "evidence"), v) for e, v in prog.evidence]
    source_template = _source_template(prog)
    try:
        for t in query_terms + [e for e, _ in ev_terms] + ([source_template] if source_template else []):
            engine.ground(db, t, target=lf, label=LogicFormula.LABEL_QUERY)
    except ProbLogError as e:
        raise ProgramError(f"{prog.path}: cannot ground: {getattr(e, 'message', e)}") from None
    except RecursionError:
        raise ProgramError(f"{prog.path}: grounding does not terminate") from None

    grounded = {name: key for name, key in lf.queries()}
    query_atoms: list[Term] = []
    for t in query_terms:
        found = [a for a in grounded if _matches(a, t)]
        if not found:
            raise ProgramError(f"{prog.path}: query {t} cannot be grounded (no rule derives it)")
        for a in found:
            if not a.is_ground():
                raise ProgramError(f"{prog.path}: query {t} grounds to the non-ground {a}")
            if a not in query_atoms:
                query_atoms.append(a)
    source_atoms = [a for a in grounded if source_template is not None and _matches(a, source_template)]

    dag = LogicDAG.create_from(lf, keep_named=True)
    sdd = SDD.create_from(dag)
    names = dict(sdd.queries())
    mgr = sdd.get_manager()
    pmgr = mgr.get_manager()

    def inode(key):
        if key == 0:
            return pmgr.true()
        if key is None:
            return pmgr.false()
        return sdd.get_inode(key)

    constraint = sdd.get_constraint_inode()
    ev = constraint
    for e, v in ev_terms:
        node = inode(names[e])
        ev = ev.conjoin(node if v else node.negate())
    main_roots = [ev.conjoin(inode(names[a])) for a in query_atoms] + [ev]
    post_roots = [r.conjoin(inode(names[s])) for r in main_roots[:-1] for s in source_atoms]

    var_weights, groups = _weights(sdd, prog)
    smooth_vars = {v for g in groups for v in g}
    builder = _KlayBuilder(pmgr, smooth_vars)
    main = builder.circuit(main_roots)
    posterior = builder.circuit(post_roots) if post_roots else None

    nn_keys: dict[str, int] = {}
    fact_keys: list[str] = []
    for w in var_weights:
        if w.kind == "nn":
            nn_keys[w.key] = len(prog.neural[w.key.split("(")[0]].domain or [])
        elif w.kind == "fact" and w.key not in fact_keys:
            fact_keys.append(w.key)
    return Compiled(query_atoms=query_atoms, query_names=[atom_name(a) for a in query_atoms],
                    sources=[str(s.args[-1]) for s in source_atoms], var_weights=var_weights,
                    groups=groups, main=main, posterior=posterior,
                    nn_keys=dict(sorted(nn_keys.items())), fact_keys=sorted(fact_keys))


def _bind(atom: Term, prog: Program, what: str) -> Term:
    """Bind the image (first argument) of a query/evidence template to ``img``."""
    first = atom.args[0]
    if isinstance(first, Var):
        return atom.apply_term({first: IMAGE})
    if first == IMAGE:
        return atom
    raise ProgramError(f"{prog.path}: {what}({atom}): the first argument must be the image "
                       f"variable (e.g. X), got {first}")


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


def _weights(sdd: SDD, prog: Program) -> tuple[list[VarWeight], list[list[int]]]:
    """The weight source of every SDD variable, and the non-trivial ADs (0-based var indices)."""
    atom2var = {atom: var for var, atom in sdd.var2atom.items()}
    nvars = sdd.get_manager().get_manager().var_count()
    in_ad: set[int] = set()
    extra_group: dict[int, int] = {}
    groups: list[list[int]] = []
    for c in sdd.constraints():
        if not hasattr(c, "extra_node") or not c.is_nontrivial():
            continue
        heads = [atom2var[n] - 1 for n in sorted(c.nodes) if n in atom2var]
        in_ad.update(heads)
        if c.extra_node is not None and c.extra_node in atom2var:
            extra_group[atom2var[c.extra_node] - 1] = len(groups)
        groups.append(heads)
    out: list[VarWeight] = []
    for v in range(nvars):
        atom = sdd.var2atom.get(v + 1)
        if atom is None:  # a variable ProbLog allocated but never used: neutral
            out.append(VarWeight("neutral"))
            continue
        if v in extra_group:
            out.append(VarWeight("extra", group=extra_group[v]))
            continue
        p = sdd.get_node(atom).probability
        ad = v in in_ad
        if isinstance(p, Term) and p.functor == "nn" and p.arity == 3:
            out.append(VarWeight("nn", key=input_key(str(p.args[0]), p.args[1]),
                                 index=int(p.args[2]), ad=ad))
        elif isinstance(p, Term) and p.functor == "nn" and p.arity == 2:
            out.append(VarWeight("fact", key=input_key(str(p.args[0]), p.args[1]), ad=ad))
        elif isinstance(p, Term) and p.functor == "t":
            out.append(VarWeight("t", index=int(p.args[0]), ad=ad))
        elif p is True or p is None:
            out.append(VarWeight("neutral"))
        else:
            try:
                value = float(p.compute_value() if isinstance(p, Term) else p)
            except Exception:
                raise ProgramError(f"{prog.path}: probability {p} of {atom} is not a number, "
                                   "nn(...) or t(...)") from None
            out.append(VarWeight("const", value=value, ad=ad))
    return out, groups


class _KlayBuilder:
    """Rebuilds SDD nodes as smoothed KLay nodes (see step 4 of the module docstring)."""

    def __init__(self, mgr, smooth_vars: set[int]):
        self.mgr = mgr
        self.smooth = {v + 1 for v in smooth_vars}   # 1-based SDD variables
        self._vt_vars: dict[int, frozenset[int]] = {}

    def circuit(self, roots: list) -> object:
        self.c = klay.Circuit()
        self._memo: dict[tuple[int, int], object] = {}
        self._either: dict[int, object] = {}
        top = self.mgr.vtree()
        for r in roots:
            self.c.set_root(self._node(r, top))
        return self.c.to_torch_module(semiring="real", compile=False)

    def _vars(self, vt) -> frozenset[int]:
        pos = vt.position()
        if pos not in self._vt_vars:
            if vt.is_leaf():
                s = frozenset({vt.var()} & self.smooth)
            else:
                s = self._vars(vt.left()) | self._vars(vt.right())
            self._vt_vars[pos] = s
        return self._vt_vars[pos]

    def _either_node(self, var: int):
        if var not in self._either:
            self._either[var] = self.c.or_node([self.c.literal_node(var), self.c.literal_node(-var)])
        return self._either[var]

    def _with(self, node, missing) -> object:
        if not missing:
            return node
        return self.c.and_node([node] + [self._either_node(v) for v in sorted(missing)])

    def _node(self, n, expect) -> object:
        key = (n.id, expect.position())
        if key in self._memo:
            return self._memo[key]
        if n.is_false():
            out = self.c.false_node()
        elif n.is_true():
            out = self._with(self.c.true_node(), self._vars(expect))
        elif n.is_literal():
            lit = n.literal
            out = self._with(self.c.literal_node(lit), self._vars(expect) - {abs(lit)})
        else:
            vt = n.vtree()
            children = [self.c.and_node([self._node(p, vt.left()), self._node(s, vt.right())])
                        for p, s in n.elements() if not s.is_false() and not p.is_false()]
            inner = self.c.or_node(children) if children else self.c.false_node()
            out = self._with(inner, self._vars(expect) - self._vars(vt))
        self._memo[key] = out
        return out
