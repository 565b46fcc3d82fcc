"""``emolog logic``: run a ProbLog program as ``problog`` does, or compare against DeepProbLog.

    emolog logic FILE.pl [--timing]
    emolog logic compare FILE.pl --query TEMPLATE [--query TEMPLATE ...] [--examples N] [--timeout S]
                         [--faces N,N...] [--foreign NAME=MODULE:FUNCTION/IN/OUT]

``emolog logic FILE.pl`` is a drop-in for ``problog FILE.pl`` (ProbLog 2.3.0): the same stdout
byte for byte (atoms sorted, ``atom:<TAB>p`` with ``%.8g``, keys right-aligned), the same exit
status (0, or 1 on a program error, whose stdout line is problog's own
``ErrorKind: message at L:C.``). On an error emolog also writes ``FILE:L:C: Error: message`` to
stderr, the form editors and ``grep`` understand. Exit 2 is argparse's usage error.

``compare`` feeds the same seeded random network outputs to emolog and to DeepProbLog 2.1's
ExactEngine and prints the largest differences; see ``emolog.logic.check.compare``.

torch, problog and the engine are imported inside ``run`` so that ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

_COMPARE = "compare"
_SHOWN = 20  # answers listed by compare (multi-digit addition has 199 per example)
_EPILOG = (
    "compare mode:\n"
    "  emolog logic compare FILE.pl --query TEMPLATE [--query TEMPLATE ...] [--examples N] [--timeout S]\n"
    "  (see `emolog logic compare --help`)"
)


def _add_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timing", action="store_true", help="write the wall and CPU time of answering the program to stderr"
    )
    parser.add_argument(
        "--classes",
        action="store_true",
        help="each non-ground query's answers are a class distribution: warn on stderr "
        "where they do not sum to 1, naming the rules that overlap (or that no rule fires)",
    )
    _add_strict(parser)


def _add_strict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict",
        action="store_true",
        help="answers of a class query that do not sum to 1 are an error (exit 3), not a warning",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.usage = "emolog logic [-h] [--timing] [--classes] [--strict] FILE.pl\n       emolog logic compare FILE.pl --query TEMPLATE ..."
    parser.epilog = _EPILOG
    parser.add_argument(
        "file",
        metavar="FILE.pl",
        nargs="?",
        help="a ProbLog program, answered like `problog FILE.pl` (or `compare`, see below)",
    )
    _add_file_options(parser)
    # A positional FILE and a `compare` sub-command cannot both be argparse sub-parsers: the
    # words after the first positional are kept here and parsed in run() by the right parser.
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(usage_error=parser.error)


def _compare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emolog logic compare",
        description="Run a DeepProbLog program through emolog and DeepProbLog 2.1's ExactEngine on the "
        "same seeded random network outputs; print the largest differences in query "
        "probabilities and gradients and both engines' time per example.",
    )
    parser.add_argument("file", metavar="FILE.pl", help="a DeepProbLog program (nn/3, nn/4, t(...))")
    parser.add_argument(
        "--query",
        "-q",
        dest="templates",
        action="append",
        required=True,
        metavar="TEMPLATE",
        help="query template, e.g. 'addition(tensor(train(I,0)),tensor(train(I,1)),Z)'; "
        "repeat for several (e.g. one per face count)",
    )
    parser.add_argument("--examples", "-n", type=int, default=8, metavar="N", help="examples per template (default 8)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds DeepProbLog may take before it is reported as exceeded (default 120)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random network outputs (default 0)")
    parser.add_argument(
        "--faces",
        default="0",
        metavar="N[,N...]",
        help="face counts to fill a template's Faces with: each example is run with each (default 0: Faces = [])",
    )
    parser.add_argument(
        "--foreign",
        action="append",
        default=[],
        metavar="NAME=MODULE:FUNCTION/IN/OUT",
        help="a Python predicate NAME/(IN+OUT) the program calls, registered with both engines "
        "(DeepProbLog's register_foreign); MODULE is importable or a .py beside FILE.pl",
    )
    _add_strict(parser)
    return parser


def _foreign(specs: list[str], base: Path) -> list[tuple]:
    """``NAME=MODULE:FUNCTION/IN/OUT`` -> (name, function, in, out); raises ValueError."""
    import importlib

    out = []
    for spec in specs:
        try:
            name, rest = spec.split("=", 1)
            ref, ai, ao = rest.rsplit("/", 2)
            mod, fn = ref.split(":", 1)
        except ValueError:
            raise ValueError(f"--foreign {spec!r}: write NAME=MODULE:FUNCTION/IN/OUT") from None
        sys.path.insert(0, str(base))
        try:
            func = getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"--foreign {spec!r}: {e}") from None
        finally:
            sys.path.remove(str(base))
        out.append((name, func, int(ai), int(ao)))
    return out


def run(args: argparse.Namespace) -> int:
    if args.file is None:
        args.usage_error("the following arguments are required: FILE.pl")  # exits 2
    if args.file == _COMPARE:
        return _run_compare(_compare_parser().parse_args(args.rest))
    if args.rest:
        extra = argparse.ArgumentParser(prog="emolog logic FILE.pl")
        _add_file_options(extra)
        args = extra.parse_args(args.rest, namespace=args)
    return _run_file(Path(args.file), timing=args.timing, classes=args.classes or args.strict, strict=args.strict)


def _run_file(path: Path, *, timing: bool, classes: bool = False, strict: bool = False) -> int:
    from problog.util import format_dictionary  # problog's own printer: identical output by construction

    from emolog.logic import ProgramError, evaluate

    try:
        # problog reports an unreadable file as a ProbLogError on stdout, exit 1; so does emolog.
        path.read_bytes()
    except OSError as err:
        print(f"ProbLogError: {err}.")
        print(f"{path}: Error: {err.strerror}", file=sys.stderr)
        return 1
    wall, cpu = time.perf_counter(), time.process_time()
    stats: dict = {}
    try:
        answers = evaluate(path, stats=stats)
    except ProgramError as err:
        print(_problog_form(err))
        print(f"{_location(err, path)}: Error: {getattr(err, 'message', None) or err}", file=sys.stderr)
        return 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if classes and _mass_refused(path, answers, strict):
        return 3
    print(format_dictionary({atom: float(p) for atom, p in answers}))
    if timing:
        figures = ", ".join(f"{k} {v:.4g}" for k, v in sorted(stats.items()) if isinstance(v, (int, float)))
        print(
            f"emolog logic: {len(answers)} queries answered in {wall:.4f} s wall, {cpu:.4f} s CPU "
            f"(parse, ground, compile, evaluate; {figures})",
            file=sys.stderr,
        )
    return 0


def _mass_refused(path: Path, answers: list, strict: bool) -> bool:
    """Check that each non-ground query's answers sum to 1 (``--classes``): warn on stderr, or
    with ``strict`` print the error and return True (the caller exits 3)."""
    from problog.logic import Term
    from problog.program import PrologString

    from emolog.logic.engine.deep import DeepProgram
    from emolog.logic.check.mass import check_program_mass

    atoms = [(list(PrologString(f"emolog_a({a}).", source_root="."))[0].args[0], p) for a, p in answers]
    findings = check_program_mass(DeepProgram(path, cache_dir=False), [(a, p) for a, p in atoms if isinstance(a, Term)])
    for f in findings:
        print(f"emolog logic: {'error' if strict else 'warning'}: {f.message()}", file=sys.stderr)
    return strict and bool(findings)


def _problog_form(err: Exception) -> str:
    """The line problog prints for this error: the engine's record of it, else built from the
    ProbLogError it was raised from (problog's ``process_error``), else emolog's own reason."""
    from problog.errors import ProbLogError

    if getattr(err, "problog_text", None):
        return err.problog_text
    if isinstance(err.__cause__, ProbLogError):
        return f"{type(err.__cause__).__name__}: {err.__cause__}"
    return f"{type(err).__name__}: {getattr(err, 'message', None) or err}"


def _location(err: Exception, path: Path) -> str:
    parts = [str(getattr(err, "path", None) or path)]
    for name in ("line", "column"):
        value = getattr(err, name, None)
        if not value:
            break
        parts.append(str(value))
    return ":".join(parts)


def _run_compare(args: argparse.Namespace) -> int:
    from emolog.logic.check.compare import compare_program

    path = Path(args.file)
    if not path.is_file():
        print(f"emolog logic compare: error: {path}: no such file", file=sys.stderr)
        return 4
    try:
        faces = [int(x) for x in args.faces.split(",")]
        foreign = _foreign(args.foreign, path.parent)
    except ValueError as e:
        print(
            f"emolog logic compare: error: {str(e).replace('invalid literal for int() with base 10', '--faces')}",
            file=sys.stderr,
        )
        return 2
    r = compare_program(path, args.templates, args.examples, args.timeout, args.seed, faces, foreign)
    print(
        f"{path}: {len(args.templates)} template(s) x {args.examples} example(s) x face counts {faces}, "
        f"seed {args.seed}"
    )
    for i, template in enumerate(args.templates):
        print(f"  template {i}: {template}")
    answers = list(r.answers.items())
    print(f"emolog answers ({len(answers)}; key template:example:answer):")
    for key, p in answers[:_SHOWN]:
        print(f"  {key}: {p:.10g}")
    if len(answers) > _SHOWN:
        print(f"  ... and {len(answers) - _SHOWN} more")
    for note in r.notes:
        print(f"note: {note}")
    for f in r.mass:
        print(f"{'error' if args.strict else 'warning'}: {f.message()}", file=sys.stderr)
    if args.strict and r.mass:
        return 3
    emolog = f"emolog {1000 * r.emolog_s:.3f} ms/example once compiled (compile {r.emolog_compile_s:.3f} s)"
    if r.dp_failed:
        print(emolog)
        print(f"{r.dp_failed}: nothing to compare")
        return 0
    print(
        f"{emolog}, DeepProbLog 2.1 ExactEngine {1000 * r.dp_s:.3f} ms/example once compiled "
        f"(compile {r.dp_compile_s:.3f} s)"
    )
    print(f"max |dp| {_number(r.max_dp)}, max |dgrad| {_number(r.max_dgrad)}, speed ratio {_number(r.ratio)}x")
    return 0


def _number(x) -> str:
    return "n/a" if x is None else f"{float(x):.3g}"
