"""Run ProbLog 2.3.0 itself on .pl files, one forked process per file; print JSON.

    python tests/programs/problog_runner.py [--answers-only] FILE.pl ...

For each file: ``cli_rc`` / ``cli_stdout`` are what ``problog FILE.pl`` (``problog.tasks.main``)
exits with and prints; ``answers`` maps each query atom (as problog prints it) to the
probability the CLI computed, at full float precision (``problog.tasks.probability.main_result``:
the CLI's options, e.g. its evidence propagation, which drops queries that ``create_from`` of the
API keeps), or ``error`` is ``[error class, message]``.

Why a fork per file: in one process, problog's CLI path answers later programs wrongly once
a program has loaded ``library(aggregate)`` (queries silently disappear from the output), so
every file gets a fresh copy of a process that has only imported problog.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys


def _in_child(fn) -> object:
    """Run ``fn()`` in a forked child; return what it returned (JSON-able)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            out = fn()
        except BaseException as err:  # noqa: BLE001 - reported to the parent, never hidden
            out = {"crash": f"{type(err).__name__}: {err}"}
        with os.fdopen(w, "w") as f:
            json.dump(out, f)
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def _cli(path: str) -> dict:
    from problog.tasks import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        try:
            rc = main([path])
        except SystemExit as stop:
            rc = stop.code
    return {"cli_rc": int(rc or 0), "cli_stdout": buf.getvalue()}


def _api(path: str) -> dict:
    # main_result is the CLI's own computation (same options, evidence propagation, log-space
    # semiring) returning the answers instead of printing 8 digits of them.
    from problog.tasks.probability import main_result

    with contextlib.redirect_stderr(io.StringIO()):
        success, result = main_result([path])
    if not success:
        return {"error": [type(result).__name__, str(result)]}
    return {"answers": {str(k): float(v) for k, v in result.items()}}


def main(paths: list[str]) -> None:
    cli = paths[:1] != ["--answers-only"]
    paths = paths if cli else paths[1:]
    import problog.tasks  # noqa: F401 - imported once, before forking
    import problog.tasks.probability  # noqa: F401

    out = {}
    for path in paths:
        rec = {"path": path}
        if cli:
            rec.update(_in_child(lambda: _cli(path)))
        rec.update(_in_child(lambda: _api(path)))
        out[path] = rec
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
