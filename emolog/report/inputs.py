"""Read a run or experiment directory (docs/architecture.md section 4) for the report.

Every file is optional: a missing file becomes an ``absent`` note, an unreadable one a
``problem`` note naming the file and what is wrong with it. Nothing is ever replaced by a
default value, so the report can say, per section, exactly which input it lacked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emolog.data.paths import resolve_recorded as resolve  # noqa: F401 - re-exported: a path recorded in a run
from emolog.errors import InputError
from emolog.labels import BASIC7, SOURCES

# run folders of an experiment: runs/<regime>-s<seed>[-<sweep>] (regimes contain hyphens)
_RUN_NAME = re.compile(r"^(?P<regime>.+?)-s(?P<seed>\d+)(?:-(?P<sweep>.+))?$")


class ReportInputError(InputError, ValueError):
    """The directory is neither a run nor an experiment directory."""


@dataclass
class Inputs:
    """Files read from one directory: name -> parsed content, plus why others are missing."""

    dir: Path
    files: dict[str, Any] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)  # file name -> one-line note

    def get(self, name: str) -> Any:
        return self.files.get(name)

    def note(self, name: str) -> str:
        """The one line a section prints when ``name`` could not be used."""
        return self.absent.get(name, f"{name}: not read")


@dataclass
class RunInputs(Inputs):
    """A run directory. ``name`` is its path relative to the experiment (or its folder name)."""

    name: str = ""

    @property
    def results(self) -> dict | None:
        return self.get("results.json")

    @property
    def config(self) -> dict | None:
        return self.get("config.json")

    @property
    def classes(self) -> list[str]:
        """The run's class names: results.json ``classes``, else its metrics' (the canonical
        basic-7 order when neither is recorded)."""
        res = self.results or {}
        if res.get("classes"):
            return list(res["classes"])
        for split in ("test", "val"):
            m = (res.get("metrics") or {}).get(split) or {}
            if m.get("classes"):
                return list(m["classes"])
        return list(BASIC7)

    @property
    def sources(self) -> list[str]:
        """The sources of the program's source choice (results.json ``source_weights``); empty
        for a program without one (``kind`` "none"), whose report has no source-weight views."""
        res = self.results
        if res is None:   # unknown: the seed program's, so the sections say what is missing
            return list(SOURCES)
        if res.get("kind") == "none":
            return []
        return list(res.get("source_weights") or {})

    @property
    def t_values(self) -> dict[str, float]:
        """Learned ``t()`` values by readable name (results.json ``t_values``)."""
        return dict((self.results or {}).get("t_values") or {})

    @property
    def regime(self) -> str:
        return str((self.results or {}).get("regime") or (self.config or {}).get("regime") or self.name)

    @property
    def sweep(self) -> str | None:
        """The sweep suffix of the run's folder name (``n_train=250``), None for a base run."""
        m = _RUN_NAME.match(Path(self.name).name)
        return m["sweep"] if m else None

    @property
    def group(self) -> str:
        """What runs are averaged over seeds as: the regime plus any sweep suffix of the run's
        folder name ``<regime>-s<seed>[-<sweep>]`` (e.g. ``joint-n400``)."""
        m = _RUN_NAME.match(Path(self.name).name)
        return f"{m['regime']}-{m['sweep']}" if m and m["sweep"] else (m["regime"] if m else self.regime)

    @property
    def seed(self) -> Any:
        return (self.results or {}).get("seed", (self.config or {}).get("seed"))

    @property
    def data(self) -> dict:
        """The data provenance: results.json ``data``, else config.json ``provenance.data``."""
        res_data = (self.results or {}).get("data")
        if isinstance(res_data, dict) and res_data:
            return res_data
        prov = (self.config or {}).get("provenance") or {}
        return prov.get("data") or {}


@dataclass
class ExperimentInputs(Inputs):
    runs: list[RunInputs] = field(default_factory=list)

    @property
    def data(self) -> dict:
        exp = self.get("experiment.json") or {}
        if exp.get("data"):
            return exp["data"]
        return next((r.data for r in self.runs if r.data), {})


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    if not isinstance(obj, dict):
        raise ValueError("top level is not a JSON object")
    return obj


def _read_csv(path: Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    # ids are hex strings: keep them strings (an all-digit id must not become a number)
    df = pd.read_csv(path, dtype={"image_id": str})
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"lacks columns {missing}")
    return df


# file name -> (reader, required columns, what writes it: said when the file is absent)
_RUN_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "config.json": ("json", ()),
    "results.json": ("json", ()),
    "history.csv": ("csv", ("epoch",)),
    "predictions.csv": ("csv", ("image_id", "label", "pred")),
    "changes.json": ("json", ()),
}
_EXPERIMENT_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "experiment.json": ("json", ()),
    "comparison.csv": ("csv", ()),
    "bootstrap.csv": ("csv", ()),
    "memorisation.csv": ("csv", ("regime", "n_train", "val_accuracy")),
}


def _read_into(inp: Inputs, spec: dict[str, tuple[str, tuple[str, ...]]]) -> None:
    for name, (kind, required) in spec.items():
        path = inp.dir / name
        if not path.is_file():
            inp.absent[name] = f"{name} is absent in {inp.dir}"
            continue
        try:
            inp.files[name] = _read_json(path) if kind == "json" else _read_csv(path, required)
        except (OSError, ValueError) as e:  # unreadable, bad JSON/CSV (pandas' errors are ValueErrors): noted with the file named
            inp.absent[name] = f"{name} in {inp.dir} is unreadable: {e}"


def load_run(run_dir: str | Path, name: str | None = None) -> RunInputs:
    """Read every section-4 file of a run directory that exists and parses."""
    run_dir = Path(run_dir)
    inp = RunInputs(dir=run_dir, name=name or run_dir.name)
    _read_into(inp, _RUN_FILES)
    inp.files["has_scene_net"] = (run_dir / "scene_net.pt").is_file()
    return inp


def load_experiment(exp_dir: str | Path) -> ExperimentInputs:
    """Read an experiment directory and each run listed in experiment.json (or under runs/)."""
    exp_dir = Path(exp_dir)
    inp = ExperimentInputs(dir=exp_dir)
    _read_into(inp, _EXPERIMENT_FILES)
    exp = inp.get("experiment.json") or {}
    if exp.get("runs"):
        run_dirs = [exp_dir / r for r in exp["runs"]]
    else:
        run_dirs = sorted(p for p in (exp_dir / "runs").glob("*") if p.is_dir())
    for rd in run_dirs:
        if not rd.is_dir():
            inp.absent[f"run {rd.name}"] = f"run directory {rd} listed in experiment.json is absent"
            continue
        inp.runs.append(load_run(rd, name=str(rd.relative_to(exp_dir))))
    return inp


def is_experiment(path: str | Path) -> bool:
    path = Path(path)
    return (path / "experiment.json").is_file() or (path / "runs").is_dir()


def load(path: str | Path) -> RunInputs | ExperimentInputs:
    """A run or an experiment, told apart by experiment.json / runs/ versus results.json."""
    path = Path(path)
    if not path.is_dir():
        raise ReportInputError(f"{path}: not a directory")
    if is_experiment(path):
        return load_experiment(path)
    if any((path / f).is_file() for f in _RUN_FILES):
        return load_run(path)
    raise ReportInputError(
        f"{path}: neither a run directory (results.json, config.json, ...) nor an experiment "
        "directory (experiment.json, runs/)")
