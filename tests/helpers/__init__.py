"""Helpers shared by several test modules (no tests here): data files, photos, tiny networks,
the ProbLog corpus' reference answers and cache checks. Test modules import from here, never
from one another; pytest fixtures shared by several modules live in the conftest.py files.

``tests/`` is on ``sys.path`` under pytest (rootdir conftest, "prepend" import mode), so
``from helpers.photos import ...`` works in test modules, conftest files and the fault
suites' forkserver (which inherits the parent's ``sys.path``).
"""
