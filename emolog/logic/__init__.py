"""The logic layer: ProbLog programs compiled once into batched, differentiable torch circuits.

``compile_program("seed")`` parses ``programs/seed.pl``, grounds and compiles it (ProbLog +
PySDD), and returns a ``LogicModule`` that evaluates every query for a whole batch with KLay.
``evaluate(path_or_text)`` answers a plain ProbLog program as ``problog`` does, and
``compile_program(path, queries=[template, ...])`` a DeepProbLog program (``DeepProgram``), both
through the general engine (``ground``/``circuit``/``levels``). See docs/logic.md.

The package follows the data flow, imports one way: this folder reads a program (``program``,
``translate``, ``ground``, ``templates``, ``params``, ``bindings``); ``engine/`` turns it into
circuits and numbers (``formula``, ``dnnf``, ``levels``, ``circuit``, ``compile``, ``evaluate``,
``deep``, ``module``); ``check/`` holds what checks it against ProbLog and DeepProbLog
(``reference``, ``deepproblog_adapter``, ``compare``, ``mass``, ``bias``) and the
``emolog logic`` command. The old paths (``emolog.logic.dnnf``, ...) import for one release,
with a DeprecationWarning naming the new one.

The names are imported on first use (PEP 562), so that ``emolog logic --help``, which imports
``emolog.logic.check.commands``, loads neither torch nor problog.
"""

from __future__ import annotations

import importlib
from typing import Any

from emolog._aliases import keep_old_paths

_WHERE = {
    "Answers": "engine.deep",
    "DeepProgram": "engine.deep",
    "Example": "engine.deep",
    "evaluate": "engine.evaluate",
    "SEMANTICS": "engine.module",
    "LogicInputError": "engine.module",
    "LogicModule": "engine.module",
    "compile_program": "engine.module",
    "ProjectedSGD": "params",
    "TParams": "params",
    "projected_sgd_step": "params",
    "ProgramError": "program",
    "parse_program": "program",
    "resolve_program": "program",
}

__all__ = sorted(_WHERE)

MOVED = {
    **{
        m: f"{__name__}.engine.{m}"
        for m in ("circuit", "compile", "deep", "dnnf", "evaluate", "formula", "levels", "module")
    },
    **{m: f"{__name__}.check.{m}" for m in ("bias", "commands", "compare", "deepproblog_adapter", "mass", "reference")},
}
keep_old_paths(__name__, MOVED)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
