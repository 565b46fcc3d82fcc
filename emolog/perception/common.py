"""Helpers shared by the perception modules: weights files, hashes, devices, errors."""

from __future__ import annotations

import os
from pathlib import Path

from emolog.data import artefacts
from emolog.errors import InputError, MissingError


class WeightsError(MissingError, RuntimeError):
    """A weights file is missing, unreadable or does not fit the architecture.

    The message always names the file and the format that was expected, so the user knows
    what to fetch or fix.
    """


class PerceptionError(InputError, ValueError):
    """Bad input to a perception component (e.g. an unreadable or empty image)."""


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file's bytes; memoised per (path, size, mtime) because
    fingerprints are asked for often and weights files are tens of MB."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = artefacts.sha256_file(p)
    return _SHA_CACHE[key]


def require_file(path: str | os.PathLike | None, what: str, expected: str, where: str | None = None) -> Path:
    """Return ``path`` as a Path if it is an existing file; otherwise raise WeightsError
    naming the file, the expected format and (when known) where to get it."""
    hint = f" Get it from {where}." if where else ""
    if path is None:
        raise WeightsError(f"{what}: no weights file given (expected {expected}).{hint}")
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsError(f"{what}: weights file {str(p)!r} not found (expected {expected}).{hint}")
    return p
