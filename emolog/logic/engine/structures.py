"""A ``DeepProgram``'s structures as circuits: each compiled once (and kept on disk), evaluated per batch.

``compile_query`` grounds one structure (a filled query template with the example id left
open) with ProbLog, compiles its answers and evidence into one circuit (``dnnf``) and returns
its ``plan.Compiled``; ``cache_file`` names where that is pickled (by the program's hash and
the structure), ``write_cached`` writes it atomically and ``read_cached`` reads it back.
``evaluate_groups`` calls the networks once for a batch and evaluates every structure's
examples together.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from problog.engine import ClauseDB, DefaultEngine
from problog.logic import Constant, Term

from ..bindings import PLACEHOLDER, call_networks
from ..ground import ground, number
from ..params import TParams
from ..program import ProgramError
from .circuit import peak_rss_mb
from .dnnf import CompileBudgetError, compile_structure
from .plan import Compiled, free_values, table

CHUNK_VALUES = 2_500_000
CIRCUIT_DTYPE = torch.float64  # answers are float64 (see evaluate_groups)
InputIndex = Callable[[str, str, Term], int]  # (network, input key, input term) -> input index


def cache_file(cache_dir: Path | None, program_hash: str, key: str) -> Path | None:
    """Where structure ``key`` of the program hashed ``program_hash`` is kept (None: no disk cache)."""
    if cache_dir is None:
        return None
    return cache_dir / f"{program_hash[:20]}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.pkl"


def read_cached(disk: Path, input_index: InputIndex) -> Compiled:
    """The structure pickled at ``disk``, its network inputs registered with ``input_index``."""
    with open(disk, "rb") as f:
        c = pickle.load(f)
    for spec in c.specs:
        if spec[0] in ("nn", "f"):
            input_index(*spec[1])
    return c


def write_cached(disk: Path, c: Compiled) -> None:
    disk.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=disk.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        pickle.dump(c, f)
    os.replace(tmp, disk)  # atomic: a reader sees the old file or the whole new one


def compile_query(
    key: str,
    term: Term | None,
    input_index: InputIndex,
    *,
    engine: DefaultEngine,
    db: ClauseDB,
    path: str,
    lineno: Any,
    max_nodes: int,
) -> Compiled:
    """Structure ``key`` (query ``term``; None: the program's own queries) grounded in ``db``
    and compiled (at most ``max_nodes`` nodes), each atom row read as ``atom_spec`` reads it."""
    t0 = time.perf_counter()
    dag = ground(None, path, queries=None if term is None else [term], engine=engine, db=db, lineno=lineno)
    t1 = time.perf_counter()
    # ProbLog labels a query without any answer with itself, unbound, at FALSE: that is
    # probability 0 of every instance (as in ProbLog/DeepProbLog), not an answer.
    answers = [(name, k) for name, k, _ in dag.labeled() if name.is_ground() or k != dag.FALSE]
    for name, _ in answers:
        if not name.is_ground():
            raise ProgramError(
                f"{path}: Error: query {key} has the non-ground answer {name}", path=path, message="non-ground answer"
            )
    ev = [dag.negate(k) if v < 0 else k for _, k, v in dag.evidence_all() if v]
    roots = [[k] + ev for _, k in answers] + ([ev] if ev else [])
    try:
        s = compile_structure(dag, roots, max_nodes)
    except CompileBudgetError as e:
        raise ProgramError(
            f"{path}: Error: structure {key} is beyond exact compilation here: {e} "
            f"(ground in {t1 - t0:.1f} s, peak RSS {peak_rss_mb():.0f} MB); raise "
            "max_nodes (EMOLOG_MAX_NODES) if the machine has the memory",
            path=path,
            message="beyond exact compilation",
        ) from None
    specs = [atom_spec(p, input_index, path) for p in s.atoms]
    s.atoms = []  # the specs replace the terms (and keep pickles small)
    names = [str(n).replace(str(PLACEHOLDER), "I") for n, _ in answers]
    stats = dict(s.stats, ground_s=t1 - t0, peak_rss_mb=peak_rss_mb())
    return Compiled(key, names, specs, s, bool(ev), stats=stats)


def atom_spec(p: Any, input_index: InputIndex, path: str) -> tuple:
    """What an atom row of the circuit's input reads: ("nn", input, j) | ("f", input) | ("t", i) | ("c", v)."""
    if isinstance(p, Term) and not isinstance(p, Constant) and p.functor == "nn":
        net = str(p.args[0])
        u = (net, str(p.args[1]), p.args[1])
        input_index(*u)
        return ("nn", u, int(p.args[2])) if p.arity == 3 else ("f", u)
    if isinstance(p, Term) and not isinstance(p, Constant) and p.functor == "t":
        return ("t", int(p.args[0]))
    return ("c", number(p, path))


def evaluate_groups(
    groups: dict[str, tuple],
    joint: bool,
    *,
    input_terms: list,
    bindings: dict,
    sources: dict,
    nets: dict,
    path: str,
    tparams: TParams,
) -> list[tuple]:
    """[(structure, positions, values [n, answers])] for examples grouped by structure;
    ``joint``: a structure with evidence gives (P(answer and evidence), P(evidence) [n])."""
    calls: dict[int, list[torch.Tensor]] = {}
    for c, _, ids, _ in groups.values():
        for u, _, _ in c.plan.inputs:
            calls.setdefault(u, []).append(torch.tensor(ids))
    outputs = call_networks({u: torch.cat(v) for u, v in calls.items()}, input_terms, bindings, sources, nets, path)
    # Circuits run in float64 whatever the networks' dtype: a product of many small
    # probabilities (a long face list, a 365-way table) underflows float32 below 1e-38,
    # and P(q and e) / P(e) would then be 0 / 0; float32 networks get float32 gradients.
    dtype = CIRCUIT_DTYPE
    tp = tparams.probs().to(dtype) if len(tparams) else None
    parts = []
    for c, pos, ids, _ in groups.values():
        ids_t = torch.tensor(ids)
        # Chunks of about CHUNK_VALUES node values keep each level in cache: the 365-way
        # scene circuit (~10k nodes) ran 29k images/s at 128 per call and 2.9k at 8192;
        # small circuits take the whole batch at once.
        step = max(128, CHUNK_VALUES // (len(c.structure.nodes) + c.structure.n_vars + 1))
        free = free_values(c.plan, outputs, dtype)
        chunks = [
            c.evaluator(table(c.plan, ids_t[k : k + step], outputs, tp, dtype, free)) for k in range(0, len(ids), step)
        ]
        vals = chunks[0] if len(chunks) == 1 else torch.cat(chunks, 0)
        if c.has_evidence and joint:
            vals = (vals[:, :-1], vals[:, -1])
        elif c.has_evidence:
            z = vals[:, -1:]
            if (z <= 0).any():
                bad = ids_t[(z[:, 0] <= 0).cpu()].tolist()
                raise ProgramError(
                    f"{path}: Error: the evidence has probability 0 (or below "
                    f"float64's 1e-308) for {c.key} in example id(s) "
                    f"{bad[:20]}{'...' * (len(bad) > 20)}",
                    path=path,
                    message="evidence impossible",
                )
            vals = vals[:, :-1] / z
        parts.append((c, pos, vals))
    return parts
