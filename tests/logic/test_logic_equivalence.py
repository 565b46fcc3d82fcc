"""emolog's KLay circuits vs ProbLog's own evaluation and DeepProbLog's ExactEngine.

Probabilities within 1e-6 of both, gradients (neural outputs, per-image facts and t()
parameters) within 1e-5 of DeepProbLog's, for four programs, both semantics, 0-3 faces,
random, near-one-hot and exactly 0/1 inputs.
"""

import pytest
import torch

from emolog.logic import compile_program
from emolog.logic.check.deepproblog_adapter import DeepProbLogReference
from emolog.logic.check.reference import problog_reference

PROGRAMS = ["seed", "extra_rule", "partial", "gated"]
P_TOL, G_TOL = 1e-6, 1e-5


def _close(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    return bool(((a - b).abs() <= tol * b.abs().clamp_min(1.0)).all())


def _batch(kind: str, gated: bool, gen: torch.Generator):
    """B=4 images with 3, 1, 0 and 2 faces; float64."""
    b = 4
    if kind == "random":
        scene = torch.softmax(2 * torch.randn(b, 7, generator=gen, dtype=torch.float64), 1)
        faces = torch.softmax(2 * torch.randn(b, 3, 7, generator=gen, dtype=torch.float64), 2)
        gate = torch.softmax(torch.randn(b, 4, generator=gen, dtype=torch.float64), 1)
    elif kind == "near_one_hot":
        scene = torch.softmax(30 * torch.randn(b, 7, generator=gen, dtype=torch.float64), 1)
        faces = torch.softmax(30 * torch.randn(b, 3, 7, generator=gen, dtype=torch.float64), 2)
        # The scene keeps 0.2 of the gate: with P(evidence) near 1e-13 the conditioned
        # gradient is a difference of 1/P-sized terms, i.e. rounding noise in either engine.
        gate = 0.8 * torch.softmax(30 * torch.randn(b, 4, generator=gen, dtype=torch.float64), 1)
        gate[:, 0] += 0.2
    else:  # exactly 0 and 1 ("exact", "exact_mix")
        eye = torch.eye(7, dtype=torch.float64)
        scene = eye[torch.randint(0, 7, (b,), generator=gen)]
        faces = eye[torch.randint(0, 7, (b, 3), generator=gen)]
        # the scene keeps some gate mass so that P(ok) > 0 for the image without faces
        gate = torch.tensor([[0.5, 0.5, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]], dtype=torch.bool)
    return scene, faces, mask, (gate if gated else None)


def _t_values(lm, kind: str, gen: torch.Generator) -> None:
    if len(lm.tparams) == 0:
        return
    if kind == "exact":  # the scene always (faces get weight exactly 0)
        lm.tparams.set_probs([1.0, 0.0, 0.0, 0.0])
    elif kind == "exact_mix":
        lm.tparams.set_probs([0.5, 0.5, 0.0, 0.0])
    else:
        lm.tparams.set_probs(torch.softmax(torch.randn(len(lm.tparams), generator=gen, dtype=torch.float64), 0))


@pytest.mark.parametrize("name", PROGRAMS)
@pytest.mark.parametrize("semantics", ["condition", "fail"])
def test_matches_problog_and_deepproblog(name, semantics):
    gen = torch.Generator().manual_seed(1234)
    lm = compile_program(name, semantics=semantics, param="projected").double()
    dpl = DeepProbLogReference(lm.program, semantics=semantics)
    for kind in ["random", "near_one_hot", "exact", "exact_mix"]:
        scene, faces, mask, gate = _batch(kind, name == "gated", gen)
        _t_values(lm, kind, gen)
        inputs, facts = lm.seed_inputs(scene, faces, mask, gate_probs=gate)
        ours_in = {k: v.clone().requires_grad_(True) for k, v in {**inputs, **facts}.items()}
        ref_in = {k: v.clone().requires_grad_(True) for k, v in {**inputs, **facts}.items()}
        split = lambda d: ({k: d[k] for k in inputs}, {k: d[k] for k in facts})  # noqa: E731

        out = lm(*split(ours_in))
        w = torch.randn(out.shape, generator=gen, dtype=torch.float64)  # a random linear loss
        lm.zero_grad()
        (out * w).sum().backward()

        t_probs = lm.tparams.probs().tolist()
        ref = dpl.evaluate(*split(ref_in), t_probs)
        (ref * w).sum().backward()

        assert _close(out.detach(), ref.detach(), P_TOL), (kind, out, ref)
        for k in ours_in:
            g_ref = ref_in[k].grad if ref_in[k].grad is not None else torch.zeros_like(ref_in[k])
            assert _close(ours_in[k].grad, g_ref, G_TOL), (kind, k, (ours_in[k].grad - g_ref).abs().max())
        if len(lm.tparams):
            ours_t = torch.zeros(len(lm.tparams), dtype=torch.float64)
            for block, v in zip(lm.tparams.blocks, lm.tparams.values):
                ours_t[block] = v.grad.double()
            assert _close(ours_t, torch.tensor(dpl.t_grad(), dtype=torch.float64), G_TOL), kind

        # ProbLog itself (numbers written in as facts), one image at a time; each image is a
        # fresh ProbLog compilation, so two of the four input kinds keep the test fast.
        if kind not in ("random", "exact_mix"):
            continue
        for b in range(out.shape[0]):
            pl = problog_reference(
                lm.program,
                {k: v[b].tolist() for k, v in inputs.items()},
                {k: float(v[b]) for k, v in facts.items()},
                t_probs,
                semantics,
            )
            expected = torch.tensor([pl[n] for n in lm.query_names], dtype=torch.float64)
            assert _close(out[b].detach(), expected, P_TOL), (kind, b, out[b], expected)


def test_softmax_gradients_are_the_chain_rule_of_projected():
    """Softmax logits get J^T g where g is the gradient w.r.t. the probabilities."""
    gen = torch.Generator().manual_seed(7)
    scene, faces, mask, _ = _batch("random", False, gen)
    soft = compile_program("seed", param="softmax").double()
    proj = compile_program("seed", param="projected").double()
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    soft.tparams.set_probs(probs)
    proj.tparams.set_probs(probs)
    w = torch.randn(4, 7, generator=gen, dtype=torch.float64)
    (soft.emotion_probs(scene, faces, mask) * w).sum().backward()
    (proj.emotion_probs(scene, faces, mask) * w).sum().backward()
    g = proj.tparams.values[0].grad
    p = soft.tparams.probs().detach()
    jac = torch.diag(p) - torch.outer(p, p)
    assert torch.allclose(soft.tparams.values[0].grad, jac @ g, atol=1e-12)
