"""``evaluate``: a plain ProbLog program's own queries and evidence, answered as ``problog`` does.

ProbLog parses and grounds (``ground.py``); emolog compiles the ground formula into one
circuit (``dnnf.py``, annotated disjunctions as one choice variable each) and evaluates it in float64:
P(q | e) = WMC(q and e) / WMC(e).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NoReturn

import torch
from problog.logic import Term

from ..ground import ground, load_model, number
from ..program import ProgramError
from .circuit import CircuitEvaluator, peak_rss_mb
from .dnnf import compile_structure

SMALL_FOR_PROBLOG = 2000


def evaluate(
    source: str | Path, *, base_dir: str | Path | None = None, stats: dict | None = None
) -> list[tuple[str, float]]:
    """[(query atom as problog prints it, probability)] sorted as ``problog FILE`` prints them.

    ``source``: a path or program text (consult/1 relative to ``base_dir``). Raises
    ProgramError (``.path .line .column .message .problog_text``) for what ProbLog rejects,
    for inconsistent evidence, and for what emolog refuses (``nn``/``t`` annotations: those
    need ``compile_program``). ``stats``, if given, receives timing and size figures.
    """
    t0 = time.perf_counter()
    model, path, _ = load_model(source, base_dir)
    dag = ground(model, path)
    t1 = time.perf_counter()
    labeled = [(name, key) for name, key, _ in dag.labeled()]
    ev = [dag.negate(key) if value < 0 else key for _, key, value in dag.evidence_all() if value]
    fixed: dict[str, float] = {}
    if ev:
        labeled, fixed = _listed_after_evidence(source, base_dir, path, labeled)
    roots = [[key] + ev for _, key in labeled] + ([ev] if ev else [])
    s = compile_structure(dag, roots)
    probs = _probabilities(s, path)
    p = torch.tensor(probs, dtype=torch.float64).reshape(len(probs), 1)
    with torch.no_grad():
        values = CircuitEvaluator(s)(p)[0].tolist()
    z = values[-1] if ev else 1.0
    if ev and z <= 0:
        _inconsistent(source, base_dir, path, len(dag))
    answers = {str(name): values[i] / z for i, (name, _) in enumerate(labeled)}
    answers.update(fixed)
    out = sorted(answers.items(), key=lambda kv: kv[0])
    if stats is not None:
        stats.update(ground_s=t1 - t0, total_s=time.perf_counter() - t0, peak_rss_mb=peak_rss_mb(), **s.stats)
    return out


def _listed_after_evidence(
    source: str | Path, base_dir: str | Path | None, path: str, labeled: list[tuple]
) -> tuple[list[tuple], dict[str, float]]:
    """(the queries answered by the circuit, {answer: 0 or 1} for those the evidence decides).

    The answers problog lists are those left after propagating the evidence; a non-ground
    query left without answers is listed as itself (variables renamed), deterministically.
    """
    prop = ground(load_model(source, base_dir)[0], path, propagate_evidence=True)
    ours = {str(name) for name, _ in labeled}
    listed, fixed = set(), {}
    for name, key, _ in prop.labeled():
        listed.add(str(name))
        if str(name) not in ours:
            fixed[str(name)] = 1.0 if key == 0 else 0.0
    return [(name, key) for name, key in labeled if str(name) in listed], fixed


def _probabilities(s: Any, path: str) -> list[float]:
    """Each atom's probability, checked as ProbLog checks it (numbers in [0, 1], annotated
    disjunctions summing to at most 1); ``nn``/``t`` annotations are refused."""
    probs = []
    for p in s.atoms:
        if isinstance(p, Term) and p.functor in ("nn", "t") and p.arity >= 1:
            raise ProgramError(
                f"{path}: Error: {p} is a DeepProbLog annotation; plain ProbLog "
                "evaluation needs numbers (use compile_program(..., queries=[...]))",
                path=path,
                message=f"{p} is a DeepProbLog annotation",
            )
        x = number(p, path)
        if not -1e-9 <= x <= 1 + 1e-9:  # ProbLog's semiring check, in its words
            raise _invalid(path, f"Not a valid value for this semiring: '{p}'")
        probs.append(x)
    for g in s.groups:
        # ProbLog raises this only when the extra atom ends up in the formula and otherwise
        # answers with "probabilities" of a distribution summing to more than 1; emolog refuses.
        if sum(probs[r] for r in g) > 1 + 1e-9:
            raise _invalid(path, "Sum of annotated disjunction weigths exceeds acceptable value")
    return probs


def _inconsistent(source: str | Path, base_dir: str | Path | None, path: str, n_nodes: int) -> NoReturn:
    """Raise the error for evidence of probability 0: ProbLog's own, naming the atom, where
    the program is small enough to run ProbLog's pipeline (SMALL_FOR_PROBLOG nodes)."""
    if n_nodes <= SMALL_FOR_PROBLOG:
        _problog_error(source, base_dir, path)
    msg = "Inconsistent evidence detected during compilation"
    raise ProgramError(
        f"{path}: Error: {msg}", path=path, message=msg, problog_text=f"InconsistentEvidenceError: {msg}."
    )


def _invalid(path: str, msg: str) -> ProgramError:
    return ProgramError(f"{path}: Error: {msg}", path=path, message=msg, problog_text=f"InvalidValue: {msg}.")


def _problog_error(source: str | Path, base_dir: str | Path | None, path: str) -> None:
    """Raise ProbLog's own error for evidence of probability 0 (its wording names the atom).

    Runs ProbLog's whole pipeline, so only for small programs (SMALL_FOR_PROBLOG nodes).
    """
    from problog import get_evaluatable
    from problog.errors import ProbLogError

    from ..ground import program_error

    try:
        get_evaluatable(None).create_from(load_model(source, base_dir)[0], propagate_evidence=True).evaluate()
    except ProbLogError as e:
        raise program_error(e, path) from None
