"""A ground ProbLog formula over choice variables, hash-consed, with conditioning (``dnnf.py``).

``ChoiceFormula(dag)`` reads ProbLog's ``LogicDAG``: every annotated disjunction (a neural
predicate's domain, a ``t(_)`` disjunction, a probabilistic AD) is ONE variable whose values
are its heads and "none" (ProbLog's extra atom), every other probabilistic atom a binary
variable (value 1 = true). A literal is (var, mask): the variable's value lies in the bit set
``mask``, so a head is one bit, its negation every other bit, and two literals of one variable
in an AND meet by intersecting masks: ``scene = s3 and scene = s7`` is simply false, which is
what makes the heads of a disjunction exclusive without any constraint. Negation is pushed
down to literals (De Morgan) as the DAG is read. Nodes are hash-consed: the same formula
reached twice is one node, so its compilation is done once.
"""

from __future__ import annotations

from problog.constraint import ConstraintAD
from problog.formula import LogicDAG

TRUE, FALSE = 0, 1
LIT, AND, OR, CONST = 0, 1, 2, 3


def _bits(mask: int):
    """The values (bit positions) of a mask, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def negated(key):
    """The signed DAG key of a key's negation (ProbLog: 0 is true, None is false)."""
    if key is None:
        return 0
    if key == 0:
        return None
    return -key


class ChoiceFormula:
    """The formula store: node i has ``kind[i]``, ``arg[i]`` ((var, mask) for a literal, the
    children for AND / OR) and ``support[i]`` (bit set of its variables); ``full[var]`` is
    the mask of all of var's values; ``heads[var]`` the DAG keys of its heads (a binary
    variable: its one atom); ``value_of[key]`` = (var, value) of a probabilistic atom."""

    def __init__(self, dag: LogicDAG):
        self.dag = dag
        self.kind: list[int] = [CONST, CONST]
        self.arg: list = [True, False]
        self.support: list[int] = [0, 0]
        self.ids: dict = {}
        self.value_of: dict[int, tuple[int, int]] = {}
        self.heads: list[list[int]] = []
        self.full: list[int] = []
        for c in dag.constraints():
            if not isinstance(c, ConstraintAD):
                raise ValueError(f"unsupported ProbLog constraint {c}")
            heads = sorted(c.nodes)
            if len(heads) < 2 and c.extra_node is None:
                continue
            var = len(self.heads)
            for i, h in enumerate(heads):
                self.value_of[h] = (var, i)
            if c.extra_node is not None:
                self.value_of[c.extra_node] = (var, len(heads))
            self.heads.append(heads)
            self.full.append((1 << (len(heads) + 1)) - 1)
        self.n_groups = len(self.heads)  # variables below this are disjunctions
        self._pos: dict[int, int] = {}
        self._neg: dict[int, int] = {}
        self._index: dict[tuple, tuple] = {}  # (node, var[, AND]) -> what conditioning reads

    # ---- building nodes -------------------------------------------------------------
    def _new(self, kind: int, arg, support: int) -> int:
        key = (kind, arg)
        i = self.ids.get(key)
        if i is None:
            i = self.ids[key] = len(self.kind)
            self.kind.append(kind)
            self.arg.append(arg)
            self.support.append(support)
        return i

    def lit(self, var: int, mask: int) -> int:
        if mask == 0:
            return FALSE
        if mask == self.full[var]:
            return TRUE
        return self._new(LIT, (var, mask), 1 << var)

    def conj(self, children) -> int:
        return self._junction(AND, children)

    def disj(self, children) -> int:
        return self._junction(OR, children)

    def _junction(self, kind: int, children) -> int:
        """AND / OR of ``children``: flattened, constants folded, literals of one variable
        merged (masks intersected in an AND, united in an OR), duplicates removed."""
        unit, zero = (TRUE, FALSE) if kind == AND else (FALSE, TRUE)
        lits: dict[int, int] = {}
        rest: set[int] = set()
        stack = list(children)
        while stack:
            c = stack.pop()
            if c == unit:
                continue
            if c == zero:
                return zero
            k = self.kind[c]
            if k == kind:
                stack.extend(self.arg[c])
            elif k == LIT:
                var, mask = self.arg[c]
                old = lits.get(var)
                lits[var] = mask if old is None else (old & mask if kind == AND else old | mask)
            else:
                rest.add(c)
        for var, mask in lits.items():
            if kind == AND and mask == 0 or kind == OR and mask == self.full[var]:
                return zero
            if mask != self.full[var] and mask != 0:
                rest.add(self._new(LIT, (var, mask), 1 << var))
        if not rest:
            return unit
        if len(rest) == 1:
            return rest.pop()
        kids = tuple(sorted(rest))
        support = 0
        for c in kids:
            support |= self.support[c]
        return self._new(kind, kids, support)

    # ---- reading the DAG ------------------------------------------------------------
    def signed(self, key) -> int:
        """The node of a signed DAG key (0 = true, None = false, -k = not k)."""
        if key is None:
            return FALSE
        if key == 0:
            return TRUE
        return self._neg_of(-key) if key < 0 else self._pos_of(key)

    def atom_var(self, key: int) -> tuple[int, int]:
        """(var, value) of a probabilistic atom; an atom outside every disjunction becomes a
        binary variable on first use."""
        v = self.value_of.get(key)
        if v is None:
            var = len(self.heads)
            self.heads.append([key])
            self.full.append(0b11)
            v = self.value_of[key] = (var, 1)
        return v

    def possible(self, weight) -> list[int]:
        """One literal per variable read so far: the values of positive probability under
        ``weight(atom key) -> probability`` (a disjunction's "none" has 1 - the heads' sum)."""
        out = []
        for var, heads in enumerate(self.heads):
            w = [weight(h) for h in heads]
            if var >= self.n_groups:  # a binary atom: value 1 is the atom, 0 its negation
                mask = (2 if w[0] > 0 else 0) | (1 if w[0] < 1 else 0)
            else:
                mask = sum(1 << i for i, x in enumerate(w) if x > 0)
                mask |= (1 << len(heads)) if 1 - sum(w) > 1e-9 else 0
            out.append(self.lit(var, mask))
        return out

    def _pos_of(self, key: int) -> int:
        if key not in self._pos:
            n = self.dag.get_node(key)
            kind = type(n).__name__
            if kind == "atom":
                var, value = self.atom_var(key)
                self._pos[key] = self.lit(var, 1 << value)
            elif kind == "conj":
                self._pos[key] = self.conj([self.signed(c) for c in n.children])
            elif kind == "disj":
                self._pos[key] = self.disj([self.signed(c) for c in n.children])
            else:
                raise ValueError(f"unexpected ProbLog node {n}")
        return self._pos[key]

    def _neg_of(self, key: int) -> int:
        """The negation in NNF, pushed down to literals (De Morgan; memoised per key)."""
        if key not in self._neg:
            n = self.dag.get_node(key)
            kind = type(n).__name__
            if kind == "atom":
                var, value = self.atom_var(key)
                self._neg[key] = self.lit(var, self.full[var] & ~(1 << value))
            elif kind == "conj":  # not (a and b) = not a or not b
                self._neg[key] = self.disj([self.signed(negated(c)) for c in n.children])
            elif kind == "disj":  # not (a or b) = not a and not b
                self._neg[key] = self.conj([self.signed(negated(c)) for c in n.children])
            else:
                raise ValueError(f"unexpected ProbLog node {n}")
        return self._neg[key]

    # ---- conditioning ---------------------------------------------------------------
    def condition(self, i: int, var: int, value: int) -> int:
        """Node ``i`` with ``var = value``: its literals on var replaced by true / false."""
        return self._cond(i, var, value, {})

    def _cond(self, i: int, var: int, value: int, memo: dict) -> int:
        if not self.support[i] >> var & 1:
            return i
        r = memo.get(i)
        if r is not None:
            return r
        kind = self.kind[i]
        if kind == LIT:
            r = TRUE if self.arg[i][1] >> value & 1 else FALSE
        elif kind == AND:
            r = self._cond_and(i, var, value, memo)
        else:
            r = self.disj([self._cond(c, var, value, memo) for c in self._candidates(i, var, value)])
        memo[i] = r
        return r

    def _cond_and(self, i: int, var: int, value: int, memo: dict) -> int:
        """AND ``i`` with ``var = value``, from an index per (i, var): its own literal on var,
        the children that do not mention var (kept), and per value the children an OR literal
        on var does not make true (conditioned); the others are true and dropped. Why: a
        negated wide disjunction (``\\+ context_dom`` over 365 scenes) is an AND of 365 ORs
        ``scene != s or not dom_s``, of which one value of the scene leaves one to condition."""
        idx = self._index.get((i, var, AND))
        if idx is None:
            lit, kept, by_value, always = None, [], {}, []
            for c in self.arg[i]:
                if not self.support[c] >> var & 1:
                    kept.append(c)
                elif self.kind[c] == LIT:
                    lit = self.arg[c][1]
                else:
                    true_on = self._or_literal(c, var)
                    if true_on:
                        for v in _bits(self.full[var] & ~true_on):
                            by_value.setdefault(v, []).append(c)
                    else:
                        always.append(c)
            idx = self._index[(i, var, AND)] = (lit, kept, by_value, always)
        lit, kept, by_value, always = idx
        if lit is not None and not lit >> value & 1:
            return FALSE
        kids = list(kept)
        for c in by_value.get(value, []) + always:
            k = self._cond(c, var, value, memo)
            if k == FALSE:
                return FALSE
            kids.append(k)
        return self.conj(kids)

    def _or_literal(self, c: int, var: int) -> int:
        """The values of ``var`` that make OR node ``c`` true by its own literal on var (0: none)."""
        if self.kind[c] != OR:
            return 0
        for g in self.arg[c]:
            if self.kind[g] == LIT and self.arg[g][0] == var:
                return self.arg[g][1]
        return 0

    def _candidates(self, i: int, var: int, value: int) -> list[int]:
        """The children of OR ``i`` that can hold when ``var = value``: an index per (i, var)
        from each child's top-level literal on var, so that splitting a wide OR on a
        variable touches each child about once instead of once per value."""
        idx = self._index.get((i, var))
        if idx is None:
            by_value: dict[int, list[int]] = {}
            anywhere: list[int] = []
            for c in self.arg[i]:
                mask = self.top_mask(c, var)
                if mask is None:
                    anywhere.append(c)
                    continue
                for v in _bits(mask):
                    by_value.setdefault(v, []).append(c)
            idx = self._index[(i, var)] = (by_value, anywhere)
        by_value, anywhere = idx
        return by_value.get(value, []) + anywhere

    def top_mask(self, c: int, var: int) -> int | None:
        """Values of ``var`` allowed by node ``c``'s own literal on it (None: not decided at
        the top: c mentions var deeper, or not at all)."""
        if not self.support[c] >> var & 1:
            return None
        if self.kind[c] == LIT:
            return self.arg[c][1]
        if self.kind[c] == AND:
            for g in self.arg[c]:
                if self.kind[g] == LIT and self.arg[g][0] == var:
                    return self.arg[g][1]
        return None
