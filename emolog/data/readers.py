"""Readers for the supported data-set layouts.

Every reader returns the same *records* table, one row per annotated image, before any
checking: columns ``RECORD_COLUMNS`` = ``path`` (as written in the source, not yet
normalised), ``label_raw``, ``valence``, ``arousal``, ``ambiguity``, ``dec_factors`` (all
strings; ``""`` where the source has no such value). ``emolog.data.index.build_index`` turns records
into an index, rejecting bad rows with a reason.

Layouts:

* FindingEmo annotations (``image_path, emotion`` required; ``valence, arousal, ambiguity,
  dec_factors`` kept when present; other columns ignored) - the package's own file or a
  user's CSV with the same columns.
* Generic CSV with a header: ``path, label`` required, ``valence, arousal`` optional.
* Folder per class: ``ROOT/<label>/.../<image>``; hidden files (``.DS_Store``, ``._x.jpg``)
  are skipped because they are file-system litter, not data.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from emolog.errors import InputError

RECORD_COLUMNS: tuple[str, ...] = ("path", "label_raw", "valence", "arousal", "ambiguity", "dec_factors")
_OPTIONAL = ("valence", "arousal", "ambiguity", "dec_factors")


class DataFormatError(InputError, ValueError):
    """An input file or folder that does not have the expected structure."""


def _read_csv_strings(src: str | Path | io.StringIO, what: str) -> pd.DataFrame:
    # Everything as str and no NA guessing: a file called "NA.jpg" or a label "None" must
    # survive as written.
    try:
        df = pd.read_csv(src, dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError:
        raise DataFormatError(f"{what}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataFormatError(f"{what}: not a readable CSV ({e})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _records(df: pd.DataFrame, path_col: str, label_col: str) -> pd.DataFrame:
    out = pd.DataFrame({"path": df[path_col].astype(str), "label_raw": df[label_col].astype(str).str.strip()})
    for col in _OPTIONAL:
        out[col] = df[col].astype(str).str.strip() if col in df.columns else ""
    return out[list(RECORD_COLUMNS)].reset_index(drop=True)


def read_findingemo_csv(src: str | Path | io.StringIO, name: str | None = None) -> pd.DataFrame:
    """Records from a FindingEmo-style annotation CSV (``image_path``, ``emotion``, ...)."""
    name = name or str(src)
    df = _read_csv_strings(src, name)
    missing = [c for c in ("image_path", "emotion") if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{name}: FindingEmo annotations need columns image_path and emotion; "
            f"missing {missing} (found {list(df.columns)})"
        )
    return _records(df, "image_path", "emotion")


def read_generic_csv(src: str | Path | io.StringIO, name: str | None = None) -> pd.DataFrame:
    """Records from a CSV with a header ``path,label[,valence,arousal]``."""
    name = name or str(src)
    df = _read_csv_strings(src, name)
    missing = [c for c in ("path", "label") if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{name}: a generic CSV needs a header with columns path and label; "
            f"missing {missing} (found {list(df.columns)})"
        )
    return _records(df, "path", "label")


def read_csv_auto(src: str | Path, name: str | None = None) -> pd.DataFrame:
    """Records from a CSV in either format, chosen by its header."""
    name = name or str(src)
    df = _read_csv_strings(src, name)
    if {"image_path", "emotion"} <= set(df.columns):
        return _records(df, "image_path", "emotion")
    if {"path", "label"} <= set(df.columns):
        return _records(df, "path", "label")
    raise DataFormatError(
        f"{name}: header {list(df.columns)} is neither FindingEmo "
        "(image_path, emotion, ...) nor generic (path, label[, valence, arousal])"
    )


def read_folder_tree(root: str | Path) -> tuple[pd.DataFrame, int]:
    """Records from a folder-per-class tree ``root/<label>/**/<file>``.

    Returns the records (files directly in ``root`` get an empty label, which the index
    rejects as "no label") and the number of hidden files and folders skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(f"{root}: not a directory")
    rows: list[tuple[str, str]] = []
    hidden = 0
    for dirpath, dirnames, filenames in os.walk(root):
        hidden += sum(d.startswith(".") for d in dirnames)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for fn in sorted(filenames):
            if fn.startswith("."):
                hidden += 1
                continue
            rel = fn if rel_dir == "." else f"{rel_dir}/{fn}"
            label = rel.split("/", 1)[0] if "/" in rel else ""
            rows.append((rel, label))
    df = pd.DataFrame(rows, columns=["path", "label_raw"])
    for col in _OPTIONAL:
        df[col] = ""
    return df[list(RECORD_COLUMNS)], hidden
