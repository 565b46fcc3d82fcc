"""EM (learning from interpretations) of the source weights, checked against ProbLog's own LFI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from problog.learning.lfi import LFIProblem, read_examples
from problog.program import PrologString

from emolog.labels import BASIC7
from emolog.logic import compile_program
from emolog.training import em

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
    lines = ["t(0.25)::source(I,scene); t(0.25)::source(I,face1); "
             "t(0.25)::source(I,face2); t(0.25)::source(I,face3).",
             "available(I,scene) :- image(I).",
             "emotion(I,E) :- source(I,S), available(I,S), pred(I,S,E)."]
    for i in range(n):
        lines.append(f"image(i{i}).")
        lines.append("; ".join(f"{p:.17g}::pred(i{i},scene,{e})" for p, e in zip(data["scene"][i], BASIC7)) + ".")
        for k in range(3):
            if data["mask"][i, k]:
                lines.append(f"available(i{i},face{k + 1}).")
                lines.append("; ".join(f"{p:.17g}::pred(i{i},face{k + 1},{e})"
                                       for p, e in zip(data["faces"][i, k], BASIC7)) + ".")
    ev_file = tmp_path / "evidence.pl"
    ev_file.write_text("\n---\n".join(f"evidence(emotion(i{i},{BASIC7[y]}))." for i, y in enumerate(data["labels"])))
    lfi = LFIProblem(PrologString("\n".join(lines)), list(read_examples(str(ev_file))), max_iter=iterations,
                     min_improv=-1.0)  # never stop early: compare exactly `iterations` EM steps
    lfi.run()
    assert lfi.iteration == iterations
    w = np.array([lfi.get_weights(i)[0][1] for i in range(len(lfi.names))], dtype=float)
    # problog keeps an implicit "no source" mass in a non-ground annotated disjunction (its
    # heads sum to < 1); the evidence never allows it, so only the ratios are the weights.
    return w / w.sum()


def _tensors(data):
    return (torch.tensor(data["scene"]), torch.tensor(data["faces"]), torch.tensor(data["mask"]),
            torch.tensor(data["labels"]))


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
