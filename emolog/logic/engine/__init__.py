"""A read program turned into circuits and numbers (program -> ground formula -> circuit -> torch).

``compile_program`` / ``LogicModule`` (``module``, the seed-convention programs through an SDD,
``compile``), ``DeepProgram`` (``deep``: DeepProbLog programs, structures compiled top-down by
``dnnf`` over ``formula`` and evaluated by ``circuit`` / ``levels``, tensor-bound batches by
``batch``) and ``evaluate`` (plain ProbLog). Imports ``emolog.logic``'s reading modules only.
"""
