"""The one model object: ``Model``, with the verbs of scikit-learn (docs/model.md, "From Python").

A ``Model`` is a spec's program with the networks that feed it, on one data directory:

* built by one constructor, ``Model.from_spec(spec, data, **settings)`` (or ``from_config``):
  the program compiled and checked against the data, the networks built (``emolog.runs.build``);
* trained by ``fit(out_dir)``: the one fit loop, writing the run directory as ``emolog train``
  does (resumable; ``emolog.runs.train``);
* saved and read back by ``save(dir)`` / ``Model.load(dir)`` (= build + load state, as
  ``emolog.load_run(dir).model``);
* asked by ``predict_proba`` / ``predict`` on a feature cache, its image ids, or photos (perceived
  by the networks the run recorded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from emolog import runtime
from emolog.config.run import RunConfig
from emolog.data.artefacts import check_record
from emolog.data.atomic import atomic_write_bytes
from emolog.data.lock import output_lock
from emolog.errors import InputError, UsageError
from emolog.runs.build import Built, build
from emolog.runs.reader import Predictions, Run, read_run
from emolog.runs.train import check_start, fit_built

__all__ = ["Model", "NotFittedError", "load_run"]


class NotFittedError(UsageError):
    """A verb that needs a trained model (``predict_proba``, ``save``) on one not trained yet."""


class Model:
    """A spec's program and its networks: build, ``fit``, ``predict_proba`` / ``predict``,
    ``save`` / ``load``.

    ``network`` is the ``emolog.model.model.Network`` (torch module) the fit loop trains;
    ``run`` the trained run directory read back (None before ``fit``); ``classes`` the labels
    the probabilities' columns stand for.
    """

    def __init__(self, built: Built | None = None, run: Run | None = None, device: str = "cpu") -> None:
        if (built is None) == (run is None):
            raise UsageError("Model needs either a built model (Model.from_spec) or a trained run (Model.load)")
        self._built, self.run, self.device = built, run, device
        self._network = built.network if built is not None else None

    # ---- construction --------------------------------------------------------------
    @classmethod
    def from_spec(
        cls, spec: str | dict = "seed", data: str | Path = "", progress: bool = True, **settings: Any
    ) -> "Model":
        """The model of ``spec`` (a shipped spec's name, a .toml path or the spec file's keys as a
        dict) on the data directory ``data``; ``settings`` are any other config keys, a group as a
        dict (``regime="joint", train={"epochs": 3}``; docs/training.md, "Configuration").
        Compiles, reads the data, builds the networks and, per regime, pretrains the scene net."""
        return cls.from_config(RunConfig.from_dict({**settings, "spec": spec, "data": str(data)}), progress)

    @classmethod
    def from_config(cls, config: RunConfig | dict, progress: bool = True) -> "Model":
        """The model a whole run config describes (a ``RunConfig`` or its keys as a dict)."""
        cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
        cfg.validate()
        with runtime.torch_threads(cfg.threads):
            built = build(cfg, progress)
        return cls(built=built, device=str(built.splits["train"].labels.device))

    @classmethod
    def load(cls, run_dir: str | Path, device: str = "cpu") -> "Model":
        """A trained run's model (``emolog.load_run(run_dir).model``), its networks on ``device``."""
        return cls(run=read_run(run_dir), device=device)

    # ---- training ------------------------------------------------------------------
    def fit(self, out_dir: str | Path, resume: bool = False, progress: bool = True) -> "Model":
        """Train with the one fit loop, writing the run directory to ``out_dir`` (checkpoints each
        epoch: ``resume=True`` continues an interrupted fit); returns the model, trained."""
        if self._built is None:
            raise UsageError(
                f"this model was read from {self._trained().dir} and is trained already; build a new "
                "one with Model.from_spec to train again"
            )
        out = Path(out_dir)
        cfg = self._built.cfg
        with output_lock(out, "emolog train"), runtime.torch_threads(cfg.threads):
            check_start(cfg, out, resume)
            fit_built(self._built, out, resume, progress)
        self.run, self._built = read_run(out), None
        return self

    # ---- the trained model -----------------------------------------------------------
    @property
    def config(self) -> RunConfig:
        return self._built.cfg if self._built is not None else self._trained()._config()

    @property
    def classes(self) -> list[str]:
        return list(self._built.network.classes) if self._built is not None else self._trained().classes

    @property
    def network(self) -> Any:
        """The ``emolog.model.model.Network`` (built from the run directory on first use)."""
        if self._network is None:
            self._network = self._trained().network(self.device)
        return self._network

    def predictions(self, X: Any, ids: Sequence[str] | None = None) -> Predictions:
        """Everything the model says of each image (``emolog.runs.reader.Predictions``: class
        probabilities, source posterior and distribution, scene head's distribution, expected
        valence/arousal). ``X``: a ``FeatureCache`` or a cache directory (``ids``: which of its
        images, default all), or a list of photo paths (perceived by the run's recorded networks)."""
        run = self._trained()
        if isinstance(X, (list, tuple)):
            if ids is not None:
                raise UsageError("ids select images of a cache; photos are named by their paths")
            X = _perceived(run, [Path(p) for p in X], self.device)
        return run.predict(X, ids=list(ids) if ids is not None else None, device=self.device, network=self.network)

    def predict_proba(self, X: Any, ids: Sequence[str] | None = None) -> np.ndarray:
        """[N, C] float64 P(class | evidence), rows in the order of the images, columns ``classes``."""
        return self.predictions(X, ids).probs

    def predict(self, X: Any, ids: Sequence[str] | None = None) -> list[str]:
        """The most probable class of each image (argmax of ``predict_proba``)."""
        return self.predictions(X, ids).pred

    def save(self, out_dir: str | Path) -> Path:
        """Copy the trained run's files to ``out_dir`` (each checked against its recorded sha256,
        written atomically, results.json last: the mark of a finished run); returns the path."""
        run, out = self._trained(), Path(out_dir)
        if out.resolve() == run.dir.resolve():
            return out
        with output_lock(out, "Model.save"):
            for name in sorted(run.results.get("files") or {}):
                check_record(run.dir / name, run.results["files"], run.dir / "results.json")
                atomic_write_bytes(out / name, (run.dir / name).read_bytes())
            atomic_write_bytes(out / "results.json", (run.dir / "results.json").read_bytes())
        return out

    def _trained(self) -> Run:
        if self.run is None:
            raise NotFittedError("this model is not trained yet: call fit(out_dir) first (or Model.load(run_dir))")
        return self.run

    def __repr__(self) -> str:
        where = f"run {self.run.dir}" if self.run is not None else "not trained"
        return f"Model({self.config.regime}, classes={self.classes}, {where})"


def _perceived(run: Run, paths: list[Path], device: str) -> Any:
    """A ``FeatureCache`` of photos, perceived by the networks the run recorded (every photo
    that cannot be read is named at once: nothing is predicted from a substitute)."""
    from emolog.data.images import ImageRejected, load_image
    from emolog.runs.perception import build_perception, perceived_cache, recorded_perception, settings_from

    recorded = run.perception or recorded_perception(run.dir)[0]
    settings = {**settings_from(recorded), "device": device, "prelast": (run.dir / "backbone_last_block.pt").is_file()}
    images, bad = [], []
    for p in paths:
        try:
            images.append(load_image(p))
        except ImageRejected as e:
            bad.append(f"{p}: {e.reason}")
    if bad:
        raise InputError(f"{len(bad)} photo(s) cannot be read: " + "; ".join(bad[:10]))
    perception = build_perception(settings, recorded)
    return perceived_cache(perception, perception.perceive_batch(images), [str(p) for p in paths])


def load_run(run_dir: str | Path) -> Run:
    """The finished run in ``run_dir`` (its classes, metrics, learned ``t()`` values by name,
    history, ``predict``); ``.model`` is the run as a ``Model``, its networks rebuilt on first use.
    Every file is checked against the sha256 that results.json records for it."""
    run = read_run(run_dir)
    run.model = Model(run=run)
    return run
