"""The ``emolog`` command line.

Each sub-command lives in the module that owns its work; that module defines
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
command runs, so ``emolog --help`` is instant and one broken optional dependency cannot take
down the other commands.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help). Order is the data flow.
COMMANDS: dict[str, tuple[str, str]] = {
    "download": ("emolog.data.download", "fetch FindingEmo images from the URLs findingemo-light ships"),
    "index": ("emolog.data.commands", "index a data set, reject bad images, write index + split"),
    "explain": ("emolog.analysis.explain", "show faces, expressions and scene classes for one image"),
    "cache": ("emolog.cache.commands", "compute frozen-network features once per image; verify/merge"),
    "simulate": ("emolog.simulate", "write a FindingEmo-like data set with known truth"),
    "train": ("emolog.training.commands", "train one regime on a cache"),
    "experiment": ("emolog.training.experiment", "regimes x seeds x sweeps, with a comparison table"),
    "report": ("emolog.report.build", "render a run or experiment as one HTML page"),
    "demo": ("emolog.demo", "the embedded end-to-end demo that `make demo` runs"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emolog",
        description="Neurosymbolic emotion recognition: neural perception + exact probabilistic logic.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def _version() -> str:
    from emolog import __version__
    return f"emolog {__version__}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)  # prints help / version / an error for unknown commands
        parser.print_help()
        return 0 if args.command is None and not argv else 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"emolog {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
