"""The image index: one row per usable image, keyed by a stable id (docs/architecture.md §1).

``build_index`` turns reader records (``emolog.data.readers``) into an ``ImageIndex`` plus a
rejects table. A row is rejected - never silently repaired - for a bad or escaping path, a bad
numeric value, a missing label, an unknown label (not in the mapping's label set: a typo), a
label the mapping drops, a duplicate or conflicting entry for the same path, or an image file
that ``load_image`` refuses. Every other row is kept. Unknown labels are rejected before
duplicates are resolved: a typo row must not turn the same image's valid row into a conflict.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd
from tqdm import tqdm

from emolog.errors import InputError
from emolog.data.artefacts import ArtefactError, ArtefactMissing, read_csv, read_json
from emolog.data.atomic import atomic_write_text
from emolog.data.images import (
    DEFAULT_MAX_PIXELS,
    ImageRejected,
    decode_image,
    read_image_bytes,
    reason_category,
    sha256_bytes,
)
from emolog.data.paths import PathRejected, image_id, normalize_rel_path
from emolog.labels import LabelMapping, MappingReport

INDEX_COLUMNS: tuple[str, ...] = (
    "image_id",
    "rel_path",
    "label",
    "label_raw",
    "valence",
    "arousal",
    "ambiguity",
    "dec_factors",
    "content_hash",
    "width",
    "height",
)
REJECT_COLUMNS: tuple[str, ...] = ("rel_path", "reason")
_STR_COLUMNS = ("image_id", "rel_path", "label", "label_raw", "dec_factors", "content_hash")
_FLOAT_COLUMNS = ("valence", "arousal", "ambiguity")
_INT_COLUMNS = ("width", "height")


class UnknownIdError(InputError, KeyError):
    """Ids asked of an index that it does not hold (the message names them)."""


@dataclass
class ImageIndex:
    """The index table, rows sorted by ``image_id``; ``df`` has exactly ``INDEX_COLUMNS``.

    ``valence``, ``arousal``, ``ambiguity`` are floats (NaN where unknown); ``width`` and
    ``height`` (pixels, upright) are nullable ints, absent when images were not read.
    """

    df: pd.DataFrame

    def __post_init__(self) -> None:
        missing = [c for c in INDEX_COLUMNS if c not in self.df.columns]
        if missing:
            raise ValueError(f"index table lacks columns {missing}")
        df = self.df[list(INDEX_COLUMNS)].copy()
        for c in _STR_COLUMNS:
            df[c] = df[c].fillna("").astype(str)
        for c in _FLOAT_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="raise").astype(float)
        for c in _INT_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="raise").astype("Int64")
        dup = df["image_id"][df["image_id"].duplicated()].tolist()
        if dup:
            raise ValueError(f"index has duplicate image ids: {dup[:10]}")
        self.df = df.sort_values("image_id", kind="stable").reset_index(drop=True)
        self._pos = {i: k for k, i in enumerate(self.df["image_id"])}

    def __len__(self) -> int:
        return len(self.df)

    @property
    def ids(self) -> list[str]:
        return self.df["image_id"].tolist()

    def _rows(self, ids: Iterable[str]) -> list[int]:
        ids = list(ids)
        missing = [i for i in ids if i not in self._pos]
        if missing:
            raise UnknownIdError(f"{len(missing)} image id(s) not in the index: {missing[:10]}")
        return [self._pos[i] for i in ids]

    def label_of(self, ids: Iterable[str]) -> list[str]:
        """Labels of ``ids``, in the order given; ``UnknownIdError`` naming any unknown id."""
        col = self.df["label"]
        return [col.iat[k] for k in self._rows(ids)]

    def rel_path_of(self, ids: Iterable[str]) -> list[str]:
        """Relative paths of ``ids``, in the order given."""
        col = self.df["rel_path"]
        return [col.iat[k] for k in self._rows(ids)]

    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.df["label"]).items()))

    def save(self, path: str | Path) -> None:
        """Write ``index.csv`` atomically (rows sorted by ``image_id``)."""
        atomic_write_text(path, self.df.to_csv(index=False, float_format="%.10g"))

    @classmethod
    def load(cls, path: str | Path) -> "ImageIndex":
        """Read an ``index.csv``; ids stay strings (an all-digit hex id must not become an int)."""
        path = Path(path)
        # missing, empty, cut or garbled: one line naming the file (artefacts.read_csv)
        df = read_csv(path, INDEX_COLUMNS, "an index.csv", dtype=str, keep_default_na=False, na_filter=False)
        try:
            for c in _FLOAT_COLUMNS + _INT_COLUMNS:
                df[c] = pd.to_numeric(df[c].replace("", None), errors="raise")
            return cls(df)
        except (ValueError, TypeError) as e:
            raise ArtefactError(f"{path}: {e}") from None


def load_rejects(path: str | Path) -> pd.DataFrame:
    """``rejects.csv`` (``rel_path, reason``, strings), refused in one line when damaged (also
    when it holds another number of rows than the index_summary.json beside it records)."""
    path = Path(path)
    df = read_csv(path, REJECT_COLUMNS, "a rejects.csv", dtype=str, keep_default_na=False, na_filter=False)
    summary = path.with_name("index_summary.json")
    recorded = read_json(summary).get("n_rejected") if summary.is_file() else None
    if isinstance(recorded, int) and recorded != len(df):
        raise ArtefactError(
            f"{path}: holds {len(df)} rejected rows, {summary} records {recorded}: truncated or edited?"
        )
    return df


def recorded_root(directory: str | Path) -> str | None:
    """The data root ``emolog index`` recorded in ``directory/index_summary.json`` (None when
    there is no summary or it records none); a damaged summary is refused, naming it."""
    path = Path(directory) / "index_summary.json"
    if not path.is_file():
        return None
    root = read_json(path, required={"root": (str, type(None))})["root"]
    return root or None


def rejects_path(directory: str | Path) -> Path | None:
    """``directory/rejects.csv``; None for a data directory that has none (simulated data),
    ArtefactMissing when ``emolog index`` wrote the directory (its index_summary.json) and
    the rejects.csv it wrote beside it is gone."""
    d = Path(directory)
    if (d / "rejects.csv").is_file():
        return d / "rejects.csv"
    if (d / "index_summary.json").is_file():
        raise ArtefactMissing(
            f"{d / 'rejects.csv'}: missing, though {d / 'index_summary.json'} records the "
            "index that wrote it (its rejected images would go unlisted)"
        )
    return None


@dataclass
class BuildResult:
    """What ``build_index`` produced: the index, the rejects and the label-mapping report."""

    index: ImageIndex
    rejects: pd.DataFrame  # columns rel_path, reason
    mapping_report: MappingReport
    n_records: int
    notes: list[str] = field(default_factory=list)

    def reject_counts(self) -> dict[str, int]:
        """Rejects per reason category (the part of the reason before the first colon)."""
        return dict(Counter(reason_category(r) for r in self.rejects["reason"]).most_common())

    def summary(self) -> str:
        lines = [f"records: {self.n_records}, indexed: {len(self.index)}, rejected: {len(self.rejects)}"]
        lines.append("per class:")
        for lab, n in self.index.class_counts().items():
            lines.append(f"  {lab:<12} {n}")
        if len(self.rejects):
            lines.append("rejected, per reason:")
            for cat, n in self.reject_counts().items():
                lines.append(f"  {cat:<28} {n}")
        lines.append(self.mapping_report.summary())
        lines.extend(self.notes)
        return "\n".join(lines)


class _BadRow(ValueError):
    """A record with an unusable value; the message is the reject reason."""


def _parse_number(value: str, column: str) -> float:
    if value == "":
        return float("nan")
    try:
        return float(value)
    except ValueError:
        raise _BadRow(f"bad value: {column}={value!r} is not a number") from None


def build_index(
    records: pd.DataFrame,
    mapping: LabelMapping,
    root: str | Path | None = None,
    check_images: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
    workers: int = 1,
) -> BuildResult:
    """Build the index from reader records (``emolog.data.readers.RECORD_COLUMNS``).

    Args:
        records: the reader's table; row order does not matter (output is sorted by id).
        mapping: source label -> target label; rows it drops are rejected and counted.
        root: data root the relative paths point into; required when ``check_images``.
        check_images: decode every image (content hash, size); False indexes annotations
            only (``content_hash`` empty, ``width``/``height`` missing).
        max_pixels: images with more pixels are rejected as decompression bombs.
        progress: show a tqdm bar while reading images.
        workers: threads decoding images in parallel (the result does not depend on it).
    """
    if check_images and root is None:
        raise ValueError("build_index: a data root is needed to check images (or check_images=False)")
    rejects: list[tuple[str, str]] = []
    rows: list[dict] = []
    unknown: Counter = Counter()
    for rec in records.itertuples(index=False):
        try:
            rel = normalize_rel_path(rec.path)
            nums = {c: _parse_number(getattr(rec, c), c) for c in _FLOAT_COLUMNS}
        except PathRejected as e:
            rejects.append((str(rec.path), e.reason))
            continue
        except _BadRow as e:
            rejects.append((rel, str(e)))
            continue
        if not rec.label_raw:
            rejects.append((rel, "no label"))
            continue
        if not mapping.is_known(rec.label_raw):
            unknown[rec.label_raw] += 1
            rejects.append(
                (
                    rel,
                    f"unknown label: {rec.label_raw!r} is not a label of mapping {mapping.name!r} "
                    f"(known: {', '.join(mapping.known or ())})",
                )
            )
            continue
        rows.append({"rel_path": rel, "label_raw": rec.label_raw, **nums, "dec_factors": rec.dec_factors})

    rows = _resolve_duplicates(rows, rejects)
    mapped, report = mapping.map_many(r["label_raw"] for r in rows)
    report.unknown.update(unknown)
    kept: list[dict] = []
    for r, lab in zip(rows, mapped):
        if lab is None:
            rejects.append((r["rel_path"], f"label dropped by mapping: {r['label_raw']}"))
        else:
            kept.append({**r, "label": lab})

    for r in kept:
        r["image_id"] = image_id(r["rel_path"])
        r["content_hash"], r["width"], r["height"] = "", None, None
    good: list[dict] = []
    if not check_images:
        good = kept
    else:
        # Decoding happens in C with the GIL released, so threads give real parallelism; with
        # one worker the pool's per-task overhead would only cost time.
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            mapper = pool.map if workers > 1 else map
            checked = mapper(lambda r: _check_image(r, Path(root), max_pixels), kept)
            for r, reason in tqdm(checked, total=len(kept), desc="checking images", unit="img", disable=not progress):
                if reason is None:
                    good.append(r)
                else:
                    rejects.append((r["rel_path"], reason))

    df = pd.DataFrame(good, columns=list(INDEX_COLUMNS))
    index = ImageIndex(df)
    rej = pd.DataFrame(sorted(rejects), columns=list(REJECT_COLUMNS))
    notes = _duplicate_content_note(index.df)
    return BuildResult(index, rej, report, len(records), notes)


def _check_image(r: dict, root: Path, max_pixels: int) -> tuple[dict, str | None]:
    """Fill ``content_hash``, ``width``, ``height`` of row ``r``; or return a reject reason."""
    try:
        data = read_image_bytes(root / r["rel_path"])
        img = decode_image(data, max_pixels=max_pixels)
    except ImageRejected as e:
        return r, e.reason
    r["content_hash"] = sha256_bytes(data)
    r["width"], r["height"] = img.size
    return r, None


def _resolve_duplicates(rows: list[dict], rejects: list[tuple[str, str]]) -> list[dict]:
    """One row per rel_path. Identical labels: keep one, reject the rest; else reject all.

    Which copy is kept depends only on the rows' contents, never on their order, so shuffled
    input gives the same index.
    """
    by_path: dict[str, list[dict]] = {}
    for r in rows:
        by_path.setdefault(r["rel_path"], []).append(r)
    out: list[dict] = []
    for rel, group in by_path.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        labels = sorted({g["label_raw"] for g in group})
        if len(labels) > 1:
            rejects.extend((rel, f"conflicting labels: {', '.join(labels)} ({len(group)} rows)") for _ in group)
            continue
        group = sorted(group, key=lambda g: repr(sorted(g.items())))
        out.append(group[0])
        rejects.extend((rel, f"duplicate entry: {len(group)} rows for this path, one kept") for _ in group[1:])
    return out


def _duplicate_content_note(df: pd.DataFrame) -> list[str]:
    # Byte-identical files under different paths can leak between train and test; say so.
    hashes = df["content_hash"][df["content_hash"] != ""]
    dup = hashes[hashes.duplicated(keep=False)]
    if dup.empty:
        return []
    return [f"note: {len(dup)} indexed images share content with another ({dup.nunique()} distinct files)"]
