"""Deprecated location: ``emolog.training`` was split by what each module is (docs/architecture.md).

The old module paths still import, for one release, with a ``DeprecationWarning`` that names the
new one: code written against them (``from emolog.training.train import train_run``) and runs
pickled under them keep working while their owners move. New code imports the new paths, or the
public names of ``emolog`` and ``emolog.logic``.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "run": "emolog.runs.reader", "outputs": "emolog.runs.writer", "train": "emolog.runs.train",
    "commands": "emolog.runs.commands", "config": "emolog.config.run",
    "regimes": "emolog.config.regimes", "metrics": "emolog.metrics.classification",
    **{m: f"emolog.experiments.{m}" for m in
       ("baselines", "distribute", "experiment", "face_weighting", "tables")},
    **{m: f"emolog.learn.{m}" for m in ("changes", "em", "fit", "losses", "pretrain", "stopping")},
    **{m: f"emolog.model.{m}" for m in
       ("bindings", "data", "gate", "linear", "model", "perception", "spec", "target")},
}


class _MovedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers ``emolog.training.<old>`` (and its submodules) with the module at its new path."""

    def _new_name(self, fullname: str) -> str | None:
        head, _, rest = fullname.removeprefix(f"{__name__}.").partition(".")
        if not fullname.startswith(f"{__name__}.") or head not in MOVED:
            return None
        return MOVED[head] + (f".{rest}" if rest else "")

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if self._new_name(fullname) else None

    def create_module(self, spec):
        new = self._new_name(spec.name)
        warnings.warn(f"{spec.name} moved to {new}; the old path goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        """The module was executed at its new path; nothing runs twice."""


if not any(isinstance(f, _MovedModule) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModule())
