"""FindingEmo as shipped by the ``findingemo-light`` package (annotations + image URLs).

The images themselves are not in the package (``emolog download findingemo DIR`` fetches
them). Paths in both files start with ``/``, meaning the data root; ``image_urls`` returns
them normalised (``emolog.data.paths.normalize_rel_path``: no leading slash).

Facts of the shipped files (findingemo-light 1.x): 25,869 annotated images, 24 Plutchik
labels; 258 annotated images have no URL; 10,264 have several alternative URLs (up to 8+);
22 file names contain ``..`` inside the name.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from emolog.data.paths import normalize_rel_path
from emolog.data.readers import read_findingemo_csv
from emolog.labels import DEFAULT_MAPPING, get_mapping

PACKAGE = "findingemo_light"


def _data_file(name: str) -> Path:
    try:
        path = Path(str(resources.files(f"{PACKAGE}.data").joinpath(name)))
    except ModuleNotFoundError:
        raise RuntimeError("the findingemo-light package is not installed (pip install findingemo-light)") from None
    if not path.is_file():
        raise RuntimeError(f"findingemo-light is installed but lacks {name} (looked in {path.parent})")
    return path


@lru_cache(maxsize=1)
def _annotations_text() -> str:
    # The package's own reader returns the file's text; use it so we read what it means.
    from findingemo_light.data.read_annotations import read_annotations

    return read_annotations()


def load_annotations() -> pd.DataFrame:
    """The package's annotations, one row per image, columns as shipped (``image_path``,
    ``emotion``, ``valence`` -3..3, ``arousal`` 0..6, ``ambiguity`` 0..6, ``dec_factors``, ...).

    Text stays text (``keep_default_na=False``); numeric columns are ints.
    """
    df = pd.read_csv(io.StringIO(_annotations_text()), keep_default_na=False)
    return df


def annotation_records() -> pd.DataFrame:
    """The annotations as reader records (``emolog.data.readers.RECORD_COLUMNS``)."""
    return read_findingemo_csv(io.StringIO(_annotations_text()), name="findingemo-light")


def label_distribution(mapping: str = DEFAULT_MAPPING) -> dict[str, float]:
    """Relative frequency of each target class after ``mapping``, over the rows it keeps.

    Keys are the mapping's target label set in its canonical order (e.g. ``BASIC7``); the
    values sum to 1. With the default mapping about 12% of rows (Anticipation, Vigilance) are
    dropped before the frequencies are taken.
    """
    m = get_mapping(mapping)
    mapped, report = m.map_many(load_annotations()["emotion"].astype(str))
    total = sum(report.kept.values())
    if total == 0:
        raise ValueError(f"mapping {mapping!r} keeps none of the FindingEmo labels")
    return {lab: report.kept.get(lab, 0) / total for lab in m.target}


@lru_cache(maxsize=1)
def _urls() -> dict[str, tuple[str, ...]]:
    entries = json.loads(_data_file("dataset_urls_exploded.json").read_text())
    grouped: dict[str, list[tuple[int, str]]] = {}
    for e in entries:
        grouped.setdefault(normalize_rel_path(e["rel_path"]), []).append((int(e["idx_url"]), e["url"]))
    # idx_url is the package's preference order among alternatives.
    return {rel: tuple(u for _, u in sorted(v)) for rel, v in sorted(grouped.items())}


def image_urls() -> dict[str, list[str]]:
    """``{rel_path: [url, ...]}`` in the package's preference order (``idx_url`` 1, 2, ...).

    Keys are normalised relative paths (no leading ``/``). Annotated images without any URL
    are absent; a few URL entries have no annotation.
    """
    return {k: list(v) for k, v in _urls().items()}


def url_coverage() -> Counter:
    """How many annotated images have 0, 1, 2, ... URLs (for reports and the downloader)."""
    urls = _urls()
    rels = (normalize_rel_path(p) for p in load_annotations()["image_path"])
    return Counter(len(urls.get(r, ())) for r in rels)
