"""A read program turned into circuits and numbers (program -> ground formula -> circuit -> torch).

``compile_program`` / ``LogicModule`` (``module``, the seed-convention programs through an SDD,
``compile`` with ``sdd``), ``DeepProgram`` (``deep``: DeepProbLog programs, structures compiled
top-down by ``dnnf`` over ``formula``, kept and evaluated by ``structures`` with ``plan`` through
``circuit`` / ``levels``, tensor-bound batches by ``batch``) and ``evaluate`` (plain ProbLog). Imports ``emolog.logic``'s reading modules only.
"""
