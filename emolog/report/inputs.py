"""Read a run or experiment directory (docs/architecture.md section 4) for the report.

A file that is missing becomes an ``absent`` note (a run without results.json is an
unfinished run; an experiment may lack a table). A file that is present but unreadable, that
differs from the sha256 its run's results.json (or experiment.json) records, or that the
record lists but is gone, is *broken*: ``Inputs.broken`` keeps its error, and ``build_report``
refuses to render unless ``--allow-partial`` (the page's first line then names it). Nothing
is ever replaced by a default value, so the report can say, per section, exactly which input
it lacked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emolog.data.artefacts import ArtefactError, ArtefactMissing, ChecksumError, check_fields, check_record, \
    read_csv, read_json
from emolog.errors import InputError
from emolog.labels import BASIC7, SOURCES
from emolog.model.kinds import kind_named

# the fields a tagged (this emolog's) results.json / experiment.json always has
RECORD_FIELDS: dict[str, dict[str, Any]] = {
    "run": {"regime": str, "seed": int, "metrics": dict, "metrics_before": dict, "classes": list,
            "files": dict},
    "experiment": {"config": dict, "runs": list, "classes": list, "files": dict},
}

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
    broken: dict[str, Exception] = field(default_factory=dict)  # file name -> why it cannot be used

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
        if "kind" in res and not kind_named(res["kind"], str(self.dir / "results.json")).has_sources:
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


# file name -> (reader, required columns or fields). The first file of each table is the one
# written last, which records the others' sha256 ("files") when this emolog wrote it.
_RUN_FILES: dict[str, tuple[str, Any]] = {
    "results.json": ("json", "run"),
    "config.json": ("json", {"regime": str}),
    "history.csv": ("csv", ("epoch",)),
    "predictions.csv": ("csv", ("image_id", "label", "pred")),
    "changes.json": ("json", {"layers": list, "flips": dict}),
}
_EXPERIMENT_FILES: dict[str, tuple[str, Any]] = {
    "experiment.json": ("json", "experiment"),
    "comparison.csv": ("csv", ()),
    "bootstrap.csv": ("csv", ()),
    "memorisation.csv": ("csv", ("regime", "n_train", "val_accuracy")),
}


def _read_one(path: Path, kind: str, required: Any, record: dict | None, record_path: Path) -> Any:
    if record is not None:
        check_record(path, record, record_path)
    if kind == "csv":
        # ids are hex strings: keep them strings (an all-digit id must not become a number)
        return read_csv(path, required, dtype={"image_id": str})
    if isinstance(required, str):   # the file written last: its format, and its fields once tagged
        obj = read_json(path, required)
        if obj.get("format"):
            check_fields(obj, RECORD_FIELDS[required], path)
        if required == "run" and "kind" in obj:   # refused here, so that the views read a known kind
            kind_named(obj["kind"], str(path))
        return obj
    return read_json(path, required=required)


def _read_into(inp: Inputs, spec: dict[str, tuple[str, Any]]) -> None:
    last = next(iter(spec))
    record_path = inp.dir / last
    for name, (kind, required) in spec.items():
        path = inp.dir / name
        record = (inp.files.get(last) or {}).get("files") if name != last else None
        if not path.is_file() and not (record and name in record):
            inp.absent[name] = f"{name} is absent in {inp.dir}"
            continue
        try:
            inp.files[name] = _read_one(path, kind, required, record, record_path)
        except (ArtefactError, ArtefactMissing, ChecksumError) as e:   # the message names the file
            inp.absent[name] = f"{name} in {inp.dir} is unusable: {e}"
            inp.broken[name] = e


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
    if (exp_dir / "experiment.json").is_file():
        _read_into(inp, _EXPERIMENT_FILES)
    else:   # an unfinished experiment: tables on disk may be an earlier run's, and nothing vouches for them
        for name in _EXPERIMENT_FILES:
            inp.absent[name] = (f"{name} is absent in {exp_dir}" if name == "experiment.json" else
                                f"{name} is not read: experiment.json is absent in {exp_dir} (an unfinished "
                                "experiment), and only it vouches for the tables")
    exp = inp.get("experiment.json") or {}
    if exp.get("runs"):
        run_dirs = [exp_dir / r for r in exp["runs"]]
    else:
        run_dirs = sorted(p for p in (exp_dir / "runs").glob("*") if p.is_dir())
    record = exp.get("files")
    for rd in run_dirs:
        if not rd.is_dir() and not (record and f"{rd.relative_to(exp_dir)}/results.json" in record):
            inp.absent[f"run {rd.name}"] = f"run directory {rd} listed in experiment.json is absent"
            continue
        run = load_run(rd, name=str(rd.relative_to(exp_dir)))
        try:   # the run as the experiment's tables saw it
            check_record(rd / "results.json", record, exp_dir / "experiment.json", key=f"{run.name}/results.json")
        except (ArtefactMissing, ChecksumError) as e:
            run.absent["results.json"] = f"results.json in {rd} is unusable: {e}"
            run.broken["results.json"] = e
        inp.runs.append(run)
    return inp


def broken_inputs(inp: Inputs) -> list[tuple[str, Exception]]:
    """(where, error) of every input that is present but unusable, the runs' included."""
    out = [(str(inp.dir / name), e) for name, e in inp.broken.items()]
    for run in getattr(inp, "runs", []):
        out += [(str(run.dir / name), e) for name, e in run.broken.items()]
    return out


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
