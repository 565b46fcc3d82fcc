"""Model specs: a program, its query template, its label set and what feeds each neural predicate
(TOML, or the same keys as a Python dict: ``train_run({"spec": {"program": ..., ...}, ...})``).
docs/model.md, section 5b, is the reference; in short::

    program = "va.pl"                 # a .pl file (relative to this spec) or a shipped program name
    query = "emotion(Faces, tensor(scene(I)), E)"   # DeepProbLog query template: the label is
                                      # the last argument, Faces the image's face list, the one
                                      # other variable the image (or say which: image = "X")
    labels = "emo8"                   # basic7 | emo8 | plutchik24 | a file with one label a line
    label_values = "position"         # optional: the program's value for each label (a table, a file)

    [nets.expr]                       # one table per neural predicate, by the program's own name
    bind = "cache.face_probs"         # cache.<field> | head | function | scene_head | gate | evidence.*
    [nets.expr.class_map]             # optional: domain value = feed class(es)
    joy = "happy"

    [foreign.nearest]                 # a Python predicate the program calls (register_foreign)
    function = "va_tools:nearest"
    arity_in = 2
    arity_out = 1

Everything in it is checked here and in ``bindings.schema`` before anything is compiled
(``SpecError``: exit 3, one line naming the spec file and the network).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emolog.data.artefacts import ArtefactMissing, read_bytes
from emolog.labels import LABEL_SETS
from emolog.model.bindings.maps import label_values as parse_label_values
from emolog.model.bindings.schema import Foreign, NetBinding, SpecError, parse_foreign, parse_nets
from emolog.config.run import ConfigError
from emolog.model.target import Target, parse_target

SPEC_DIR = Path(__file__).resolve().parent / "specs"
KEYS = {
    "name",
    "program",
    "query",
    "image",
    "labels",
    "label_values",
    "nets",
    "foreign",
    "description",
    "engine",
    "target",
}

__all__ = ["SPEC_DIR", "Spec", "SpecError", "load_spec", "query_functor", "resolve_spec"]


@dataclass
class Spec:
    """A parsed, checked spec (``load_spec``)."""

    name: str
    path: Path | None
    base: Path  # relative paths in the spec (program, labels, modules)
    program: str  # a shipped program name or an absolute .pl path
    query: str  # the template as written
    template: str  # the template with the image variable named I
    image: str | None  # the image variable as written (None: the template has none)
    classes: tuple[str, ...]
    label_set: str
    label_values: dict[str, Any] | None = None
    nets: dict[str, NetBinding] = field(default_factory=dict)
    foreign: dict[str, Foreign] = field(default_factory=dict)
    description: str = ""
    notes: list[str] = field(default_factory=list)
    target: Target | None = None  # valence/arousal bins as the classes (emolog.model.target)

    @property
    def where(self) -> str:
        """How errors name this spec: its file, or that it was written in Python."""
        return str(self.path) if self.path else "spec (a Python dict)"

    @property
    def functor(self) -> str:
        return query_functor(self.query)

    def value_of(self, label: str) -> Any:
        """The program's output value for a label (the label itself without a label table)."""
        return label if self.label_values is None else self.label_values[label]

    def record(self) -> dict:
        """JSON-able, read back by ``Spec.from_record`` (config.json, results.json, load_run)."""
        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "program": self.program,
            "query": self.query,
            "image": self.image,
            "labels": self.label_set,
            "classes": list(self.classes),
            "label_values": self.label_values,
            "nets": {n: b.record() for n, b in self.nets.items()},
            "foreign": {n: f.record() for n, f in self.foreign.items()},
            "description": self.description,
            "notes": list(self.notes),
            "base": str(self.base),
            "target": self.target.to_dict() if self.target else None,
        }

    @staticmethod
    def from_record(d: dict) -> "Spec":
        """A recorded spec (``record``; a run of an earlier emolog: its keys) read back."""
        base = Path(d.get("base") or (Path(d["path"]).parent if d.get("path") else Path.cwd()))
        keys = {k: v for k, v in d.items() if k in KEYS and k not in ("labels", "target")}
        keys["labels"] = "<recorded>"
        target = Target.from_dict(d["target"]) if d.get("target") else None
        return _parse(
            keys,
            d.get("path") or "spec (a Python dict)",
            base,
            Path(d["path"]) if d.get("path") else None,
            d.get("name", "spec"),
            tuple(d["classes"]),
            d.get("labels", "<recorded>"),
            target,
        )


def resolve_spec(name_or_path: str) -> Path:
    """A shipped spec name (``seed``, ``gated``, ``emo8_buckets``) or a .toml path."""
    p = Path(name_or_path)
    if p.is_dir():
        shipped = (
            " (it shadows the shipped spec of that name: give its .toml path)"
            if (SPEC_DIR / f"{name_or_path}.toml").is_file()
            else ""
        )
        raise ConfigError(f"config key 'spec': {p} is a directory, not a spec file{shipped}")
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ArtefactMissing(f"config key 'spec': {p} does not exist")
        return p
    shipped = SPEC_DIR / f"{name_or_path}.toml"
    if not shipped.is_file():
        known = sorted(f.stem for f in SPEC_DIR.glob("*.toml"))
        raise ConfigError(f"config key 'spec': no spec {name_or_path!r}; shipped: {known}, or give a .toml path")
    return shipped


def load_spec(spec: str | dict) -> Spec:
    """Read and check a spec: a shipped name, a .toml path, or a dict with the file's keys (a
    spec written in Python; relative paths in it are relative to the current directory)."""
    if isinstance(spec, dict):
        if "classes" in spec:  # a run's record (config.json)
            return Spec.from_record(spec)
        return _parse(dict(spec), "spec (a Python dict)", Path.cwd(), None, "python")
    path = resolve_spec(spec)
    try:
        d = tomllib.loads(read_bytes(path, "a model spec (TOML)").decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text, so not a TOML spec") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML ({e})") from None
    return _parse(d, str(path), path.parent, path, path.stem)


def _parse(
    d: dict,
    where: str,
    base: Path,
    path: Path | None,
    default_name: str,
    classes: tuple[str, ...] | None = None,
    label_set: str | None = None,
    target: Target | None = None,
) -> Spec:
    """A spec's keys checked; ``where`` names it in errors, ``base`` resolves relative paths."""
    unknown = sorted(set(d) - KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; known: {sorted(KEYS)}")
    if "target" in d:
        if "labels" in d:
            raise SpecError(f"{where}: a spec with a [target] takes its classes from the target's bins; drop 'labels'")
        target = parse_target(d["target"], where)
    for key in ("program", "query") + (() if target else ("labels",)):
        if not isinstance(d.get(key), str) or not d[key]:
            raise SpecError(f"{where}: key {key!r} is required (a string)")
    notes = []
    if "engine" in d:  # emolog now chooses how to compile every program itself
        notes.append(
            f"{where}: the key engine = {d['engine']!r} is no longer needed and was ignored (emolog "
            "compiles every program itself); remove it"
        )
    program = d["program"]
    if program.endswith(".pl"):
        program = str((base / program).resolve())
        if not Path(program).is_file():
            raise SpecError(f"{where}: program {d['program']!r}: no such file {program}")
    if classes is None:
        classes, label_set = (target.classes, "target") if target else (_classes(d["labels"], base, where), d["labels"])
    template, image = _template(d["query"], d.get("image"), where)
    try:
        values = parse_label_values(d.get("label_values"), classes, base, f"{where}:")
    except ValueError as e:
        raise SpecError(str(e)) from None
    nets = parse_nets(d.get("nets", {}), where, base)
    foreign = parse_foreign(d.get("foreign", {}), where, base)
    return Spec(
        d.get("name", default_name),
        path,
        base,
        program,
        d["query"],
        template,
        image,
        tuple(classes),
        label_set,
        values,
        nets,
        foreign,
        d.get("description", ""),
        notes,
        target,
    )


def _classes(labels: str, base: Path, where: str) -> tuple[str, ...]:
    if labels in LABEL_SETS:
        return LABEL_SETS[labels]
    lp = base / labels
    if not lp.is_file():
        raise SpecError(f"{where}: labels {labels!r} is neither one of {sorted(LABEL_SETS)} nor a file")
    lines = [x.strip() for x in lp.read_text().splitlines()]
    classes = tuple(x for x in lines if x and not x.startswith("#"))
    dup = sorted({x for x in classes if classes.count(x) > 1})
    if dup or not classes:
        raise SpecError(
            f"{lp}: a label file needs distinct labels, one a line ({f'repeated: {dup}' if dup else 'it has none'})"
        )
    return classes


def _template(query: str, image: Any, where: str) -> tuple[str, str | None]:
    """(the template with the image variable renamed I, the image variable as written).

    The label is the template's last argument (a variable), ``Faces`` the face list, and the
    image the one other variable (``image = "X"`` names it when there are several)."""
    from problog.logic import Var

    from emolog.logic import ProgramError
    from emolog.logic.templates import parse_template

    try:
        t = parse_template(query, where)
    except ProgramError as e:
        raise SpecError(f"{where}: query {query!r} does not parse ({e.message})") from None
    if not t.args or not isinstance(t.args[-1], Var):
        raise SpecError(
            f"{where}: query {query!r}: its last argument must be a variable, the label (e.g. {t.functor}(..., E))"
        )
    label = str(t.args[-1])
    others = sorted({str(v) for v in t.variables()} - {label, "Faces"})
    if image is not None:
        if image not in others:
            raise SpecError(
                f"{where}: image = {image!r} is not a variable of the query {query!r} "
                f"(its variables besides the label and Faces: {others})"
            )
    elif len(others) > 1:
        raise SpecError(
            f"{where}: the query {query!r} has the variables {others} besides the label {label} and "
            f"Faces; say which is the image, e.g. image = {others[0]!r}"
        )
    else:
        image = others[0] if others else None
    if image is not None and image != "I":
        if "I" in others:
            raise SpecError(
                f"{where}: the query {query!r} uses I for something other than the image {image}; rename it"
            )
        t = t.apply_term({Var(image): Var("I")})
    return str(t), image


def query_functor(query: str) -> str:
    """The answer predicate of a spec's query: ``emotion`` for ``emotion(X, E)``."""
    return query.split("(", 1)[0].strip()
