"""Evaluate a flattened circuit level by level, reading every node's children where they are.

KLay's layered modules pass each layer only the previous layer, so a node used many layers
later is copied through every layer in between. Circuits over choice chains (``circuit.py``)
are deep (a 365-way disjunction is a 365-long chain), and there that copying dominated: KLay
scored 130 images/s on the 365-way scene program. Here level L (nodes whose children are all
on earlier levels) gathers its children straight from the levels that hold them, one
``index_select`` per source level, then multiplies (an SDD conjunction has exactly two
children) or sums (``index_add``). Data moved = edges x batch; ops per level = sources + 4.
Circuits of up to SMALL nodes instead keep one buffer of every value so far (re-copied per
level, which for them costs less than the extra gathers): ops per level = 4.
"""

from __future__ import annotations

import torch

SMALL = 2000   # nodes: up to here one growing buffer beats per-level gathers


class LevelCircuit(torch.nn.Module):
    """``forward(W [2 + 2 n_vars, B]) -> [n_roots, B]``; W rows: 0, 1, then (pos, neg) per var."""

    def __init__(self, nodes: list[tuple], roots: list[int]):
        super().__init__()
        level: list[int] = []
        pos: list[int] = []
        leaves: list[int] = []
        per_level: list[tuple[list[int], list[int]]] = []   # (and nodes, or nodes)
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
            edges = [nodes[i][1][0] for i in ands] + [nodes[i][1][1] for i in ands] \
                + [c for i in ors for c in nodes[i][1]]
            seg = [k for k, i in enumerate(ors) for _ in nodes[i][1]]
            self.plans.append((self._gather_plan(edges, level, pos), len(ands), len(ors),
                               torch.tensor(seg, dtype=torch.long)))
        self.root_plan = self._gather_plan(list(roots), level, pos)
        # Small circuits: one buffer of every node value so far (copying it per level is
        # cheaper than the extra gathers), children by their global buffer row.
        self.small = len(nodes) <= SMALL
        if self.small:
            offset = [len(leaves)]
            for ands, ors in per_level:
                offset.append(offset[-1] + len(ands) + len(ors))
            row = [pos[i] if level[i] == 0 else offset[level[i] - 1] + pos[i] for i in range(len(nodes))]
            self.flat = []
            for ands, ors in per_level:
                edges = [nodes[i][1][0] for i in ands] + [nodes[i][1][1] for i in ands] \
                    + [c for i in ors for c in nodes[i][1]]
                seg = [k for k, i in enumerate(ors) for _ in nodes[i][1]]
                self.flat.append((torch.tensor([row[e] for e in edges], dtype=torch.long), len(ands),
                                  len(ors), torch.tensor(seg, dtype=torch.long)))
            self.flat_roots = torch.tensor([row[r] for r in roots], dtype=torch.long)

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
        return [(s, torch.tensor(by_src[s], dtype=torch.long)) for s in srcs], \
            (None if identity else perm)

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
                out.append(g[:n_and] * g[n_and:2 * n_and])
            if n_or:
                out.append(w.new_zeros(n_or, b).index_add(0, seg, g[2 * n_and:]))
            vals.append(out[0] if len(out) == 1 else torch.cat(out, 0))
        return self._gather(vals, self.root_plan)

    def _forward_small(self, w: torch.Tensor) -> torch.Tensor:
        buf = w.index_select(0, self.leaf_rows)
        b = w.shape[1]
        for idx, n_and, n_or, seg in self.flat:
            g = buf.index_select(0, idx)
            out = [buf]
            if n_and:
                out.append(g[:n_and] * g[n_and:2 * n_and])
            if n_or:
                out.append(w.new_zeros(n_or, b).index_add(0, seg, g[2 * n_and:]))
            buf = torch.cat(out, 0)
        return buf.index_select(0, self.flat_roots)
