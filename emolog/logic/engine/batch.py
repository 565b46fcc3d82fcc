"""``TensorBatch``: a training batch over tensor-bound structures evaluated as one merged circuit.

Where every network input of a batch's structures is ``[tensor(S(I, k...))]`` of a
tensor-bound network (``bindings.tensor_index``) and no structure has evidence, ``DeepProgram``
takes this path instead of the general one (``bindings.call_networks`` per network, one
circuit per structure): it needs the circuits (``circuit.merge_structures``), so it lives
beside them rather than with the bindings.
"""

from __future__ import annotations

import array
import itertools
import math

import torch
from problog.logic import Term

from ..bindings import PLACEHOLDER, tensor_index
from ..program import ProgramError
from .circuit import CircuitEvaluator, merge_structures


class TensorBatch:
    """Training batches over structures whose every network input is ``[tensor(S(I, k...))]`` of
    a tensor-bound network and that have no evidence: the structures' disjoint union is one
    circuit (``circuit.merge_structures``, each part's examples padded to the largest part's
    count), its probability table is built with one indexing op per network (no unique, no
    search: the bound tensor is read at the padded ids), and the answers with one gather.
    ``build`` returns None where that does not apply (the general path then runs)."""

    def __init__(self, keys, evaluator, blocks, consts, t_idx, root0, n_roots, size):
        self.keys = {k: i for i, k in enumerate(keys)}
        self.evaluator, self.blocks, self.consts, self.t_idx = evaluator, blocks, consts, t_idx
        self.root0, self.n_roots, self.size = root0, n_roots, size

    @staticmethod
    def build(comps: list, bindings: dict, nets_decl: dict, path: str):
        if any(c.has_evidence for c in comps):
            return None
        rows = _Rows(bindings, path)
        try:
            where = [rows.add(s, spec) for s, c in enumerate(comps) for spec in c.specs]
            blocks = [rows.block(net, nets_decl[net]) for net in rows.nets]
        except _NotBatchable:
            return None
        new_row = rows.renumber(where)
        merged, _, root0 = merge_structures([c.structure for c in comps], [len(c.specs) for c in comps])
        merged.singles = [(v, new_row[r]) for v, r in merged.singles]
        merged.nones = [(v, [new_row[r] for r in rs]) for v, rs in merged.nones]
        merged.groups = [[new_row[r] for r in g] for g in merged.groups]
        size = len(merged.nodes) + merged.n_vars + 1
        return TensorBatch(
            [c.key for c in comps],
            CircuitEvaluator(merged),
            blocks,
            torch.tensor(rows.consts, dtype=torch.float64),
            _long(rows.t_idx),
            _long(root0),
            len(merged.roots),
            size,
        )

    def __call__(self, ids: list[int], rid: list[int], routes: list[tuple], bindings: dict, tparams, chunk: int):
        """P(query) per example (route rid[b] = routes[rid[b]] = (structure, answer column), 0
        where the column is -1), or None when the batch is too big or an index out of range."""
        long = lambda x: torch.frombuffer(array.array("q", x), dtype=torch.long)  # noqa: E731
        rid_t, n_parts = long(rid), len(self.keys)  # frombuffer: 8x faster than torch.tensor
        part = torch.tensor([self.keys.get(c.key, 0) for c, _ in routes])[rid_t]
        col = torch.tensor([k for _, k in routes])[rid_t]
        ids, tp = long(ids), tparams.probs() if len(tparams) else None
        counts = torch.bincount(part, minlength=n_parts)
        width = int(counts.max())
        if width * self.size > chunk:
            return None
        order = torch.argsort(part, stable=True)
        start = counts.cumsum(0) - counts
        pad = start.unsqueeze(1) + torch.minimum(torch.arange(width), (counts - 1).unsqueeze(1))
        ids_pad = ids[order][pad]  # [parts, width]
        xs = [bindings[net] for net, *_ in self.blocks]
        dtype = torch.float64  # as DeepProgram's circuits (structures.CIRCUIT_DTYPE): no underflow below 1e-38
        table = [self.consts.to(dtype).unsqueeze(1).expand(-1, width)]
        if len(self.t_idx):
            table.append(tp.to(dtype)[self.t_idx].unsqueeze(1).expand(-1, width))
        top = int(ids.max())
        if int(ids.min()) < 0:
            return None
        for x, (_, rows, dims, j, dom, (tops, j_top)) in zip(xs, self.blocks):
            shape = x.shape[: len(dims)] + (math.prod(x.shape[len(dims) :]),)
            if (
                x.dim() < len(dims)
                or j_top >= shape[-1]
                or dom != shape[-1]
                or any((top if t is None else t) >= n for t, n in zip(tops, shape))
            ):
                return None  # the general path says what is wrong
            lin = j
            for d, i in enumerate(ids_pad[rows] if d is None else d for d in dims):
                lin = lin + i * math.prod(shape[d + 1 :])  # one flat index: index_select's
            table.append(x.reshape(-1).index_select(0, lin.reshape(-1)).reshape(lin.shape).to(dtype))
        vals = self.evaluator(torch.cat(table, 0))  # [width, roots]
        pos = torch.empty_like(order)
        pos[order] = torch.arange(len(order)) - start[part[order]]
        out = vals.reshape(-1).index_select(0, pos * self.n_roots + self.root0[part] + col.clamp(min=0))
        return torch.where(col >= 0, out, torch.zeros_like(out))


def _long(x: list[int]) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.long)


class _NotBatchable(Exception):
    """TensorBatch does not apply to these structures: the general path runs."""


class _Rows:
    """The rows of a merged batch's probability table, in blocks: every constant ("c"), every
    t() ("t"), then per tensor-bound network ``("net", name)`` its atoms (a network may be
    named c or t). Adding an atom the batch path cannot read raises _NotBatchable."""

    def __init__(self, bindings: dict, path: str):
        self.bindings, self.path = bindings, path
        self.consts: list[float] = []
        self.t_idx: list[int] = []
        self.nets: dict[str, tuple[list, list, list]] = {}  # net -> (part, fixed index per dim, column)

    def add(self, part: int, spec: tuple) -> tuple:
        """(block, k): the block of one atom row of structure ``part`` and its row in the block."""
        if spec[0] == "c":
            self.consts.append(spec[1])
            return "c", len(self.consts) - 1
        if spec[0] == "t":
            self.t_idx.append(spec[1])
            return "t", len(self.t_idx) - 1
        net, _, term = spec[1]
        fixed = self._fixed_index(net, term)
        parts, fixes, cols = self.nets.setdefault(net, ([], [], []))
        if fixes and len(fixes[0]) != len(fixed):
            raise _NotBatchable
        parts.append(part)
        fixes.append(fixed)
        cols.append(spec[2] if spec[0] == "nn" else 0)
        return ("net", net), len(parts) - 1

    def _fixed_index(self, net: str, term: Term) -> tuple:
        """An input's index into its network's bound tensor, None where the example id goes."""
        if not isinstance(self.bindings.get(net), torch.Tensor) or str(PLACEHOLDER) not in str(term):
            raise _NotBatchable
        try:
            idx = tensor_index(term, PLACEHOLDER, self.path, net)
        except ProgramError:
            raise _NotBatchable from None
        return tuple(None if a is PLACEHOLDER else a for a in idx)

    def block(self, net: str, decl) -> tuple:
        """(net, part per atom, fixed index per dim [atoms, 1] or None for the id, column
        [atoms, 1], domain size, (largest fixed index per dim, largest column)): the largest
        indices are checked against the tensor at each call."""
        part, fixed, col = self.nets[net]
        if len({tuple(a is None for a in f) for f in fixed}) > 1:
            raise _NotBatchable  # the id in different positions for one network
        dims = [
            _long([f[d] for f in fixed]).unsqueeze(1) if fixed[0][d] is not None else None for d in range(len(fixed[0]))
        ]
        dom = len(decl.domain) if decl.kind == "ad" else 1
        top = [None if d is None else int(d.max()) for d in dims], max(col)
        return net, _long(part), dims, _long(col).unsqueeze(1), dom, top

    def renumber(self, where: list[tuple]) -> list[int]:
        """Each atom's row in the merged table, from its (block, k)."""
        sizes = [len(self.consts), len(self.t_idx)] + [len(part) for part, _, _ in self.nets.values()]
        start = dict(zip(["c", "t", *[("net", n) for n in self.nets]], itertools.accumulate([0] + sizes)))
        return [start[block] + k for block, k in where]
