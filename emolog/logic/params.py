"""The two parameterisations of a program's ``t(...)`` probabilities, and projected SGD.

* ``"softmax"``: one logit per parameter; each annotated disjunction is ``softmax(logits)``,
  a lone ``t`` fact is ``sigmoid(logit)``. Always valid probabilities, so any torch optimiser
  (Adam, SGD, ...) works. A disjunction whose initial values sum to less than 1
  (``t(0.3)::a; t(0.2)::b``) starts renormalised (0.6, 0.4), as DeepProbLog's own first step
  would leave it.
* ``"projected"``: the probabilities themselves are the parameters, as in DeepProbLog. Use
  ``ProjectedSGD`` (or ``projected_sgd_step``): plain SGD on the probabilities, clip to
  [0, 1], renormalise every disjunction (DeepProbLog's ``optimizer.SGD.step``). Any other
  optimiser would leave the probabilities unprojected.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .program import Program


class TParams(nn.Module):
    """The t() parameters of one program; ``probs()`` -> Tensor[P] in DeepProbLog index order."""

    _order: torch.Tensor  # a buffer registered in __init__

    def __init__(self, prog: Program, param: str = "softmax"):
        super().__init__()
        if param not in ("softmax", "projected"):
            raise ValueError(f"param must be 'softmax' or 'projected', got {param!r}")
        self.param = param
        init = prog.initial_probs()
        self.names = [str(p.head) for p in prog.params]
        # Blocks: each disjunction is one block, each lone t fact a block of one.
        self.blocks: list[list[int]] = [list(g) for g in prog.groups]
        self.is_group: list[bool] = [True] * len(self.blocks)
        grouped = {i for g in prog.groups for i in g}
        for p in prog.params:
            if p.index not in grouped:
                self.blocks.append([p.index])
                self.is_group.append(False)
        order = [i for b in self.blocks for i in b]
        self.register_buffer("_order", torch.tensor(order, dtype=torch.long), persistent=False)
        self.values = nn.ParameterList()
        dt = torch.get_default_dtype()  # float64 under torch.set_default_dtype(torch.float64)
        for b, grp in zip(self.blocks, self.is_group):
            p0 = torch.tensor([init[i] for i in b], dtype=torch.float64)
            if param == "projected":
                self.values.append(nn.Parameter(p0.to(dt)))
            elif grp:
                self.values.append(nn.Parameter(torch.log(p0.clamp_min(1e-12) / p0.sum()).to(dt)))
            else:
                self.values.append(nn.Parameter(torch.logit(p0.clamp(1e-12, 1 - 1e-12)).to(dt)))

    def __len__(self) -> int:
        return len(self.names)

    def probs(self) -> torch.Tensor:
        """All t() probabilities, Tensor[P], in DeepProbLog's parameter index order."""
        if not self.blocks:
            return torch.zeros(0)
        parts = []
        for v, grp in zip(self.values, self.is_group):
            if self.param == "projected":
                parts.append(v)
            else:
                parts.append(torch.softmax(v, 0) if grp else torch.sigmoid(v))
        flat = torch.cat(parts)
        out = torch.empty_like(flat)
        out[self._order] = flat  # blocks are stored grouped; put back into index order
        return out

    @torch.no_grad()
    def set_probs(self, probs: torch.Tensor | list[float]) -> None:
        """Overwrite all t() values from probabilities in index order (e.g. to load a result)."""
        probs = torch.as_tensor(probs, dtype=torch.float64)
        if probs.shape != (len(self.names),):
            raise ValueError(f"expected {len(self.names)} probabilities, got shape {tuple(probs.shape)}")
        for b, v, grp in zip(self.blocks, self.values, self.is_group):
            p = probs[b]
            if self.param == "projected":
                v.copy_(p.to(v.dtype))
            elif grp:
                v.copy_(torch.log(p.clamp_min(1e-12) / p.sum()).to(v.dtype))
            else:
                v.copy_(torch.logit(p.clamp(1e-12, 1 - 1e-12)).to(v.dtype))


class ProjectedSGD(torch.optim.Optimizer):
    """DeepProbLog's update of t() probabilities as a torch optimiser.

    ``p <- clip(p - lr * grad, 0, 1)`` for every parameter with a gradient, then every
    annotated disjunction is divided by its sum (all of them, as DeepProbLog does).
    Only for ``TParams(param="projected")``.
    """

    def __init__(self, tparams: TParams, lr: float):
        if tparams.param != "projected":
            raise ValueError("ProjectedSGD needs the 'projected' parameterisation")
        groups = [{"params": [v], "disjunction": g} for v, g in zip(tparams.values, tparams.is_group)]
        super().__init__(groups or [{"params": [torch.zeros(0, requires_grad=True)], "disjunction": False}], {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(group["lr"] * p.grad).clamp_(0.0, 1.0)
                if group["disjunction"]:
                    s = p.sum()
                    if s <= 0:
                        raise ValueError(
                            "projected SGD: every probability of an annotated "
                            "disjunction reached 0; lower the learning rate"
                        )
                    p.div_(s)
        return loss


def projected_sgd_step(tparams: TParams, lr: float) -> None:
    """One DeepProbLog-style step on ``tparams`` using the gradients already in ``.grad``."""
    ProjectedSGD(tparams, lr).step()
