"""Steps 2-4 of ``compile.py``'s pipeline: a ground program as SDDs over a grouped vtree, rebuilt
as a smoothed KLay circuit.

``GroupedSdd`` gives each ground probabilistic atom its SDD variable and weight source
(``VarWeight``) and each annotated disjunction its own vtree subtree; ``KlayBuilder`` walks
its SDDs into KLay nodes, smoothing the disjunction variables a branch omits.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import klay
from problog.constraint import ConstraintAD
from problog.formula import LogicDAG
from problog.logic import Term, term2list
from pysdd.sdd import SddManager, Vtree

from ..program import IMAGE, Program, ProgramError, input_key


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


class GroupedSdd:
    """ProbLog's ground program as SDDs, with every annotated disjunction in its own vtree.

    ProbLog's own ``SDD.create_from`` gives the same functions, but its balanced vtree over
    grounding order interleaves the disjunctions, which made the seed circuit ~8,000 edges.
    Here each non-trivial disjunction's variables (heads + ProbLog's extra "none" atom) form
    one vtree subtree, so the exclusivity constraint C_g of a disjunction a branch does not
    use is one canonical SDD node. Its weighted count is exactly 1 (sum of the weights =
    sum p + (1 - sum p)), so ``KlayBuilder`` replaces it by the constant 1: same values and
    gradients, and ~10x fewer edges.
    """

    def __init__(self, dag: LogicDAG, prog: Program):
        self.dag = dag
        atoms = [k for k in range(1, len(dag) + 1) if type(dag.get_node(k)).__name__ == "atom"]
        segments = _ad_segments(dag, prog)
        in_group = {a for seg in segments for a in seg}
        singles = [a for a in atoms if a not in in_group]
        if not atoms:
            raise ProgramError(
                f"{prog.path}: every query and evidence atom is deterministic "
                "(true or false whatever the inputs): this image-convention path "
                "needs a probabilistic atom; evaluate() or compile_program(path, "
                "queries=[...]) answer it"
            )
        order = [a for seg in segments for a in seg] + singles
        self.var_of = {a: i + 1 for i, a in enumerate(order)}
        vtree = _vtree([[self.var_of[a] for a in seg] for seg in segments] + [[self.var_of[a]] for a in singles])
        self.mgr = SddManager.from_vtree(vtree)
        self.mgr.auto_gc_and_minimize_off()  # minimisation would break the grouped vtree
        self._memo: dict[int, object] = {}
        self.group_nodes: dict[int, int] = {}  # SDD node id of C_g -> group index
        self.group_vars: list[frozenset[int]] = []
        self.groups: list[list[int]] = []  # 0-based variable indices of the heads
        self.constraint = self.mgr.true()
        for gi, seg in enumerate(segments):
            vs = [self.var_of[a] for a in seg]
            c_g = self._exactly_one(vs)
            c_g.ref()
            self.group_nodes[c_g.id] = gi
            self.group_vars.append(frozenset(vs))
            self.groups.append([v - 1 for v in vs[:-1]])
            self.constraint = self.constraint.conjoin(c_g)
        self.constraint.ref()
        self.var_weights = self._weights(order, segments, prog)

    def _exactly_one(self, vs: list[int]):
        """C_g: exactly one of a disjunction's variables (heads + extra) holds."""
        c_g = self.mgr.false()
        for v in vs:
            term = self.mgr.literal(v)
            for w in vs:
                if w != v:
                    term = term.conjoin(self.mgr.literal(-w))
            c_g = c_g.disjoin(term)
        return c_g

    def node(self, key):
        """SDD of a DAG node (negative key = negation; 0 = true; None = false)."""
        if key == 0:
            return self.mgr.true()
        if key is None:
            return self.mgr.false()
        k = abs(key)
        if k not in self._memo:
            n = self.dag.get_node(k)
            kind = type(n).__name__
            if kind == "atom":
                out = self.mgr.literal(self.var_of[k])
            elif kind == "conj":
                out = self.mgr.true()
                for ch in n.children:
                    out = out.conjoin(self.node(ch))
            elif kind == "disj":
                out = self.mgr.false()
                for ch in n.children:
                    out = out.disjoin(self.node(ch))
            else:
                raise ProgramError(f"unexpected ProbLog node {n}")
            out.ref()
            self._memo[k] = out
        return self._memo[k].negate() if key < 0 else self._memo[k]

    def _weights(self, order: list[int], segments: list[list[int]], prog: Program) -> list[VarWeight]:
        extra = {seg[-1]: gi for gi, seg in enumerate(segments)}
        heads = {a for seg in segments for a in seg[:-1]}
        return [
            VarWeight("extra", group=extra[a]) if a in extra else _var_weight(self.dag.get_node(a), a in heads, prog)
            for a in order
        ]


def _var_weight(node, ad: bool, prog: Program) -> VarWeight:
    """The weight source of a ground atom other than a disjunction's extra one: its
    probability term read as nn(net, Input, j), nn(net, Input), t(i), a number or none."""
    p = node.probability
    if isinstance(p, Term) and p.functor == "nn":
        _check_image_input(p, prog)
    if isinstance(p, Term) and p.functor == "nn" and p.arity == 3:
        return VarWeight("nn", key=input_key(str(p.args[0]), p.args[1]), index=int(p.args[2]), ad=ad)
    if isinstance(p, Term) and p.functor == "nn" and p.arity == 2:
        return VarWeight("fact", key=input_key(str(p.args[0]), p.args[1]), ad=ad)
    if isinstance(p, Term) and p.functor == "t":
        return VarWeight("t", index=int(p.args[0]), ad=ad)
    if p is True or p is None:
        return VarWeight("neutral")
    try:
        value = float(p.compute_value() if isinstance(p, Term) else p)
    except Exception:
        raise ProgramError(f"{prog.path}: probability {p} of {node.name} is not a number, nn(...) or t(...)") from None
    return VarWeight("const", value=value, ad=ad)


def _ad_segments(dag: LogicDAG, prog: Program) -> list[list[int]]:
    """Per non-trivial annotated disjunction: its heads' atoms, sorted, then its extra atom."""
    segments: list[list[int]] = []
    for c in dag.constraints():
        if not isinstance(c, ConstraintAD):
            raise ProgramError(f"{prog.path}: unsupported ProbLog constraint {c}")
        if not c.is_nontrivial():
            continue
        if c.extra_node is None:
            raise ProgramError(f"{prog.path}: annotated disjunction {c} has no extra atom")
        segments.append(sorted(c.nodes) + [c.extra_node])
    return segments


def _check_image_input(p: Term, prog: Program) -> None:
    """Refuse a neural input whose first argument is not the image.

    The input key drops the image argument (``face_net(face1)``), so a call such as
    ``digit(i2, Y)`` would silently read the image's own ``mnist_net`` distribution.
    """
    first = term2list(p.args[1], False)[0]
    if first != IMAGE:
        raise ProgramError(
            f"{prog.path}: neural input {p.args[0]}({p.args[1]}) does not start with "
            f"the image but with {first}: in this image-convention path every "
            "input's first argument is the image; for other inputs give query "
            "templates: compile_program(path, queries=[...])"
        )


def _vtree(segments: list[list[int]]) -> Vtree:
    """A vtree whose subtrees are the given variable segments (balanced inside and across)."""
    lines: list[str] = []  # in post-order: a node's id is its line's index

    def add(line: str) -> int:
        lines.append(line.format(len(lines)))
        return len(lines) - 1

    def build(items: list, leaf) -> int:  # a balanced tree over items; leaf(item) -> node id
        if len(items) == 1:
            return leaf(items[0])
        mid = len(items) // 2
        left = build(items[:mid], leaf)
        right = build(items[mid:], leaf)
        return add(f"I {{}} {left} {right}")

    build(segments, lambda vs: build(vs, lambda v: add(f"L {{}} {v}")))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "grouped.vtree")
        with open(path, "w") as f:
            f.write(f"vtree {len(lines)}\n" + "\n".join(lines) + "\n")
        return Vtree.from_file(path.encode())


class KlayBuilder:
    """Rebuilds SDD nodes as smoothed KLay nodes (see step 4 of the module docstring)."""

    def __init__(self, sdd: GroupedSdd):
        self.sdd = sdd
        self.smooth = frozenset().union(*sdd.group_vars) if sdd.group_vars else frozenset()
        self._vt_vars: dict[int, frozenset[int]] = {}

    def circuit(self, roots: list) -> object:
        self.c = klay.Circuit()
        self._memo: dict[tuple[int, int], object] = {}
        self._either: dict[int, object] = {}
        top = self.sdd.mgr.vtree()
        for r in roots:
            self.c.set_root(self._node(r, top))
        return self.c.to_torch_module(semiring="real", compile=False)

    def _vars(self, vt) -> frozenset[int]:
        """The variables under vtree node ``vt`` that need smoothing (AD variables)."""
        pos = vt.position()
        if pos not in self._vt_vars:
            if vt.is_leaf():
                s = frozenset({vt.var()}) & self.smooth
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
        if n.id in self.sdd.group_nodes:  # an unused disjunction's constraint: counts 1
            covered = self.sdd.group_vars[self.sdd.group_nodes[n.id]]
            out = self._with(self.c.true_node(), self._vars(expect) - covered)
        elif n.is_false():
            out = self.c.false_node()
        elif n.is_true():
            out = self._with(self.c.true_node(), self._vars(expect))
        elif n.is_literal():
            lit = n.literal
            # A negated disjunction variable weighs exactly 1 (ProbLog's ad_negate), with no
            # gradient: it is the constant 1, which KLay then folds away.
            leaf = self.c.true_node() if lit < 0 and -lit in self.smooth else self.c.literal_node(lit)
            out = self._with(leaf, self._vars(expect) - {abs(lit)})
        else:
            vt = n.vtree()
            children = [
                self.c.and_node([self._node(p, vt.left()), self._node(s, vt.right())])
                for p, s in n.elements()
                if not s.is_false() and not p.is_false()
            ]
            inner = self.c.or_node(children) if children else self.c.false_node()
            out = self._with(inner, self._vars(expect) - self._vars(vt))
        self._memo[key] = out
        return out
