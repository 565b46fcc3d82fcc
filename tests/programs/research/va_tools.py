"""Python parts of the research corpus: a foreign predicate and a network given as a function.

``nearest_emotion`` is a nearest-centroid lookup from a valence/arousal pair to an Emo8 emotion
(registered with the program as DeepProbLog's ``register_foreign``: it gets and returns problog
terms); ``soft_centroid`` is the same lookup made soft, a neural predicate's function over the
pair (it gets a tensor [n, 2] of the program's computed values and returns [n, 8]).
"""

from __future__ import annotations

import torch
from problog.logic import Term

# Emo8 in its canonical order, each at a (valence, arousal) centroid in [-1, 1]^2
CENTROIDS = {
    "joy": (0.8, 0.4),
    "trust": (0.6, -0.2),
    "fear": (-0.6, 0.7),
    "surprise": (0.2, 0.8),
    "sadness": (-0.7, -0.4),
    "disgust": (-0.6, 0.2),
    "anger": (-0.5, 0.8),
    "anticipation": (0.3, 0.3),
}


def nearest_emotion(v: Term, a: Term) -> Term:
    """The Emo8 emotion whose centroid is nearest to (v, a) (problog number terms)."""
    x, y = float(v.compute_value()), float(a.compute_value())
    return Term(min(CENTROIDS, key=lambda e: (CENTROIDS[e][0] - x) ** 2 + (CENTROIDS[e][1] - y) ** 2))


def soft_centroid(va: torch.Tensor) -> torch.Tensor:
    """[n, 2] valence/arousal -> [n, 8] softmax of -4 x squared distance to each centroid."""
    c = torch.tensor(list(CENTROIDS.values()), dtype=va.dtype)
    return torch.softmax(-4 * ((va[:, None, :] - c[None]) ** 2).sum(-1), 1)


def broken(v: Term, a: Term) -> Term:
    """A foreign predicate that fails on its input (the bad-spec corpus)."""
    raise ZeroDivisionError("no centroid for this pair")


def raw_distance(va: torch.Tensor) -> torch.Tensor:
    """Squared distances to the centroids, not probabilities (the bad-spec corpus)."""
    c = torch.tensor(list(CENTROIDS.values()), dtype=va.dtype)
    return ((va[:, None, :] - c[None]) ** 2).sum(-1)
