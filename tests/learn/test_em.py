"""EM (learning from interpretations) of the source weights, checked against ProbLog's own LFI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from problog.learning.lfi import LFIProblem, read_examples
from problog.program import PrologString

from emolog.labels import BASIC7
from emolog.logic import compile_program
from emolog.learn import em

SOURCES = ("scene", "face1", "face2", "face3")
TRUE_W = np.array([0.53, 0.18, 0.17, 0.12])


def _sample(n: int, seed: int) -> dict[str, np.ndarray]:
    """Images drawn from the program's own generative story (so the optimum is interior):
    network outputs are Dirichlet distributions, the label is drawn from the chosen source."""
    rng = np.random.default_rng(seed)
    scene = rng.dirichlet(np.full(7, 0.4), n)
    faces = rng.dirichlet(np.full(7, 0.4), (n, 3))
    n_faces = rng.choice(4, n, p=[0.15, 0.35, 0.3, 0.2])
    mask = np.arange(3)[None, :] < n_faces[:, None]
    avail = np.concatenate([np.ones((n, 1), bool), mask], 1)
    src = np.concatenate([scene[:, None], faces], 1)
    labels = np.empty(n, int)
    for i in range(n):
        w = TRUE_W * avail[i]
        s = rng.choice(4, p=w / w.sum())
        labels[i] = rng.choice(7, p=src[i, s])
    return {"scene": scene, "faces": faces, "mask": mask, "labels": labels}


def _lfi_weights(data: dict[str, np.ndarray], iterations: int, tmp_path) -> np.ndarray:
    """Run problog's LFI in-process: network outputs written as per-image probabilistic facts,
    one evidence file with one interpretation (the label) per image."""
    n = len(data["labels"])
    lines = [
        "t(0.25)::source(I,scene); t(0.25)::source(I,face1); t(0.25)::source(I,face2); t(0.25)::source(I,face3).",
        "available(I,scene) :- image(I).",
        "emotion(I,E) :- source(I,S), available(I,S), pred(I,S,E).",
    ]
    for i in range(n):
        lines.append(f"image(i{i}).")
        lines.append("; ".join(f"{p:.17g}::pred(i{i},scene,{e})" for p, e in zip(data["scene"][i], BASIC7)) + ".")
        for k in range(3):
            if data["mask"][i, k]:
                lines.append(f"available(i{i},face{k + 1}).")
                lines.append(
                    "; ".join(f"{p:.17g}::pred(i{i},face{k + 1},{e})" for p, e in zip(data["faces"][i, k], BASIC7))
                    + "."
                )
    ev_file = tmp_path / "evidence.pl"
    ev_file.write_text("\n---\n".join(f"evidence(emotion(i{i},{BASIC7[y]}))." for i, y in enumerate(data["labels"])))
    lfi = LFIProblem(
        PrologString("\n".join(lines)), list(read_examples(str(ev_file))), max_iter=iterations, min_improv=-1.0
    )  # never stop early: compare exactly `iterations` EM steps
    lfi.run()
    assert lfi.iteration == iterations
    w = np.array([lfi.get_weights(i)[0][1] for i in range(len(lfi.names))], dtype=float)
    # problog keeps an implicit "no source" mass in a non-ground annotated disjunction (its
    # heads sum to < 1); the evidence never allows it, so only the ratios are the weights.
    return w / w.sum()


def _tensors(data):
    return (
        torch.tensor(data["scene"]),
        torch.tensor(data["faces"]),
        torch.tensor(data["mask"]),
        torch.tensor(data["labels"]),
    )


@pytest.mark.parametrize("iterations", [1, 20])
def test_em_equals_problog_lfi(iterations, tmp_path):
    data = _sample(30, seed=3)
    lm = compile_program("seed", semantics="fail")
    lm.double()
    scene, faces, mask, labels = _tensors(data)
    w = torch.full((4,), 0.25, dtype=torch.float64)
    for _ in range(iterations):
        w = em.em_step(lm, w, scene, faces, mask, labels, "fail").weights
    expected = _lfi_weights(data, iterations, tmp_path)
    np.testing.assert_allclose(w.numpy(), expected, atol=1e-6)


def test_em_log_likelihood_never_decreases():
    data = _sample(400, seed=5)
    lm = compile_program("seed", semantics="condition").double()
    scene, faces, mask, labels = _tensors(data)
    w = torch.full((4,), 0.25, dtype=torch.float64)
    lls = []
    for _ in range(15):
        step = em.em_step(lm, w, scene, faces, mask, labels, "condition")
        w, lls = step.weights, lls + [step.log_likelihood]
    assert all(b >= a - 1e-12 for a, b in zip(lls, lls[1:])), lls


def test_truncation_term_removes_the_bias_of_missing_faces():
    """With one-hot, distinct predictions the posterior is the chosen source itself; 20k images
    drawn with the conditioned (truncated) choice. Plain expected counts ("fail" M-step)
    underestimate the often-missing face3; the truncated-data EM recovers the weights."""
    rng = np.random.default_rng(0)
    n = 20_000
    n_faces = rng.choice(4, n, p=[0.15, 0.35, 0.3, 0.2])
    avail = torch.tensor(np.concatenate([np.ones((n, 1), bool), np.arange(3)[None] < n_faces[:, None]], 1))
    p = TRUE_W * avail.numpy()
    chosen = np.array([rng.choice(4, p=r / r.sum()) for r in p])
    post = torch.nn.functional.one_hot(torch.tensor(chosen), 4).double()
    w_cond = torch.full((4,), 0.25, dtype=torch.float64)
    for _ in range(200):
        w_cond = em.m_step(post, avail, w_cond, "condition")
    w_fail = em.m_step(post, avail, w_cond, "fail")
    assert np.abs(w_cond.numpy() - TRUE_W).max() < 0.015
    assert w_fail[3] < TRUE_W[3] - 0.05  # the biased estimate, for contrast


def test_set_source_weights_round_trip_and_errors():
    for param in ("softmax", "projected"):
        lm = compile_program("seed", param=param)
        em.set_source_weights(lm, dict(zip(SOURCES, TRUE_W)))
        assert [lm.source_weights()[s] for s in SOURCES] == pytest.approx(TRUE_W, abs=1e-6)
    with pytest.raises(ValueError, match="face3"):
        em.set_source_weights(lm, {"scene": 0.5, "face1": 0.5, "face2": 0.0})
    with pytest.raises(ValueError, match="condition"):
        em.m_step(torch.ones(2, 4) / 4, torch.ones(2, 4, dtype=torch.bool), torch.ones(4) / 4, "original")


SHARED = """nn(face_net, [X, F], E, [pos, neg]) :: face_expression(X, F, E).
t(0.5)::trust(F).
t(0.3)::calm.
emotion(X, E) :- trust(f1), face_expression(X, f1, E).
emotion(X, E) :- \\+ trust(f1), trust(f2), face_expression(X, f2, E).
emotion(X, pos) :- \\+ trust(f1), \\+ trust(f2), calm.
emotion(X, neg) :- \\+ trust(f1), \\+ trust(f2), \\+ calm.
query(emotion(X, pos)). query(emotion(X, neg)).
"""


@pytest.mark.parametrize("iterations", [1, 15])
def test_em_over_a_t_shared_across_groundings_equals_problog_lfi(iterations, tmp_path):
    """``t(_)::trust(F)`` is one parameter with a ground fact per face (two per image) in a
    compiled program with negation (the first trusted face decides, else a coin): each EM step
    counts both, as problog lfi does."""
    (tmp_path / "shared.pl").write_text(SHARED)
    lm = compile_program(str(tmp_path / "shared.pl"), semantics="fail")
    lm.double()
    assert lm.t_groundings.tolist() == [2.0, 1.0]
    rng = np.random.default_rng(0)
    n = 40
    faces = rng.dirichlet([0.5, 0.5], (n, 2))
    labels = rng.integers(0, 2, n)
    inputs = {f"face_net(f{k + 1})": torch.tensor(faces[:, k]) for k in range(2)}
    cols = [lm.query_names.index(f"emotion({e})") for e in ("pos", "neg")]
    for _ in range(iterations):
        step = em.lfi_step(
            lm, lambda idx: ({k: v[idx] for k, v in inputs.items()}, {}), torch.tensor(labels), cols, "fail"
        )
    # the same program for problog, the faces as per-image facts, one interpretation per image
    lines = [
        "t(0.5)::trust(F).",
        "t(0.3)::calm.",
        "emotion(I, E) :- trust(f1), fe(I, f1, E).",
        "emotion(I, E) :- \\+ trust(f1), trust(f2), fe(I, f2, E).",
        "emotion(I, pos) :- image(I), \\+ trust(f1), \\+ trust(f2), calm.",
        "emotion(I, neg) :- image(I), \\+ trust(f1), \\+ trust(f2), \\+ calm.",
    ]
    for i in range(n):
        lines.append(f"image(i{i}).")
        lines += [
            f"{faces[i, k, 0]:.17g}::fe(i{i},f{k + 1},pos); {faces[i, k, 1]:.17g}::fe(i{i},f{k + 1},neg)."
            for k in range(2)
        ]
    ev = tmp_path / "evidence.pl"
    ev.write_text("\n---\n".join(f"evidence(emotion(i{i},{('pos', 'neg')[y]}))." for i, y in enumerate(labels)))
    lfi = LFIProblem(PrologString("\n".join(lines)), list(read_examples(str(ev))), max_iter=iterations, min_improv=-1.0)
    lfi.run()
    ref = {str(lfi.names[i]).split("::")[1]: lfi.get_weights(i)[0][1] for i in range(len(lfi.names))}
    np.testing.assert_allclose(step.weights.numpy(), [ref["trust(F)"], ref["calm"]], atol=1e-6)
    assert abs(ref["trust(F)"] - 0.5) > 0.01 and abs(ref["calm"] - 0.3) > 0.01  # both moved


CHOSEN = """nn(face_net, [X, F], E, [pos, neg]) :: face_expression(X, F, E).
nn(available, [X, F]) :: face_available(X, F).
t(0.5)::trust(F).
t(0.3)::calm.
chosen(X, f1) :- trust(f1).
chosen(X, f2) :- \\+ trust(f1), trust(f2).
emotion(X, E) :- chosen(X, F), face_expression(X, F, E).
emotion(X, pos) :- \\+ trust(f1), \\+ trust(f2), calm.
emotion(X, neg) :- \\+ trust(f1), \\+ trust(f2), \\+ calm.
ok(X) :- chosen(X, F), face_available(X, F).
ok(X) :- \\+ trust(f1), \\+ trust(f2).
evidence(ok(X)).
query(emotion(X, pos)). query(emotion(X, neg)).
"""


def test_em_over_a_shared_t_under_evidence_reaches_the_conditional_likelihood_maximum(tmp_path):
    """ "condition" with evidence that a shared t() affects (a trusted face must exist, as in
    seed.pl): each of an image's 1/P(evidence) expected draws grounds both trust facts, so
    EM's fixed point is where the gradient of sum log P(label | evidence) vanishes; the
    log-likelihood never decreases on the way."""
    (tmp_path / "chosen.pl").write_text(CHOSEN)
    lm = compile_program(str(tmp_path / "chosen.pl"), semantics="condition")
    lm.double()
    rng = np.random.default_rng(1)
    n = 400
    inputs = {f"face_net(f{k + 1})": torch.tensor(rng.dirichlet([0.5, 0.5], n)) for k in range(2)}
    facts = {k: torch.tensor((rng.random(n) < 0.6).astype(float)) for k in lm.fact_keys}
    with torch.no_grad():  # labels drawn from the program itself at trust 0.35, calm 0.7
        lm.tparams.set_probs(torch.tensor([0.35, 0.7], dtype=torch.float64))
        labels = torch.multinomial(lm(inputs, facts), 1, generator=torch.Generator().manual_seed(0)).squeeze(1)
    lm.tparams.set_probs(torch.tensor([0.5, 0.5], dtype=torch.float64))
    cols = [lm.query_names.index(f"emotion({e})") for e in ("pos", "neg")]
    lls = [em.lfi_step(lm, lambda idx: (inputs, facts), labels, cols, "condition").log_likelihood for _ in range(300)]
    assert all(b >= a - 1e-9 for a, b in zip(lls, lls[1:]))
    from emolog.logic import TParams

    p = lm.tparams.probs().detach().clone()
    free = TParams(lm.program, "projected").double()
    free.set_probs(p)
    lm.tparams = free
    ll = lm(inputs, facts)[:, cols].gather(1, labels[:, None]).log().sum()
    grads = torch.autograd.grad(ll, list(free.values))
    assert all(float(g.abs().max()) < 1e-3 for g in grads), (p, grads)  # of a sum over 400 images
    assert abs(float(p[0]) - 0.35) < 0.1 and abs(float(p[1]) - 0.7) < 0.15, p
