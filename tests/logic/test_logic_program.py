"""The logic layer's public API: semantics by hand, original mode, posteriors, errors, training."""

import pytest
import torch

from emolog.labels import BASIC7
from emolog.logic import LogicInputError, ProgramError, ProjectedSGD, compile_program
from emolog.logic.check.bias import measure_bias
from emolog.logic.check.deepproblog_adapter import DeepProbLogReference
from deepproblog.optimizer import SGD

W = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)  # scene, face1, face2, face3


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(3)
    scene = torch.softmax(torch.randn(5, 7, generator=gen, dtype=torch.float64), 1)
    faces = torch.softmax(torch.randn(5, 3, 7, generator=gen, dtype=torch.float64), 2)
    logits = torch.randn(5, 3, 7, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 0, 0]], dtype=torch.bool)
    return scene, faces, logits, mask


def _by_hand(scene, faces, mask, w, condition=True):
    """sum_s w_s a_s p_s(e) (/ sum_s w_s a_s): the seed program's semantics written out."""
    avail = torch.cat([torch.ones(len(scene), 1, dtype=scene.dtype), mask.to(scene.dtype)], 1)
    per = torch.cat([scene.unsqueeze(1), faces], 1)  # [B, 4, 7]
    ww = w.unsqueeze(0) * avail if w.dim() == 1 else w * avail  # [B, 4]
    joint = (ww.unsqueeze(-1) * per).sum(1)
    return joint / ww.sum(1, keepdim=True) if condition else joint


def test_seed_api_and_semantics(data):
    scene, faces, _, mask = data
    lm = compile_program("seed").double()
    assert lm.query_names == [f"emotion({e})" for e in BASIC7]
    assert lm.sources == ["scene", "face1", "face2", "face3"]
    assert lm.source_weights() == pytest.approx({s: 0.25 for s in lm.sources})
    assert sum(p.numel() for p in lm.parameters()) == 4
    lm.tparams.set_probs(W)
    assert lm.source_weights() == pytest.approx(dict(zip(lm.sources, W.tolist())))
    p = lm.emotion_probs(scene, faces, mask)
    assert torch.allclose(p, _by_hand(scene, faces, mask, W), atol=1e-12)
    assert torch.allclose(p.sum(1), torch.ones(5, dtype=torch.float64))

    fail = compile_program("seed", semantics="fail").double()
    fail.tparams.set_probs(W)
    pf = fail.emotion_probs(scene, faces, mask)
    assert torch.allclose(pf, _by_hand(scene, faces, mask, W, condition=False), atol=1e-12)
    # the mass of the missing faces is lost: row 3 (no face) keeps only the scene's 0.4
    assert pf[3].sum().item() == pytest.approx(0.4)


def test_original_mode_is_one_softmax_with_grey_faces(data):
    scene, _, logits, mask = data
    grey = torch.linspace(-1, 1, 7, dtype=torch.float64)
    lm = compile_program("seed", semantics="original").double()
    lm.tparams.set_probs(W)
    p = lm.emotion_probs(scene, None, mask, face_logits=logits, grey_logits=grey)
    filled = torch.where(mask.unsqueeze(-1), logits, grey.expand_as(logits))
    soft21 = torch.softmax(filled.reshape(5, 21), 1).reshape(5, 3, 7)
    expected = W[0] * scene + (W[1:].view(1, 3, 1) * soft21).sum(1)
    assert torch.allclose(p, expected, atol=1e-12)
    assert (p.sum(1) < 1).all()  # the three faces' scores are not three distributions
    with pytest.raises(LogicInputError, match="grey_logits"):
        lm.emotion_probs(scene, None, mask)


def test_source_posterior_is_bayes(data):
    scene, faces, _, mask = data
    lm = compile_program("seed").double()
    lm.tparams.set_probs(W)
    labels = torch.tensor([0, 3, 6, 2, 5])
    post = lm.source_posterior(scene, faces, mask, labels)
    avail = torch.cat([torch.ones(5, 1, dtype=torch.float64), mask.double()], 1)
    per = torch.cat([scene.unsqueeze(1), faces], 1)[torch.arange(5), :, labels]  # [B, 4]
    expected = W * avail * per
    expected = expected / expected.sum(1, keepdim=True)
    assert torch.allclose(post, expected, atol=1e-12)
    assert post[3, 1:].abs().max() == 0  # no faces: the scene explained it


def test_gated_program(data):
    scene, faces, _, mask = data
    gate = torch.softmax(torch.randn(5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64), 1)
    lm = compile_program("gated").double()
    assert lm.sources == ["scene", "face1", "face2", "face3"]
    assert len(list(lm.parameters())) == 0
    p = lm.emotion_probs(scene, faces, mask, gate_probs=gate)
    assert torch.allclose(p, _by_hand(scene, faces, mask, gate), atol=1e-12)
    with pytest.raises(LogicInputError, match="gate_net"):
        lm.emotion_probs(scene, faces, mask)
    with pytest.raises(ProgramError, match="per image"):
        lm.source_weights()


def test_projected_sgd_step_equals_deepproblog(data):
    scene, faces, _, mask = data
    lm = compile_program("seed", param="projected").double()
    lm.tparams.set_probs(W)
    labels = torch.tensor([0, 3, 6, 2, 5])
    lr = 0.05
    inputs, facts = lm.seed_inputs(scene, faces, mask)
    dpl = DeepProbLogReference(lm.program, semantics="condition")
    dpl.model.optimizer = SGD(dpl.model, param_lr=lr)
    ref = dpl.evaluate(inputs, facts, W.tolist())
    (-torch.log(ref[torch.arange(5), labels]).sum()).backward()
    dpl.model.optimizer.step()

    opt = ProjectedSGD(lm.tparams, lr=lr)
    p = lm.emotion_probs(scene, faces, mask)
    (-torch.log(p[torch.arange(5), labels]).sum()).backward()
    opt.step()
    assert lm.tparams.probs().tolist() == pytest.approx(dpl.model.parameters, abs=1e-6)
    assert sum(lm.source_weights().values()) == pytest.approx(1.0)


def test_condition_recovers_weights_and_fail_is_biased():
    r = measure_bias(n=1000, steps=80, seed=1)
    for s, w in r["true"].items():
        assert r["condition"][s] == pytest.approx(w, abs=0.06), r
    assert r["fail"]["scene"] > r["true"]["scene"] + 0.15, r


def test_errors(tmp_path):
    bad = tmp_path / "bad.pl"
    bad.write_text("a :- b.\nc :- d(.\n")
    with pytest.raises(ProgramError, match=r"bad\.pl:2:\d+: does not parse"):
        compile_program(bad)
    with pytest.raises(ProgramError, match="no logic program"):
        compile_program("no_such_program")
    ungroundable = tmp_path / "ug.pl"
    ungroundable.write_text("0.5::a(X).\nquery(b(X)).\n")
    # (this program once answered b(img): X was silently taken for the image; see
    # tests/logic/test_logic_engine.py for the hazard itself)
    with pytest.raises(ProgramError, match=r"ug\.pl:2:\d+: Error: No clauses found for 'b/1'"):
        compile_program(ungroundable)
    lm = compile_program("seed")
    with pytest.raises(LogicInputError, match=r"'scene_net' has a domain of 7 values .* \(5, 6\)"):
        lm(
            {
                "scene_net": torch.full((5, 6), 1 / 6),
                **{f"face_net(face{k})": torch.full((5, 7), 1 / 7) for k in (1, 2, 3)},
            },
            {f"available(face{k})": torch.ones(5) for k in (1, 2, 3)},
        )
    scene = torch.full((2, 7), 1 / 7)
    faces = torch.full((2, 3, 7), 1 / 7)
    with pytest.raises(LogicInputError, match=r"input scene_net in row 1 is not a probability"):
        lm.emotion_probs(torch.stack([scene[0], -scene[1]]), faces, torch.ones(2, 3, dtype=torch.bool))
    lm = compile_program("seed", param="projected")  # exact zeros (softmax never reaches 0)
    lm.tparams.set_probs([0.0, 0.5, 0.5, 0.0])
    with pytest.raises(LogicInputError, match=r"probability 0 in rows \[1\]"):
        lm.emotion_probs(scene, faces, torch.tensor([[1, 0, 0], [0, 0, 0]], dtype=torch.bool))
