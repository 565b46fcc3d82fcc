"""A ground ProbLog formula compiled to one SDD per structure and evaluated as a torch circuit.

The general engine behind ``evaluate`` (plain ProbLog) and ``DeepProgram`` (DeepProbLog
programs); the shipped seed-convention programs keep their own grouped-vtree path in
``compile.py``.

Annotated disjunctions are encoded **without ProbLog's exclusivity constraint**. ProbLog gives
every head a variable with weights (p, 1) and conjoins "exactly one of the heads or the extra
atom" into every root; conjoining that constraint costs exponential time in the size of the
disjunction with PySDD's apply (k = 12: 28 s). Here an n-way disjunction is a chain of n
independent binary choices c_1..c_n (stick-breaking): head i holds iff
``~c_1 & ... & ~c_{i-1} & c_i``, with P(c_i) = p_i / R_i where R_i = p_i + ... + p_n + p_none
(p_none = 1 - sum p, ProbLog's extra atom). P(head i) = p_i and P(no head) = p_none exactly,
so the weighted model count is the same multilinear function of the p's as ProbLog's and
DeepProbLog's, and so are its gradients. Every SDD variable then has weights (w, 1 - w)
summing to one, so the unsmoothed SDD counts correctly without smoothing, and the vtree needs
no grouping. The suffix sums R_i are computed per disjunction (not as 1 - a running prefix),
which keeps small tail probabilities exact to rounding; R_i = 0 (all mass before head i) gives
c_i any value, and emolog uses 0 there with no gradient through it (see docs/logic.md).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import torch
from problog.constraint import ConstraintAD
from problog.formula import LogicDAG
from pysdd.sdd import SddManager, Vtree

from .levels import ChainWeights, LevelCircuit


@dataclass
class Structure:
    """What one compiled structure needs at evaluation time (picklable: cached on disk).

    ``atoms``: the probability term of every probabilistic atom, in row order; rows of the
    probability table ``P [n_atoms, B]`` that ``evaluate`` receives.
    ``singles``: (SDD variable, atom row) of atoms outside any disjunction.
    ``groups``: per annotated disjunction the (chain variable, atom row) of each head.
    ``nodes``: the circuit: ("L", literal) | ("A", children) | ("O", children), children index
    earlier nodes. ``roots``: node index per root, or "T"/"F" for a constant root.
    """

    atoms: list
    singles: list[tuple[int, int]]
    groups: list[list[tuple[int, int]]]
    n_vars: int
    nodes: list[tuple]
    roots: list
    stats: dict = field(default_factory=dict)


def compile_structure(dag: LogicDAG, roots: list, vtree_type: str = "balanced") -> Structure:
    """Compile the roots (DAG keys, signed; 0 = true, None = false; or lists = conjunctions).

    Runs in a thread with a 1 GiB stack: PySDD's apply recurses along the vtree, and deep
    (e.g. right-linear) vtrees overflow the main thread's 8 MB C stack.
    """
    box: list = []

    def work():
        try:
            box.append(_compile_structure(dag, roots, vtree_type))
        except BaseException as e:   # re-raised in the caller's thread
            box.append(e)

    old = threading.stack_size(1 << 30)
    try:
        t = threading.Thread(target=work)
        t.start()
    except RuntimeError:   # no room for a 1 GiB stack: compile here (deep vtrees may fail)
        work()
        t = None
    finally:
        threading.stack_size(old)
    if t is not None:
        t.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _compile_structure(dag: LogicDAG, roots: list, vtree_type: str) -> Structure:
    t0 = time.perf_counter()
    atom_rows: dict[int, int] = {}
    atoms: list = []
    group_of: dict[int, int] = {}
    groups_atoms: list[list[int]] = []
    for c in dag.constraints():
        if not isinstance(c, ConstraintAD):
            raise ValueError(f"unsupported ProbLog constraint {c}")
        heads = sorted(c.nodes)
        if len(heads) < 2 and c.extra_node is None:
            continue
        for h in heads:
            group_of[h] = len(groups_atoms)
        groups_atoms.append(heads)

    order = _variable_order(dag, roots, group_of, groups_atoms)
    var_of: dict[int, int] = {}          # single atom key -> SDD variable
    chain_var: dict[int, int] = {}       # head atom key -> its chain variable
    for kind, key in order:
        if kind == "atom":
            var_of[key] = len(var_of) + len(chain_var) + 1
        else:
            chain_var[key] = len(var_of) + len(chain_var) + 1
    n_vars = len(var_of) + len(chain_var)

    def row(key: int) -> int:
        if key not in atom_rows:
            atom_rows[key] = len(atoms)
            atoms.append(dag.get_node(key).probability)
        return atom_rows[key]

    singles = [(v, row(k)) for k, v in var_of.items()]
    used_groups = sorted({group_of[k] for k in chain_var})
    groups = [[(chain_var[h], row(h)) for h in groups_atoms[g]] for g in used_groups]

    mgr = SddManager.from_vtree(Vtree(var_count=max(n_vars, 1), vtree_type=vtree_type)) \
        if n_vars else SddManager(1)
    mgr.auto_gc_and_minimize_off()
    compiler = _Compiler(dag, mgr, var_of, chain_var, group_of, groups_atoms)
    sdd_roots = [compiler.formula(r) for r in roots]
    t1 = time.perf_counter()
    nodes, root_ids = _flatten(sdd_roots)
    stats = {"compile_s": t1 - t0, "flatten_s": time.perf_counter() - t1, "sdd_size": mgr.size(),
             "vars": n_vars, "nodes": len(nodes)}
    return Structure(atoms, singles, groups, n_vars, nodes, root_ids, stats)


def _variable_order(dag, roots, group_of, groups_atoms) -> list[tuple[str, int]]:
    """Variables in depth-first order of first use; a disjunction's chain is allocated whole,
    in head order, where its first head is met (its heads' events are linked)."""
    seen: set[int] = set()
    done_groups: set[int] = set()
    order: list[tuple[str, int]] = []
    stack = [abs(k) for r in reversed(roots) for k in (reversed(r) if isinstance(r, list) else [r])
             if k]
    while stack:
        k = stack.pop()
        if k in seen:
            continue
        seen.add(k)
        n = dag.get_node(k)
        if type(n).__name__ == "atom":
            g = group_of.get(k)
            if g is None:
                order.append(("atom", k))
            elif g not in done_groups:
                done_groups.add(g)
                order.extend(("chain", h) for h in groups_atoms[g])
        else:
            stack.extend(abs(c) for c in reversed(n.children) if c)
    return order


class _Compiler:
    def __init__(self, dag, mgr, var_of, chain_var, group_of, groups_atoms):
        self.dag, self.mgr = dag, mgr
        self.var_of, self.chain_var = var_of, chain_var
        self.group_of, self.groups_atoms = group_of, groups_atoms
        self.memo: dict[int, object] = {}

    def formula(self, root):
        if isinstance(root, list):
            out = self.mgr.true()
            for r in root:
                out = out.conjoin(self.formula(r))
            return out
        if root is None:
            return self.mgr.false()
        if root == 0:
            return self.mgr.true()
        node = self._node(abs(root))
        return node.negate() if root < 0 else node

    def _lit(self, key: int, positive: bool):
        if key == 0:
            return self.mgr.true() if positive else self.mgr.false()
        if key is None:
            return self.mgr.false() if positive else self.mgr.true()
        n = self._node(abs(key))
        return n if (key > 0) == positive else n.negate()

    def _node(self, key: int):
        # Iterative post-order: ProbLog DAGs of long lists are deeper than Python's stack.
        stack = [key]
        while stack:
            k = stack[-1]
            if k in self.memo:
                stack.pop()
                continue
            n = self.dag.get_node(k)
            kind = type(n).__name__
            if kind == "atom":
                self.memo[k] = self._atom(k)
                stack.pop()
                continue
            todo = [abs(c) for c in n.children if c and abs(c) not in self.memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if kind == "conj":
                out = self.mgr.true()
                for c in n.children:
                    out = out.conjoin(self._lit(c, True))
            elif kind == "disj":
                out = self.mgr.false()
                for c in n.children:
                    out = out.disjoin(self._lit(c, True))
            else:
                raise ValueError(f"unexpected ProbLog node {n}")
            self.memo[k] = out
        return self.memo[key]

    def _atom(self, k: int):
        if k in self.var_of:
            return self.mgr.literal(self.var_of[k])
        heads = self.groups_atoms[self.group_of[k]]
        out = self.mgr.literal(self.chain_var[k])
        for h in heads[:heads.index(k)]:
            out = out.conjoin(self.mgr.literal(-self.chain_var[h]))
        return out


def _flatten(sdd_roots) -> tuple[list[tuple], list]:
    """The SDDs as one node list (shared), constants folded; roots as indices or "T"/"F".

    Iterative: SDDs over right-linear vtrees are chains far deeper than Python's stack.
    """
    nodes: list[tuple] = []
    memo: dict[int, object] = {}

    def leaf(n):
        if n.is_true():
            return "T"
        if n.is_false():
            return "F"
        nodes.append(("L", n.literal))
        return len(nodes) - 1

    for root in sdd_roots:
        stack = [root]
        while stack:
            n = stack[-1]
            if n.id in memo:
                stack.pop()
                continue
            if n.is_true() or n.is_false() or n.is_literal():
                memo[n.id] = leaf(n)
                stack.pop()
                continue
            elems = n.elements()
            todo = [x for pair in elems for x in pair if x.id not in memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            memo[n.id] = _decision(nodes, [(memo[p.id], memo[q.id]) for p, q in elems])
    return nodes, [memo[r.id] for r in sdd_roots]


def _decision(nodes: list[tuple], elems: list[tuple]) -> object:
    """One SDD decision node as OR of ANDs, with true/false children folded away."""
    ors = []
    for a, b in elems:
        if a == "F" or b == "F":
            continue
        kids = [x for x in (a, b) if x != "T"]
        if not kids:
            return "T"
        if len(kids) == 1:
            ors.append(kids[0])
        else:
            nodes.append(("A", kids))
            ors.append(len(nodes) - 1)
    if not ors:
        return "F"
    if len(ors) == 1:
        return ors[0]
    nodes.append(("O", ors))
    return len(nodes) - 1


class CircuitEvaluator(torch.nn.Module):
    """Evaluates a Structure: ``forward(P [n_atoms, B]) -> [B, n_roots]`` (differentiable).

    The literal weights come from ``literal_weights`` (chains for disjunctions), the circuit
    is evaluated by ``levels.LevelCircuit``.
    """

    def __init__(self, s: Structure):
        super().__init__()
        self.s = s
        self.n_roots = len(s.roots)
        real = [i for i, r in enumerate(s.roots) if not isinstance(r, str)]
        self.real_roots = real
        self.module = LevelCircuit(s.nodes, [s.roots[i] for i in real]) if real else None
        self.const = [1.0 if r == "T" else 0.0 for r in s.roots]
        self.register_buffer("_single_var", torch.tensor([v for v, _ in s.singles], dtype=torch.long),
                             persistent=False)
        self.register_buffer("_single_row", torch.tensor([r for _, r in s.singles], dtype=torch.long),
                             persistent=False)
        # Disjunctions bucketed by size, so that suffix sums run per disjunction as one op.
        by_size: dict[int, list[list[tuple[int, int]]]] = {}
        for g in s.groups:
            by_size.setdefault(len(g), []).append(g)
        self._buckets = []
        for i, (n, gs) in enumerate(sorted(by_size.items())):
            rows = torch.tensor([[r for _, r in g] for g in gs], dtype=torch.long)
            vars_ = torch.tensor([[v for v, _ in g] for g in gs], dtype=torch.long)
            self.register_buffer(f"_grow{i}", rows, persistent=False)
            self.register_buffer(f"_gvar{i}", vars_, persistent=False)
            self._buckets.append(i)
        # Rows of ``literal_weights``' stacked parts [0, 1, singles p, singles 1-p, per bucket
        # q, 1-q] that give KLay's order [0, 1, pos_1, neg_1, ...]: one gather at the end.
        ns = len(s.singles)
        at = {v: (2 + k, 2 + ns + k) for k, (v, _) in enumerate(s.singles)}
        start = 2 + 2 * ns
        for i in self._buckets:
            flat = getattr(self, f"_gvar{i}").reshape(-1).tolist()
            for k, v in enumerate(flat):
                at[v] = (start + k, start + len(flat) + k)
            start += 2 * len(flat)
        order = [0, 1] + [r for v in range(1, s.n_vars + 1) for r in at.get(v, (0, 0))]
        self.register_buffer("_order", torch.tensor(order, dtype=torch.long), persistent=False)
        # A small circuit reads its leaves straight from the stacked parts (one gather less).
        self._direct = self.module is not None and self.module.small
        if self._direct:
            self.module.leaf_rows = self._order[self.module.leaf_rows]

    def literal_weights(self, p: torch.Tensor, ordered: bool = True) -> torch.Tensor:
        """KLay's input [2 + 2 n_vars, B]: rows 0/1 the constants 0 and 1, then (pos, neg)
        (``ordered=False``: the stacked parts, rows as ``_order`` maps them)."""
        b = p.shape[1]
        parts = [p.new_zeros(1, b), p.new_ones(1, b)]
        if len(self._single_var):
            ps = p.index_select(0, self._single_row)   # (its backward: index_add, not index_put)
            parts += [ps, 1 - ps]
        for i in self._buckets:
            rows = getattr(self, f"_grow{i}")
            q, nq = ChainWeights.apply(p.index_select(0, rows.reshape(-1)).reshape(*rows.shape, b))
            parts += [q.reshape(-1, b), nq.reshape(-1, b)]
        out = torch.cat(parts, 0)
        return out.index_select(0, self._order) if ordered else out

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        b = p.shape[1]
        out = p.new_empty(b, self.n_roots)
        if self.module is not None:
            vals = self.module(self.literal_weights(p, ordered=not self._direct)).t()
            out = out.index_copy(1, torch.tensor(self.real_roots, device=p.device), vals) \
                if len(self.real_roots) < self.n_roots else vals
        for i, v in enumerate(self.const):
            if i not in self.real_roots:
                out[:, i] = v
        return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB; Linux ru_maxrss is in KiB)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def merge_structures(structs: list, n_rows: list[int]) -> tuple[object, list[int], list[int]]:
    """The disjoint union of compiled structures as one Structure (rows, variables, nodes and
    roots renumbered), with each part's first atom row and first root. Evaluating it on a table
    whose rows of part s hold part s's examples (column j = j-th example of that part) runs
    every part's level in one op: rows never mix parts, so columns need not mean the same."""
    singles, groups, nodes, roots, row0, root0 = [], [], [], [], [], []
    rows = n_vars = 0
    for s, n in zip(structs, n_rows):
        row0.append(rows)
        root0.append(len(roots))
        off = len(nodes)
        singles += [(v + n_vars, r + rows) for v, r in s.singles]
        groups += [[(v + n_vars, r + rows) for v, r in g] for g in s.groups]
        nodes += [("L", a + n_vars if a > 0 else a - n_vars) if k == "L" else (k, [c + off for c in a])
                  for k, a in s.nodes]
        roots += [r if isinstance(r, str) else r + off for r in s.roots]
        rows += n
        n_vars += s.n_vars
    return Structure([], singles, groups, n_vars, nodes, roots), row0, root0
