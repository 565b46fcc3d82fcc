"""The research programs' big shapes for benchmarks/logic_programs.py (parts va365, faces5, faces3).

* **va365**: a 365-way scene disjunction into a 365-row valence/arousal prior table, crossed
  with a 7-way face distribution; two rules each combine the valence and the arousal (2 x 2
  choices), and the combined pair feeds a trainable 8-way neural predicate (an MLP) over the
  computed values. Emo8 labels. One structure per face count (0 or 1: the largest face).
* **faces5**: a face list of up to 5 faces x a 9-way scene-cluster disjunction x learnable
  bucket -> Emo8 disjunctions (one per valence/arousal bucket, shared by every face in it) and
  cluster -> Emo8 disjunctions; a learnable choice of which face speaks for the image.
* **faces3**: a 3-face list: the faces' mean valence/arousal, bucketed by thresholds, through
  learnable bucket -> Emo8 disjunctions.

Written as DeepProbLog files (no query/1; the queries come from the template), the t() heads
ground (DeepProbLog refuses non-ground t() clauses). Training = forward + backward of
-log P(label) over a batch, gradients to the scene and face distributions, the t() and the MLP.
"""

from __future__ import annotations

import random
import time

import torch

EMO7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
EMO8 = ["joy", "trust", "fear", "surprise", "sadness", "disgust", "anger", "anticipation"]
FACE_VA = {
    "angry": (-2.0, 4.5),
    "disgust": (-2.2, 3.5),
    "fear": (-2.4, 4.8),
    "happy": (2.4, 3.8),
    "sad": (-2.3, 1.6),
    "surprise": (0.8, 4.9),
    "neutral": (0.0, 2.0),
}
BUCKETS = {
    "angry": "neg_high",
    "disgust": "neg_low",
    "fear": "neg_high",
    "happy": "pos_high",
    "sad": "neg_low",
    "surprise": "pos_high",
    "neutral": "mid",
}
TEMPLATES = {
    "va365": "final_emotion(Faces, tensor(scene(I)), Y)",
    "faces5": "final_emotion(Faces, tensor(scene(I)), Y)",
    "faces3": "final_emotion(Faces, Y)",
}
FACE_COUNTS = {"va365": [0, 1], "faces5": [0, 1, 2, 3, 4, 5], "faces3": [3]}
HEADER = "% Written by benchmarks/logic_programs.py (research_shapes.{}); seeded values."


def _ad(head: str, args: str, values: list[str]) -> str:
    return "; ".join(f"t(_)::{head}({args}, {v})" for v in values) + "."


def va365(k: int = 365, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = [
        HEADER.format("va365"),
        f"nn(scene_net, [X], S, [{', '.join(f's{i}' for i in range(k))}]) :: scene(X, S).",
        f"nn(face_net, [X], E, [{', '.join(EMO7)}]) :: face_expr(X, E).",
        f"nn(va_to_emotion, [V, A], Y, [{', '.join(EMO8)}]) :: va_emotion(V, A, Y).",
    ]
    lines += [f"scene_va(s{i}, {rng.randint(-30, 30) / 10}, {rng.randint(0, 60) / 10})." for i in range(k)]
    lines += [f"face_va({e}, {v}, {a})." for e, (v, a) in FACE_VA.items()]
    lines += [
        "scene_point(S, V, A) :- scene(S, C), scene_va(C, V, A).",
        "face_point(F, V, A) :- face_expr(F, E), face_va(E, V, A).",
        "valence(FV, SV, V) :- D is abs(FV - SV), D =< 1.5, V is (2*FV + SV) / 3.",
        "valence(FV, SV, SV) :- D is abs(FV - SV), D > 1.5.",
        "arousal(FA, SA, A) :- FA >= SA, A is FA.",
        "arousal(FA, SA, A) :- FA < SA, A is (FA + SA) / 2.",
        "final_emotion([], S, Y) :- scene_point(S, V, A), va_emotion(V, A, Y).",
        "final_emotion([F|_], S, Y) :- scene_point(S, SV, SA), face_point(F, FV, FA),",
        "    valence(FV, SV, V), arousal(FA, SA, A), va_emotion(V, A, Y).",
    ]
    return "\n".join(lines) + "\n"


def faces5(clusters: int = 9) -> str:
    lines = [
        HEADER.format("faces5"),
        f"nn(cluster_net, [X], C, [{', '.join(f'c{i}' for i in range(clusters))}]) :: scene_cluster(X, C).",
        f"nn(face_net, [X], E, [{', '.join(EMO7)}]) :: face_expr(X, E).",
    ]
    lines += [f"face_bucket({e}, {b})." for e, b in BUCKETS.items()]
    lines += [_ad("bucket_emotion", b, EMO8) for b in sorted(set(BUCKETS.values()))]
    lines += [_ad("cluster_emotion", f"c{i}", EMO8) for i in range(clusters)]
    lines.append("; ".join(f"t(_)::speaks({k})" for k in range(1, 7)) + ".")
    lines += [
        "face_emotion(F, Y) :- face_expr(F, E), face_bucket(E, B), bucket_emotion(B, Y).",
        "scene_emotion(S, Y) :- scene_cluster(S, C), cluster_emotion(C, Y).",
        "nth_face(1, [F|_], F).",
        "nth_face(N, [_|Fs], F) :- N > 1, M is N - 1, nth_face(M, Fs, F).",
        "final_emotion(Faces, S, Y) :- length(Faces, N), speaks(K), K =< N, nth_face(K, Faces, F),",
        "    face_emotion(F, Y).",
        "final_emotion(Faces, S, Y) :- length(Faces, N), speaks(K), K > N, scene_emotion(S, Y).",
    ]
    return "\n".join(lines) + "\n"


def faces3() -> str:
    lines = [HEADER.format("faces3"), f"nn(face_net, [X], E, [{', '.join(EMO7)}]) :: face_expr(X, E)."]
    lines += [f"face_va({e}, {v}, {a})." for e, (v, a) in FACE_VA.items()]
    lines += [_ad("bucket_emotion", b, EMO8) for b in ("neg_high", "neg_low", "pos_high", "pos_low", "mid")]
    lines += [
        "face_point(F, V, A) :- face_expr(F, E), face_va(E, V, A).",
        "bucket(V, A, mid) :- abs(V) =< 0.5.",
        "bucket(V, A, pos_high) :- V > 0.5, A > 3.",
        "bucket(V, A, pos_low) :- V > 0.5, A =< 3.",
        "bucket(V, A, neg_high) :- V < -0.5, A > 3.",
        "bucket(V, A, neg_low) :- V < -0.5, A =< 3.",
        "final_emotion([F1, F2, F3], Y) :- face_point(F1, V1, A1), face_point(F2, V2, A2),",
        "    face_point(F3, V3, A3), V is (V1 + V2 + V3) / 3, A is (A1 + A2 + A3) / 3,",
        "    bucket(V, A, B), bucket_emotion(B, Y).",
    ]
    return "\n".join(lines) + "\n"


class Source:
    """A DeepProbLog tensor source: ``tensor(name(i, j))`` -> rows[i, j]."""

    def __init__(self, rows: torch.Tensor):
        self.rows = rows

    def __getitem__(self, args) -> torch.Tensor:
        return self.rows[tuple(int(a) for a in args)]


class Given(torch.nn.Module):
    """A 'network' whose output is its input: the given distribution, so gradients reach it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


PROGRAMS = {"va365": va365, "faces5": faces5, "faces3": faces3}


class VaNet(torch.nn.Module):
    """The trainable network over a computed (valence, arousal) pair: 2 -> 16 -> 8, softmax."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, len(EMO8)))

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(torch.stack([v, a], -1).to(self.net[0].weight.dtype)), -1)


def data(shape: str, n: int, seed: int = 0) -> dict:
    """Seeded inputs: scene / cluster distributions, face distributions (slot 0 unused: Faces
    count from 1), face counts and Emo8 labels."""
    gen = torch.Generator().manual_seed(seed)
    dist = lambda *s: torch.softmax(2 * torch.randn(*s, generator=gen, dtype=torch.float64), -1)  # noqa: E731
    counts = FACE_COUNTS[shape]
    return {
        "scene": dist(n, 365 if shape == "va365" else 9),
        "faces": dist(n, 6, 7),
        "counts": [counts[int(i)] for i in torch.randint(0, len(counts), (n,), generator=gen)],
        "labels": [EMO8[int(i)] for i in torch.randint(0, len(EMO8), (n,), generator=gen)],
    }


def emolog_train(shape: str, path, d: dict, batch: int, repeats: int = 2) -> dict:
    """emolog: compile seconds (every structure), training seconds per example (best of
    ``repeats`` passes), circuit nodes."""
    from emolog.logic.engine.deep import DeepProgram, Example

    t0 = time.process_time()
    prog = DeepProgram(path, [TEMPLATES[shape]], cache_dir=False)
    n = len(d["labels"])
    scene, faces = d["scene"].clone().requires_grad_(True), d["faces"].clone().requires_grad_(True)
    if shape != "faces3":
        prog.bind("scene_net" if shape == "va365" else "cluster_net", scene)
    prog.bind("face_net", faces)
    if shape == "va365":
        torch.manual_seed(0)
        prog.bind("va_to_emotion", VaNet().double())
    examples = [Example.of(i, 0, d["counts"][i], Y=d["labels"][i]) for i in range(n)]
    for c in sorted(set(d["counts"])):
        prog.compiled(Example(0, 0, c))
    compile_s = time.process_time() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for b in range(0, n, batch):
            loss = -torch.log(prog.prob(examples[b : b + batch])).sum()
            prog.zero_grad()
            loss.backward()
        best = min(best, (time.process_time() - t0) / n)
    nodes = {k: s["nodes"] for k, s in prog.compile_stats().items()}
    return {"compile_s": compile_s, "train_s": best, "nodes": nodes}


def dpl_train(shape: str, path, d: dict, batch: int = 16) -> dict:
    """DeepProbLog 2.1's ExactEngine (circuit cache on): compile = a first pass over the
    examples, then training seconds per example with every circuit cached."""
    from deepproblog.engines import ExactEngine
    from deepproblog.model import Model
    from deepproblog.network import Network
    from deepproblog.query import Query
    from problog.logic import Constant, Term, list2term

    n = len(d["labels"])
    scene, faces = d["scene"].clone().requires_grad_(True), d["faces"].clone().requires_grad_(True)
    nets = [Network(Given(), "face_net", batching=True)]
    if shape != "faces3":
        nets.append(Network(Given(), "scene_net" if shape == "va365" else "cluster_net", batching=True))
    if shape == "va365":
        torch.manual_seed(0)
        nets.append(Network(VaNet().double(), "va_to_emotion", batching=False))
    t0 = time.process_time()
    model = Model(str(path), nets)
    model.set_engine(ExactEngine(model), cache=True)
    model.add_tensor_source("scene", Source(scene))
    model.add_tensor_source("face", Source(faces))
    queries = []
    for i in range(n):
        fs = [Term(f"f{j}") for j in range(1, d["counts"][i] + 1)]
        sub = {
            Term("s"): Term("tensor", Term("scene", Constant(i))),
            **{f: Term("tensor", Term("face", Constant(i), Constant(j + 1))) for j, f in enumerate(fs)},
        }
        args = [list2term(fs)] + ([Term("s")] if shape != "faces3" else []) + [Term(d["labels"][i])]
        queries.append(Query(Term("final_emotion", *args), sub))
    model.solve(queries)  # grounds and compiles every (face count, label) circuit
    compile_s = time.process_time() - t0
    t0 = time.process_time()
    for b in range(0, n, batch):
        results = model.solve(queries[b : b + batch])
        loss = sum(-torch.log(next(iter(r.result.values()))) for r in results)
        loss.backward()
    return {"compile_s": compile_s, "train_s": (time.process_time() - t0) / n}
