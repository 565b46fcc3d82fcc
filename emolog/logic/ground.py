"""ProbLog does the reading and grounding; emolog turns its errors into located ProgramErrors.

Grounding is ProbLog's own (``DefaultEngine``, ``LogicDAG.create_from``), so everything its
grounder supports (consult/1, findall/3, aggregates, cut, lists, arithmetic, queries generated
by rules, non-ground queries) is answered as ``problog`` does; emolog only compiles and
evaluates the ground formula.
"""

from __future__ import annotations

from pathlib import Path

from problog.engine import DefaultEngine
from problog.errors import ParseError, ProbLogError, process_error
from problog.formula import LogicDAG
from problog.logic import Constant, Term
from problog.program import LogicProgram, PrologFile, PrologString

from .program import ProgramError


def load_model(source: str | Path, base_dir: str | Path | None = None) -> tuple[LogicProgram, str, str]:
    """(ProbLog program, display path, full text) of a path or of program text.

    A ``Path``, or a one-line ``str`` ending in ``.pl`` or naming a file, is read as a file (consult/1 is
    then relative to it); other strings are program text, consulted relative to ``base_dir``.
    """
    is_file = isinstance(source, Path) or ("\n" not in source and (source.endswith(".pl") or Path(source).is_file()))
    if is_file:
        path = Path(source)
        if not path.is_file():
            raise ProgramError(f"{path}: no such program file", path=str(path), message="no such program file")
        text = path.read_text()
        return PrologFile(str(path)), str(path), text
    root = str(base_dir) if base_dir is not None else "."
    return PrologString(source, source_root=root), "<string>", source


def program_error(e: BaseException, path: str, what: str = "", lineno=None) -> ProgramError:
    """A ProgramError carrying ProbLog's location and its own one-line rendering.

    ``lineno``: the source program's ``lineno`` for errors raised on a translated copy of the
    program, whose locations are still (file, character offset) pairs.
    """
    if isinstance(e, RecursionError):
        msg = f"{what or 'grounding'} does not terminate (recursion deeper than Python allows)"
        return ProgramError(f"{path}: Error: {msg}", path=path, message=msg)
    loc = getattr(e, "location", None)
    if lineno is not None and isinstance(e, ProbLogError) and isinstance(loc, tuple) and len(loc) == 2:
        try:
            e.location = loc = lineno(loc)
            e.message = e._message()
        except Exception:  # no line information: keep ProbLog's own message
            pass
    line = col = None
    where = path
    if isinstance(loc, tuple) and len(loc) == 3:
        fn, line, col = loc
        if fn:
            where = str(fn)
    base = getattr(e, "base_message", None) or str(e)
    text = process_error(e) if isinstance(e, ProbLogError) else f"{type(e).__name__}: {e}"
    prefix = f"{where}:{line}:{col}" if line is not None else where
    kind = "does not parse" if isinstance(e, ParseError) else "Error"
    return ProgramError(f"{prefix}: {kind}: {base}", path=where, line=line, column=col, message=base, problog_text=text)


def ground(
    model: LogicProgram,
    path: str,
    queries: list[Term] | None = None,
    evidence: list | None = None,
    engine: DefaultEngine | None = None,
    db=None,
    propagate_evidence: bool = False,
    lineno=None,
) -> LogicDAG:
    """ProbLog's ground program (cycles broken) for the program's own or the given queries.

    Evidence is not propagated into the formula: emolog conditions on it explicitly, which
    keeps every annotated disjunction's heads in the formula (propagating a head to true would
    drop the link to its siblings in emolog's constraint-free encoding). ``evaluate`` grounds a
    second time with propagation only to learn which answers ``problog`` lists (propagated
    evidence can remove non-ground answers) and to raise ProbLog's own inconsistency errors.
    """
    engine = engine or DefaultEngine()
    try:
        if db is None:
            db = engine.prepare(model)
        kw = {} if queries is None else {"queries": queries}
        if evidence is not None:  # None: the program's own evidence/1,2 (consulted files too)
            kw["evidence"] = evidence
        return LogicDAG.create_from(
            db, engine=engine, database=db, propagate_evidence=propagate_evidence, keep_named=True, **kw
        )
    except (ProbLogError, RecursionError) as e:
        raise program_error(e, path, lineno=lineno) from None


def number(p, where: str) -> float:
    """A ground probability (Constant, expression such as 1/19, True/None) as a float."""
    if p is None or p is True:
        return 1.0
    if isinstance(p, (int, float)):
        return float(p)
    try:
        return float(p.compute_value() if isinstance(p, Term) and not isinstance(p, Constant) else p)
    except Exception:
        raise ProgramError(
            f"{where}: Error: probability {p} is not a number", path=where, message=f"probability {p} is not a number"
        ) from None
