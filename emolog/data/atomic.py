"""Atomic file writes: a reader never sees half a file, a crash never leaves one.

Every file emolog writes goes through ``atomic_write_bytes``: the bytes go to a temporary
file in the same folder (``.NAME.*.part``), are fsynced, and the temporary file is renamed
over ``NAME``. A process killed at any moment leaves either the old file or the new one,
plus at most a ``.part`` file that readers ignore and writers clean up. A failed write (disk
full, I/O error) removes its temporary file and raises ``OSError`` naming ``NAME``.

``EMOLOG_KILL_AT_WRITE=N[:PHASE[:SIGNAL]]`` makes the process SIGKILL itself (or send itself
SIGNAL, e.g. SIGSTOP) at its N-th atomic write (PHASE ``before``: nothing of it on disk;
``written``: the temporary file complete, not yet renamed; ``after``: renamed, the default).
It exists for the kill-anywhere and two-writer tests (tests/faults/, docs/reliability.md):
every state a kill can leave on disk is one of these. Unset, it costs one environment lookup
per write.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

KILL_ENV = "EMOLOG_KILL_AT_WRITE"
KILL_PHASES = ("before", "written", "after")

# mkstemp creates files 0600; the final file should get the usual permissions. Read the
# umask once at import (os.umask can only be read by setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_count = 0  # atomic writes so far in this process (for KILL_ENV)


def _kill_point(phase: str) -> None:
    """SIGKILL this process if ``KILL_ENV`` names this write and phase."""
    spec = os.environ.get(KILL_ENV)
    if spec:
        n, at, sig = (spec.split(":") + ["", ""])[:3]
        if int(n) == _count and (at or "after") == phase:
            os.kill(os.getpid(), getattr(signal, sig or "SIGKILL"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    global _count
    path = Path(path)
    _count += 1
    _kill_point("before")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _kill_point("written")
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(e, OSError) and not isinstance(e, FileNotFoundError) and e.filename is None:
            # write(2) and fsync(2) errors name no file: name the one that was being written
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    _kill_point("after")


def atomic_write_text(path: str | Path, text: str) -> None:
    """``atomic_write_bytes`` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
