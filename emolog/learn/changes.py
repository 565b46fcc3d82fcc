""" "What changed" during training: per-parameter change of every net, and flipped predictions.

These are the data behind the user's questions "what does training then do?" and "which
parameters really train?": a frozen net shows exactly zero change and zero gradient, so a
logic-only run demonstrates that only ``t()`` moved.
"""

from __future__ import annotations


import numpy as np
import torch
from torch import nn


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU float64 copy of every named parameter (the "init" to compare with)."""
    return {n: p.detach().to("cpu", torch.float64).clone() for n, p in module.named_parameters()}


class GradTracker:
    """Accumulates per-parameter and per-group gradient L2 norms over optimiser steps.

    A step costs two tensor operations: the per-parameter norms (one ``_foreach_norm``) are
    written into a buffer, and the sums and per-group norms are computed from the buffer when
    it is read (``end_epoch``, ``param_sum``, ``state_dict``)."""

    def __init__(self, nets: dict[str, nn.Module]) -> None:
        self.nets = nets
        self._names = [(net, n) for net, m in nets.items() for n, _ in m.named_parameters()]
        self._params = [p for m in nets.values() for p in m.parameters()]
        self._group = [g for g, m in enumerate(nets.values()) for _ in m.parameters()]
        self._sum = torch.zeros(len(self._params), dtype=torch.float64)
        self._epoch = torch.zeros(len(nets), dtype=torch.float64)
        self._live: list[int] = []
        self._buf: torch.Tensor | None = None  # [rows, len(self._live)] norms of buffered steps
        self._rows = 0
        self.steps = 0
        self.epoch_steps = 0

    def record(self) -> None:
        """Call after ``backward()`` and before the optimiser step."""
        self.steps += 1
        self.epoch_steps += 1
        live = [i for i, p in enumerate(self._params) if p.requires_grad and p.grad is not None]
        if not live:
            return
        if live != self._live:
            self._flush()
            self._live = live
        if self._buf is None or self._rows == len(self._buf):
            grown = torch.empty(max(1024, 2 * self._rows), len(live), device=self._params[live[0]].grad.device)
            if self._buf is not None:
                grown[: self._rows] = self._buf[: self._rows]
            self._buf = grown
        torch.stack(torch._foreach_norm([self._params[i].grad for i in live]), out=self._buf[self._rows])
        self._rows += 1

    def _flush(self) -> None:
        """Fold the buffered steps into the sums (per parameter) and the epoch's group norms."""
        if not self._rows:
            return
        norms = self._buf[: self._rows].double().cpu()
        rows = torch.tensor(self._live)
        self._sum.index_add_(0, rows, norms.sum(0))
        groups = torch.tensor([self._group[i] for i in self._live])
        per_step = torch.zeros(len(norms), len(self.nets), dtype=torch.float64).index_add_(1, groups, norms * norms)
        self._epoch += per_step.sqrt().sum(0)
        self._rows = 0

    @property
    def param_sum(self) -> dict[str, dict[str, float]]:
        """Sum over steps of each parameter's gradient norm, {net: {name: float}}."""
        self._flush()
        out: dict[str, dict[str, float]] = {net: {} for net in self.nets}
        for (net, n), v in zip(self._names, self._sum.tolist()):
            out[net][n] = v
        return out

    def end_epoch(self) -> dict[str, float]:
        """Mean group gradient norm over this epoch's steps, per net; resets the epoch sums."""
        self._flush()
        vals = (self._epoch / self.epoch_steps if self.epoch_steps else torch.zeros_like(self._epoch)).tolist()
        self._epoch = torch.zeros_like(self._epoch)
        self.epoch_steps = 0
        return dict(zip(self.nets, vals))

    def state_dict(self) -> dict:
        return {"param_sum": self.param_sum, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        saved = state["param_sum"]
        self._sum = torch.tensor([float(saved[net][n]) for net, n in self._names], dtype=torch.float64)
        self._rows = 0
        self.steps = state["steps"]


def logic_label(module: nn.Module, name: str) -> str | None:
    """A logic parameter's readable name: ``tparams.values.K`` -> the t() atoms of block K
    (``t(source(scene)), t(source(face1)), ...``), so a report does not show tensor paths."""
    tparams = getattr(module, "tparams", None)
    prefix = "tparams.values."
    if tparams is None or not name.startswith(prefix) or not name[len(prefix) :].isdigit():
        return None
    block = tparams.blocks[int(name[len(prefix) :])]
    return ", ".join(f"t({tparams.names[i]})" for i in block)


def layer_changes(
    nets: dict[str, nn.Module], init: dict[str, dict[str, torch.Tensor]], trainable: dict[str, bool], grads: GradTracker
) -> list[dict]:
    """One row per parameter tensor of every net.

    ``rel_change`` = ||theta - theta0|| / ||theta0|| (None when theta0 = 0, e.g. zero-initialised
    biases; ``abs_change`` = ||theta - theta0|| is always given), ``cosine_to_init`` (None when
    either is 0), ``grad_norm`` = mean per-step L2 norm of its gradient (0 when frozen).
    """
    rows = []
    for net, module in nets.items():
        for name, p in module.named_parameters():
            now = p.detach().to("cpu", torch.float64).flatten()
            before = init[net][name].flatten()
            d = float((now - before).norm())
            n0, n1 = float(before.norm()), float(now.norm())
            rows.append(
                {
                    "net": net,
                    "name": name,
                    "n_params": int(now.numel()),
                    "rel_change": d / n0 if n0 > 0 else None,
                    "abs_change": d,
                    "cosine_to_init": float(now @ before) / (n0 * n1) if n0 > 0 and n1 > 0 else None,
                    "grad_norm": grads.param_sum[net][name] / grads.steps if grads.steps else 0.0,
                    "trainable": bool(trainable[net]),
                    **({"label": label} if (label := logic_label(module, name)) else {}),
                }
            )
    return rows


def flips(labels: np.ndarray, before: np.ndarray, after: np.ndarray, classes: tuple[str, ...]) -> dict:
    """Predictions that changed between before and after training, per true class.

    ``to_correct``: wrong before, right after; ``to_wrong``: right before, wrong after;
    ``other``: changed from one wrong class to another. All arrays [N] int class indices.
    """
    per_class = {c: {"to_correct": 0, "to_wrong": 0, "other": 0} for c in classes}
    changed = before != after
    for y, b, a in zip(labels[changed], before[changed], after[changed]):
        key = "to_correct" if a == y else "to_wrong" if b == y else "other"
        per_class[classes[int(y)]][key] += 1
    return {"per_class": per_class, "n_flipped": int(changed.sum()), "n": int(len(labels))}
