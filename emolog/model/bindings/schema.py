"""A spec's ``[nets.<name>]`` and ``[foreign.<name>]`` tables read into ``NetBinding`` /
``Foreign`` and checked against the program's declared networks (``check_nets``) and against
the data (``check_data``) before anything is compiled or trained.

``bind`` says what feeds the network:

* ``cache.<field>``: the cached tensor itself is the network's output (a distribution field
  for an ``nn/4`` network, through an optional ``class_map``; a probability field for an
  ``nn/2`` fact), read at the input's address (``fields.address``, ``slots``);
* ``head``: a trainable MLP (``hidden = [64]``, ``dropout``) over ``inputs``: cache fields read
  at the address and/or ``args``, the numbers and atoms the program passes (an atom argument
  one-hot over ``domains = {<position> = [atoms]}``);
* ``function``: a Python callable (``function = "module:name"``, or the function itself in a
  spec written in Python) over the same ``inputs`` (default ``["args"]``), returning
  probabilities;
* ``scene_head``: emolog's Scene2EmotionNet over the cached scene features (pretrainable);
* ``gate``: the GateNet over per-image evidence (a source choice over scene, face1..3);
* ``evidence.large_face`` / ``evidence.confident_face``: per-face facts from the cache.

Every mistake is a ``SpecError`` (exit 3): one line naming the spec file, the network, what
was expected, what was given, and the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from emolog.model.bindings.fields import EVIDENCE, FIELDS, OLD_HEAD_INPUTS, field_of
from emolog.model.bindings.maps import class_map_matrix
from emolog.config.run import ConfigError

KINDS = ("head", "function", "scene_head", "gate")
KEYS = {"bind", "class_map", "slots", "inputs", "hidden", "dropout", "domains", "function"}
ALLOWED = {
    "cache": {"bind", "class_map", "slots"},
    "evidence": {"bind", "slots"},
    "scene_head": {"bind"},
    "gate": {"bind"},
    "head": {"bind", "inputs", "hidden", "dropout", "domains", "slots"},
    "function": {"bind", "function", "inputs", "domains", "slots"},
}


class SpecError(ConfigError):
    """A spec or binding mistake (exit 3): the message names the spec file and the network."""


@dataclass
class NetBinding:
    """One ``[nets.<name>]`` table, checked."""

    name: str
    bind: str
    inputs: tuple[str, ...] = ()
    hidden: tuple[int, ...] = (64,)
    dropout: float | None = None
    function: Any = None  # "module:name" or a callable
    class_map: Any = None
    slots: dict[str, int] | None = None
    domains: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.bind.split(".", 1)[0] if "." in self.bind else self.bind

    def record(self) -> dict:
        """The table as the run records it (a function as ``module:name``)."""
        out: dict[str, Any] = {"bind": self.bind}
        if self.family in ("head", "function"):
            out["inputs"] = list(self.inputs)
        if self.family == "head":
            out["hidden"] = list(self.hidden)
            if self.dropout is not None:
                out["dropout"] = self.dropout
        if self.function is not None:
            out["function"] = function_name(self.function)
        if self.class_map is not None:
            out["class_map"] = self.class_map
        if self.slots is not None:
            out["slots"] = dict(self.slots)
        if self.domains:
            out["domains"] = {str(k): list(v) for k, v in self.domains.items()}
        return out


@dataclass
class Foreign:
    """A ``[foreign.<name>]`` Python predicate (DeepProbLog's ``register_foreign``)."""

    name: str
    function: Any
    arity_in: int
    arity_out: int

    def record(self) -> dict:
        return {"function": function_name(self.function), "arity_in": self.arity_in, "arity_out": self.arity_out}


def function_name(fn: Any) -> str:
    return fn if isinstance(fn, str) else f"{fn.__module__}:{fn.__qualname__}"


def resolve_function(ref: Any, base: Path, where: str) -> Callable:
    """A callable from ``module:name``: a module beside the spec (``<base>/module.py``), a .py
    file relative to it (``../tools.py:name``) or a module importable as is."""
    if callable(ref):
        return ref
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise SpecError(
            f'{where} function must be "module:name" or "file.py:name" (e.g. "va_tools:nearest_emotion"), got {ref!r}'
        )
    mod_name, attr = ref.split(":")
    local = base / (mod_name if mod_name.endswith(".py") else mod_name.replace(".", "/") + ".py")
    try:
        if local.is_file():
            key = f"emolog_spec_{abs(hash(str(local)))}_{local.stem}"
            mod = sys.modules.get(key)
            if mod is None:
                spec = importlib.util.spec_from_file_location(key, local)
                mod = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mod)
                sys.modules[key] = mod
        else:
            mod = importlib.import_module(mod_name)
        fn = mod
        for part in attr.split("."):
            fn = getattr(fn, part)
    except Exception as e:  # any import failure of user code: said in one line
        raise SpecError(
            f"{where} function {ref!r} cannot be imported ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); give module:name of a module beside the "
            "spec or on the Python path, or file.py:name relative to the spec"
        ) from None
    if not callable(fn):
        raise SpecError(f"{where} function {ref!r} is not callable")
    return fn


def function_version(fn: Callable) -> str:
    """The function's source text where Python has it (its name otherwise): a foreign
    predicate's answers are compiled into the program's circuits, so another version of
    the function must not reuse them."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return function_name(fn)


def parse_nets(nets: Any, where: str, base: Path) -> dict[str, NetBinding]:
    if not isinstance(nets, dict) or not all(isinstance(v, dict) for v in nets.values()):
        raise SpecError(f"{where}: [nets.<name>] must be tables, one per neural predicate")
    out = {name: _parse_net(name, t, f"{where}: [nets.{name}]", base) for name, t in nets.items()}
    for family in ("scene_head", "gate"):
        names = sorted(n for n, b in out.items() if b.bind == family)
        if len(names) > 1:
            raise SpecError(
                f"{where}: [nets.{names[1]}] bind = {family!r} is already the binding of "
                f"[nets.{names[0]}]: emolog has one {family}; bind the other network another way"
            )
    return out


def _parse_net(name: str, t: dict, where: str, base: Path) -> NetBinding:
    bind = t.get("bind")
    family = _family(bind, where)
    unknown = sorted(set(t) - ALLOWED[family])
    if unknown:
        raise SpecError(f"{where} unknown key(s) {unknown}; a bind = {bind!r} table takes {sorted(ALLOWED[family])}")
    b = NetBinding(
        name,
        bind,
        class_map=t.get("class_map"),
        slots=_slots(t.get("slots"), where),
        domains=_domains(t.get("domains", {}), where),
    )
    if family in ("head", "function"):
        b.inputs = _inputs(t.get("inputs", ["args"] if family == "function" else None), where)
    if family == "head":
        b.hidden, b.dropout = _hidden(t, where), _dropout(t, where)
    if family == "function":
        b.function = _function(t, where, base)
    if b.class_map is not None and (field_of(bind) is None or field_of(bind).kind != "distribution"):
        raise SpecError(
            f"{where} class_map maps the classes of a distribution feed (cache.face_probs, "
            f"cache.scene_classes); {bind!r} has none"
        )
    return b


def _family(bind: Any, where: str) -> str:
    """The family of a known ``bind`` (``cache``, ``evidence`` or one of KINDS)."""
    if not isinstance(bind, str) or not bind:
        raise SpecError(
            f'{where} needs bind = "..." (cache.<field>, head, function, scene_head, gate, '
            "evidence.large_face, evidence.confident_face)"
        )
    family = bind.split(".", 1)[0] if "." in bind else bind
    if family == "cache":
        ok = bind[len("cache.") :] in FIELDS
    elif family == "evidence":
        ok = bind in EVIDENCE
    else:
        ok = family in KINDS
    if not ok:
        known = [f"cache.{f}" for f in FIELDS] + list(EVIDENCE) + list(KINDS)
        raise SpecError(f"{where} bind = {bind!r} is no feed emolog knows; choose one of {known}")
    return family


def _hidden(t: dict, where: str) -> tuple[int, ...]:
    """A head's hidden layer sizes (default [64]), each a positive integer."""
    hidden = t.get("hidden", [64])
    if not (isinstance(hidden, list) and all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden)):
        raise SpecError(f"{where} hidden must be a list of layer sizes such as [64], got {hidden!r}")
    return tuple(hidden)


def _dropout(t: dict, where: str) -> float | None:
    """A head's dropout in [0, 1) (None: the run's net_dropout)."""
    if "dropout" in t and not (isinstance(t["dropout"], (int, float)) and 0 <= t["dropout"] < 1):
        raise SpecError(f"{where} dropout must be a number in [0, 1), got {t['dropout']!r}")
    return t.get("dropout")


def _function(t: dict, where: str, base: Path) -> Any:
    """A function binding's ``function``, resolved now so a bad one is refused before compiling."""
    if "function" not in t:
        raise SpecError(f'{where} bind = "function" needs function = "module:name"')
    resolve_function(t["function"], base, where)
    return t["function"]


def _inputs(inputs: Any, where: str) -> tuple[str, ...]:
    ok = [f"cache.{f}" for f in FIELDS] + ["args"]
    if not (isinstance(inputs, list) and inputs and all(isinstance(x, str) for x in inputs)):
        raise SpecError(f"{where} inputs must be a list of feeds from {ok}, got {inputs!r}")
    inputs = [OLD_HEAD_INPUTS.get(x, x) for x in inputs]
    bad = [x for x in inputs if x not in ok]
    if bad:
        raise SpecError(f"{where} inputs {bad} are no feeds emolog knows; choose from {ok}")
    return tuple(inputs)


def _slots(slots: Any, where: str) -> dict[str, int] | None:
    if slots is None:
        return None
    if not (
        isinstance(slots, dict)
        and slots
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in slots.values())
    ):
        raise SpecError(f"{where} slots must be a table {{atom = face slot (1, 2, ...)}}, got {slots!r}")
    return {str(k): int(v) for k, v in slots.items()}


def _domains(domains: Any, where: str) -> dict[int, tuple[str, ...]]:
    out = {}
    if not isinstance(domains, dict):
        raise SpecError(f"{where} domains must be a table {{argument position = [atoms]}}, got {domains!r}")
    for k, v in domains.items():
        if not (str(k).isdigit() and int(k) >= 1 and isinstance(v, list) and v and all(isinstance(x, str) for x in v)):
            raise SpecError(f"{where} domains: {k} = {v!r}: give an argument position (1, 2, ...) = [atoms]")
        out[int(k)] = tuple(v)
    return out


def parse_foreign(table: Any, where: str, base: Path) -> dict[str, Foreign]:
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise SpecError(f"{where}: [foreign.<name>] must be tables, one per Python predicate")
    out = {}
    for name, t in table.items():
        w = f"{where}: [foreign.{name}]"
        unknown = sorted(set(t) - {"function", "arity_in", "arity_out"})
        if unknown:
            raise SpecError(f"{w} unknown key(s) {unknown}; it takes function, arity_in, arity_out")
        ai, ao = t.get("arity_in"), t.get("arity_out", 1)
        if not (isinstance(ai, int) and ai >= 0 and isinstance(ao, int) and ao >= 1):
            raise SpecError(
                f"{w} needs arity_in (inputs, >= 0) and arity_out (outputs, >= 1) as integers, got {ai!r} / {ao!r}"
            )
        if "function" not in t:
            raise SpecError(f'{w} needs function = "module:name"')
        resolve_function(t["function"], base, w)
        out[name] = Foreign(name, t["function"], ai, ao)
    return out


def check_nets(where: str, bindings: dict[str, NetBinding], nets: dict, program: str) -> None:
    """The program's declared networks (``DeepProgram.nets``: name -> Net with kind ad / fact /
    det and domain) against the spec's bindings, before anything is compiled."""
    missing = sorted(set(nets) - set(bindings))
    if missing:
        raise SpecError(
            f"{where}: neural predicate(s) {missing} of {program} have no binding: add a "
            f'[nets.{missing[0]}] table with bind = "cache.<field>", "head", "function", ...'
        )
    extra = sorted(set(bindings) - set(nets))
    if extra:
        raise SpecError(
            f"{where}: [nets.{extra[0]}] binds a network {program} does not declare (it declares {sorted(nets)})"
        )
    for name, b in bindings.items():
        _check_net(f"{where}: [nets.{name}]", b, nets[name])


def _check_net(where: str, b: NetBinding, decl) -> None:
    if decl.kind == "det":
        raise SpecError(
            f"{where} is a deterministic network (nn/3), whose output is a tensor other networks "
            "read: training one from a spec is not supported; declare it nn/4 or nn/2"
        )
    shape = "nn/4 (a distribution over its domain)" if decl.kind == "ad" else "nn/2 (one probability)"
    fld = field_of(b.bind)
    if fld is not None:
        want = "distribution" if decl.kind == "ad" else "probability"
        if fld.kind != want:
            fix = (
                'feed it through a head: bind = "head", inputs = ["%s"]' % b.bind
                if fld.kind == "features"
                else ("bind it to a distribution field" if decl.kind == "ad" else "bind it to a probability field")
            )
            raise SpecError(f"{where} is {shape}, but {b.bind} holds {fld.what} ({fld.kind}); {fix}")
        if fld.classes is not None:
            try:
                class_map_matrix(fld.classes, [str(d) for d in decl.domain], b.class_map, where)
            except ValueError as e:
                raise SpecError(str(e)) from None
    elif b.bind in ("scene_head", "gate") and decl.kind != "ad":
        raise SpecError(f"{where} bind = {b.bind!r} outputs a distribution: the network must be nn/4, not {shape}")
    if b.bind == "gate" and [str(d) for d in decl.domain] != ["scene", "face1", "face2", "face3"]:
        raise SpecError(
            f'{where} bind = "gate" chooses among [scene, face1, face2, face3]; the network\'s domain '
            f"is {[str(d) for d in decl.domain]}"
        )
    if b.family in ("head", "function"):
        positions = sorted(b.domains)
        if positions and "args" not in b.inputs:
            raise SpecError(
                f"{where} domains one-hot encode the arguments, but inputs {list(b.inputs)} do not "
                'read them: add "args"'
            )


def check_data(
    where: str,
    bindings: dict[str, NetBinding],
    nets: dict,
    k: int,
    has: Callable[[str], bool],
    scene_classes: Callable[[], list[str]],
) -> dict[str, tuple]:
    """The bindings against the data: every field read is in the cache (``has(field)``), every
    slot within its K face slots, and a scene-class distribution's classes against the domain
    (``scene_classes()`` names the backbone's); returns {network: ``class_map_matrix``'s
    (M, renormalise, table)} for every network fed by a distribution."""
    maps: dict[str, tuple] = {}
    for name, b in bindings.items():
        w = f"{where}: [nets.{name}]"
        for src in (b.bind, *b.inputs):
            fld = src[len("cache.") :] if src.startswith("cache.") else None
            if fld and not has(fld):
                from emolog.cache.store import BUILD_FLAGS

                raise SpecError(
                    f"{w} reads {src}, which this cache does not hold"
                    + (
                        f": it was built without them; rebuild it with `emolog cache build --index D "
                        f"--out NEW_CACHE {BUILD_FLAGS[fld]}`"
                        if fld in BUILD_FLAGS
                        else ": it needs the scene backbone's classifier, and a simulated cache has none; "
                        "read cache.scene instead"
                    )
                )
        if b.slots and max(b.slots.values()) > k:
            raise SpecError(f"{w} slots {b.slots} reach past the cache's {k} face slots")
        fld = field_of(b.bind)
        if fld is not None and fld.kind == "distribution":
            feed = list(fld.classes) if fld.classes is not None else scene_classes()
            try:
                maps[name] = class_map_matrix(feed, [str(d) for d in nets[name].domain], b.class_map, w)
            except ValueError as e:
                raise SpecError(str(e)) from None
    return maps
