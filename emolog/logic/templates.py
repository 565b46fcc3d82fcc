"""Query templates of a ``DeepProgram``: parsed once, filled in per example (``engine/deep.py``).

A template's ``I`` is the example id (``bindings.PLACEHOLDER`` while grounding), ``Faces`` the
example's face list, and any other variable may be bound by the example. Mistakes that would
otherwise answer a different query without a word (a misspelled variable name, a capitalised
string read as a Prolog variable, a template index counted from the end) are refused here.
"""

from __future__ import annotations

import re

from problog.errors import ProbLogError
from problog.logic import Constant, Term, list2term
from problog.program import PrologString

from .bindings import PLACEHOLDER
from .program import ProgramError

RESERVED = ("I", "Faces")  # filled in from the example itself, never bound by name
_PLAIN_ATOM = re.compile(r"[a-z][A-Za-z0-9_]*\Z")


def parse_template(q: str | Term, path: str) -> Term:
    """A template as a problog Term (a string is parsed as Prolog text)."""
    if isinstance(q, Term):
        return q
    try:
        return list(PrologString(f"emolog_template({q}).", source_root="."))[0].args[0]
    except (ProbLogError, IndexError) as e:
        raise ProgramError(
            f"query template {q!r}: Error: does not parse: {e}", path=path, message=f"template does not parse: {e}"
        ) from None


def as_term(value: object, name: str, where: str) -> Term:
    """A bound value as a Term: numbers are constants, strings atoms, lists Prolog lists.

    Why atoms: parsing ``"Sad"`` as Prolog text gives the variable ``Sad``, which leaves the
    template free; ProbLog writes a non-plain atom with its quotes (``'Sad'``), so it is quoted
    here the same way, and ``"happy"`` stays the atom ``happy``.
    """
    if isinstance(value, Term):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Constant(value)
    if isinstance(value, str):
        if _PLAIN_ATOM.match(value):
            return Term(value)
        if "'" not in value and value:
            return Term(f"'{value}'")
    if isinstance(value, (list, tuple)):
        return list2term([as_term(v, name, where) for v in value])
    raise ProgramError(
        f"{where}: Error: cannot bind {name} to {value!r} (give a number, a string "
        "without quotes, a list of these, or a problog Term)",
        path=where,
        message=f"unsupported bound value for {name}",
    )


def fill_template(
    templates: list[Term], index: int, faces: int, bind: tuple[tuple[str, object], ...], path: str
) -> Term:
    """Template ``index`` with ``I`` as the placeholder, ``Faces`` as ``faces`` face terms and
    the example's ``bind`` substituted; refuses an index out of range and unknown names."""
    if not 0 <= index < len(templates):
        raise ProgramError(
            f"{path}: Error: example template {index} does not exist (the program "
            f"has {len(templates)} template(s), 0..{len(templates) - 1})",
            path=path,
            message="template index out of range",
        )
    t = templates[index]
    names = {str(v) for v in t.variables()}
    bad = sorted(n for n, _ in bind if n not in names or n in RESERVED)
    if bad:
        free = sorted(names - set(RESERVED))
        raise ProgramError(
            f"{path}: Error: example binds {bad}, which are not free variables of "
            f"template {index} {t} (its bindable variables: {free}; I and Faces "
            "come from the example's id and face count)",
            path=path,
            message="bound name is not a template variable",
        )
    subst = {
        "I": PLACEHOLDER,
        "Faces": list2term([Term("tensor", Term("face", PLACEHOLDER, Constant(k))) for k in range(1, faces + 1)]),
    }
    for name, value in bind:
        subst[name] = as_term(value, name, f"template {index} {t}")
    return t.apply_term({v: subst[str(v)] for v in t.variables() if str(v) in subst})
