"""The base of every error emolog raises on purpose, and the exit code each kind maps to.

The command line (``emolog.cli``) turns an :class:`EmologError` into one line,
``emolog: error: <message>``, and exits with the error's ``exit_code``; anything else is a bug
and keeps its traceback. Subclasses pick their kind by inheriting from one of the kind classes
below (or by setting ``exit_code``/``kind`` themselves), and keep their old builtin base
(``ValueError``, ``RuntimeError``, ...) next to it so existing ``except`` clauses still work.

Exit codes (documented in README.md, "Exit codes"):

====  ===================================================================
 1    a program/logic error or another failure emolog detected
 2    usage: a bad command line (argparse's own convention)
 3    bad input data or configuration (a CSV row, a label, a config key)
 4    a file, directory or weights file is missing or unreadable
 5    verification failed: a stored artefact does not match its record (a cache shard
      or a run's file whose sha256 differs, a cache that fails ``cache verify``)
 6    the output directory is locked: another emolog process is writing it
130   interrupted (Ctrl-C); what was written before stays valid
====  ===================================================================
"""

from __future__ import annotations

EXIT_GENERIC = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_MISSING = 4
EXIT_VERIFY = 5
EXIT_LOCKED = 6
EXIT_INTERRUPTED = 130


class EmologError(Exception):
    """An error emolog reports as one line and an exit code, never as a traceback."""

    exit_code: int = EXIT_GENERIC
    kind: str = "error"


class UsageError(EmologError):
    """Options that cannot be used together, or a required option missing."""

    exit_code = EXIT_USAGE
    kind = "usage"


class InputError(EmologError):
    """Bad input data or configuration."""

    exit_code = EXIT_INPUT
    kind = "input"


class MissingError(EmologError):
    """A file, directory or weights file that is needed is not there (or not readable)."""

    exit_code = EXIT_MISSING
    kind = "missing"


class VerificationError(EmologError):
    """A check of stored artefacts against their record failed."""

    exit_code = EXIT_VERIFY
    kind = "verification"


class LockedError(EmologError):
    """Another live process holds the output directory's lock (``emolog.data.lock``)."""

    exit_code = EXIT_LOCKED
    kind = "locked"
