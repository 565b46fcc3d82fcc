"""A compiled structure (``dnnf.Structure``) evaluated as a batched, differentiable torch circuit.

The general engine behind ``evaluate`` (plain ProbLog) and ``DeepProgram`` (DeepProbLog
programs) compiles each structure with ``dnnf.compile_structure``; the shipped
seed-convention programs keep their own grouped-vtree path in ``compile.py``.
"""

from __future__ import annotations

import torch

from .dnnf import Structure
from .levels import LevelCircuit


class CircuitEvaluator(torch.nn.Module):
    """Evaluates a Structure: ``forward(P [n_atoms, B]) -> [B, n_roots]`` (differentiable).

    The leaf weights come from ``literal_weights``; the circuit is evaluated by
    ``levels.LevelCircuit``.
    """

    def __init__(self, s: Structure):
        super().__init__()
        self.s = s
        self.n_roots = len(s.roots)
        real = [i for i, r in enumerate(s.roots) if not isinstance(r, str)]
        self.real_roots = real
        self.module = LevelCircuit(s.nodes, [s.roots[i] for i in real]) if real else None
        self.const = [1.0 if r == "T" else 0.0 for r in s.roots]
        self.register_buffer("_single_row", torch.tensor([r for _, r in s.singles], dtype=torch.long), persistent=False)
        # "none" of a disjunction: 1 - the sum of its heads, summed per disjunction in one op
        seg = [k for k, (_, rows) in enumerate(s.nones) for _ in rows]
        self.register_buffer(
            "_none_rows", torch.tensor([r for _, rows in s.nones for r in rows], dtype=torch.long), persistent=False
        )
        self.register_buffer("_none_seg", torch.tensor(seg, dtype=torch.long), persistent=False)
        # Rows of ``literal_weights``' stacked parts [0, 1, singles p, singles 1-p, nones q,
        # nones 1-q] that give LevelCircuit's order [0, 1, pos_1, neg_1, ...]: one gather.
        ns, nn_ = len(s.singles), len(s.nones)
        at = {v: (2 + k, 2 + ns + k) for k, (v, _) in enumerate(s.singles)}
        at.update({v: (2 + 2 * ns + k, 2 + 2 * ns + nn_ + k) for k, (v, _) in enumerate(s.nones)})
        order = [0, 1] + [r for v in range(1, s.n_vars + 1) for r in at.get(v, (0, 0))]
        self.register_buffer("_order", torch.tensor(order, dtype=torch.long), persistent=False)
        # A small circuit reads its leaves straight from the stacked parts (one gather less).
        self._direct = self.module is not None and self.module.small
        if self._direct:
            self.module.leaf_rows = self._order[self.module.leaf_rows]

    def literal_weights(self, p: torch.Tensor, ordered: bool = True) -> torch.Tensor:
        """LevelCircuit's input [2 + 2 n_vars, B]: rows 0/1 the constants 0 and 1, then (pos,
        neg) per variable (``ordered=False``: the stacked parts, rows as ``_order`` maps them)."""
        b = p.shape[1]
        parts = [p.new_zeros(1, b), p.new_ones(1, b)]
        if len(self._single_row):
            ps = p.index_select(0, self._single_row)  # (its backward: index_add, not index_put)
            parts += [ps, 1 - ps]
        if len(self._none_rows):
            mass = p.new_zeros(len(self.s.nones), b).index_add(0, self._none_seg, p.index_select(0, self._none_rows))
            parts += [1 - mass, mass]
        out = torch.cat(parts, 0)
        return out.index_select(0, self._order) if ordered else out

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        b = p.shape[1]
        out = p.new_empty(b, self.n_roots)
        if self.module is not None:
            vals = self.module(self.literal_weights(p, ordered=not self._direct)).t()
            out = (
                out.index_copy(1, torch.tensor(self.real_roots, device=p.device), vals)
                if len(self.real_roots) < self.n_roots
                else vals
            )
        for i, v in enumerate(self.const):
            if i not in self.real_roots:
                out[:, i] = v
        return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB; Linux ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def merge_structures(structs: list, n_rows: list[int]) -> tuple[Structure, list[int], list[int]]:
    """The disjoint union of compiled structures as one Structure (rows, variables, nodes and
    roots renumbered), with each part's first atom row and first root. Evaluating it on a table
    whose rows of part s hold part s's examples (column j = j-th example of that part) runs
    every part's level in one op: rows never mix parts, so columns need not mean the same."""
    singles, nones, groups, nodes, roots, row0, root0 = [], [], [], [], [], [], []
    rows = n_vars = 0
    for s, n in zip(structs, n_rows):
        row0.append(rows)
        root0.append(len(roots))
        off = len(nodes)
        singles += [(v + n_vars, r + rows) for v, r in s.singles]
        nones += [(v + n_vars, [r + rows for r in rs]) for v, rs in s.nones]
        groups += [[r + rows for r in g] for g in s.groups]
        nodes += [
            ("L", a + n_vars if a > 0 else a - n_vars) if k == "L" else (k, [c + off for c in a]) for k, a in s.nodes
        ]
        roots += [r if isinstance(r, str) else r + off for r in s.roots]
        rows += n
        n_vars += s.n_vars
    return Structure([], singles, nones, groups, n_vars, nodes, roots), row0, root0
