"""Calling the networks bound to a DeepProgram on one batch's distinct ground inputs.

A binding is a Tensor (the output for the input ``[tensor(S(I, k...))]`` is ``x[I, k...]``),
a ``torch.nn.Module`` (called on the inputs, resolved through the program's tensor sources;
numbers become float tensors; ``tensor(nn(det, Args))`` is the deterministic network ``det``
applied first) or any callable (gets the ground input lists as problog Terms).
"""

from __future__ import annotations

import torch
from problog.logic import Constant, Term, Var, term2list

from .program import ProgramError

PLACEHOLDER = Term("emolog_I")   # the example id while grounding a structure


def call_network(net: str, term: Term, ids: torch.Tensor, bindings: dict, sources: dict,
                 nets: dict, path: str) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(sorted distinct ids, or None for an id-free input; output [n, D])."""
    if net not in bindings:
        raise ProgramError(f"{path}: Error: network {net!r} is not bound (bind(name, "
                           "tensor | module | callable))", path=path, message="unbound network")
    has_id = str(PLACEHOLDER) in str(term)
    uniq = torch.unique(ids) if has_id else None
    x = bindings[net]
    id_list = uniq.tolist() if has_id else [None]
    if isinstance(x, torch.Tensor):
        out = x[_tensor_index(term, uniq, path, net)]
    elif isinstance(x, torch.nn.Module):
        out = x(*[_resolve(a, id_list, bindings, sources, path) for a in term2list(term, False)])
    else:
        out = x([term2list(_with_id(term, i), False) for i in id_list])
        out = torch.stack(list(out)) if not isinstance(out, torch.Tensor) else out
    decl = nets[net]
    out = out.reshape(len(id_list), -1)
    if decl.kind == "ad" and out.shape[1] != len(decl.domain):
        raise ProgramError(f"{path}: Error: network {net!r} returned {out.shape[1]} values "
                           f"per input, its domain has {len(decl.domain)}", path=path,
                           message="network output does not match its domain")
    return uniq, out


def _resolve(a: Term, ids: list, bindings: dict, sources: dict, path: str) -> torch.Tensor:
    """One input argument for a batch of ids, as a stacked tensor."""
    if isinstance(a, Constant):
        return torch.full((len(ids),), float(a.value))
    if a.functor == "tensor" and a.arity == 1 and a.args[0].functor == "nn":
        inner_net, inner = str(a.args[0].args[0]), a.args[0].args[1]
        return bindings[inner_net](*[_resolve(x, ids, bindings, sources, path)
                                     for x in term2list(inner, False)])
    if a.functor == "tensor" and a.arity == 1:
        src = sources.get(str(a.args[0].functor))
        if src is None:
            raise ProgramError(f"{path}: Error: no tensor source {a.args[0].functor!r} "
                               "(add_tensor_source)", path=path, message="no tensor source")
        keys = [tuple(int(v) if isinstance(v, Constant) else i for v in a.args[0].args)
                for i in ids]
        if isinstance(src, torch.Tensor):
            return src[tuple(torch.tensor(col) for col in zip(*keys))]
        return torch.stack([src[k] for k in keys])
    raise ProgramError(f"{path}: Error: cannot pass {a} to a torch module (give a callable "
                       "binding instead)", path=path, message="unsupported input")


def _with_id(term: Term, i) -> Term:
    return term if i is None else _replace(term, Constant(i))


def _replace(t, value):
    """``t`` with every PLACEHOLDER replaced by ``value`` (apply_term only replaces variables)."""
    if t == PLACEHOLDER:
        return value
    if isinstance(t, Term) and not isinstance(t, (Constant, Var)) and t.arity:
        return t.with_args(*[_replace(a, value) for a in t.args])
    return t


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
