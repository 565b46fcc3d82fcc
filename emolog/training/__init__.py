"""Deprecated location: ``emolog.training`` was split by what each module is (docs/architecture.md).

The old module paths still import, for one release, with a ``DeprecationWarning`` that names the
new one: code written against them (``from emolog.training.train import train_run``) and runs
pickled under them keep working while their owners move. New code imports the new paths, or the
public names of ``emolog`` and ``emolog.logic``.
"""

from emolog._aliases import keep_old_paths

MOVED = {
    "run": "emolog.runs.reader",
    "outputs": "emolog.runs.writer",
    "train": "emolog.runs.train",
    "commands": "emolog.runs.commands",
    "config": "emolog.config.run",
    "regimes": "emolog.config.regimes",
    "metrics": "emolog.metrics.classification",
    **{m: f"emolog.experiments.{m}" for m in ("baselines", "distribute", "experiment", "face_weighting", "tables")},
    **{m: f"emolog.learn.{m}" for m in ("changes", "em", "fit", "losses", "pretrain", "stopping")},
    **{m: f"emolog.model.{m}" for m in ("bindings", "data", "gate", "linear", "model", "perception", "spec", "target")},
}


keep_old_paths(__name__, MOVED)
