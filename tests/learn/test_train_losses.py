"""Optimisers and losses shared by training and pretraining (emolog.learn.losses)."""

from __future__ import annotations

import io

import torch
from torch import nn

from emolog.learn.losses import LeanAdam, make_optimizer


def _pair(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    a = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    b = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    b.load_state_dict(a.state_dict())
    return a, b


def _step(net: nn.Module, opt, x: torch.Tensor, frozen_bias: bool = False) -> None:
    for p in net.parameters():
        p.grad = None
    net(x).pow(2).sum().backward()
    if frozen_bias:  # a step where one parameter has no gradient
        net[2].bias.grad = None
    opt.step()


def test_lean_adam_equals_torch_adam_step_for_step_and_after_a_reload():
    a, b = _pair()
    ref = torch.optim.Adam(a.parameters(), lr=1e-2, weight_decay=1e-3, fused=True)
    lean = make_optimizer("adam", b.parameters(), lr=1e-2, wd=1e-3)
    assert isinstance(lean, LeanAdam)
    g = torch.Generator().manual_seed(1)
    for k in range(12):
        x = torch.randn(4, 5, generator=g)
        _step(a, ref, x, frozen_bias=k == 5)
        _step(b, lean, x, frozen_bias=k == 5)
        for p, q in zip(a.parameters(), b.parameters()):
            assert torch.equal(p, q), k
    # the state is torch's own: a fresh LeanAdam loads it and continues identically
    _, c = _pair()
    c.load_state_dict(b.state_dict())
    again = LeanAdam(c.parameters(), lr=1e-2, weight_decay=1e-3)
    buf = io.BytesIO()  # through a file, as a checkpoint does (a live state dict shares its tensors)
    torch.save(lean.state_dict(), buf)
    buf.seek(0)
    again.load_state_dict(torch.load(buf, weights_only=True))
    state = lean.state_dict()["state"]  # the last bias missed one step; every other parameter took 12
    assert [int(state[i]["step"]) for i in range(4)] == [12, 12, 12, 11]
    for _ in range(3):
        x = torch.randn(4, 5, generator=g)
        _step(b, lean, x)
        _step(c, again, x)
        _step(a, ref, x)
    for p, q, r in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q) and torch.equal(q, r)
