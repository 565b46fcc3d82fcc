"""Old module paths kept importable, for one release, after a package was restructured.

``keep_old_paths("emolog.training", {"train": "emolog.runs.train", ...})`` makes
``import emolog.training.train`` (and its submodules, and pickles naming them) return the very
module at its new path, with a ``DeprecationWarning`` that names that path: code written
against the old layout keeps working while its owners move. Used by every package that moved
modules (``emolog.training``, ``emolog.logic``); imports nothing heavy, so a package's
``__init__`` can install it without slowing ``import``.

``python -m <old path>`` does not run through it: a moved module is run by its new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers ``<package>.<old>`` (and its submodules) with the module at its new path."""

    def __init__(self, package: str, moved: dict[str, str]):
        self.package, self.moved = package, moved

    def _new_name(self, fullname: str) -> str | None:
        if not fullname.startswith(f"{self.package}."):
            return None
        head, _, rest = fullname.removeprefix(f"{self.package}.").partition(".")
        if head not in self.moved:
            return None
        return self.moved[head] + (f".{rest}" if rest else "")

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if self._new_name(fullname) else None

    def create_module(self, spec):
        new = self._new_name(spec.name)
        warnings.warn(
            f"{spec.name} moved to {new}; the old path goes in the next release", DeprecationWarning, stacklevel=2
        )
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        """The module was executed at its new path; nothing runs twice."""


def keep_old_paths(package: str, moved: dict[str, str]) -> None:
    """Make ``<package>.<old>`` import ``moved[old]`` (a module's full new name), once per
    package however often its ``__init__`` runs (a reload must not stack a second finder)."""
    if not any(isinstance(f, MovedModules) and f.package == package for f in sys.meta_path):
        sys.meta_path.insert(0, MovedModules(package, moved))
