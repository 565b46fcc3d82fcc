"""The one reader of a run directory's records (docs/architecture.md section 4).

``emolog.load_run`` (the Python API, ``emolog predict``, ``emolog analyse``), ``emolog train``'s
summary (``Results``) and the report read a run through this module, so that a run's class
list, its sources and the fields a results.json must hold are defined once.

A file that is missing becomes an ``absent`` note (a run without results.json is an
unfinished run; an experiment may lack a table). A file that is present but unreadable, that
differs from the sha256 its run's results.json (or experiment.json) records, or that the
record lists but is gone, is *broken*: ``Inputs.broken`` keeps its error. ``load_run`` raises
it; the report refuses to render unless ``--allow-partial``. Nothing is ever replaced by a
default value, so a reader can say exactly which input it lacked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from emolog.data.artefacts import (
    ArtefactError,
    ArtefactMissing,
    ChecksumError,
    check_fields,
    check_record,
    read_csv,
    read_json,
)
from emolog.labels import BASIC7, SOURCES
from emolog.model.kinds import ProgramKind, kind_named

# results.json's fields every reader of a trained model relies on (load_run, `experiment merge`)
RESULTS_FIELDS: dict[str, Any] = {
    "regime": str,
    "seed": int,
    "program": str,
    "semantics": str,
    "metrics": dict,
    "metrics_before": dict,
    "epochs_run": int,
    "train_time_s": (int, float),
}

# the fields a tagged (this emolog's) results.json / experiment.json always has
RECORD_FIELDS: dict[str, dict[str, Any]] = {
    "run": {"regime": str, "seed": int, "metrics": dict, "metrics_before": dict, "classes": list, "files": dict},
    "experiment": {"config": dict, "runs": list, "classes": list, "files": dict},
}

# run folders of an experiment: runs/<regime>-s<seed>[-<sweep>] (regimes contain hyphens)
_RUN_NAME = re.compile(r"^(?P<regime>.+?)-s(?P<seed>\d+)(?:-(?P<sweep>.+))?$")


def run_classes(results: dict | None) -> list[str]:
    """A run's class names: results.json ``classes``, else its metrics' (runs of an older
    emolog), else the canonical basic-7 order."""
    res = results or {}
    if res.get("classes"):
        return list(res["classes"])
    for split in ("test", "val"):
        m = (res.get("metrics") or {}).get(split) or {}
        if m.get("classes"):
            return list(m["classes"])
    return list(BASIC7)


@dataclass(frozen=True)
class Results:
    """results.json as typed fields (the file keeps its keys: this is a read-only view)."""

    regime: str
    seed: int
    program: str
    semantics: str
    classes: list[str]
    kind: ProgramKind  # results.json "kind", through ``kind_named``
    metrics: dict  # {"val": M, "test": M}
    metrics_before: dict  # {"test": M}
    source_weights: dict[str, float] | None
    true_source_weights: dict[str, float] | None
    t_values: dict[str, float]
    true_t_values: dict[str, float] | None
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    n_train: int
    train_time_s: float
    unscorable: dict
    sanity_warning: str | None

    @classmethod
    def from_dict(cls, d: dict, where: str = "results.json") -> "Results":
        """From a results.json dict read from ``where`` (runs of an older emolog lack some keys:
        their defaults); an unknown program kind is refused (``ArtefactError``)."""
        return cls(
            regime=d["regime"],
            seed=int(d["seed"]),
            program=d["program"],
            semantics=d["semantics"],
            classes=run_classes(d),
            kind=kind_named(d.get("kind", "global"), where),
            metrics=d["metrics"],
            metrics_before=d["metrics_before"],
            source_weights=d.get("source_weights"),
            true_source_weights=d.get("true_source_weights"),
            t_values=dict(d.get("t_values") or {}),
            true_t_values=d.get("true_t_values"),
            epochs_run=int(d["epochs_run"]),
            best_epoch=int(d.get("best_epoch", d["epochs_run"])),
            stopped_early=bool(d.get("stopped_early")),
            n_train=int(d.get("n_train", 0)),
            train_time_s=float(d["train_time_s"]),
            unscorable=dict(d.get("unscorable") or {"n": 0}),
            sanity_warning=d.get("sanity_warning"),
        )


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
class RunFiles(Inputs):
    """A run directory's records. ``name`` is its path relative to the experiment (or its
    folder name)."""

    name: str = ""

    @property
    def results(self) -> dict | None:
        return self.get("results.json")

    @property
    def config(self) -> dict | None:
        return self.get("config.json")

    @property
    def classes(self) -> list[str]:
        return run_classes(self.results)

    @property
    def sources(self) -> list[str]:
        """The sources of the program's source choice (results.json ``source_weights``); empty
        for a program without one (``kind`` "none"), whose report has no source-weight views."""
        res = self.results
        if res is None:  # unknown: the seed program's, so the sections say what is missing
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


Groups = dict[str, list[RunFiles]]  # runs by group (regime plus sweep suffix, ``RunFiles.group``)


def group_runs(runs: list[RunFiles]) -> Groups:
    """The runs by ``RunFiles.group`` (regime plus sweep suffix), in first-seen order."""
    groups: Groups = {}
    for r in runs:
        groups.setdefault(r.group, []).append(r)
    return groups


def base_groups(groups: Groups) -> Groups:
    """The groups of base runs (no sweep suffix), or every group when all are sweeps: per-group
    figures show these; sweeps appear in the comparison, the weights and the memorisation curve."""
    return {g: rs for g, rs in groups.items() if rs[0].sweep is None} or groups


def sources_of(runs: list[RunFiles]) -> list[str]:
    """The sources any of the runs' programs chooses between, in first-seen order."""
    return list(dict.fromkeys(s for r in runs for s in r.sources))


R = TypeVar("R", bound=RunFiles)

# file name -> (reader, required columns or fields). The first file of each table is the one
# written last, which records the others' sha256 ("files") when this emolog wrote it.
RUN_FILES: dict[str, tuple[str, Any]] = {
    "results.json": ("json", "run"),
    "config.json": ("json", {"regime": str}),
    "history.csv": ("csv", ("epoch",)),
    "predictions.csv": ("csv", ("image_id", "label", "pred")),
    "changes.json": ("json", {"layers": list, "flips": dict}),
}


def _read_one(path: Path, kind: str, required: Any, record: dict | None, record_path: Path) -> Any:
    if record is not None:
        check_record(path, record, record_path)
    if kind == "csv":
        # ids are hex strings: keep them strings (an all-digit id must not become a number)
        return read_csv(path, required, dtype={"image_id": str})
    if isinstance(required, str):  # the file written last: its format, and its fields once tagged
        obj = read_json(path, required)
        if obj.get("format"):
            check_fields(obj, RECORD_FIELDS[required], path)
        if required == "run" and "kind" in obj:  # refused here, so that the views read a known kind
            kind_named(obj["kind"], str(path))
        return obj
    return read_json(path, required=required)


def read_into(inp: Inputs, spec: dict[str, tuple[str, Any]]) -> None:
    """Read each file of ``spec`` (the first one the record of the others) into ``inp``."""
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
        except (ArtefactError, ArtefactMissing, ChecksumError) as e:  # the message names the file
            inp.absent[name] = f"{name} in {inp.dir} is unusable: {e}"
            inp.broken[name] = e


def read_run_files(run: R, names: tuple[str, ...] = tuple(RUN_FILES)) -> R:
    """Read into ``run`` (a ``RunFiles``, or ``reader.Run``, of the directory ``run.dir``) the
    files ``names`` (results.json first: it records the others' sha256) that exist and parse;
    returns ``run``."""
    read_into(run, {n: RUN_FILES[n] for n in names})
    return run


def raise_broken(inp: Inputs) -> None:
    """Raise the error of ``inp``'s first unusable file (its message names the file)."""
    if inp.broken:
        raise next(iter(inp.broken.values()))


def read_results(run_dir: str | Path) -> dict:
    """``run_dir``'s results.json as the one reader reads it (format, fields of a tagged record
    and program kind checked); a missing or unusable one raised, naming the file."""
    files = read_run_files(RunFiles(Path(run_dir)), ("results.json",))
    raise_broken(files)
    if files.results is None:
        raise ArtefactMissing(f"{Path(run_dir) / 'results.json'}: missing (not a finished run)")
    return files.results
