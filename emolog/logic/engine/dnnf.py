"""Top-down compilation of a ground ProbLog formula into a deterministic, decomposable circuit.

The ground program (ProbLog's ``LogicDAG``) is read as a formula over *choice variables*:
every annotated disjunction (a neural predicate's domain, a ``t(_)`` disjunction, a
probabilistic AD) is ONE variable whose values are its heads plus "none" (ProbLog's extra
atom, probability 1 - sum of the heads), every other probabilistic atom a binary variable.
The compiler then builds the circuit the way a model counter would:

* an AND whose children share no variable is a product of its children's circuits
  (decomposable);
* anything else is split on one variable x, ``sum_v [x = v] * circuit(F | x = v)``
  (deterministic: the branches are different values of one variable), where ``F | x = v``
  is the formula with x's literals replaced by true/false;
* formulas are hash-consed, so a residual reached along different branches (the same face
  class after different scene classes, the same suffix of a face list) is compiled once.

Why not an SDD: PySDD builds every intermediate result of a bottom-up ``apply`` and its vtree
is fixed before it sees the formula's structure; the research programs (a 365-way scene
choice crossed with a 7-way face choice feeding one neural output per computed value) are
sums over mutually exclusive (scene, face) pairs, which a split on the choice variables
yields directly: the circuit is about as large as that sum, and so is the work.

Literals in the circuit are per-value weights: a head's leaf is its probability p_i, the
negated head 1 - p_i, and "none" 1 - sum p; so the weighted count is exactly ProbLog's
multilinear function of the p's (and so are the gradients, also ProbLog's linear extension
where a disjunction's mass lies on one head).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from problog.formula import LogicDAG

from .formula import AND, CONST, FALSE, LIT, OR, TRUE, ChoiceFormula

MAX_NODES = 5_000_000  # formula + circuit nodes of one structure: about 1 GB of Python objects


class CompileBudgetError(RuntimeError):
    """The compilation grew past its node budget (``compile_structure(max_nodes=...)``)."""


@dataclass
class Structure:
    """What one compiled structure needs at evaluation time (picklable: cached on disk).

    ``atoms``: the probability term of every probabilistic atom, in row order (rows of the
    probability table ``P [n_atoms, B]`` the evaluator receives). ``singles``: (circuit
    variable, atom row): leaf weights (p, 1 - p) — an independent atom, or one head of a
    disjunction (its leaf is p_i, its negation 1 - p_i). ``nones``: (circuit variable, rows
    of the disjunction's heads): leaf weights (1 - sum p, sum p), the disjunction's "none".
    ``nodes``: ("L", literal) | ("A", [a, b]) | ("O", children), children index earlier
    nodes; ``roots``: node index per root, or "T"/"F" for a constant root.
    """

    atoms: list
    singles: list[tuple[int, int]]
    nones: list[tuple[int, list[int]]]
    groups: list[list[int]]
    n_vars: int
    nodes: list[tuple]
    roots: list
    stats: dict = field(default_factory=dict)


def compile_structure(dag: LogicDAG, roots: list, max_nodes: int | None = MAX_NODES) -> Structure:
    """Compile the roots (DAG keys, signed; 0 = true, None = false; lists = conjunctions).

    Raises ``CompileBudgetError`` (with the figures reached) when the formulas and the circuit
    together grow past ``max_nodes`` nodes: the program is then beyond exact compilation here.

    Runs in a thread with a 1 GiB stack and a high recursion limit: formulas over long lists
    nest thousands deep, deeper than the main thread's stack allows.
    """
    return _in_big_stack(lambda: _Compiler(dag, max_nodes).run(roots))


def find_world(dag: LogicDAG, candidates: list[list], weight=None) -> tuple[int, dict[int, bool], set[int]] | None:
    """The first candidate (a conjunction of signed DAG keys) that holds in some world:
    (its index, the truth of every probabilistic atom in that world, the atoms whose choice
    mattered), or None when none can hold. ``weight(key)``, if given, is an atom's probability:
    only worlds of positive probability count (a head of weight 0, a disjunction's "none"
    when its heads sum to 1, an atom that is certain, are excluded). A choice the candidate
    does not depend on gets its first value (false for an atom). A search for one model, not
    a compilation: an OR takes the first child that has one.
    """

    def work():
        c = _Compiler(dag, None)
        memo: dict = {}
        formulas = [c.f.conj([c.f.signed(k) for k in keys]) for keys in candidates]
        allowed = c.f.possible(weight) if weight is not None else []  # after reading: every variable
        for n, f in enumerate(formulas):
            found = c.model(c.f.conj([f] + allowed), memo)
            if found is not None:
                return (n, *c.world(found))
        return None

    return _in_big_stack(work)


def _in_big_stack(work: Callable[[], Any]) -> Any:
    """``work()`` run in a thread with a 1 GiB stack and a high recursion limit; its result,
    or its exception re-raised in the caller's thread."""
    box: list = []

    def run():
        try:
            box.append(work())
        except BaseException as e:  # re-raised in the caller's thread
            box.append(e)

    old_stack, old_limit = threading.stack_size(1 << 30), sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 200_000))
    try:
        t = threading.Thread(target=run)
        t.start()
        t.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


class _Compiler:
    """One structure: the DAG read as choice variables, compiled root by root."""

    def __init__(self, dag: LogicDAG, max_nodes: int | None):
        self.dag, self.max_nodes, self.t0 = dag, max_nodes, time.perf_counter()
        self.f = ChoiceFormula(dag)
        self.atom_rows: dict[int, int] = {}
        self.atoms: list = []
        self.memo: dict[int, object] = {}
        self.nodes: list[tuple] = []
        self.node_ids: dict = {}
        self.leaf_var: dict[tuple[int, int], int] = {}  # (var, value) -> circuit variable
        self.singles: list[tuple[int, int]] = []
        self.nones: list[tuple[int, list[int]]] = []

    # ---- compiling ----------------------------------------------------------------
    def run(self, roots: list) -> Structure:
        t0 = time.perf_counter()
        formulas = [
            self.f.conj([self.f.signed(k) for k in r]) if isinstance(r, list) else self.f.signed(r) for r in roots
        ]
        t1 = time.perf_counter()
        out = [self.compile(r) for r in formulas]
        stats = {
            "read_s": t1 - t0,
            "compile_s": time.perf_counter() - t0,
            "vars": len(self.f.heads),
            "formula_nodes": len(self.f.kind),
            "nodes": len(self.nodes),
        }
        groups = [
            [self._row(h) for h in self.f.heads[v]]
            for v in sorted({v for v, _ in self.leaf_var})
            if v < self.f.n_groups
        ]
        return Structure(
            self.atoms, self.singles, self.nones, groups, len(self.singles) + len(self.nones), self.nodes, out, stats
        )

    def compile(self, i: int):
        """The circuit node of formula ``i`` ("T" / "F" for constants)."""
        r = self.memo.get(i)
        if r is None:
            r = self.memo[i] = self._compile(i)
        return r

    def _compile(self, i: int):
        f = self.f
        kind = f.kind[i]
        if kind == CONST:
            return "T" if i == TRUE else "F"
        if kind == LIT:
            return self._leaf(*f.arg[i])
        if kind == AND:
            parts = self._components(f.arg[i])
            if len(parts) > 1:
                return self._product([self.compile(f.conj(p)) for p in parts])
        return self._split(i, self._pick(i))

    def _components(self, kids: tuple) -> list[list[int]]:
        """Children grouped into variable-disjoint components (an AND of them is a product)."""
        comps: list[tuple[int, list[int]]] = []
        for c in kids:
            s = self.f.support[c]
            merged, members = s, [c]
            keep = []
            for cs, cm in comps:
                if cs & merged:
                    merged |= cs
                    members += cm
                else:
                    keep.append((cs, cm))
            comps = keep + [(merged, members)]
        return [m for _, m in comps]

    def _pick(self, i: int) -> int:
        """The variable to split formula ``i`` on: the one in most children (top-level
        literals first, then supports); ties to the larger domain, then the lower index."""
        f = self.f
        kids = f.arg[i]
        count: dict[int, int] = {}
        for c in kids:
            if f.kind[c] == LIT:
                count[f.arg[c][0]] = count.get(f.arg[c][0], 0) + 1
            elif f.kind[c] == AND:
                for g in f.arg[c]:
                    if f.kind[g] == LIT:
                        count[f.arg[g][0]] = count.get(f.arg[g][0], 0) + 1
        if not count or max(count.values()) < 2:
            count = {}
            for c in kids:
                s = f.support[c]
                while s:
                    low = s & -s
                    v = low.bit_length() - 1
                    count[v] = count.get(v, 0) + 1
                    s ^= low
        return max(count, key=lambda v: (count[v], f.full[v], -v))

    def _check_budget(self) -> None:
        size = len(self.nodes) + len(self.f.kind)
        if self.max_nodes is not None and size > self.max_nodes:
            raise CompileBudgetError(
                f"{len(self.nodes):,} circuit and {len(self.f.kind):,} formula nodes after "
                f"{time.perf_counter() - self.t0:.1f} s exceed the budget of {self.max_nodes:,}"
            )

    def _split(self, i: int, var: int):
        """sum_v [var = v] * circuit(i | var = v), values with the same residual merged."""
        self._check_budget()
        by_residual: dict[int, int] = {}
        full = self.f.full[var]
        for v in range(full.bit_length()):
            r = self.f.condition(i, var, v)
            if r != FALSE:
                by_residual[r] = by_residual.get(r, 0) | (1 << v)
        terms = []
        for r, mask in by_residual.items():
            leaf = self._leaf(var, mask) if mask != full else "T"
            sub = self.compile(r)
            terms.append(self._product([leaf, sub]))
        return self._sum(terms)

    # ---- one model (find_world) ---------------------------------------------------------
    def model(self, i: int, memo: dict) -> dict[int, int] | None:
        """A satisfying assignment {variable: value} of formula ``i``, None if there is none."""
        if i in memo:
            return memo[i]
        f = self.f
        kind = f.kind[i]
        if kind == CONST:
            out = {} if i == TRUE else None
        elif kind == LIT:
            var, mask = f.arg[i]
            out = {var: (mask & -mask).bit_length() - 1}
        elif kind == OR:
            out = next((m for m in (self.model(c, memo) for c in f.arg[i]) if m is not None), None)
        else:
            out = self._and_model(i, memo)
        memo[i] = out
        return out

    def _and_model(self, i: int, memo: dict) -> dict[int, int] | None:
        parts = self._components(self.f.arg[i])
        if len(parts) > 1:
            out: dict[int, int] = {}
            for p in parts:
                m = self.model(self.f.conj(p), memo)
                if m is None:
                    return None
                out.update(m)
            return out
        var = self._pick(i)
        for v in range(self.f.full[var].bit_length()):
            r = self.f.condition(i, var, v)
            m = None if r == FALSE else self.model(r, memo)
            if m is not None:
                return {**m, var: v}
        return None

    def world(self, assignment: dict[int, int]) -> tuple[dict[int, bool], set[int]]:
        """(truth of every atom, atoms whose choice was assigned) for an assignment."""
        truth, chosen = {}, set()
        for key, (var, value) in self.f.value_of.items():
            got = assignment.get(var)
            truth[key] = (0 if got is None else got) == value  # unassigned: first value / false
            if got is not None:
                chosen.add(key)
        return truth, chosen

    # ---- the circuit ----------------------------------------------------------------
    def _node(self, kind: str, kids: tuple):
        key = (kind, kids)
        n = self.node_ids.get(key)
        if n is None:
            n = self.node_ids[key] = len(self.nodes)
            self.nodes.append((kind, list(kids) if kind != "L" else kids))
            self._check_budget()
        return n

    def _product(self, parts: list):
        parts = [p for p in parts if p != "T"]
        if "F" in parts:
            return "F"
        if not parts:
            return "T"
        out = parts[0]
        for p in parts[1:]:  # binary ANDs: the level evaluator multiplies pairs
            out = self._node("A", (out, p) if out <= p else (p, out))
        return out

    def _sum(self, terms: list):
        terms = [t for t in terms if t != "F"]
        if not terms:
            return "F"
        if "T" in terms:  # only when it is the one term (the branches are exclusive)
            return "T"
        if len(terms) == 1:
            return terms[0]
        return self._node("O", tuple(sorted(terms)))

    def _leaf(self, var: int, mask: int):
        """The circuit of the literal ``var in mask``: one leaf when the mask is one value or
        all but one, else a sum of one-value leaves."""
        full = self.f.full[var]
        if mask == full:
            return "T"
        if mask == 0:
            return "F"
        if mask & (mask - 1) == 0:
            return self._node("L", self._leaf_var(var, mask.bit_length() - 1))
        rest = full & ~mask
        if rest & (rest - 1) == 0:
            return self._node("L", -self._leaf_var(var, rest.bit_length() - 1))
        terms = []
        while mask:
            low = mask & -mask
            terms.append(self._node("L", self._leaf_var(var, low.bit_length() - 1)))
            mask ^= low
        return self._sum(terms)

    def _leaf_var(self, var: int, value: int) -> int:
        """The circuit variable whose positive literal weighs P(var = value)."""
        key = (var, value)
        cv = self.leaf_var.get(key)
        if cv is not None:
            return cv
        heads = self.f.heads[var]
        binary = var >= self.f.n_groups
        if binary and value == 0:  # a binary atom's false value: its variable's negation
            cv = -self._leaf_var(var, 1)
            self.leaf_var[key] = cv
            return cv
        cv = len(self.singles) + len(self.nones) + 1
        if binary or value < len(heads):
            self.singles.append((cv, self._row(heads[0] if binary else heads[value])))
        else:
            self.nones.append((cv, [self._row(h) for h in heads]))
        self.leaf_var[key] = cv
        return cv

    def _row(self, key: int) -> int:
        if key not in self.atom_rows:
            self.atom_rows[key] = len(self.atoms)
            self.atoms.append(self.dag.get_node(key).probability)
        return self.atom_rows[key]
