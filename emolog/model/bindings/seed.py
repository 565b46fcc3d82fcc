"""A spec's program compiled the seed programs' way (``LogicModule``, once for every image), when it fits.

``seed_shaped`` says whether a spec fits (a query ``f(X, E)``, bindings the seed's feeds, heads
over whole-image features), ``seed_module`` compiles it with the networks renamed to the names
that compilation feeds (``CANONICAL``) and ``check_seed_domain`` checks its answers against the
labels. ``emolog.model.bindings.program.build_logic`` picks this compilation or ``ProgramLogic``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from emolog.labels import BASIC7
from emolog.model.bindings.maps import short, suggest_table
from emolog.model.bindings.schema import SpecError

if TYPE_CHECKING:  # the logic engine is imported where a program is compiled
    from emolog.logic.engine.module import LogicModule

# the networks the seed-shaped compilation feeds, by binding -> its name there
CANONICAL = {
    "scene_head": "scene_net",
    "cache.face_probs": "face_net",
    "cache.face_mask": "available",
    "gate": "gate_net",
    "evidence.large_face": "large",
    "evidence.confident_face": "confident",
}
WHOLE_IMAGE = {"cache.scene", "cache.scene_classes", "cache.face_probs", "cache.face_mask"}


def seed_shaped(spec, nets: dict) -> bool:
    """Whether the spec fits the seed programs' compilation (see ``program``'s module docstring)."""
    return (
        _seed_query(spec)
        and not spec.foreign
        and all(v == c for c, v in (spec.label_values or {}).items())  # labels are the values
        and _canonical_once(spec)
        and all(_seed_binding(b, nets, name) for name, b in spec.nets.items())
    )


def _seed_query(spec) -> bool:
    """The query is ``f(X, E)``: two variables, the first the image."""
    from problog.logic import Var

    from emolog.logic.templates import parse_template

    t = parse_template(spec.query, spec.where)
    return len(t.args) == 2 and all(isinstance(a, Var) for a in t.args) and str(t.args[0]) == spec.image


def _canonical_once(spec) -> bool:
    """No feed of the seed compilation is bound to two networks."""
    used = [b.bind for b in spec.nets.values() if b.bind in CANONICAL]
    return len(used) == len(set(used))


def _seed_binding(b, nets: dict, name: str) -> bool:
    """One network as the seed compilation feeds it: a seed feed (the recogniser in BASIC7
    order) or a head over whole-image features, without slots or a class map."""
    if b.slots or b.class_map is not None:
        return False
    if b.bind == "cache.face_probs" and [str(d).strip("'") for d in nets[name].domain] != list(BASIC7):
        return False
    return b.bind in CANONICAL or b.bind == "head" and set(b.inputs) <= WHOLE_IMAGE


def check_seed_domain(spec, lm: LogicModule) -> None:
    """The seed-shaped program's answers (its query/1) against the label set, by name."""
    functor = spec.functor
    domain = [q[len(functor) + 1 : -1].strip("'") for q in lm.query_names if q.startswith(functor + "(")]
    if set(domain) != set(spec.classes):
        raise SpecError(
            f"{spec.where}: the query {spec.query} ranges over {short(sorted(domain))} but the label set "
            f"{spec.label_set!r} is {short(sorted(spec.classes))} (only in the program: "
            f"{short(sorted(set(domain) - set(spec.classes)))}; only in the labels: "
            f"{short(sorted(set(spec.classes) - set(domain)))}); map the labels to the program's values "
            f"with [label_values] {suggest_table(spec.classes, domain)}"
        )


def seed_module(spec, text: str, path: str, semantics: str, param: str) -> LogicModule | None:
    """The seed-shaped compilation of the spec's program ``text`` (read from ``path``), or None
    where the program turns out not to fit it."""
    from emolog.logic import ProgramError, compile_program
    from emolog.logic.engine.module import LogicModule
    from emolog.logic.templates import as_term, parse_template

    for own, b in spec.nets.items():  # nn(own, ...) -> the name the compilation feeds
        if b.bind in CANONICAL:
            text = re.sub(rf"\bnn\(\s*{re.escape(own)}\s*,", f"nn({CANONICAL[b.bind]},", text)
    if not re.search(r"^\s*query\s*\(", text, re.MULTILINE):  # the spec's query, once per label
        t = parse_template(spec.query, spec.where)
        text += "\n% queries from the spec: one per label\n" + "".join(
            f"query({t.with_args(t.args[0], as_term(c, 'the label', spec.query))}).\n" for c in spec.classes
        )
    try:
        lm = compile_program(text, semantics=semantics, param=param, path=path)
    except ProgramError:
        return None
    if not isinstance(lm, LogicModule) or not _reads_as_seed(lm):
        return None
    return lm


PER_FACE = ("face_net", "available", "large", "confident")


def _reads_as_seed(lm) -> bool:
    """Every network input as this compilation feeds it: per face slot (``face_net(face2)``) for
    the recogniser, availability and evidence networks, per image for the others."""
    for key in [*lm.input_sizes, *lm.fact_keys]:
        per_face = re.fullmatch(r"(\w+)\(face\d+\)", key)
        if (key.split("(")[0] in PER_FACE) != bool(per_face):
            return False
    return True
