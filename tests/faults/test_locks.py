"""Two writers on one output directory: the second is refused (exit 6) naming the first's pid;
a lock left by a killed writer is taken over, saying whose it was.

The first writer is a real process held in the middle of its work (SIGSTOP at its third
atomic write, emolog.data.atomic.KILL_ENV), so "still running" is a fact, not a race.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

import pytest

from emolog.errors import EXIT_LOCKED
from procs import pool_map
from world import TRAIN, run_cli

RUN = ["train", "--data", "D", "--out", "K", *TRAIN]
EXPERIMENT = [
    "experiment",
    "--data",
    "D",
    "--out",
    "X",
    "--regimes",
    "logic-only",
    "--seeds",
    "0",
    "--baselines",
    "majority",
    "--n-boot",
    "20",
    *TRAIN,
]


def _held(cwd: Path, argv: list[str]) -> int:
    """Start ``emolog ARGV`` in a child that stops itself at its third write (holding its
    locks); returns its pid once it has stopped."""
    from emolog.data import atomic

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            atomic._count = 0
            os.chdir(cwd)
            os.environ[atomic.KILL_ENV] = "3:after:SIGSTOP"
            code = run_cli(argv).code
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), status
    return pid


def _resume(pid: int) -> int:
    os.kill(pid, signal.SIGCONT)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status)


def _two_writers(world: Path, work: Path, first: list[str], second: list[str]) -> dict:
    shutil.copytree(world / "D", work / "D")
    pid = _held(work, first)
    with contextlib.chdir(work):
        refused = run_cli(second)
    return {"pid": pid, "code": refused.code, "line": refused.last_error_line, "first": _resume(pid)}


def _killed_then_taken_over(world: Path, work: Path, argv: list[str], again: list[str]) -> dict:
    shutil.copytree(world / "D", work / "D")
    pid = _held(work, argv)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with contextlib.chdir(work):
        got = run_cli(again)
    return {"pid": pid, "code": got.code, "err": got.err}


CASES = {
    "train": (RUN, [*RUN, "--resume"]),
    "experiment": (EXPERIMENT, EXPERIMENT),
    "same experiment shard": ([*EXPERIMENT, "--shard", "0/2"], [*EXPERIMENT, "--shard", "0/2"]),
}


@pytest.fixture(scope="module")
def outcomes(world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("locks")
    jobs = [(world, tmp / f"two{k}", first, second) for k, (first, second) in enumerate(CASES.values())]
    jobs.append((world, tmp / "shards", [*EXPERIMENT, "--shard", "0/2"], [*EXPERIMENT, "--shard", "1/2"]))
    two = pool_map(_two_writers, jobs)
    stale = pool_map(
        _killed_then_taken_over,
        [(world, tmp / f"stale{k}", first, second) for k, (first, second) in enumerate(CASES.values())],
    )
    return dict(zip([*CASES, "other shard"], two)), dict(zip(CASES, stale))


@pytest.mark.parametrize("case", list(CASES))
def test_a_second_writer_is_refused_naming_the_first(outcomes, case):
    got = outcomes[0][case]
    assert got["code"] == EXIT_LOCKED, got
    assert f"pid {got['pid']}" in got["line"] and "is being written by another emolog process" in got["line"]
    assert got["first"] == 0  # the first writer, let go, finishes


def test_two_shards_of_one_experiment_run_side_by_side(outcomes):
    got = outcomes[0]["other shard"]
    assert got["code"] == 0 and got["first"] == 0, got


@pytest.mark.parametrize("case", list(CASES))
def test_a_killed_writers_lock_is_taken_over(outcomes, case):
    got = outcomes[1][case]
    assert got["code"] == 0, got["err"]
    assert f"took over the lock left by pid {got['pid']}" in got["err"] and "no longer runs" in got["err"]


def test_cache_build_is_refused_while_another_process_builds(world, tmp_path):
    from emolog.data.lock import output_lock

    pid = os.fork()
    if pid == 0:  # a writer holding the cache directory's lock, stopped mid-build
        try:
            with output_lock(tmp_path / "cache", "emolog cache build"):
                os.kill(os.getpid(), signal.SIGSTOP)
        finally:
            os._exit(0)
    os.waitpid(pid, os.WUNTRACED)
    try:
        got = run_cli(
            ["cache", "build", "--index", world / "D", "--root", tmp_path, "--out", tmp_path / "cache", "--quiet"]
        )
    finally:
        os.kill(pid, signal.SIGCONT)
        os.waitpid(pid, 0)
    assert got.code == EXIT_LOCKED and f"pid {pid}" in got.last_error_line, got.err
    assert not (tmp_path / "cache" / ".emolog.lock").exists()  # released when its holder ended
