"""The logic layer: ProbLog programs compiled once into batched, differentiable torch circuits.

``compile_program("seed")`` parses ``programs/seed.pl``, grounds and compiles it (ProbLog +
PySDD), and returns a ``LogicModule`` that evaluates every query for a whole batch with KLay.
``evaluate(path_or_text)`` answers a plain ProbLog program as ``problog`` does, and
``compile_program(path, queries=[template, ...])`` a DeepProbLog program (``DeepProgram``), both
through the general engine (``ground``/``circuit``/``levels``). See docs/logic.md.

The names are imported on first use (PEP 562), so that ``emolog logic --help``, which imports
``emolog.logic.commands``, loads neither torch nor problog.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "Answers": "deep", "DeepProgram": "deep", "Example": "deep",
    "evaluate": "evaluate",
    "SEMANTICS": "module", "LogicInputError": "module", "LogicModule": "module",
    "compile_program": "module",
    "ProjectedSGD": "params", "TParams": "params", "projected_sgd_step": "params",
    "ProgramError": "program", "parse_program": "program", "resolve_program": "program",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
