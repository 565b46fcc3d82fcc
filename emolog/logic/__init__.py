"""The logic layer: ProbLog programs compiled once into batched, differentiable torch circuits.

``compile_program("seed")`` parses ``programs/seed.pl``, grounds and compiles it (ProbLog +
PySDD), and returns a ``LogicModule`` that evaluates every query for a whole batch with KLay.
See docs/logic.md.
"""

from .module import SEMANTICS, LogicInputError, LogicModule, compile_program
from .params import ProjectedSGD, TParams, projected_sgd_step
from .program import ProgramError, parse_program, resolve_program

__all__ = [
    "SEMANTICS", "LogicInputError", "LogicModule", "ProgramError", "ProjectedSGD", "TParams",
    "compile_program", "parse_program", "projected_sgd_step", "resolve_program",
]
