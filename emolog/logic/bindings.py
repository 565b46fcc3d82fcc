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

from typing import Protocol, runtime_checkable

import torch
from problog.logic import Constant, Term, Var, term2list

from .program import ProgramError

PLACEHOLDER = Term("emolog_I")  # the example id while grounding a structure


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


def call_networks(
    calls: dict[int, torch.Tensor], input_terms: list, bindings: dict, sources: dict, nets: dict, path: str
) -> dict[int, tuple]:
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
            raise ProgramError(
                f"{path}: Error: network {net!r} is not bound (bind(name, tensor | module | callable))",
                path=path,
                message="unbound network",
            )
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
    if hasattr(x, "call_batch"):  # a BatchFeed (not isinstance: a Protocol check walks its attributes each call)
        return x.call_batch([(term, uniq) for _, term, uniq in reqs])
    ids = [[None] if uniq is None else uniq.tolist() for _, _, uniq in reqs]
    if isinstance(x, torch.nn.Module):
        args = [
            [_resolve(a, i, bindings, sources, path) for a in term2list(term, False)]
            for (_, term, _), i in zip(reqs, ids)
        ]
        same = len({len(a) for a in args}) == 1 and all(
            len({tuple(a[k].shape[1:]) for a in args}) == 1 for k in range(len(args[0]))
        )
        if same:  # the usual case: one call on every input stacked
            return x(*[torch.cat([a[k] for a in args]) for k in range(len(args[0]))])
        return torch.cat([x(*a).reshape(len(i), -1) for a, i in zip(args, ids)])
    out = x([term2list(_with_id(term, j), False) for (_, term, _), i in zip(reqs, ids) for j in i])
    return torch.stack(list(out)) if not isinstance(out, torch.Tensor) else out


def _tensor_outputs(net: str, reqs: list[tuple], x: torch.Tensor, nets: dict, path: str) -> dict[int, tuple]:
    """The inputs of one tensor-bound network read with one indexing op per index shape."""
    outputs, fused = {}, {}
    for u, term, uniq in reqs:
        if uniq is None:  # a constant index, e.g. tensor(m(0, 1))
            idx = _checked(tensor_index(term, None, path, net), x, term, path, net)
            outputs[u] = (None, _checked_output(x[idx], 1, net, nets[net], path))
            continue
        idx = _checked(tensor_index(term, uniq, path, net), x, term, path, net)
        fused.setdefault(len(idx), []).append((u, uniq, idx))
    for items in fused.values():
        n = [len(uniq) for _, uniq, _ in items]
        idx = tuple(
            torch.cat(
                [i[d] if isinstance(i[d], torch.Tensor) else torch.full((k,), i[d]) for (_, _, i), k in zip(items, n)]
            )
            for d in range(len(items[0][2]))
        )
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
        what = (
            f"its domain has {width}"
            if decl.kind == "ad"
            else "an nn/2 network gives one probability per input ([N] or [N, 1])"
        )
        raise ProgramError(
            f"{path}: Error: network {net!r} returned shape {tuple(out.shape)} for "
            f"{n} input(s), {out.numel() // max(n, 1)} values per input, but {what}",
            path=path,
            message="network output does not match its domain",
        )
    return out.reshape(n, width)


def _resolve(a: Term, ids: list, bindings: dict, sources: dict, path: str) -> torch.Tensor:
    """One input argument for a batch of ids, as a stacked tensor."""
    if isinstance(a, Constant):
        return torch.full((len(ids),), float(a.value))
    if a.functor == "tensor" and a.arity == 1 and a.args[0].functor == "nn":
        return _resolve_deterministic(a, ids, bindings, sources, path)
    if a.functor == "tensor" and a.arity == 1:
        return _resolve_source(a, ids, sources, path)
    raise ProgramError(
        f"{path}: Error: cannot pass {a} to a torch module (give a callable binding instead)",
        path=path,
        message="unsupported input",
    )


def _shown(a: Term) -> str:
    """A term as the user wrote it: the example id as ``I``."""
    return str(a).replace(str(PLACEHOLDER), "I")


def _resolve_deterministic(a: Term, ids: list, bindings: dict, sources: dict, path: str) -> torch.Tensor:
    """``tensor(nn(det, Args))``: the deterministic network ``det`` on its resolved arguments."""
    inner_net, inner = str(a.args[0].args[0]), a.args[0].args[1]
    fn = bindings.get(inner_net)
    if not callable(fn):  # unbound, or a tensor: a deterministic network computes
        raise ProgramError(
            f"{path}: Error: the deterministic network {inner_net!r} in "
            f"{_shown(a)} is {'not bound' if fn is None else 'bound to a tensor'}; "
            "bind it to a torch module or a callable",
            path=path,
            message=f"deterministic network {inner_net} not callable",
        )
    return fn(*[_resolve(x, ids, bindings, sources, path) for x in term2list(inner, False)])


def _resolve_source(a: Term, ids: list, sources: dict, path: str) -> torch.Tensor:
    """``tensor(S(...))``: the tensor source S (a Tensor or a mapping of tuples) read per id."""
    shown, name = _shown(a), a.args[0].functor
    src = sources.get(str(name))
    if src is None:
        raise ProgramError(
            f"{path}: Error: no tensor source {name!r} (add_tensor_source)", path=path, message="no tensor source"
        )
    keys = [tuple(_source_index(v, i, shown, path) for v in a.args[0].args) for i in ids]
    if isinstance(src, torch.Tensor):
        for k in keys:
            if len(k) > src.dim() or any(not 0 <= j < n for j, n in zip(k, src.shape)):
                raise ProgramError(
                    f"{path}: Error: {shown} reads {k} of its tensor source of shape {tuple(src.shape)}: out of range",
                    path=path,
                    message="tensor source index out of range",
                )
        return src[tuple(torch.tensor(col) for col in zip(*keys))]
    try:
        return torch.stack([src[k] for k in keys])
    except KeyError as e:
        raise ProgramError(
            f"{path}: Error: {shown}: the tensor source {name!r} has no key {e.args[0]}",
            path=path,
            message="tensor source key missing",
        ) from None


def _source_index(v: Term, i, shown: str, path: str) -> int:
    """One argument of ``tensor(S(...))`` as a source index: the id where the argument is
    ``I``, an integer constant as itself; anything else is refused (not read as the id)."""
    if v == PLACEHOLDER:
        return i
    if isinstance(v, Constant) and isinstance(v.value, int):
        return v.value
    raise ProgramError(
        f"{path}: Error: {shown}: argument {v} of a tensor source must be I or an "
        "integer (give a callable binding for other inputs)",
        path=path,
        message="tensor source argument is not an index",
    )


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
                path=path,
                message="tensor binding index out of range",
            )
    return idx


def tensor_index(term: Term, uniq, path: str, net: str):
    """Index into a bound output tensor for the input ``[tensor(S(I, k...))]``."""
    items = term2list(term, False)
    if len(items) == 1 and items[0].functor == "tensor" and items[0].arity == 1:
        args = items[0].args[0].args
        idx = [
            uniq if a == PLACEHOLDER else int(a.value)
            for a in args
            if a == PLACEHOLDER or (isinstance(a, Constant) and isinstance(a.value, int))
        ]
        if len(idx) == len(args) and (uniq is None) == all(a != PLACEHOLDER for a in args):
            return tuple(idx)
    raise ProgramError(
        f"{path}: Error: network {net!r} is bound to a tensor, so its input must "
        f"be [tensor(S(I, k...))] with integer k; got {term}",
        path=path,
        message="tensor binding needs tensor(S(I, ...)) inputs",
    )
