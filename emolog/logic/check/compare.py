"""``compare_program``: one DeepProbLog program through emolog and through DeepProbLog 2.1.

Both engines get the same seeded random network outputs: every distinct ground input of a
neural predicate gets its own distribution over the domain (softmax of 2 * N(0, 1), seeded by
the input's text, so both processes draw the same numbers without talking), a neural fact a
uniform probability, a deterministic network a dummy tensor (only its name reaches the logic).
The loss is a random linear combination of every answer's probability, so its gradient
touches every network output and every ``t()``. DeepProbLog runs its ExactEngine (circuit
cache on, parameterised queries as in its own data sets) in float64, in a forked process
with a timeout; when it fails or runs out of time, ``dp_failed`` says why and emolog's
answers and time are still reported.

Speed is compared per query *once compiled*, compile time apart: each engine first answers
every example once (emolog compiles its structures, DeepProbLog fills its circuit cache),
then answers them all again, with the loss's backward pass, on the clock; the answers and
gradients compared are those of the timed pass. One clock for both: ``time.perf_counter``.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from problog.logic import Constant, list2term

from ..engine.deep import PLACEHOLDER, DeepProgram, Example
from .mass import check_answer_mass


@dataclass
class CompareResult:
    path: str
    templates: list[str]
    n_examples: int
    answers: dict[str, float] = field(default_factory=dict)  # emolog, "example id: atom" -> p
    max_dp: float | None = None  # max |P_emolog - P_deepproblog| over every answer
    max_dgrad: float | None = None  # max |gradient difference| (network outputs and t())
    emolog_s: float = 0.0  # seconds per example once compiled (evaluate + backward)
    dp_s: float | None = None  # the same for DeepProbLog, its circuit cache filled
    ratio: float | None = None  # dp_s / emolog_s
    emolog_compile_s: float = 0.0  # the first pass: compile every structure
    dp_compile_s: float | None = None  # DeepProbLog's first pass
    mass: list = field(default_factory=list)  # mass.MassFinding of class templates (one free variable)
    dp_failed: str | None = None
    notes: list[str] = field(default_factory=list)


def random_output(key: str, kind: str, size: int, seed: int) -> torch.Tensor:
    """The fixed random output for one ground network input (identical in every process)."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little")
    g = torch.Generator().manual_seed(h)
    if kind == "ad":
        return torch.softmax(2 * torch.randn(size, generator=g, dtype=torch.float64), 0)
    if kind == "fact":
        return torch.rand(1, generator=g, dtype=torch.float64) * 0.98 + 0.01
    return torch.zeros(1, dtype=torch.float64)


def _weight(name: str, seed: int) -> float:
    h = int.from_bytes(hashlib.sha256(f"w{seed}:{name}".encode()).digest()[:8], "little")
    return (h % 10_000) / 5_000 - 1.0


class _Table:
    """Leaf tensors per ground input, created on first use; gradients accumulate in them."""

    def __init__(self, nets: dict, seed: int):
        self.nets, self.seed, self.rows = nets, seed, {}

    def get(self, net: str, key: str) -> torch.Tensor:
        k = f"{net}{key}"
        if k not in self.rows:
            decl = self.nets[net]
            size = len(decl.domain) if decl.kind == "ad" else 1
            self.rows[k] = random_output(k, decl.kind, size, self.seed).requires_grad_(True)
        return self.rows[k]

    def grads(self) -> dict[str, list[float]]:
        return {k: (v.grad.tolist() if v.grad is not None else [0.0] * v.numel()) for k, v in self.rows.items()}


def compare_program(
    path: str | Path,
    templates: list[str],
    n_examples: int = 4,
    timeout: float = 120,
    seed: int = 0,
    faces: Sequence[int] = (0,),
    foreign: Sequence[tuple[str, Callable, int, int]] = (),
) -> CompareResult:
    """See the module docstring. Examples: ids 0..n_examples-1 for every template and every
    face count in ``faces`` (``Faces`` = that many face terms); ``foreign``: Python predicates
    (name, function, arity in, arity out) registered with both engines (``register_foreign``).

    Runs in float64 and restores the caller's default dtype afterwards (a leaked float64
    default would silently change every later torch computation in the process).
    """
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return _compare(path, templates, n_examples, timeout, seed, tuple(faces), tuple(foreign))
    finally:
        torch.set_default_dtype(previous)


def _examples(templates: list[str], n: int, faces: tuple[int, ...]) -> list[Example]:
    # ids differ per face count: DeepProbLog's answers are keyed by the id
    return [
        Example(i + n * j, template=t, faces=f)
        for t in range(len(templates))
        for j, f in enumerate(faces)
        for i in range(n)
    ]


@dataclass
class _Ours:
    """emolog's side of a comparison: its examples, the start of its t() values, and the
    gradients of its timed pass (network outputs by input, t() by index)."""

    examples: list[Example]
    nets: list[str]
    t_start: list[float]
    grads: dict[str, list[float]]
    tgrad: list[float]


def _compare(
    path: str | Path,
    templates: list[str],
    n_examples: int,
    timeout: float,
    seed: int,
    faces: tuple[int, ...],
    foreign: tuple,
) -> CompareResult:
    res = CompareResult(str(path), list(templates), n_examples)
    ours = _emolog_pass(res, path, seed, faces, foreign)
    got = _deepproblog_pass(path, templates, ours, seed, foreign, timeout)
    if got is None:
        res.dp_failed = f"DeepProbLog did not finish within {timeout:g} s"
    elif "error" in got:
        res.dp_failed = f"DeepProbLog failed: {got['error']}"
    else:
        _differences(res, ours, got)
    return res


def _emolog_pass(res: CompareResult, path: str | Path, seed: int, faces: tuple[int, ...], foreign: tuple) -> _Ours:
    """Compile every example's structure, then answer them all on the clock with the loss's
    backward pass; fills ``res``'s emolog figures, notes, answer-mass findings and answers."""
    t0 = time.perf_counter()
    prog = DeepProgram(path, res.templates, param="projected", cache_dir=False)
    for name, fn, ai, ao in foreign:
        prog.register_foreign(fn, name, ai, ao)
    table = _Table(prog.nets, seed)
    for name in prog.nets:
        prog.bind(name, _EmologNet(table, name))
    examples = _examples(res.templates, res.n_examples, faces)
    for ex in examples:
        prog.compiled(ex)
    res.emolog_compile_s = time.perf_counter() - t0
    res.notes.extend(prog.notes + _engine_notes(prog))
    weights = _loss_weights(prog, examples, seed)
    classes = [e for e in examples if _free_variables(prog.templates[e.template]) == 1]
    res.mass = check_answer_mass(prog, classes) if classes else []
    with torch.no_grad():  # the first pass: networks called, tensors laid out once
        prog(examples)
    t1 = time.perf_counter()
    ans = prog(examples)
    loss = (ans.probs * weights).sum()
    if loss.requires_grad:
        loss.backward()
    res.emolog_s = (time.perf_counter() - t1) / len(examples)
    res.answers = {
        _key(e, n): float(ans.probs[b, a].detach())
        for b, e in enumerate(examples)
        for a, n in enumerate(ans.names)
        if n in prog.compiled(e).names
    }
    return _Ours(
        examples,
        sorted(prog.nets),
        prog.tparams.probs().detach().tolist(),
        table.grads(),
        [float(x) for x in _t_grad(prog)],
    )


def _engine_notes(prog: DeepProgram) -> list[str]:
    """Where the two engines are given the program differently, said with the result."""
    notes = []
    if any(c.has_evidence for c in prog._mem.values()):
        notes.append(
            "the program declares evidence: emolog conditions on it, DeepProbLog ignores evidence/1,2 in the program"
        )
    if any(p.init is None for p in prog.params_program.params):
        notes.append(
            "t(_) starts uniform in emolog (DeepProbLog draws random()); DeepProbLog is given emolog's start values"
        )
    return notes


def _deepproblog_pass(
    path: str | Path, templates: list[str], ours: _Ours, seed: int, foreign: tuple, timeout: float
) -> dict | None:
    """DeepProbLog's answers, gradients and seconds from a forked worker (``_dp_worker``), or
    None when it gives nothing within ``timeout`` seconds."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_dp_worker, args=(child, str(path), templates, ours.examples, seed, ours.t_start, ours.nets, foreign)
    )
    proc.start()
    child.close()
    got = parent.recv() if parent.poll(timeout) else None
    proc.join(1)
    if proc.is_alive():
        proc.kill()
        proc.join()
    return got


def _differences(res: CompareResult, ours: _Ours, got: dict) -> None:
    """DeepProbLog's time, the speed ratio, and the largest answer and gradient differences."""
    theirs, their_grad, their_t = got["answers"], got["grads"], got["tgrad"]
    res.dp_s, res.dp_compile_s = got["seconds"] / len(ours.examples), got["compile_s"]
    res.ratio = res.dp_s / res.emolog_s if res.emolog_s > 0 else None
    keys = set(res.answers) | set(theirs)
    res.max_dp = max((abs(res.answers.get(k, 0.0) - theirs.get(k, 0.0)) for k in keys), default=0.0)
    gd = 0.0
    for k in set(ours.grads) | set(their_grad):
        a, b = ours.grads.get(k), their_grad.get(k)
        a = a if a is not None else [0.0] * len(b)
        b = b if b is not None else [0.0] * len(a)
        gd = max([gd] + [abs(x - y) for x, y in zip(a, b)])
    for x, y in zip(ours.tgrad, their_t):
        gd = max(gd, abs(x - y))
    res.max_dgrad = gd


def _free_variables(template) -> int:
    """Variables of a template other than the image ``I`` and its face list ``Faces``."""
    return len({str(v) for v in template.variables()} - {"I", "Faces"})


def _loss_weights(prog: DeepProgram, examples: list[Example], seed: int) -> torch.Tensor:
    """[examples, answers]: the random loss weight of each answer an example's structure has."""
    names = prog(examples).names if examples else []
    w = torch.zeros(len(examples), len(names), dtype=torch.float64)
    for b, e in enumerate(examples):
        own = set(prog.compiled(e).names)
        for a, n in enumerate(names):
            if n in own:
                w[b, a] = _weight(_key(e, n), seed)
    return w


class _EmologNet:
    """The random outputs as a ``bindings.BatchFeed``: each batch's distinct input terms with the
    ids that read them, the id written into the term's text (the key both engines use), so that
    emolog's time is the logic's and not this harness's term building."""

    def __init__(self, table: _Table, net: str):
        self.table, self.net = table, net

    def call_batch(self, requests) -> torch.Tensor:
        rows = []
        for term, ids in requests:
            text = str(term)
            keys = [text] if ids is None else [text.replace(str(PLACEHOLDER), str(i)) for i in ids.tolist()]
            rows += [self.table.get(self.net, k) for k in keys]
        return torch.stack(rows)


def _t_grad(prog: DeepProgram) -> list[float]:
    out = [0.0] * len(prog.tparams)
    for block, v in zip(prog.tparams.blocks, prog.tparams.values):
        if v.grad is not None:
            for i, g in zip(block, v.grad.tolist()):
                out[i] = g
    return out


class _DpNet(torch.nn.Module):
    def __init__(self, table: _Table, net: str):
        super().__init__()
        self.table, self.net = table, net

    def forward(self, *args):
        row = self.table.get(self.net, str(list2term(list(args))))
        return row


def _dp_worker(
    conn,
    path: str,
    templates: list[str],
    examples: list[Example],
    seed: int,
    t_start: list[float],
    nets: list[str],
    foreign: tuple,
) -> None:
    try:
        torch.set_default_dtype(torch.float64)
        from deepproblog.engines import ExactEngine
        from deepproblog.model import Model
        from deepproblog.network import Network
        from deepproblog.optimizer import SGD
        from deepproblog.query import Query

        prog = DeepProgram(path, templates, cache_dir=False)  # only for its templates/nets
        table = _Table(prog.nets, seed)
        networks = []
        for name in nets:
            net = Network(_DpNet(table, name), name)
            net.function = lambda *args: args  # the module gets the input terms
            networks.append(net)
        t0 = time.perf_counter()
        model = Model(path, networks)
        model.set_engine(ExactEngine(model), cache=True)
        for name, fn, ai, ao in foreign:
            model.register_foreign(fn, name, ai, ao)
        model.optimizer = SGD(model, param_lr=0.0)
        model.parameters = list(t_start)
        queries = [(ex.template, ex.id, prog._fill(ex)[1]) for ex in examples]

        def answer_all():
            answers, loss = {}, 0.0
            for t, i, term in queries:
                r = model.solve([Query(term, substitution={PLACEHOLDER: Constant(i)})])[0]
                for atom, p in r.result.items():
                    key = f"{t}:{i}:{atom}"
                    answers[key] = float(p)
                    loss = loss + _weight(key, seed) * p
            if isinstance(loss, torch.Tensor) and loss.requires_grad:
                loss.backward()
            return answers

        answer_all()  # the first pass fills the circuit cache (compile time, reported apart)
        compile_s = time.perf_counter() - t0
        for row in table.rows.values():
            row.grad = None
        model.optimizer.zero_grad()
        t1 = time.perf_counter()
        answers = answer_all()
        seconds = time.perf_counter() - t1
        grads = table.grads()
        g = model.optimizer._params_grad
        tgrad = [float(g[i]) if i in g else 0.0 for i in range(len(model.parameters))]
        conn.send({"answers": answers, "grads": grads, "tgrad": tgrad, "seconds": seconds, "compile_s": compile_s})
    except BaseException as e:  # report every failure (incl. RecursionError) to the parent
        conn.send({"error": f"{type(e).__name__}: {e}".splitlines()[0][:300], "trace": traceback.format_exc()[-2000:]})


def _key(e: Example, name: str) -> str:
    """An emolog answer ("...I...") with the example's id in place of I, spelled as DeepProbLog's
    answers are (both are problog terms printed by str)."""
    from problog.logic import Var
    from problog.program import PrologString

    t = list(PrologString(f"emolog_a({name})."))[0].args[0]
    return f"{e.template}:{e.id}:{t.apply_term({Var('I'): Constant(e.id)})}"
