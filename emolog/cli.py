"""The ``emolog`` command line.

Each sub-command lives in the module that owns its work; that module defines
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
command runs, and import torch only inside ``run``, so ``emolog COMMAND --help`` is instant
and one broken optional dependency cannot take down the other commands.

One handler turns every error emolog raises on purpose (:class:`emolog.errors.EmologError`)
into one line ``emolog: error: ...`` and the exit code of its kind (see ``emolog.errors``);
``--debug`` (anywhere on the line, or ``EMOLOG_DEBUG=1``) adds the traceback. Ctrl-C exits 130
with one line: commands write atomically, so whatever was written before stays valid.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import warnings

from emolog.errors import EXIT_GENERIC, EXIT_INTERRUPTED, EXIT_MISSING, EmologError

# command -> (module, one-line help). Order is the data flow.
COMMANDS: dict[str, tuple[str, str]] = {
    "download": ("emolog.data.download", "fetch FindingEmo images from the URLs findingemo-light ships"),
    "index": ("emolog.data.commands", "index a data set, reject bad images, write index + split"),
    "explain": (
        "emolog.analysis.explain",
        "show faces, expressions, scene classes and a run's prediction for one image",
    ),
    "cache": ("emolog.cache.commands", "compute frozen-network features once per image; verify/merge"),
    "logic": (
        "emolog.logic.check.commands",
        "answer a ProbLog program like `problog FILE.pl`; compare with DeepProbLog",
    ),
    "simulate": ("emolog.simulate", "write a FindingEmo-like data set with known truth"),
    "train": ("emolog.runs.commands", "train one regime on a cache"),
    "experiment": ("emolog.experiments.experiment", "regimes x seeds x sweeps, with a comparison table"),
    "predict": ("emolog.analysis.predict", "a trained run's predictions for images or an index -> predictions.csv"),
    "analyse": ("emolog.analysis.analyse", "which images runs get wrong, and why (sources, meta-information, photos)"),
    "context": ("emolog.analysis.context_experiment", "the context-trust experiment: gated vs global source choice"),
    "gate-sweep": ("emolog.analysis.gate_start_sweep", "how a gate should start and learn: the sweep behind gate.init"),
    "report": ("emolog.report.build", "render a run or experiment as one HTML page"),
    "demo": ("emolog.demo", "the embedded end-to-end demo that `make demo` runs"),
}

EPILOG = (
    "exit codes: 0 ok, 1 error, 2 usage, 3 bad input data/config, 4 missing file/weights, "
    "5 verification failed, 6 output directory locked by another process, 130 interrupted. "
    "--debug (anywhere) shows tracebacks."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emolog",
        description="Neurosymbolic emotion recognition: neural perception + exact probabilistic logic.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def _version() -> str:
    from emolog import __version__

    return f"emolog {__version__}"


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """Remove ``--debug`` wherever it stands before a ``--`` (no command defines its own)."""
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end] or os.environ.get("EMOLOG_DEBUG", "") not in ("", "0")
    return [a for i, a in enumerate(argv) if i >= end or a != "--debug"], debug


def _one_line(message: object) -> str:
    """An error message on one line (a multi-line message keeps its parts, joined by '; ')."""
    text = str(message.args[0]) if isinstance(message, KeyError) and message.args else str(message)
    return "; ".join(part.strip() for part in text.splitlines() if part.strip()) or type(message).__name__


def dispatch(argv: list[str]) -> int:
    """Parse and run one command; errors propagate (``main`` reports them)."""
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)  # prints help / version / an error for unknown commands
        parser.print_help()
        return 0 if args.command is None and not argv else 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"emolog {name}", description=COMMANDS[name][1], epilog=EPILOG)
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(rest)
    return int(module.run(args) or 0)


_PYTHON_FORMAT = warnings.formatwarning


def _format_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """emolog's own warnings to its user (an old config key, a moved module path) as one line,
    ``emolog: warning: ...``, not Python's ``file:line: Category:`` form; others as Python prints them."""
    if issubclass(category, (FutureWarning, DeprecationWarning)) and f"{os.sep}emolog{os.sep}" in filename:
        return f"emolog: warning: {message}\n"
    return _PYTHON_FORMAT(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _format_warning
    argv, debug = _split_debug(list(sys.argv[1:] if argv is None else argv))
    try:
        return dispatch(argv)
    except KeyboardInterrupt:
        sys.stdout.flush()
        print(
            "\nemolog: interrupted; everything written so far is kept (files are written atomically); "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        if debug:
            traceback.print_exc()
        return EXIT_INTERRUPTED
    except EmologError as e:
        return _report(e, e.exit_code, _one_line(e), debug)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as e:
        what = {
            FileNotFoundError: "no such file or directory",
            NotADirectoryError: "not a directory",
            IsADirectoryError: "is a directory",
            PermissionError: "permission denied",
        }[type(e)]
        return _report(e, EXIT_MISSING, f"{what}: {e.filename}" if e.filename else _one_line(e), debug)
    except OSError as e:  # disk full, I/O error, ...: the system's words and the file
        message = (e.strerror or _one_line(e)) + (f": {e.filename}" if e.filename else "")
        return _report(e, EXIT_GENERIC, message, debug)


def _report(exc: BaseException, code: int, message: str, debug: bool) -> int:
    sys.stdout.flush()
    if debug:
        traceback.print_exception(exc)
    print(f"emolog: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
