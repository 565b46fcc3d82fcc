"""Processes for the fault suites: real processes (a kill -9 needs one), started in milliseconds.

A ``forkserver`` imports emolog, torch and the suites' helpers once; ``pool_map``'s two
workers are forks of it (no torch op ever ran in the server, so forking it is safe, unlike
forking pytest's own process), which run independent jobs two at a time (the suite's machine
has 2 cores; results do not depend on it). A worker runs torch with one thread, so it may in
turn fork the process a test kills (``killed_at``): one thread means no OpenMP team a fork
could break.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from typing import Any, Callable, Iterable

PRELOAD = [
    "torch",
    "sklearn.metrics",
    "scipy.stats",
    "matplotlib.pyplot",
    "emolog.cli",
    "emolog.runs.train",
    "emolog.experiments.experiment",
    "emolog.metrics.classification",
    "emolog.report.build",
    "emolog.report.run_page",
    "emolog.report.experiment_page",
    "emolog.analysis.predict",
    "emolog.cache.verify",
    "world",
    "table",
]
_CTX = None


def context() -> Any:
    """The suites' forkserver context (started on first use)."""
    global _CTX
    if _CTX is None:
        _CTX = multiprocessing.get_context("forkserver")
        _CTX.set_forkserver_preload(PRELOAD)
    return _CTX


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def pool_map(fn: Callable, jobs: Iterable[tuple], workers: int = 2) -> list:
    """``[fn(*args) for args in jobs]`` in ``workers`` long-lived processes (each pays its
    first-use costs, e.g. importing scikit-learn, once)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=context(), initializer=_one_thread) as pool:
        return [f.result() for f in [pool.submit(fn, *args) for args in jobs]]


def killed_at(cwd: str, argv: list[str], kill: str | None) -> int:
    """Run ``emolog ARGV`` in a child of this process (in ``cwd``) that SIGKILLs itself at the
    atomic write ``kill`` (``N:PHASE``, emolog.data.atomic.KILL_ENV; None: runs to its end);
    returns the signal that ended it (0 when it finished)."""
    from emolog.data import atomic

    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            atomic._count = 0  # a new command: count its writes from the first (the parent wrote before)
            os.chdir(cwd)
            if kill:
                os.environ[atomic.KILL_ENV] = kill
            from world import run_cli

            with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
                code = run_cli(argv).code
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
