"""Read a run or experiment directory (docs/architecture.md section 4) for the report.

A run is read by the one reader of a run's records (``emolog.runs.record``: absent and broken
files, the class list); an experiment adds experiment.json, its tables, and each run as the
experiment's record vouches for it. ``build_report`` refuses to render a broken input unless
``--allow-partial`` (the page's first line then names it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emolog.data.artefacts import ArtefactMissing, ChecksumError, check_record
from emolog.errors import InputError
from emolog.runs.record import RUN_FILES, Inputs, RunFiles, read_into, read_run_files


class ReportInputError(InputError, ValueError):
    """The directory is neither a run nor an experiment directory."""


@dataclass
class ExperimentInputs(Inputs):
    runs: list[RunFiles] = field(default_factory=list)

    @property
    def data(self) -> dict:
        exp = self.get("experiment.json") or {}
        if exp.get("data"):
            return exp["data"]
        return next((r.data for r in self.runs if r.data), {})


# file name -> (reader, required columns or fields); experiment.json, written last, records
# the others' sha256 ("files") when this emolog wrote it
_EXPERIMENT_FILES: dict[str, tuple[str, Any]] = {
    "experiment.json": ("json", "experiment"),
    "comparison.csv": ("csv", ()),
    "bootstrap.csv": ("csv", ()),
    "memorisation.csv": ("csv", ("regime", "n_train", "val_accuracy")),
}


def load_run(run_dir: str | Path, name: str | None = None) -> RunFiles:
    """Read every section-4 file of a run directory that exists and parses."""
    run_dir = Path(run_dir)
    inp = read_run_files(RunFiles(run_dir, name=name or run_dir.name))
    inp.files["has_scene_net"] = (run_dir / "scene_net.pt").is_file()
    return inp


def load_experiment(exp_dir: str | Path) -> ExperimentInputs:
    """Read an experiment directory and each run listed in experiment.json (or under runs/)."""
    exp_dir = Path(exp_dir)
    inp = ExperimentInputs(dir=exp_dir)
    if (exp_dir / "experiment.json").is_file():
        read_into(inp, _EXPERIMENT_FILES)
    else:  # an unfinished experiment: tables on disk may be an earlier run's, and nothing vouches for them
        for name in _EXPERIMENT_FILES:
            inp.absent[name] = (
                f"{name} is absent in {exp_dir}"
                if name == "experiment.json"
                else f"{name} is not read: experiment.json is absent in {exp_dir} (an unfinished "
                "experiment), and only it vouches for the tables"
            )
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
        try:  # the run as the experiment's tables saw it
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


def load(path: str | Path) -> RunFiles | ExperimentInputs:
    """A run or an experiment, told apart by experiment.json / runs/ versus results.json."""
    path = Path(path)
    if not path.is_dir():
        raise ReportInputError(f"{path}: not a directory")
    if is_experiment(path):
        return load_experiment(path)
    if any((path / f).is_file() for f in RUN_FILES):
        return load_run(path)
    raise ReportInputError(
        f"{path}: neither a run directory (results.json, config.json, ...) nor an experiment "
        "directory (experiment.json, runs/)"
    )
