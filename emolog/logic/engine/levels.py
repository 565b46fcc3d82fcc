"""Evaluate a flattened circuit level by level, reading every node's children where they are.

KLay's layered modules pass each layer only the previous layer, so a node used many layers
later is copied through every layer in between (on a 365-way scene program whose circuit was
a 365-long chain, that copying dominated: KLay scored 130 images/s). Here level L (nodes whose children are all
on earlier levels) gathers its children straight from the levels that hold them, one
``index_select`` per source level, then multiplies (an SDD conjunction has exactly two
children) or sums (``index_add``). Data moved = edges x batch; ops per level = sources + 4.
Circuits of up to SMALL nodes instead run ``_Fused``: one preallocated buffer of every node
value, each node a sum of products (an AND used by one OR folded into it, so about half the
levels), 4 ops per level, and a hand-written reverse pass instead of autograd's graph.
"""

from __future__ import annotations

import torch

SMALL = 2000  # nodes: up to here one growing buffer beats per-level gathers


class LevelCircuit(torch.nn.Module):
    """``forward(W [2 + 2 n_vars, B]) -> [n_roots, B]``; W rows: 0, 1, then (pos, neg) per var."""

    def __init__(self, nodes: list[tuple], roots: list[int]):
        super().__init__()
        level: list[int] = []
        pos: list[int] = []
        leaves: list[int] = []
        per_level: list[tuple[list[int], list[int]]] = []  # (and nodes, or nodes)
        for i, (kind, arg) in enumerate(nodes):
            if kind == "L":
                level.append(0)
                pos.append(len(leaves))
                leaves.append(2 * arg if arg > 0 else 2 * (-arg) + 1)
                continue
            lv = 1 + max(level[c] for c in arg)
            level.append(lv)
            pos.append(-1)
            while len(per_level) < lv:
                per_level.append(([], []))
            per_level[lv - 1][0 if kind == "A" else 1].append(i)
        self.leaf_rows = torch.tensor(leaves, dtype=torch.long)
        self.plans = []
        for ands, ors in per_level:
            for j, i in enumerate(ands + ors):
                pos[i] = j
            edges = (
                [nodes[i][1][0] for i in ands] + [nodes[i][1][1] for i in ands] + [c for i in ors for c in nodes[i][1]]
            )
            seg = [k for k, i in enumerate(ors) for _ in nodes[i][1]]
            self.plans.append(
                (self._gather_plan(edges, level, pos), len(ands), len(ors), torch.tensor(seg, dtype=torch.long))
            )
        self.root_plan = self._gather_plan(list(roots), level, pos)
        # Small circuits: one buffer of every node value so far (copying it per level is
        # cheaper than the extra gathers), children by their global buffer row.
        self.small = len(nodes) <= SMALL
        if self.small:
            self._sum_of_products(nodes, roots, len(leaves), pos)

    def _sum_of_products(self, nodes: list[tuple], roots: list[int], n_leaves: int, pos: list[int]):
        """The plan of ``_Fused``: every node a sum of products of pairs (an AND used only by one
        OR is folded into it, a lone child is paired with a row of ones), levelled again, so
        that a level is 2 gathers, 1 product and 1 segment sum for ANDs and ORs together."""
        pairs, per_level = _product_pairs(nodes, _foldable_ands(nodes, roots))
        one = n_leaves  # row of ones after the leaves
        row = {i: pos[i] for i, (k, _) in enumerate(nodes) if k == "L"}
        lo, self.flat = n_leaves + 1, []
        for ids in per_level:
            row.update({i: lo + k for k, i in enumerate(ids)})
            self.flat.append(_level_step(ids, pairs, row, one, lo))
            lo += len(ids)
        self.n_rows = lo
        self.flat_roots = _long([row[r] for r in roots])

    @staticmethod
    def _gather_plan(refs: list[int], level: list[int], pos: list[int]):
        """[(source level, indices)] and the permutation restoring ``refs`` order."""
        by_src: dict[int, list[int]] = {}
        order: dict[int, list[int]] = {}
        for k, r in enumerate(refs):
            by_src.setdefault(level[r], []).append(pos[r])
            order.setdefault(level[r], []).append(k)
        srcs = sorted(by_src)
        flat = [k for s in srcs for k in order[s]]
        perm = torch.empty(len(refs), dtype=torch.long)
        perm[torch.tensor(flat, dtype=torch.long)] = torch.arange(len(refs))
        identity = flat == list(range(len(refs)))
        return [(s, torch.tensor(by_src[s], dtype=torch.long)) for s in srcs], (None if identity else perm)

    @staticmethod
    def _gather(vals: list[torch.Tensor], plan) -> torch.Tensor:
        parts, perm = plan
        g = [vals[s].index_select(0, idx) for s, idx in parts]
        out = g[0] if len(g) == 1 else torch.cat(g, 0)
        return out if perm is None else out.index_select(0, perm)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.small:
            return self._forward_small(w)
        vals = [w.index_select(0, self.leaf_rows)]
        b = w.shape[1]
        for plan, n_and, n_or, seg in self.plans:
            g = self._gather(vals, plan)
            out = []
            if n_and:
                out.append(g[:n_and] * g[n_and : 2 * n_and])
            if n_or:
                out.append(w.new_zeros(n_or, b).index_add(0, seg, g[2 * n_and :]))
            vals.append(out[0] if len(out) == 1 else torch.cat(out, 0))
        return self._gather(vals, self.root_plan)

    def _forward_small(self, w: torch.Tensor) -> torch.Tensor:
        return _Fused.apply(w, self)


def _long(x: list[int]) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.long)


def _foldable_ands(nodes: list[tuple], roots: list[int]) -> list[bool]:
    """Per node: whether it is an AND that folds into its parent OR (used once, by an OR, and
    not a root), so that the OR reads the AND's pair itself."""
    uses = [0] * len(nodes)
    for i in [c for _, a in nodes if not isinstance(a, int) for c in a] + list(roots):
        uses[i] += 1
    by_or = {c for k, a in nodes if k == "O" for c in a}
    fold = [k == "A" and uses[i] == 1 and i in by_or for i, (k, _) in enumerate(nodes)]
    for i in roots:
        fold[i] = False
    return fold


def _product_pairs(nodes: list[tuple], fold: list[bool]) -> tuple[dict[int, list[tuple]], list[list[int]]]:
    """({inner node: its (a, b) pairs, b None for the row of ones}, inner nodes per level), a
    folded AND's level being its own (its parent's pairs read its children)."""
    level, pairs, per_level = [0] * len(nodes), {}, []
    for i, (kind, arg) in enumerate(nodes):
        if kind == "L" or fold[i]:
            level[i] = 0 if kind == "L" else 1 + max(level[c] for c in arg)
            continue
        pr = [tuple(arg)] if kind == "A" else [tuple(nodes[c][1]) if fold[c] else (c, None) for c in arg]
        pairs[i] = pr
        level[i] = 1 + max(level[c] for p in pr for c in p if c is not None)
        while len(per_level) < level[i]:
            per_level.append([])
        per_level[level[i] - 1].append(i)
    return pairs, per_level


def _level_step(ids: list[int], pairs: dict[int, list[tuple]], row: dict[int, int], one: int, lo: int) -> tuple:
    """One level of ``_Fused``: (rows of a, rows of b, segment of each pair or None when every
    node has one pair, first row, end row)."""
    prs = [(p, k) for k, i in enumerate(ids) for p in pairs[i]]
    seg = [k for _, k in prs]
    ia = _long([row[a] for (a, _), _ in prs])
    ib = _long([one if b is None else row[b] for (_, b), _ in prs])
    return ia, ib, None if seg == list(range(len(ids))) else _long(seg), lo, lo + len(ids)


class _Fused(torch.autograd.Function):
    """A small circuit on one preallocated buffer of every node value [nodes, B], levels
    written in place; the backward is the circuit's own reverse pass (adjoints per level,
    children's rows accumulated with ``index_add_``), not autograd's op-by-op graph."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, m: "LevelCircuit") -> torch.Tensor:
        n_leaves = len(m.leaf_rows)
        v = w.new_empty(m.n_rows, w.shape[1])
        torch.index_select(w, 0, m.leaf_rows, out=v[:n_leaves])
        v[n_leaves] = 1
        for ia, ib, seg, lo, hi in m.flat:
            if seg is None:
                torch.mul(v.index_select(0, ia), v.index_select(0, ib), out=v[lo:hi])
            else:
                v[lo:hi].zero_().index_add_(0, seg, v.index_select(0, ia) * v.index_select(0, ib))
        ctx.m, ctx.w_rows = m, w.shape[0]
        ctx.save_for_backward(v)
        return v.index_select(0, m.flat_roots)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (v,), m = ctx.saved_tensors, ctx.m
        g = torch.zeros_like(v).index_add_(0, m.flat_roots, grad)
        for ia, ib, seg, lo, hi in reversed(m.flat):
            gs = g[lo:hi] if seg is None else g[lo:hi].index_select(0, seg)
            g.index_add_(0, ia, gs * v.index_select(0, ib))
            g.index_add_(0, ib, gs * v.index_select(0, ia))
        gw = grad.new_zeros(ctx.w_rows, v.shape[1]).index_add_(0, m.leaf_rows, g[: len(m.leaf_rows)])
        return gw, None
