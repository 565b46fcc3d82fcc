"""DeepProbLog-style programs beyond the seed: emolog's general engine vs DeepProbLog 2.1.

    .venv/bin/python benchmarks/logic_programs.py [faces] [scene] [mnist] [va365] [faces5] [faces3]
                                                   (all six by default)

* **faces** (benchmarks/programs/face_list.pl): images with 0-3 faces (largest first), the
  final emotion from the first "used" face else the scene; one circuit per face count. Training
  throughput (forward + backward of the logic, loss -log P(label), gradients to the network
  outputs and the t() parameter): emolog batched vs DeepProbLog's ExactEngine with its circuit
  cache (one cached circuit per face count and label: its best case), same seeded inputs.
* **scene** (benchmarks/programs/scene_prior_365.pl, generated for each k by
  ``scene_prior_program``): a k-way neural scene disjunction into a k-row prior table, crossed
  with a 7-way face disjunction, a flexible probability computed from the prior (``P is 0.2 +
  0.6 * W``) and an arithmetic comparison (``D is abs(V1 - V2), D > 1``). Compile time and peak
  memory for k = 10, 50, 365, and scoring throughput (images/s) at k = 365. DeepProbLog is not
  run here (its ExactEngine runs out of memory on this shape, issue 15).
* **va365**, **faces5**, **faces3** (benchmarks/research_shapes.py, written to
  benchmarks/programs/<part>.pl): the research programs' big shapes. Per shape: compile
  seconds and peak RSS of emolog (every structure), training throughput (examples/s, forward
  + backward), and DeepProbLog's training time per example in a forked process with a time
  limit (``--dpl-timeout``): the ratio where it finishes, "did not finish" where it does not.
* **mnist**: DeepProbLog's own ``MNIST/models/addition.pl``, ``multi_addition`` of two 2-digit
  numbers with every sum 0..198: compile (first example) and answer time per example, both
  engines, and peak memory.

Network outputs are given (seeded random distributions), as in benchmarks/logic_vs_deepproblog.py,
so only the logic is timed. Each part runs in its own forked process (its peak RSS is its own).
One clock for both engines: CPU time of the process
(``time.process_time``) on one torch thread, float64 on both sides.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
import traceback
from pathlib import Path

import torch

from research_shapes import Given, Source

PROGRAMS = Path(__file__).parent / "programs"
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
VALENCE = {"angry": -0.6, "disgust": -0.7, "fear": -0.8, "happy": 0.9, "sad": -0.9, "surprise": 0.3, "neutral": 0.0}
DPL_EXAMPLES = "MNIST/models/addition.pl"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def distributions(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.softmax(2 * torch.randn(*shape, generator=gen, dtype=torch.float64), -1)


# ---------------------------------------------------------------- DeepProbLog plumbing


def dpl_model(program: Path, nets: list[str], sources: dict[str, torch.Tensor]):
    from deepproblog.engines import ExactEngine
    from deepproblog.model import Model
    from deepproblog.network import Network

    model = Model(str(program), [Network(Given(), n, batching=True) for n in nets])
    model.set_engine(ExactEngine(model), cache=True)
    for name, rows in sources.items():
        model.add_tensor_source(name, Source(rows))
    return model


def dpl_tensor(source: str, *idx: int):
    from problog.logic import Constant, Term

    return Term("tensor", Term(source, *map(Constant, idx)))


# ---------------------------------------------------------------- (a) faces


def faces_data(n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    scene, faces = distributions(gen, n, 7), distributions(gen, n, 3, 7)
    counts = torch.randint(0, 4, (n,), generator=gen)
    labels = torch.randint(0, 7, (n,), generator=gen)
    return scene, faces, counts, labels


def dpl_faces_train(data, batch: int = 16, repeats: int = 2) -> float:
    """DeepProbLog seconds per training example (circuits cached before timing)."""
    from deepproblog.query import Query
    from problog.logic import Term, list2term

    scene, faces, counts, labels = (t.clone() for t in data)
    scene.requires_grad_(True)
    faces.requires_grad_(True)
    model = dpl_model(PROGRAMS / "face_list.pl", ["scene_net", "face_net"], {"scene": scene, "face": faces})
    queries = []
    for i in range(len(labels)):
        # DeepProbLog's parameterised query: the template (placeholders f0.., s) is its cache key
        fs = [Term(f"f{j}") for j in range(int(counts[i]))]
        sub = {Term("s"): dpl_tensor("scene", i), **{f: dpl_tensor("face", i, j) for j, f in enumerate(fs)}}
        queries.append(Query(Term("final_emotion", list2term(fs), Term("s"), Term(EMOTIONS[int(labels[i])])), sub))
    model.solve(queries)  # compiles and caches every (face count, label) circuit: not timed
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for b in range(0, len(queries), batch):
            results = model.solve(queries[b : b + batch])
            loss = sum(-torch.log(next(iter(r.result.values()))) for r in results)
            loss.backward()
        best = min(best, (time.process_time() - t0) / len(queries))
    return best


# ---------------------------------------------------------------- (b) scene


def scene_prior_program(k: int, seed: int = 0) -> str:
    """The k-way scene program (k = 365: benchmarks/programs/scene_prior_365.pl)."""
    rng = random.Random(seed)
    scenes = [f"s{i}" for i in range(k)]
    rows = [f"prior({s}, {rng.choice(EMOTIONS)}, {rng.randint(5, 95) / 100:g})." for s in scenes]
    return (
        "\n".join(
            [
                f"% A {k}-way neural scene disjunction into a {k}-row prior table (each scene's typical emotion",
                "% and its strength W), crossed with a 7-way face disjunction; arithmetic on the priors.",
                "% Written by benchmarks/logic_programs.py (scene_prior_program); the prior values are seeded random.",
                f"nn(scene_net, [X], S, [{', '.join(scenes)}]) :: scene(X, S).",
                f"nn(face_net, [X], E, [{', '.join(EMOTIONS)}]) :: face(X, E).",
                *rows,
                *(f"valence({e}, {v:g})." for e, v in VALENCE.items()),
                "P :: context_dom(X) :- scene(X, S), prior(S, _, W), P is 0.2 + 0.6 * W.",
                "emotion(X, E) :- context_dom(X), scene(X, S), prior(S, E, _).",
                "emotion(X, E) :- \\+ context_dom(X), face(X, E).",
                "conflict(X) :- scene(X, S), prior(S, E1, _), face(X, E2), valence(E1, V1), valence(E2, V2),",
                "    D is abs(V1 - V2), D > 1.",
            ]
        )
        + "\n"
    )


# ---------------------------------------------------------------- (c) mnist


def dpl_mnist(digits: torch.Tensor) -> dict:
    """DeepProbLog on multi_addition of two 2-digit numbers, every sum 0..198 per example: one
    query with the sum free (``multi_addition(N1, N2, Z)``), DeepProbLog's fastest form (199
    ground queries, one per sum, ground and compile 199 circuits: far slower and larger)."""
    import deepproblog
    from deepproblog.query import Query
    from problog.logic import Term, Var, list2term

    n_examples = len(digits)
    program = Path(deepproblog.__file__).parent / "examples" / DPL_EXAMPLES
    model = dpl_model(program, ["mnist_net"], {"mnist": digits})
    ps = [Term(f"p{j}") for j in range(4)]

    def query(i: int) -> Query:
        sub = {p: dpl_tensor("mnist", i, j) for j, p in enumerate(ps)}
        return Query(Term("multi_addition", list2term(ps[:2]), list2term(ps[2:]), Var("Z")), sub)

    t0 = time.process_time()
    with torch.no_grad():
        first = model.solve([query(0)])[0].result  # grounds and compiles: the first example
    compile_s = time.process_time() - t0
    t0 = time.process_time()
    with torch.no_grad():
        for i in range(1, n_examples):
            model.solve([query(i)])
    answer_s = (time.process_time() - t0) / max(n_examples - 1, 1)
    probs = {int(k.args[2]): float(v) for k, v in first.items()}
    return {"compile_s": compile_s, "answer_s": answer_s, "peak_mb": peak_rss_mb(), "p": probs}


# ---------------------------------------------------------------- emolog sides


def emolog_faces_train(data, batch: int, repeats: int = 3) -> tuple[float, float]:
    """(seconds per training example, first-call compile seconds) for emolog."""
    from emolog.logic.engine.deep import DeepProgram, Example

    scene, faces, counts, labels = data
    n = len(labels)
    prog = DeepProgram(PROGRAMS / "face_list.pl", ["final_emotion(Faces, tensor(scene(I)), E)"], cache_dir=False)
    scene = scene.clone().requires_grad_(True)
    # Faces are tensor(face(I, 1..n)): slot 0 of the bound tensor is never read
    faces = torch.cat([torch.zeros(n, 1, 7, dtype=faces.dtype), faces], 1).requires_grad_(True)
    prog.bind("scene_net", scene)
    prog.bind("face_net", faces)
    examples = [Example.of(i, 0, int(counts[i]), E=EMOTIONS[int(labels[i])]) for i in range(n)]
    t0 = time.process_time()
    for c in range(4):  # one circuit per face count (and label): compiled before timing, as for DeepProbLog
        prog.prob([e for e in examples if e.faces == c])
    compile_s = time.process_time() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for b in range(0, n, batch):
            p = prog.prob(examples[b : b + batch])
            loss = -torch.log(p).sum()
            prog.zero_grad()
            loss.backward()
        best = min(best, (time.process_time() - t0) / n)
    return best, compile_s


def emolog_scene(ks: list[int], n_score: int, seed: int = 0) -> list[dict]:
    """Compile time and peak RSS per k (ascending, one process), scoring images/s at the largest k."""
    from emolog.logic.engine.deep import DeepProgram, Example

    templates = ["emotion(tensor(img(I)), E)", "conflict(tensor(img(I)))"]
    rows = []
    for k in ks:
        text = scene_prior_program(k, seed)
        t0 = time.process_time()
        prog = DeepProgram(text, templates, cache_dir=False)
        for t in range(len(templates)):
            prog.compiled(Example(0, t))
        compile_s = time.process_time() - t0
        sizes = {key: s.get("nodes") for key, s in prog.compile_stats().items()}
        rows.append({"k": k, "compile_s": compile_s, "peak_mb": peak_rss_mb(), "nodes": sizes})
    gen = torch.Generator().manual_seed(seed)
    prog.bind("scene_net", distributions(gen, n_score, ks[-1]))
    prog.bind("face_net", distributions(gen, n_score, 7))
    examples = [Example(i, t) for t in range(len(templates)) for i in range(n_score)]
    with torch.no_grad():
        prog(examples[:10])
        t0 = time.process_time()
        ans = prog(examples)
        score_s = time.process_time() - t0
    total = ans.probs[:n_score].sum(1)  # the seven emotions of an image sum to one
    rows[-1].update(images_per_s=n_score / score_s, max_sum_error=float((total - 1).abs().max()))
    return rows


def emolog_mnist(digits: torch.Tensor) -> dict:
    """emolog on the same multi_addition query as dpl_mnist: compile (first example), answer time."""
    import deepproblog
    from emolog.logic.engine.deep import DeepProgram, Example

    program = Path(deepproblog.__file__).parent / "examples" / DPL_EXAMPLES
    m = "tensor(mnist(I,{}))"
    template = f"multi_addition([{m.format(0)},{m.format(1)}],[{m.format(2)},{m.format(3)}],Z)"
    t0 = time.process_time()
    prog = DeepProgram(program, [template], cache_dir=False)
    prog.bind("mnist_net", digits)
    with torch.no_grad():
        first = prog([Example(0)])
    compile_s = time.process_time() - t0
    n = len(digits)
    with torch.no_grad():
        t0 = time.process_time()
        prog([Example(i) for i in range(n)])
        answer_s = (time.process_time() - t0) / n
    probs = {int(name.rsplit(",", 1)[1].rstrip(")")): float(p) for name, p in zip(first.names, first.probs[0])}
    return {"compile_s": compile_s, "answer_s": answer_s, "peak_mb": peak_rss_mb(), "p": probs}


def run_faces(args) -> None:
    data = faces_data(args.faces_images, args.seed)
    e_train, e_compile = emolog_faces_train(data, args.batch)
    d_train = dpl_faces_train(tuple(t[: args.dpl_images] for t in data))
    print(
        f"faces: emolog {e_train * 1e6:.2f} us/example ({args.faces_images} images, batch {args.batch}; 4 face "
        f"counts compiled in {e_compile:.2f} s), DeepProbLog {d_train * 1e3:.3f} ms/example "
        f"({args.dpl_images} images, batch 16, circuits cached)"
    )
    print(f"faces: training throughput ratio {d_train / e_train:.0f}x")


def run_scene(args) -> None:
    shipped = PROGRAMS / "scene_prior_365.pl"
    if shipped.read_text() != scene_prior_program(365):
        raise SystemExit(f"{shipped} is not scene_prior_program(365): regenerate it")
    rows = emolog_scene(sorted(args.ks), args.score_images, args.seed)
    for r in rows:
        print(
            f"scene k={r['k']}: compile {r['compile_s']:.2f} s, peak RSS {r['peak_mb']:.0f} MB, "
            f"circuit nodes {list(r['nodes'].values())}"
        )
    last = rows[-1]
    print(
        f"scene k={last['k']}: scoring {last['images_per_s']:,.0f} images/s on one thread "
        f"({args.score_images} images, 7 emotions + conflict each; max |sum_E P(E) - 1| "
        f"{last['max_sum_error']:.1e})"
    )


def run_mnist(args) -> None:
    digits = distributions(torch.Generator().manual_seed(args.seed), args.mnist_examples, 4, 10)
    e = emolog_mnist(digits)  # first: its peak RSS is its own (DeepProbLog's includes emolog's)
    d = dpl_mnist(digits)
    max_dp = max(abs(e["p"].get(z, 0.0) - d["p"].get(z, 0.0)) for z in set(e["p"]) | set(d["p"]))
    print(
        f"mnist multi-digit (all {len(e['p'])} sums): emolog compile {e['compile_s']:.2f} s, answer "
        f"{e['answer_s'] * 1e3:.3f} ms/example, peak RSS {e['peak_mb']:.0f} MB; DeepProbLog compile "
        f"{d['compile_s']:.2f} s, answer {d['answer_s'] * 1e3:.1f} ms/example, peak RSS {d['peak_mb']:.0f} MB"
    )
    print(
        f"mnist: compile ratio {d['compile_s'] / e['compile_s']:.2f}x, answer ratio "
        f"{d['answer_s'] / e['answer_s']:.0f}x, max |dp| {max_dp:.1e}"
    )


def run_shape(shape: str, args) -> None:
    """One research shape: emolog here, DeepProbLog in a forked child with a time limit."""
    import research_shapes as rs

    path = PROGRAMS / f"{shape}.pl"
    text = rs.PROGRAMS[shape]()
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)  # the generator is the source of truth: written, then read back
    d = rs.data(shape, args.shape_images, args.seed)
    e = rs.emolog_train(shape, path, d, args.batch)
    peak = peak_rss_mb()
    print(
        f"{shape}: emolog compile {e['compile_s']:.2f} s (every structure; circuit nodes "
        f"{sorted(e['nodes'].values())}), peak RSS {peak:.0f} MB, training {1 / e['train_s']:,.0f} "
        f"examples/s ({args.shape_images} examples, batch {args.batch})"
    )
    small = {k: v[: args.dpl_images] for k, v in d.items()}
    dpl = _child_result(lambda: rs.dpl_train(shape, path, small), args.dpl_timeout, args.dpl_memory_gb)
    if "error" in dpl:
        print(f"{shape}: DeepProbLog {dpl['error']}: no ratio (goal: >= 1,000 examples/s)")
        return
    print(
        f"{shape}: DeepProbLog compile {dpl['compile_s']:.1f} s, training {dpl['train_s'] * 1e3:.2f} "
        f"ms/example ({args.dpl_images} examples, batch 16, circuits cached)"
    )
    print(f"{shape}: training throughput ratio {dpl['train_s'] / e['train_s']:,.0f}x")


def _child_result(fn, timeout: float, memory_gb: float) -> dict:
    """fn() in a forked child with a time and a memory limit (its heap, RLIMIT_DATA: a
    DeepProbLog that grows without bound gets a MemoryError, not the machine's OOM killer):
    its dict, or {"error": why}."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def work():
        try:
            limit = int(memory_gb * (1 << 30))
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
            child.send(fn())
        except BaseException as e:  # noqa: BLE001 - reported as the part's result
            child.send({"error": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"})

    proc = ctx.Process(target=work)
    proc.start()
    got = parent.recv() if parent.poll(timeout) else {"error": f"did not finish within {timeout:g} s"}
    proc.kill()
    proc.join()
    return got


PARTS = {
    "faces": run_faces,
    "scene": run_scene,
    "mnist": run_mnist,
    **{s: (lambda args, s=s: run_shape(s, args)) for s in ("va365", "faces5", "faces3")},
}


def _in_child(fn) -> None:
    """Run one part in a forked process, so that its peak RSS is its own."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn()
        except BaseException:  # noqa: BLE001 - shown, and the part's exit status says it failed
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status:
        raise SystemExit(f"part failed (status {status})")


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts", nargs="*", choices=[[], *PARTS], help="default: all six")
    ap.add_argument("--faces-images", type=int, default=5000, help="emolog training images (faces)")
    ap.add_argument("--batch", type=int, default=1000, help="emolog training batch (faces)")
    ap.add_argument("--dpl-images", type=int, default=200, help="DeepProbLog training images (faces)")
    ap.add_argument("--score-images", type=int, default=10000, help="images scored at the largest k (scene)")
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 50, 365], help="scene disjunction sizes")
    ap.add_argument("--mnist-examples", type=int, default=5, help="multi-digit examples per engine")
    ap.add_argument("--shape-images", type=int, default=2000, help="emolog training examples (research shapes)")
    ap.add_argument("--dpl-timeout", type=float, default=300, help="seconds DeepProbLog may take per shape")
    ap.add_argument("--dpl-memory-gb", type=float, default=6, help="heap DeepProbLog may take per shape (GB)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.parts = args.parts or list(PARTS)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    print(f"clock: CPU time of this process, torch threads {torch.get_num_threads()}, float64")

    for part in ("faces", "mnist", "scene", "va365", "faces5", "faces3"):
        if part in args.parts:
            _in_child(lambda: PARTS[part](args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
