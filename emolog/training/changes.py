""""What changed" during training: per-parameter change of every net, and flipped predictions.

These are the data behind the user's questions "what does training then do?" and "which
parameters really train?": a frozen net shows exactly zero change and zero gradient, so a
logic-only run demonstrates that only ``t()`` moved.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU float64 copy of every named parameter (the "init" to compare with)."""
    return {n: p.detach().to("cpu", torch.float64).clone() for n, p in module.named_parameters()}


class GradTracker:
    """Accumulates per-parameter and per-group gradient L2 norms over optimiser steps."""

    def __init__(self, nets: dict[str, nn.Module]) -> None:
        self.nets = nets
        self.param_sum = {net: {n: 0.0 for n, _ in m.named_parameters()} for net, m in nets.items()}
        self.steps = 0
        self.epoch_group_sum = {net: 0.0 for net in nets}
        self.epoch_steps = 0

    def record(self) -> None:
        """Call after ``backward()`` and before the optimiser step."""
        self.steps += 1
        self.epoch_steps += 1
        for net, m in self.nets.items():
            sq = 0.0
            for n, p in m.named_parameters():
                if p.requires_grad and p.grad is not None:
                    g = float(p.grad.detach().norm())
                    self.param_sum[net][n] += g
                    sq += g * g
            self.epoch_group_sum[net] += math.sqrt(sq)

    def end_epoch(self) -> dict[str, float]:
        """Mean group gradient norm over this epoch's steps, per net; resets the epoch sums."""
        out = {net: (s / self.epoch_steps if self.epoch_steps else 0.0)
               for net, s in self.epoch_group_sum.items()}
        self.epoch_group_sum = {net: 0.0 for net in self.nets}
        self.epoch_steps = 0
        return out

    def state_dict(self) -> dict:
        return {"param_sum": self.param_sum, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.param_sum, self.steps = state["param_sum"], state["steps"]


def layer_changes(nets: dict[str, nn.Module], init: dict[str, dict[str, torch.Tensor]],
                  trainable: dict[str, bool], grads: GradTracker) -> list[dict]:
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
            rows.append({
                "net": net, "name": name, "n_params": int(now.numel()),
                "rel_change": d / n0 if n0 > 0 else None,
                "abs_change": d,
                "cosine_to_init": float(now @ before) / (n0 * n1) if n0 > 0 and n1 > 0 else None,
                "grad_norm": grads.param_sum[net][name] / grads.steps if grads.steps else 0.0,
                "trainable": bool(trainable[net]),
            })
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
