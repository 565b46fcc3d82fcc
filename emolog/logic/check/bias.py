"""How much "fail" semantics biases the learned source weights (a measurement, not a model).

Data are drawn from the seed program under "condition" semantics with known source weights:
each image has 0-3 faces, random scene/face distributions, and a label drawn from
P(emotion | chosen source exists). The source weights are then fitted by maximum likelihood
(softmax parameterisation, Adam, full batch) under "condition" and under "fail". Fail
semantics rewards a source for merely being present, so the always-present scene gains
weight at the faces' expense.
"""

from __future__ import annotations


import torch
from tqdm import tqdm

from emolog.runtime import torch_threads

from ..engine.module import compile_program

TRUE_WEIGHTS = {"scene": 0.4, "face1": 0.3, "face2": 0.2, "face3": 0.1}
FACE_COUNT_PROBS = (0.3, 0.3, 0.2, 0.2)  # P(0, 1, 2, 3 faces)


def simulate(
    n: int, weights: dict[str, float] = TRUE_WEIGHTS, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scene [n,7], faces [n,3,7], mask [n,3] bool, labels [n] drawn under "condition"."""
    gen = torch.Generator().manual_seed(seed)
    scene = torch.softmax(2 * torch.randn(n, 7, generator=gen), 1)
    faces = torch.softmax(2 * torch.randn(n, 3, 7, generator=gen), 2)
    counts = torch.multinomial(torch.tensor(FACE_COUNT_PROBS), n, replacement=True, generator=gen)
    mask = torch.arange(3).unsqueeze(0) < counts.unsqueeze(1)
    lm = compile_program("seed", semantics="condition")
    lm.tparams.set_probs([weights[s] for s in lm.sources])
    with torch.no_grad():
        p = lm.emotion_probs(scene, faces, mask)
    labels = torch.multinomial(p, 1, generator=gen).squeeze(1)
    return scene, faces, mask, labels


def fit(semantics: str, scene, faces, mask, labels, steps: int = 300, lr: float = 0.1) -> dict[str, float]:
    """Maximum-likelihood source weights under ``semantics`` (Adam on softmax logits)."""
    lm = compile_program("seed", semantics=semantics)
    opt = torch.optim.Adam(lm.parameters(), lr=lr)
    rows = torch.arange(len(labels))
    with torch_threads(1):  # these small ops run 10x slower with 2 threads on a busy 2-core machine
        for _ in tqdm(range(steps), desc=f"fit ({semantics})", leave=False):
            opt.zero_grad()
            p = lm.emotion_probs(scene, faces, mask)[rows, labels]
            (-torch.log(p.clamp_min(1e-12)).mean()).backward()
            opt.step()
    return lm.source_weights()


def measure_bias(n: int = 5000, steps: int = 300, seed: int = 0) -> dict[str, dict[str, float]]:
    """{"true": w*, "condition": fitted, "fail": fitted}; see the module docstring."""
    data = simulate(n, seed=seed)
    return {
        "true": dict(TRUE_WEIGHTS),
        "condition": fit("condition", *data, steps=steps),
        "fail": fit("fail", *data, steps=steps),
    }


if __name__ == "__main__":  # python -m emolog.logic.check.bias
    result = measure_bias()
    for name, w in result.items():
        print(f"{name:>9}: " + ", ".join(f"{s} {v:.3f}" for s, v in w.items()))
