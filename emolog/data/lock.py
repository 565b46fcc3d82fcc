"""One writer per output directory: ``with output_lock(directory, "emolog train"): ...``.

Two processes writing one run, experiment or cache directory would interleave their files
(each file stays whole: writes are atomic, but a run would hold one process's history and
the other's weights). The lock is an ``flock`` on ``DIR/.emolog.lock`` (or
``.emolog-<name>.lock`` for a lock on one part of a directory, e.g. one experiment shard),
which records the holder's pid, host and command. The kernel drops an ``flock`` when its
process dies, however it dies (kill -9 included), so a lock file left by a killed process is
detected as stale and taken over, with a note naming the dead holder; a live holder makes
``output_lock`` raise ``LockedError`` (exit 6) naming its pid.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from emolog.errors import LockedError

LOCK_FILE = ".emolog.lock"


def lock_path(directory: str | Path, name: str | None = None) -> Path:
    """The lock file of ``directory`` (of its part ``name``, when given)."""
    return Path(directory) / (LOCK_FILE if name is None else f".emolog-{name}.lock")


def _holder(fd: int) -> str:
    """Who holds (or held) the lock, from the lock file's record."""
    for _ in range(20):  # the holder writes its record right after taking the lock
        raw = os.pread(fd, 4096, 0)
        if raw:
            break
        time.sleep(0.05)
    try:
        rec = json.loads(raw)
        return f"pid {rec['pid']} on {rec['host']}, `{rec['command']}` since {rec['since']}"
    except (ValueError, KeyError, TypeError):
        return "a process that left no readable record"


def _acquire(path: Path) -> int:
    """An open fd of ``path`` holding its flock (the file re-created if its holder removed it
    between our open and our flock)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise LockedError(
                f"{path.parent} is being written by another emolog process ({holder}); "
                "wait for it to finish or stop it: two writers would mix their files"
            ) from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def remove_partials(directory: str | Path, name: str = "*") -> None:
    """Remove the temporary files atomic writes of ``name`` left in ``directory`` (a killed
    writer's; call it only while holding the lock that covers them)."""
    for tmp in Path(directory).glob(f".{name}.*.part"):
        tmp.unlink(missing_ok=True)


@contextmanager
def output_lock(directory: str | Path, command: str, name: str | None = None) -> Iterator[None]:
    """Hold the lock of ``directory`` (created if needed) while the block runs; ``command``
    (e.g. ``"emolog train"``) is what a refused second writer is told holds it."""
    path = lock_path(directory, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path)
    try:
        if os.fstat(fd).st_size:
            print(
                f"emolog: note: {path.parent}: took over the lock left by {_holder(fd)}, which no longer "
                "runs (killed?)",
                file=sys.stderr,
            )
        if name is None:  # the whole directory is ours: a dead writer's temporary files go
            remove_partials(path.parent)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.close(fd)
