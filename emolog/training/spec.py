"""Model specs: a program, its query, its label set and what feeds each neural predicate (TOML,
or the same keys as a Python dict: ``train_run({"spec": {"program": ..., ...}, ...})``).

A spec file (``emolog/training/specs/<name>.toml`` or any path) reads::

    program = "seed"              # a shipped program name, or a .pl path relative to this file
    query = "emotion(X, E)"       # X: the image, E: ranges over the label set
    labels = "basic7"             # basic7 | emo8 | plutchik24 | a file with one label a line

    [nets.scene_net]              # one table per neural predicate of the program
    bind = "scene_head"           # Scene2EmotionNet over the cached scene features
    [nets.face_net]
    bind = "cache.face_probs"     # the recogniser's cached distribution of each face slot
    [nets.available]
    bind = "cache.face_mask"

Bindings this emolog trains: ``scene_head`` (scene_net: a trainable or pretrained-then-frozen
Scene2EmotionNet over the cached scene features, sizes from the config's ``net_hidden`` /
``net_dropout``, output size the predicate's domain), ``cache.face_probs`` (face_net),
``cache.face_mask`` (available), ``gate`` (gate_net: ``GateNet`` over per-image evidence, the
config's ``extra.gate``), ``evidence.large_face`` / ``evidence.confident_face`` (the
discretised per-face facts of context_rules.pl), and for any predicate ``head``: a trainable
MLP with ``inputs`` (a list of ``scene_features`` = the cached scene vector,
``scene_classes`` = the scene backbone's own class distribution, e.g. Places365's 365, from its
classifier head on the cached features, ``face_probs`` = the K x 7 recogniser distributions,
``face_mask``), ``hidden`` (a list of layer sizes) and ``dropout``; it trains with the net
settings (``net_lr``, ...) in every regime that trains networks. The label set is matched to the query's
output domain by name: a difference is refused listing both sides.

``engine = "deep"`` makes ``query`` a DeepProbLog template over the image id ``I`` and its face
list ``Faces`` (specs/face_list.toml, ``emolog.training.deep_logic``): one circuit per face count.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from emolog.labels import BASIC7, LABEL_SETS
from emolog.training.config import ConfigError
from emolog.training.target import Target, parse_target

SPEC_DIR = Path(__file__).resolve().parent / "specs"
# neural predicate -> the bindings this emolog can feed it
BINDINGS: dict[str, tuple[str, ...]] = {"scene_net": ("scene_head",), "face_net": ("cache.face_probs",),
                                        "available": ("cache.face_mask",), "gate_net": ("gate",),
                                        "large": ("evidence.large_face",), "confident": ("evidence.confident_face",)}
# each binding feeds the network of this name inside emolog; a program's own name for it is
# renamed to this one when it is compiled (``renames``), so any name works in a program
CANONICAL: dict[str, str] = {b: net for net, binds in BINDINGS.items() for b in binds}
KEYS = {"name", "program", "query", "labels", "nets", "description", "engine", "target"}
ENGINES = ("circuit", "deep")
# a trainable head (an MLP) may feed any neural predicate, from these cached features
HEAD_INPUTS = ("scene_features", "scene_classes", "face_probs", "face_mask")


@dataclass
class Spec:
    """A parsed, validated spec (``load_spec``)."""

    name: str
    path: Path | None
    program: str                       # shipped name or absolute .pl path
    query: str
    classes: tuple[str, ...]
    label_set: str
    nets: dict[str, dict] = field(default_factory=dict)
    description: str = ""
    engine: str = "circuit"            # "deep": a DeepProbLog query template (emolog.training.deep_logic)
    target: Target | None = None       # valence/arousal bins as the classes (emolog.training.target)

    @property
    def renames(self) -> dict[str, str]:
        """{the program's network name: emolog's} for bindings whose network is named otherwise
        (``nn(expr, ...)`` bound to ``cache.face_probs`` is emolog's ``face_net``)."""
        return {n: CANONICAL[t["bind"]] for n, t in self.nets.items()
                if t["bind"] in CANONICAL and CANONICAL[t["bind"]] != n}

    def to_dict(self) -> dict:
        return {"name": self.name, "path": str(self.path) if self.path else None, "program": self.program,
                "query": self.query, "labels": self.label_set, "classes": list(self.classes),
                "nets": self.nets, "engine": self.engine, "renames": self.renames,
                "target": self.target.to_dict() if self.target else None}


def resolve_spec(name_or_path: str) -> Path:
    """A shipped spec name (``seed``, ``gated``, ``emo8_buckets``) or a .toml path."""
    p = Path(name_or_path)
    if p.is_dir():
        shipped = " (it shadows the shipped spec of that name: give its .toml path)" \
            if (SPEC_DIR / f"{name_or_path}.toml").is_file() else ""
        raise ConfigError(f"config key 'spec': {p} is a directory, not a spec file{shipped}")
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"config key 'spec': {p} does not exist")
        return p
    shipped = SPEC_DIR / f"{name_or_path}.toml"
    if not shipped.is_file():
        known = sorted(f.stem for f in SPEC_DIR.glob("*.toml"))
        raise ConfigError(f"config key 'spec': no spec {name_or_path!r}; shipped: {known}, or give a .toml path")
    return shipped


def load_spec(spec: str | dict) -> Spec:
    """Read and check a spec (not the program against it: ``check_program``): a shipped name,
    a .toml path, or a dict with the file's keys (a spec written in Python; relative paths in
    it are relative to the current directory)."""
    if isinstance(spec, dict):
        return _parse(dict(spec), "spec (a Python dict)", Path.cwd(), None, "python")
    path = resolve_spec(spec)
    try:
        d = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    return _parse(d, str(path), path.parent, path, path.stem)


def _parse(d: dict, where: str, base: Path, path: Path | None, default_name: str) -> Spec:
    """A spec's keys checked; ``where`` names it in errors, ``base`` resolves relative paths."""
    unknown = sorted(set(d) - KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(KEYS)}")
    target = parse_target(d["target"], where) if "target" in d else None
    if target is not None and "labels" in d:
        raise ConfigError(f"{where}: a spec with a [target] takes its classes from the target's bins; drop 'labels'")
    for key in ("program", "query") + (() if target else ("labels",)):
        if not isinstance(d.get(key), str) or not d[key]:
            raise ConfigError(f"{where}: key {key!r} is required (a string)")
    program = d["program"]
    if program.endswith(".pl"):
        program = str((base / program).resolve())
    labels = "target" if target else d["labels"]
    if target is not None:
        classes = target.classes
    elif labels in LABEL_SETS:
        classes = LABEL_SETS[labels]
    else:
        lp = (base / labels)
        if not lp.is_file():
            raise ConfigError(f"{where}: labels {labels!r} is neither one of {sorted(LABEL_SETS)} nor a file")
        lines = [x.strip() for x in lp.read_text().splitlines()]
        classes = tuple(x for x in lines if x and not x.startswith("#"))
        dup = sorted({x for x in classes if classes.count(x) > 1})
        if dup or not classes:
            raise ConfigError(f"{lp}: a label file needs distinct labels, one a line "
                              f"({f'repeated: {dup}' if dup else 'it has none'})")
    nets = d.get("nets", {})
    if not isinstance(nets, dict) or not all(isinstance(v, dict) and isinstance(v.get("bind"), str)
                                             for v in nets.values()):
        raise ConfigError(f"{where}: [nets.<predicate>] tables each need a 'bind' string")
    fed: dict[str, list[str]] = {}
    for n, t in nets.items():
        if t["bind"] in CANONICAL:
            fed.setdefault(CANONICAL[t["bind"]], []).append(n)
    for canon, names in fed.items():
        clash = names + ([canon] if canon in nets and canon not in names else [])
        if len(clash) > 1:
            raise ConfigError(f"{where}: {sorted(clash)} would all be emolog's {canon!r} (one network per "
                              f"binding {[b for b, c in CANONICAL.items() if c == canon]}); bind only one of them so")
    engine = d.get("engine", "circuit")
    if engine not in ENGINES:
        raise ConfigError(f"{where}: engine {engine!r} is not one of {list(ENGINES)}")
    return Spec(d.get("name", default_name), path, program, d["query"], classes, labels, nets,
                d.get("description", ""), engine, target)


def build_logic_module(program: str, semantics: str, param: str, spec: dict | None = None):
    """The compiled program of a run: a ``DeepLogic`` for a spec with ``engine = "deep"``
    (its ``query`` is the template), else ``emolog.logic.compile_program``'s module. With a
    spec, ``lm.output_functor`` is its query's predicate (the classes' answers are
    ``<functor>(<class>)``; without one, ``emotion``)."""
    if spec and spec.get("engine") == "deep":
        if semantics != "condition":
            raise ConfigError(f"spec {spec.get('name')}: a DeepProbLog program conditions on its evidence; "
                              f"semantics {semantics!r} does not apply (regime original forces 'original')")
        from emolog.training.deep_logic import build_deep
        lm = build_deep(program, spec["query"], param, spec.get("renames") or {})
    else:
        from emolog.logic import compile_program
        from emolog.logic.program import resolve_program
        text, path = resolve_program(program)
        new = text
        for own, canon in ((spec or {}).get("renames") or {}).items():   # nn(own, ...) -> nn(canon, ...)
            new = re.sub(rf"\bnn\(\s*{re.escape(own)}\s*,", f"nn({canon},", new)
        new += spec_queries(text, spec["query"], spec["classes"]) if spec else ""
        lm = compile_program(new, semantics=semantics, param=param, path=path) if new != text \
            else compile_program(program, semantics=semantics, param=param)
    if spec:
        lm.output_functor = query_functor(spec["query"])
    return lm


def spec_queries(text: str, query: str, classes: list[str] | tuple[str, ...]) -> str:
    """``query(<query with its last argument = c>).`` for each class c, to append to a program
    that declares no query/1 of its own (a DeepProbLog-style file, whose queries come from the
    data); "" when it has some."""
    if re.search(r"^\s*query\s*\(", text, re.MULTILINE):
        return ""
    from emolog.logic.templates import as_term, parse_template
    t = parse_template(query, "<spec query>")
    if not t.args:
        raise ConfigError(f"spec query {query!r}: needs an argument for the label, e.g. emotion(X, E)")
    lines = [f"query({t.with_args(*t.args[:-1], as_term(c, 'the label', query))})." for c in classes]
    return "\n% queries from the spec: one per label\n" + "\n".join(lines) + "\n"


def query_functor(query: str) -> str:
    """The answer predicate of a spec's query: ``emotion`` for ``emotion(X, E)``."""
    return query.split("(", 1)[0].strip()


def check_program(spec: Spec, lm) -> None:
    """The compiled program ``lm`` fits the spec: the query's domain equals the label set (by
    name) and every neural predicate has a binding this emolog can feed."""
    functor = query_functor(spec.query)
    # an atom that needs quotes (a label such as Joy) is written 'Joy' in the query names
    domain = [q[len(functor) + 1:-1].strip("'") for q in lm.query_names if q.startswith(functor + "(")]
    if set(domain) != set(spec.classes):
        raise ConfigError(f"{spec.path}: the query {spec.query} ranges over {sorted(domain)} but the label set "
                          f"{spec.label_set!r} is {sorted(spec.classes)} (only in the program: "
                          f"{sorted(set(domain) - set(spec.classes))}; only in the labels: "
                          f"{sorted(set(spec.classes) - set(domain))})")
    own = {canon: name for name, canon in spec.renames.items()}   # back to the program's names
    declared = sorted({own.get(k.split("(")[0], k.split("(")[0]) for k in list(lm.input_sizes) + list(lm.fact_keys)})
    if spec.engine == "deep":   # input_sizes lists only nn/4; its nn/2 and nn/3 need bindings too
        declared = sorted(lm.prog.nets)
    missing = [n for n in declared if n not in spec.nets]
    if missing:
        raise ConfigError(f"{spec.path}: neural predicate(s) {missing} of {lm.program.path} have no "
                          f"[nets.<name>] binding")
    for name, table in spec.nets.items():
        if name not in declared:
            raise ConfigError(f"{spec.path}: [nets.{name}] binds a neural predicate {lm.program.path} does not "
                              f"declare (it has {declared})")
        if table["bind"] == "head":
            _check_head(spec, name, table, lm)
            continue
        if table["bind"] not in CANONICAL:
            raise ConfigError(f"{spec.path}: [nets.{name}] bind = {table['bind']!r}: this emolog can feed a "
                              f"network with {[*CANONICAL, 'head']}")
        face_domain = net_domain(lm, "face_net") if table["bind"] == "cache.face_probs" else None
        if face_domain not in (None, list(BASIC7)):
            raise ConfigError(f"{spec.path}: [nets.{name}] reads the recogniser's distribution, which is over "
                              f"{list(BASIC7)} in this order; the program declares {face_domain}")
        unknown = sorted(set(table) - {"bind"})
        if unknown:
            raise ConfigError(f"{spec.path}: [nets.{name}] unknown key(s) {unknown}; a bind = "
                              f"{table['bind']!r} table takes only 'bind'")


def net_domain(lm, canon: str) -> list[str] | None:
    """The declared domain of emolog's network ``canon`` in the compiled program."""
    if hasattr(lm, "prog"):   # a DeepProbLog spec: the program's own names
        decl = lm.prog.nets.get(getattr(lm, "net_names", {}).get(canon, canon))
    else:
        decl = lm.program.neural.get(canon)
    return [str(d).strip("'") for d in decl.domain] if decl is not None and decl.domain else None


def _check_head(spec: Spec, name: str, table: dict, lm) -> None:
    unknown = sorted(set(table) - {"bind", "inputs", "hidden", "dropout"})
    inputs, hidden = table.get("inputs"), table.get("hidden", [64])
    if unknown:
        raise ConfigError(f"{spec.path}: [nets.{name}] unknown key(s) {unknown}; a head takes inputs, hidden, dropout")
    if not (isinstance(inputs, list) and inputs and set(inputs) <= set(HEAD_INPUTS)):
        raise ConfigError(f"{spec.path}: [nets.{name}] inputs must be a list of {list(HEAD_INPUTS)}, got {inputs!r}")
    if not (isinstance(hidden, list) and all(isinstance(h, int) and h > 0 for h in hidden)):
        raise ConfigError(f"{spec.path}: [nets.{name}] hidden must be a list of layer sizes, got {hidden!r}")
    if name not in lm.input_sizes:
        raise ConfigError(f"{spec.path}: [nets.{name}] is a head, but {name!r} is no neural predicate with a "
                          f"domain in {lm.program.path} (it has {sorted(lm.input_sizes)})")


def heads_of(spec: Spec | None) -> dict[str, dict]:
    """The spec's ``head`` bindings {predicate: table}."""
    return {} if spec is None else {n: t for n, t in spec.nets.items() if t["bind"] == "head"}
