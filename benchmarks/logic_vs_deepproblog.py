"""The seed program through DeepProbLog 2.1.0 (ExactEngine, circuit cache on) and emolog.

Same program, same seeded random inputs (5000 images with 0-3 faces, network outputs given).
emolog runs all 5000 images in batches of --batch; DeepProbLog a subsample (--dpl-images).

* train: forward + backward of the logic per example (loss -log P(label | evidence),
  gradients to the network outputs and the t() parameters). DeepProbLog has no evidence in
  queries, so one conditioned training example is two queries (q and ok, ok), solved in one
  batch of --dpl-batch examples (its own batching: ``model.solve(list of queries)``).
* score: all 7 emotions of an image (DeepProbLog: 8 queries per image, one solve call).

emolog uses CUDA when present, else CPU (--threads torch threads, default 1). One clock for
both engines, stated in the output: on CPU the CPU time of this process
(``time.process_time``; both run single-threaded, and on a shared machine CPU time is the
figure that does not depend on the neighbours); on CUDA the wall clock (``time.perf_counter``)
with ``torch.cuda.synchronize()`` before every reading, for emolog on the GPU and DeepProbLog
(which has no GPU path) alike. Last line: ``train ratio: Nx, score ratio: Mx``.
Run: .venv/bin/python benchmarks/logic_vs_deepproblog.py   (about 1-3 minutes)
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch
from tqdm import tqdm

from emolog.logic import compile_program
from emolog.logic.check.deepproblog_adapter import DeepProbLogReference


def make_inputs(n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    scene = torch.softmax(2 * torch.randn(n, 7, generator=gen), 1)
    faces = torch.softmax(2 * torch.randn(n, 3, 7, generator=gen), 2)
    counts = torch.randint(0, 4, (n,), generator=gen)
    mask = torch.arange(3).unsqueeze(0) < counts.unsqueeze(1)
    labels = torch.randint(0, 7, (n,), generator=gen)
    return scene, faces, mask, labels


def make_clock(device: torch.device) -> tuple[Callable[[], float], str]:
    """The one clock of this benchmark and its name: synchronised wall clock on CUDA, else
    the process's CPU time."""
    if device.type == "cuda":

        def clock() -> float:
            torch.cuda.synchronize()
            return time.perf_counter()

        return clock, "wall clock (time.perf_counter after torch.cuda.synchronize), both engines"
    return time.process_time, "CPU seconds of this process (time.process_time), both engines, 1 thread"


def emolog_times(
    lm, data, batch: int, score_batch: int, device: torch.device, clock: Callable[[], float], repeats: int = 5
) -> tuple[float, float]:
    """(train, score) seconds per example: best of ``repeats`` passes over all images."""
    scene, faces, mask, labels = (t.to(device) for t in data)
    n = len(labels)
    train, score = float("inf"), float("inf")
    for _ in range(repeats):
        t0 = clock()
        for i in range(0, n, batch):
            s = scene[i : i + batch].requires_grad_(True)
            f = faces[i : i + batch].requires_grad_(True)
            p = lm.emotion_probs(s, f, mask[i : i + batch])
            rows = torch.arange(len(p), device=device)
            loss = -torch.log(p[rows, labels[i : i + batch]]).sum()
            lm.zero_grad()
            loss.backward()
        train = min(train, (clock() - t0) / n)
        t0 = clock()
        with torch.no_grad():
            for i in range(0, n, score_batch):
                j = i + score_batch
                lm.emotion_probs(scene[i:j], faces[i:j], mask[i:j])
        score = min(score, (clock() - t0) / n)
    return train, score


def deepproblog_times(
    lm, data, n_images: int, batch: int, clock: Callable[[], float], repeats: int = 2
) -> tuple[float, float]:
    """(train, score) seconds per example for DeepProbLog on the first ``n_images``."""
    scene, faces, mask, labels = (t[:n_images] for t in data)
    inputs, facts = lm.seed_inputs(scene, faces, mask)
    dpl = DeepProbLogReference(lm.program, semantics="condition", cache=True)
    t_probs = lm.tparams.probs().tolist()
    dpl._load(inputs, facts, t_probs)
    queries = dpl.queries(n_images)
    cols = [
        lm.query_names.index(f"emotion({e})")
        for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    ]
    model = dpl.model
    model.solve(queries[0])  # builds the cached circuits (not timed)

    train, score = float("inf"), float("inf")
    for _ in range(repeats):  # best of repeats, as for emolog
        t0 = clock()
        for i in tqdm(range(0, n_images, batch), desc="DeepProbLog train", leave=False, disable=None):
            idx = list(range(i, min(i + batch, n_images)))
            batch_q = [q for j in idx for q in (queries[j][cols[int(labels[j])]], queries[j][-1])]
            model.optimizer.zero_grad()
            results = model.solve(batch_q)
            loss = 0.0
            for k in range(len(idx)):
                joint = next(iter(results[2 * k].result.values()))
                ev = next(iter(results[2 * k + 1].result.values()))
                loss = loss - torch.log(joint / ev)
            loss.backward()
        train = min(train, (clock() - t0) / n_images)

        t0 = clock()
        with torch.no_grad():
            for j in tqdm(range(n_images), desc="DeepProbLog score", leave=False, disable=None):
                model.solve(queries[j])
        score = min(score, (clock() - t0) / n_images)
    return train, score


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=256, help="emolog training batch")
    ap.add_argument(
        "--score-batch", type=int, default=5000, help="emolog scoring batch (default: all images in one call)"
    )
    ap.add_argument("--dpl-images", type=int, default=200)
    ap.add_argument("--dpl-batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1: these small batched ops lose more to thread "
        "hand-offs on a busy 2-core machine than they gain)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    lm = compile_program("seed", semantics="condition").to(device)
    data = make_inputs(args.images, args.seed)

    clock, clock_name = make_clock(device)
    e_train, e_score = emolog_times(lm, data, args.batch, args.score_batch, device, clock)
    lm_cpu = compile_program("seed", semantics="condition")
    d_train, d_score = deepproblog_times(lm_cpu, data, args.dpl_images, args.dpl_batch, clock)

    print(f"program: seed, semantics: condition, torch threads: {torch.get_num_threads()}")
    print(
        f"emolog ({device}, train batch {args.batch}, score batch {args.score_batch}, "
        f"{args.images} images): "
        f"train {e_train * 1e6:.2f} us/example, score {e_score * 1e6:.2f} us/image"
    )
    print(
        f"DeepProbLog (ExactEngine, cache on, {args.dpl_images} images, train batch "
        f"{args.dpl_batch}): train {d_train * 1e3:.2f} ms/example, score {d_score * 1e3:.1f} ms/image"
    )
    print(f"clock: {clock_name}; best of 5 passes (emolog) / 2 (DeepProbLog)")
    print(f"train ratio: {d_train / e_train:.0f}x, score ratio: {d_score / e_score:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
