"""The report's building blocks, as plain data for the Jinja2 templates (HTML and Markdown).

A section has a title, one paragraph on how to read it, figures (data URIs), tables and
notes. A section whose input is absent or unreadable carries a one-line note saying so,
never nothing. A section whose code fails is not a note: ``build_sections`` records the
failure and ``emolog report`` exits non-zero (or, with ``--allow-partial``, says so on the
report's first line). Numbers the browser test checks sit in cells with a stable ``id`` and
the exact value in ``data-value``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from emolog.cache.store import read_manifest
from emolog.data.paths import resolve_recorded as resolve
from emolog.runs.record import RunFiles
from emolog.report.stats import class_indices


@dataclass
class Cell:
    text: str
    value: Any = None  # exact value for data-value (numbers the test compares)
    id: str | None = None
    numeric: bool = False  # right-aligned, also when the number is missing ("–")


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""

    @property
    def numeric_columns(self) -> list[bool]:
        """Per column: every cell is a number (its header is then right-aligned too)."""
        return [bool(self.rows) and all(r[k].numeric for r in self.rows) for k in range(len(self.columns))]


@dataclass
class Figure:
    uri: str
    alt: str
    wide: bool = False  # spans both columns
    caption: str = ""


@dataclass
class Section:
    id: str
    title: str
    how: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class SectionFailure:
    """A section whose code raised: its title and the exception."""

    title: str
    error: BaseException

    def __str__(self) -> str:
        return f"{self.title}: {type(self.error).__name__}: {self.error}"


# a section of a page: (id, title, the function that builds it)
SectionSpec = tuple[str, str, Callable[[], Section]]


def build_sections(specs: list[SectionSpec]) -> tuple[list[Section], list[SectionFailure]]:
    """Build each ``(id, title, make)``; a section whose ``make`` raises is replaced by one
    that says it failed, and listed in the failures (the caller decides whether the report
    may still be written: ``build.build_report``'s ``allow_partial``)."""
    sections, failed = [], []
    for sid, title, make in specs:
        try:
            sections.append(make())
        except Exception as e:  # noqa: BLE001 - the one place a section's failure is caught: it is reported, never hidden
            failed.append(SectionFailure(title, e))
            sections.append(
                Section(
                    sid,
                    title,
                    "This section failed; the report is partial.",
                    notes=[f"section failed: {type(e).__name__}: {e}"],
                )
            )
    return sections, failed


def fmt(v: Any, digits: int = 3) -> str:
    """Numbers for humans: floats to ``digits`` decimals, ints as is, missing as a dash."""
    if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.{digits}f}"
    return str(v)


def num(v: Any, id_: str | None = None, digits: int = 3) -> Cell:
    """A cell holding a number: formatted text, the exact value kept for data-value."""
    exact = v.item() if isinstance(v, np.generic) else v
    is_num = isinstance(exact, (int, float)) and not isinstance(exact, bool)
    return Cell(fmt(v, digits), exact if is_num else None, id_, numeric=is_num or v is None)


def slug(s: str) -> str:
    """An id-safe name: runs of anything but letters, digits and ``_`` become one ``-``
    (``baseline: majority`` -> ``baseline-majority``, ``macro_f1`` stays)."""
    return re.sub(r"[^0-9A-Za-z_]+", "-", str(s)).strip("-").lower()


def df_table(df: pd.DataFrame, caption: str = "", id_prefix: str | None = None, key: str | None = None) -> Table:
    """A DataFrame as a Table; with ``id_prefix`` and ``key`` every numeric cell gets the id
    ``<prefix>-<slug(row key)>-<slug(column)>``."""
    rows = []
    for _, r in df.iterrows():
        row = []
        for c in df.columns:
            v = r[c]
            cid = f"{id_prefix}-{slug(r[key])}-{slug(c)}" if id_prefix and key else None
            row.append(
                num(v, cid) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else Cell(fmt(v))
            )
        rows.append(row)
    return Table([str(c) for c in df.columns], rows, caption)


# ----------------------------------------------------------------------------- provenance


def about_line(data: dict, fingerprint: str | None, n_test: int | None) -> str:
    """The report's first line: real or simulated, data set, split, cache fingerprint."""
    kind = data.get("kind") or "unknown kind of"
    dataset = data.get("dataset") or "unnamed data set"
    split = data.get("split") or "split file not recorded"
    n = f" ({n_test} images)" if n_test is not None else ""
    fp = fingerprint or "not recorded"
    return f"About: {kind} data · data set {dataset} · test split{n} of {split} · cache fingerprint {fp}"


def cache_fingerprint(data: dict, config: dict | None, run_dir: Path) -> str | None:
    """The cache's fingerprint hash: from config.json's provenance, else the cache manifest."""
    prov = (config or {}).get("provenance") or {}
    if prov.get("cache_fingerprint_hash"):
        return str(prov["cache_fingerprint_hash"])
    manifest = resolve(data.get("cache") or "", run_dir) / "manifest.json"
    if data.get("cache") and manifest.is_file():
        return str(read_manifest(manifest.parent)["fingerprint_hash"])
    return None


# ----------------------------------------------------------------------------- predictions


@dataclass
class Preds:
    """predictions.csv of one run with label / prediction indices."""

    df: pd.DataFrame
    y: np.ndarray
    p: np.ndarray
    p_before: np.ndarray | None


def read_preds(run: RunFiles) -> tuple[Preds | None, str | None]:
    """The run's predictions, or (None, the note saying why they cannot be used)."""
    df = run.get("predictions.csv")
    if df is None:
        return None, run.note("predictions.csv")
    try:
        cls = run.classes
        y = class_indices(df["label"], cls, f"{run.dir}/predictions.csv column label")
        p = class_indices(df["pred"], cls, f"{run.dir}/predictions.csv column pred")
        pb = (
            class_indices(df["pred_before"], cls, f"{run.dir}/predictions.csv column pred_before")
            if "pred_before" in df.columns
            else None
        )
    except ValueError as e:  # labels that are not the run's classes: an input problem, said as a note
        return None, str(e)
    return Preds(df, y, p, pb), None
