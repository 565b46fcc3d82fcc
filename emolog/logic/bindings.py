"""Calling the networks bound to a DeepProgram on one batch's distinct ground inputs.

A binding is a Tensor (the output for the input ``[tensor(S(I, k...))]`` is ``x[I, k...]``),
a ``torch.nn.Module`` (called on the inputs, resolved through the program's tensor sources;
numbers become float tensors; ``tensor(nn(det, Args))`` is the deterministic network ``det``
applied first), an object with ``call_batch`` (a ``BatchFeed``: emolog's own feeds, given every
distinct input of the batch at once) or any other callable (gets the ground input lists as
problog Terms). Every network is called once per batch: all its distinct ground inputs
(each distinct input term once, for each distinct example id where the term holds ``I``) go
in one call, stacked, whatever the number of distinct terms (a network over numbers the
program computes sees thousands of terms, one row each).
"""

from __future__ import annotations

import array
import itertools
import math
from typing import Protocol, runtime_checkable

import torch
from problog.logic import Constant, Term, Var, term2list

from .program import ProgramError

PLACEHOLDER = Term("emolog_I")   # the example id while grounding a structure


@runtime_checkable
class BatchFeed(Protocol):
    """A binding that takes a whole batch: ``call_batch(requests)`` gets one ``(input term,
    example ids)`` pair per distinct input term of the network (ids: the sorted distinct ids
    of the examples that read it, or None when the term holds no ``I``) and returns the
    outputs stacked in request order, Tensor[sum of len(ids) (1 for None), width]."""

    def call_batch(self, requests: list[tuple[Term, torch.Tensor | None]]) -> torch.Tensor: ...


def holds_id(term: Term) -> bool:
    """Whether a ground input term mentions the example id (the placeholder ``I``)."""
    return str(PLACEHOLDER) in str(term)


def call_networks(calls: dict[int, torch.Tensor], input_terms: list, bindings: dict, sources: dict,
                  nets: dict, path: str) -> dict[int, tuple]:
    """{u: (sorted distinct ids or None, output [n, width])} for every input u (ids per u):
    one call per network for all its inputs (a tensor-bound network: one indexing op, whose
    backward then writes the bound tensor's gradient once)."""
    by_net: dict[str, list] = {}
    for u, ids in calls.items():
        net, term = input_terms[u]
        by_net.setdefault(net, []).append((u, term, torch.unique(ids) if holds_id(term) else None))
    outputs: dict[int, tuple] = {}
    for net, reqs in by_net.items():
        if net not in bindings:
            raise ProgramError(f"{path}: Error: network {net!r} is not bound (bind(name, "
                               "tensor | module | callable))", path=path, message="unbound network")
        x = bindings[net]
        if isinstance(x, torch.Tensor):
            outputs.update(_tensor_outputs(net, reqs, x, nets, path))
            continue
        n = [1 if uniq is None else len(uniq) for _, _, uniq in reqs]
        out = _checked_output(_call(x, reqs, bindings, sources, path), sum(n), net, nets[net], path)
        for (u, _, uniq), o in zip(reqs, out.split(n)):
            outputs[u] = (uniq, o)
    return outputs


def _call(x, reqs: list[tuple], bindings: dict, sources: dict, path: str) -> torch.Tensor:
    """One call of a module, a BatchFeed or a callable on every request, outputs stacked."""
    if hasattr(x, "call_batch"):   # a BatchFeed (not isinstance: a Protocol check walks its attributes each call)
        return x.call_batch([(term, uniq) for _, term, uniq in reqs])
    ids = [[None] if uniq is None else uniq.tolist() for _, _, uniq in reqs]
    if isinstance(x, torch.nn.Module):
        args = [[_resolve(a, i, bindings, sources, path) for a in term2list(term, False)]
                for (_, term, _), i in zip(reqs, ids)]
        same = len({len(a) for a in args}) == 1 and all(
            len({tuple(a[k].shape[1:]) for a in args}) == 1 for k in range(len(args[0])))
        if same:   # the usual case: one call on every input stacked
            return x(*[torch.cat([a[k] for a in args]) for k in range(len(args[0]))])
        return torch.cat([x(*a).reshape(len(i), -1) for a, i in zip(args, ids)])
    out = x([term2list(_with_id(term, j), False) for (_, term, _), i in zip(reqs, ids) for j in i])
    return torch.stack(list(out)) if not isinstance(out, torch.Tensor) else out


def _tensor_outputs(net: str, reqs: list[tuple], x: torch.Tensor, nets: dict, path: str) -> dict[int, tuple]:
    """The inputs of one tensor-bound network read with one indexing op per index shape."""
    outputs, fused = {}, {}
    for u, term, uniq in reqs:
        if uniq is None:   # a constant index, e.g. tensor(m(0, 1))
            idx = _checked(_tensor_index(term, None, path, net), x, term, path, net)
            outputs[u] = (None, _checked_output(x[idx], 1, net, nets[net], path))
            continue
        idx = _checked(_tensor_index(term, uniq, path, net), x, term, path, net)
        fused.setdefault(len(idx), []).append((u, uniq, idx))
    for items in fused.values():
        n = [len(uniq) for _, uniq, _ in items]
        idx = tuple(torch.cat([i[d] if isinstance(i[d], torch.Tensor) else torch.full((k,), i[d])
                               for (_, _, i), k in zip(items, n)]) for d in range(len(items[0][2])))
        out = _checked_output(x[idx], sum(n), net, nets[net], path)
        for (u, uniq, _), o in zip(items, out.split(n)):
            outputs[u] = (uniq, o)
    return outputs


def _checked_output(out: torch.Tensor, n: int, net: str, decl, path: str) -> torch.Tensor:
    """``out`` as [n, D], D the domain's size (nn/4) or 1 (nn/2: the fact's probability).

    Why nn/2 too: a [N, 2] output read at column 0 would pass for a probability silently.
    """
    width = len(decl.domain) if decl.kind == "ad" else 1
    if out.numel() != n * width:
        what = f"its domain has {width}" if decl.kind == "ad" else \
            "an nn/2 network gives one probability per input ([N] or [N, 1])"
        raise ProgramError(f"{path}: Error: network {net!r} returned shape {tuple(out.shape)} for "
                           f"{n} input(s), {out.numel() // max(n, 1)} values per input, but {what}",
                           path=path, message="network output does not match its domain")
    return out.reshape(n, width)


def _resolve(a: Term, ids: list, bindings: dict, sources: dict, path: str) -> torch.Tensor:
    """One input argument for a batch of ids, as a stacked tensor."""
    if isinstance(a, Constant):
        return torch.full((len(ids),), float(a.value))
    if a.functor == "tensor" and a.arity == 1 and a.args[0].functor == "nn":
        return _resolve_deterministic(a, ids, bindings, sources, path)
    if a.functor == "tensor" and a.arity == 1:
        return _resolve_source(a, ids, sources, path)
    raise ProgramError(f"{path}: Error: cannot pass {a} to a torch module (give a callable "
                       "binding instead)", path=path, message="unsupported input")


def _shown(a: Term) -> str:
    """A term as the user wrote it: the example id as ``I``."""
    return str(a).replace(str(PLACEHOLDER), "I")


def _resolve_deterministic(a: Term, ids: list, bindings: dict, sources: dict, path: str) -> torch.Tensor:
    """``tensor(nn(det, Args))``: the deterministic network ``det`` on its resolved arguments."""
    inner_net, inner = str(a.args[0].args[0]), a.args[0].args[1]
    fn = bindings.get(inner_net)
    if not callable(fn):   # unbound, or a tensor: a deterministic network computes
        raise ProgramError(f"{path}: Error: the deterministic network {inner_net!r} in "
                           f"{_shown(a)} is {'not bound' if fn is None else 'bound to a tensor'}; "
                           "bind it to a torch module or a callable", path=path,
                           message=f"deterministic network {inner_net} not callable")
    return fn(*[_resolve(x, ids, bindings, sources, path) for x in term2list(inner, False)])


def _resolve_source(a: Term, ids: list, sources: dict, path: str) -> torch.Tensor:
    """``tensor(S(...))``: the tensor source S (a Tensor or a mapping of tuples) read per id."""
    shown, name = _shown(a), a.args[0].functor
    src = sources.get(str(name))
    if src is None:
        raise ProgramError(f"{path}: Error: no tensor source {name!r} "
                           "(add_tensor_source)", path=path, message="no tensor source")
    keys = [tuple(_source_index(v, i, shown, path) for v in a.args[0].args) for i in ids]
    if isinstance(src, torch.Tensor):
        for k in keys:
            if len(k) > src.dim() or any(not 0 <= j < n for j, n in zip(k, src.shape)):
                raise ProgramError(f"{path}: Error: {shown} reads {k} of its tensor source "
                                   f"of shape {tuple(src.shape)}: out of range", path=path,
                                   message="tensor source index out of range")
        return src[tuple(torch.tensor(col) for col in zip(*keys))]
    try:
        return torch.stack([src[k] for k in keys])
    except KeyError as e:
        raise ProgramError(f"{path}: Error: {shown}: the tensor source "
                           f"{name!r} has no key {e.args[0]}", path=path,
                           message="tensor source key missing") from None


def _source_index(v: Term, i, shown: str, path: str) -> int:
    """One argument of ``tensor(S(...))`` as a source index: the id where the argument is
    ``I``, an integer constant as itself; anything else is refused (not read as the id)."""
    if v == PLACEHOLDER:
        return i
    if isinstance(v, Constant) and isinstance(v.value, int):
        return v.value
    raise ProgramError(f"{path}: Error: {shown}: argument {v} of a tensor source must be I or an "
                       "integer (give a callable binding for other inputs)", path=path,
                       message="tensor source argument is not an index")


def _with_id(term: Term, i) -> Term:
    return term if i is None else _replace(term, Constant(i))


def _replace(t, value):
    """``t`` with every PLACEHOLDER replaced by ``value`` (apply_term only replaces variables)."""
    if t == PLACEHOLDER:
        return value
    if isinstance(t, Term) and not isinstance(t, (Constant, Var)) and t.arity:
        return t.with_args(*[_replace(a, value) for a in t.args])
    return t


def _checked(idx: tuple, x: torch.Tensor, term: Term, path: str, net: str) -> tuple:
    """``idx`` if it lies inside ``x``; else the error naming the input and the tensor's shape.

    Why: ``Faces`` counts from 1 (``tensor(face(I,1))`` is the largest face) while a tensor is
    indexed from 0, so a cache's [N, K, D] face tensor bound as it is would silently read the
    second face as the first; out of range is the one case that can be told apart here.
    """
    for dim, i in enumerate(idx):
        hi = int(i.max()) if isinstance(i, torch.Tensor) and i.numel() else (i if isinstance(i, int) else -1)
        if dim >= x.dim() or hi >= x.shape[dim]:
            raise ProgramError(
                f"{path}: Error: network {net!r} is bound to a tensor of shape {tuple(x.shape)}, "
                f"but the input {str(term).replace(str(PLACEHOLDER), 'I')} indexes it at {hi} in "
                f"dimension {dim}: the bound tensor is "
                "indexed from 0 by tensor(S(I, k...))'s arguments, and Faces counts from 1 "
                "(bind [N, K + 1, D] with slot 0 unused, or a module/callable)",
                path=path, message="tensor binding index out of range")
    return idx


def _tensor_index(term: Term, uniq, path: str, net: str):
    """Index into a bound output tensor for the input ``[tensor(S(I, k...))]``."""
    items = term2list(term, False)
    if len(items) == 1 and items[0].functor == "tensor" and items[0].arity == 1:
        args = items[0].args[0].args
        idx = [uniq if a == PLACEHOLDER else int(a.value) for a in args
               if a == PLACEHOLDER or (isinstance(a, Constant) and isinstance(a.value, int))]
        if len(idx) == len(args) and (uniq is None) == all(a != PLACEHOLDER for a in args):
            return tuple(idx)
    raise ProgramError(f"{path}: Error: network {net!r} is bound to a tensor, so its input must "
                       f"be [tensor(S(I, k...))] with integer k; got {term}", path=path,
                       message="tensor binding needs tensor(S(I, ...)) inputs")


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
        from .circuit import CircuitEvaluator, merge_structures

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
        return TensorBatch([c.key for c in comps], CircuitEvaluator(merged), blocks,
                           torch.tensor(rows.consts, dtype=torch.float64),
                           _long(rows.t_idx), _long(root0), len(merged.roots), size)

    def __call__(self, ids: list[int], rid: list[int], routes: list[tuple], bindings: dict, tparams,
                 chunk: int):
        """P(query) per example (route rid[b] = routes[rid[b]] = (structure, answer column), 0
        where the column is -1), or None when the batch is too big or an index out of range."""
        long = lambda x: torch.frombuffer(array.array("q", x), dtype=torch.long)  # noqa: E731
        rid_t, n_parts = long(rid), len(self.keys)   # frombuffer: 8x faster than torch.tensor
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
        ids_pad = ids[order][pad]                                       # [parts, width]
        xs = [bindings[net] for net, *_ in self.blocks]
        dtype = torch.float64   # as DeepProgram's circuits (deep.CIRCUIT_DTYPE): no underflow below 1e-38
        table = [self.consts.to(dtype).unsqueeze(1).expand(-1, width)]
        if len(self.t_idx):
            table.append(tp.to(dtype)[self.t_idx].unsqueeze(1).expand(-1, width))
        top = int(ids.max())
        if int(ids.min()) < 0:
            return None
        for x, (_, rows, dims, j, dom, (tops, j_top)) in zip(xs, self.blocks):
            shape = x.shape[:len(dims)] + (math.prod(x.shape[len(dims):]),)
            if x.dim() < len(dims) or j_top >= shape[-1] or dom != shape[-1] or any(
                    (top if t is None else t) >= n for t, n in zip(tops, shape)):
                return None   # the general path says what is wrong
            lin = j
            for d, i in enumerate(ids_pad[rows] if d is None else d for d in dims):
                lin = lin + i * math.prod(shape[d + 1:])   # one flat index: index_select's
            table.append(x.reshape(-1).index_select(0, lin.reshape(-1)).reshape(lin.shape).to(dtype))
        vals = self.evaluator(torch.cat(table, 0))                      # [width, roots]
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
        self.nets: dict[str, tuple[list, list, list]] = {}   # net -> (part, fixed index per dim, column)

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
            idx = _tensor_index(term, PLACEHOLDER, self.path, net)
        except ProgramError:
            raise _NotBatchable from None
        return tuple(None if a is PLACEHOLDER else a for a in idx)

    def block(self, net: str, decl) -> tuple:
        """(net, part per atom, fixed index per dim [atoms, 1] or None for the id, column
        [atoms, 1], domain size, (largest fixed index per dim, largest column)): the largest
        indices are checked against the tensor at each call."""
        part, fixed, col = self.nets[net]
        if len({tuple(a is None for a in f) for f in fixed}) > 1:
            raise _NotBatchable   # the id in different positions for one network
        dims = [_long([f[d] for f in fixed]).unsqueeze(1) if fixed[0][d] is not None else None
                for d in range(len(fixed[0]))]
        dom = len(decl.domain) if decl.kind == "ad" else 1
        top = [None if d is None else int(d.max()) for d in dims], max(col)
        return net, _long(part), dims, _long(col).unsqueeze(1), dom, top

    def renumber(self, where: list[tuple]) -> list[int]:
        """Each atom's row in the merged table, from its (block, k)."""
        sizes = [len(self.consts), len(self.t_idx)] + [len(part) for part, _, _ in self.nets.values()]
        start = dict(zip(["c", "t", *[("net", n) for n in self.nets]], itertools.accumulate([0] + sizes)))
        return [start[block] + k for block, k in where]
