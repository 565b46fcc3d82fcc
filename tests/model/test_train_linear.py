"""The training fast path equals the circuit: same outputs, same gradients (emolog.model.linear)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from emolog.logic import compile_program
from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.learn import em
from emolog.config.run import RunConfig
from emolog.model.data import load_data
from emolog.model.gate import GateNet, program_kind
from emolog.model.kinds import RULES
from emolog.model.linear import build_linear
from emolog.learn.losses import new_scene_net
from emolog.model.model import Network, Parts


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "D"
    write_simulation(simulate(SimConfig(n=200, seed=4, scene_dim=16, variant="context")), d)
    splits, _, _ = load_data(RunConfig.from_dict({"data": str(d)}), torch.device("cpu"), prelast=False)
    return splits["train"]


@pytest.mark.parametrize(
    "program, semantics, param, live_t, live_scene",
    [
        ("seed", "condition", "projected", True, False),  # logic-only
        ("seed", "condition", "softmax", True, True),  # joint
        ("seed", "fail", "projected", False, True),  # nets-only, fail semantics
        ("seed", "original", "projected", True, True),  # the original's semantics (grey faces)
        ("gated", "condition", "softmax", True, True),  # a gate net as a live input
    ],
)
def test_linear_program_equals_the_circuit(split, program, semantics, param, live_t, live_scene):
    torch.manual_seed(0)
    lm = compile_program(program, semantics=semantics, param=param)
    kind = program_kind(lm)
    if kind.global_weights:
        em.set_source_weights(lm, {"scene": 0.4, "face1": 0.3, "face2": 0.2, "face3": 0.1})
    with torch.no_grad():  # move every t() away from its start so the corners really mix
        for v in lm.tparams.values:
            v.copy_(v + 0.1 * torch.rand_like(v) if param == "softmax" else v * (0.5 + torch.rand_like(v)))
            if param == "projected" and len(v) > 1:
                v.div_(v.sum())
            v.clamp_(0.01, 0.99) if param == "projected" and len(v) == 1 else None
    cfg = RunConfig.from_dict({"data": "x", "nets.dropout": 0.0, "nets.hidden": 8})
    net = new_scene_net(cfg, split.scene.shape[1])
    gate = GateNet(hidden=4) if kind.gate_net else None
    grey = torch.randn(7) if semantics == "original" else None
    model = Network(lm, net, semantics, kind, parts=Parts(gate=gate, grey_logits=grey))
    # what a network computes once per split travels with the split: each case its own copy
    split = replace(split, static=None, frozen_scene=None, linear=None)
    if not live_scene:
        model.freeze_scene({"train": split})
    for q in lm.parameters():
        q.requires_grad_(live_t)
    for q in net.parameters():
        q.requires_grad_(live_scene)
    lin = build_linear(model, split, live_t=live_t, live_scene=live_scene)
    assert lin is not None
    idx = torch.tensor([3, 0, 17, 5, 40, 41, 99, 2])
    model.train()
    ref = model(split, idx)
    ref_grads = torch.autograd.grad(ref[:, 2].log().sum(), [p for p in model.parameters() if p.requires_grad])
    split.linear = lin
    fast = model(split, idx)
    fast_grads = torch.autograd.grad(fast[:, 2].log().sum(), [p for p in model.parameters() if p.requires_grad])
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(fast_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_t_shared_across_groundings_trains_through_the_circuit(split):
    """context_rules.pl's ``t(_)::trust_large_confident(F)`` is one parameter for three faces:
    not linear in it, so no fast path (the self-check refuses), and with the parameters fixed
    (nets-only) the same program is linear in the scene again."""
    lm = compile_program("context_rules", param="softmax")
    split = replace(split, static=None, frozen_scene=None, linear=None)
    model = Network(lm, new_scene_net(RunConfig.from_dict({"data": "x"}), split.scene.shape[1]), "condition", RULES)
    model.freeze_scene({"train": split})
    assert build_linear(model, split, live_t=True, live_scene=False) is None
    assert build_linear(model, split, live_t=False, live_scene=True) is not None
