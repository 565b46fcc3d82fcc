"""A compiled structure of a ``DeepProgram`` and how its probability table is filled.

``Compiled`` is one structure (a filled query template with the example id left open): its
answers, what each atom row of the circuit's input reads (``specs``), the circuit and its
evaluator. ``make_plan`` lays out that input once per structure (``Plan``: constant rows, t()
rows, per network input its rows and columns); ``table`` fills it for a batch of example ids
from the networks' outputs: P [n_atoms, B], one ``index_copy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from ..bindings import PLACEHOLDER
from .circuit import CircuitEvaluator


class Plan(NamedTuple):
    """How a structure's probability table is filled (``make_plan``)."""

    n: int  # atom rows
    const_rows: torch.Tensor
    consts: torch.Tensor
    t_rows: torch.Tensor
    t_idx: torch.Tensor
    inputs: list  # (input u, rows, columns) of every network input
    per_id: list  # those whose input holds the example id
    free_us: list[int]  # the others (values the program computed): one row each
    free_rows: torch.Tensor
    free_idx: torch.Tensor  # into the free inputs' outputs, concatenated and flattened


@dataclass
class Compiled:
    """One compiled structure; ``evaluator`` and ``plan`` are set once it is loaded."""

    key: str
    names: list[str]
    specs: list[tuple]  # per atom row: ("c", v) | ("t", i) | ("nn", input, j) | ("f", input)
    structure: Any
    has_evidence: bool
    evaluator: Any = field(default=None, repr=False)  # CircuitEvaluator
    plan: Any = field(default=None, repr=False)  # Plan
    stats: dict = field(default_factory=dict)

    def load(self, plan: Plan) -> None:
        self.evaluator, self.plan = CircuitEvaluator(self.structure), plan


def make_plan(c: Compiled, input_of: dict, input_terms: list, nets: dict) -> Plan:
    """Row layout of P: constant rows, t() rows, and per network input its rows/columns;
    the inputs without the example id (values the program computed) gathered as one.
    ``input_of``: (network, input term) -> input index u; ``input_terms[u]``: (network, input)."""
    const_rows, consts, t_rows, t_idx = [], [], [], []
    by_input: dict[Any, tuple[list, list]] = {}
    for row, spec in enumerate(c.specs):
        if spec[0] == "c":
            const_rows.append(row)
            consts.append(spec[1])
        elif spec[0] == "t":
            t_rows.append(row)
            t_idx.append(spec[1])
        else:
            rows, cols = by_input.setdefault(input_of[spec[1][:2]], ([], []))
            rows.append(row)
            cols.append(spec[2] if spec[0] == "nn" else 0)
    lt = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    inputs = [(u, lt(r), lt(cl)) for u, (r, cl) in by_input.items()]
    per_id = [x for x in inputs if str(PLACEHOLDER) in str(input_terms[x[0]][1])]
    free = [(u, r, cl) for u, (r, cl) in by_input.items() if all(u != x[0] for x in per_id)]
    # a free input's output is one row of its network's width: flat offsets into their concatenation
    widths = [len(nets[input_terms[u][0]].domain or [0]) for u, _, _ in free]
    offset = [sum(widths[:k]) for k in range(len(free))]
    return Plan(
        len(c.specs),
        lt(const_rows),
        torch.tensor(consts, dtype=torch.float64),
        lt(t_rows),
        lt(t_idx),
        inputs,
        per_id,
        [u for u, _, _ in free],
        lt([x for _, r, _ in free for x in r]),
        lt([o + x for (_, _, cl), o in zip(free, offset) for x in cl]),
    )


def free_values(pl: Plan, outputs: dict, dtype: torch.dtype) -> torch.Tensor | None:
    """[rows]: the probabilities of every id-free input's atoms, one gather for them all."""
    if not pl.free_us:
        return None
    flat = torch.cat([outputs[u][1].reshape(-1) for u in pl.free_us]).to(dtype)
    return flat.index_select(0, pl.free_idx)


def table(
    pl: Plan, ids: torch.Tensor, outputs: dict, tp: torch.Tensor | None, dtype: torch.dtype, free: torch.Tensor | None
) -> torch.Tensor:
    """P [n_atoms, B]: each probabilistic atom's probability per example, written with one
    ``index_copy`` (a program with thousands of network inputs, e.g. one per computed
    value, would otherwise copy the whole table once per input)."""
    b = len(ids)
    rows, vals = [], []
    if len(pl.const_rows):
        rows.append(pl.const_rows)
        vals.append(pl.consts.to(dtype).unsqueeze(1).expand(-1, b))
    if len(pl.t_rows):
        rows.append(pl.t_rows)
        vals.append(tp[pl.t_idx].unsqueeze(1).expand(-1, b))
    if free is not None:
        rows.append(pl.free_rows)
        vals.append(free.unsqueeze(1).expand(-1, b))
    for u, r, cols in pl.per_id:
        uniq, out = outputs[u]
        rows.append(r)
        vals.append(out.to(dtype)[torch.searchsorted(uniq, ids)][:, cols].t())
    if not rows:
        return torch.zeros(pl.n, b, dtype=dtype)
    return torch.zeros(pl.n, b, dtype=dtype).index_copy(0, torch.cat(rows), torch.cat(vals))
