"""emolog: neurosymbolic emotion recognition for photos of people in scenes.

Data flows one way through the sub-packages (docs/architecture.md):
data -> perception -> cache -> logic -> simulate -> metrics -> config -> model -> learn -> runs
-> experiments -> analysis -> report -> cli.

The public names are these four and those of ``emolog.logic``:

- ``Model``: a spec's program and the networks that feed it, with scikit-learn's verbs:
  ``Model.from_spec(spec, data, **settings)``, ``fit(out_dir)``, ``predict_proba(X)`` [N, C],
  ``predict(X)``, ``save(dir)`` / ``Model.load(dir)`` (docs/model.md, "From Python").
- ``load_run(run_dir) -> Run``: a finished run read back (classes, metrics, learned ``t()``
  values by name, ``predict``); ``.model`` is its ``Model``.
- ``train_run(config, out_dir) -> dict``: one training run written to ``out_dir`` (what
  ``Model.from_config(config).fit(out_dir)`` does); the dict is its ``results.json``.
- ``load_cache(cache_dir, ids=None) -> FeatureCache``: a feature cache's tensors, rows in the
  order of ``ids`` (``scene_probs`` [N, 7], ``face_probs`` [N, K, 7], ``face_mask`` [N, K]).
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["Model", "__version__", "load_cache", "load_run", "train_run"]

# Imported on first use so that ``import emolog`` stays free of torch.
_WHERE = {
    "Model": "emolog.runs.model",
    "load_cache": "emolog.cache.store",
    "load_run": "emolog.runs.model",
    "train_run": "emolog.runs.train",
}


def __getattr__(name: str) -> Any:
    """The public names, each from the module that defines it (PEP 562 lazy re-export)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'emolog' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
