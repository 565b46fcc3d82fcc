"""Relative image paths and the stable image id derived from them.

A data set names its images by paths relative to a data root. FindingEmo writes them with a
leading ``/`` (``/Run_1/x.jpg``) that means "the data root", not the filesystem root, so one
leading run of slashes is stripped. A path component that is exactly ``..`` would climb out
of the root and is refused; ``..`` *inside* a name (``x_03..jpg``, ``pakistan.....jpg``) is an
ordinary file name and is kept. The check is lexical on purpose: symbolic links the user put
inside the data root are trusted, a CSV from elsewhere cannot point outside it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from emolog.errors import InputError


class PathRejected(InputError, ValueError):
    """A relative image path that cannot be used; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalize_rel_path(raw: str) -> str:
    """The canonical POSIX path of an image relative to the data root.

    Strips leading slashes, drops empty and ``.`` components; raises ``PathRejected`` for an
    empty path, a NUL byte, a Windows drive (``C:``) or any ``..`` component.
    """
    if not isinstance(raw, str):
        raise PathRejected(f"bad path: not a string ({raw!r})")
    if "\x00" in raw:
        raise PathRejected("bad path: contains a NUL byte")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if not parts:
        raise PathRejected(f"bad path: empty ({raw!r})")
    # Backslashes are separators on Windows: a "..\\" there would climb out too.
    if any(p == ".." for p in raw.replace("\\", "/").split("/")):
        raise PathRejected(f"path escapes data root: {raw}")
    if len(parts[0]) == 2 and parts[0][1] == ":" and parts[0][0].isalpha():
        raise PathRejected(f"path escapes data root: drive letter in {raw}")
    return "/".join(parts)


def image_id(rel_path: str) -> str:
    """The stable id of an image: the first 16 hex chars of sha1 of its normalised rel_path."""
    return hashlib.sha1(normalize_rel_path(rel_path).encode("utf-8")).hexdigest()[:16]


def resolve_under(root: str | Path, rel_path: str) -> Path:
    """``root / rel_path`` for a path that stays under ``root`` (else ``PathRejected``)."""
    return Path(root) / normalize_rel_path(rel_path)


def resolve_recorded(path: str | Path, run_dir: Path) -> Path:
    """A path recorded in a run: absolute as is; a relative one was relative to the working
    directory of the command that wrote it, so try here first, then the run's parent folders."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    for base in [run_dir, *list(run_dir.resolve().parents)[:3]]:
        if (base / path).exists():
            return base / path
    return path
