"""Seeded, stratified train/val/test splits over image ids (docs/architecture.md §1).

The "random" order is a keyed hash: ids are sorted by ``sha256(f"{seed}/{purpose}/{id}")``.
That is a seeded shuffle which depends only on the *set* of ids (never on row order or
directory listing order) and is byte-for-byte the same on every machine and every NumPy
version, unlike a PRNG stream.

Per class, ids are put in that order and cut into test, val and train (per-class counts by
largest-remainder rounding, so the totals match the fractions and each class is within one
image of its share). The train list is then put in a second seeded order, so that "the first N training
images" (``n_train``, like the original's 5000) is a random sample, not a class-sorted block.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from emolog.errors import InputError, UsageError
from emolog.data.artefacts import read_json
from emolog.data.atomic import atomic_write_text

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.1, 0.2)
SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")


class SplitError(InputError, ValueError):
    """A split file or split request that is inconsistent."""


def seeded_order(ids: Sequence[str], seed: int, purpose: str) -> list[str]:
    """``ids`` in a pseudo-random order determined by ``seed`` and ``purpose`` alone."""

    def key(i: str) -> tuple[str, str]:
        return hashlib.sha256(f"{seed}/{purpose}/{i}".encode()).hexdigest(), i

    return sorted(ids, key=key)


def _apportion(sizes: dict[str, int], frac: float) -> dict[str, int]:
    """Per-class counts ~ ``frac * size`` whose total is ``round(frac * sum(sizes))``.

    Largest-remainder rounding: rounding each class on its own would give a 2-image class no
    test image and, summed over many small classes, an empty test set.
    """
    exact = {lab: frac * n for lab, n in sizes.items()}
    out = {lab: int(x) for lab, x in exact.items()}
    short = round(frac * sum(sizes.values())) - sum(out.values())
    by_remainder = sorted(sizes, key=lambda lab: (-(exact[lab] - out[lab]), lab))
    for lab in by_remainder:
        if short <= 0:
            break
        if out[lab] < sizes[lab]:
            out[lab] += 1
            short -= 1
    return out


def make_split(
    ids: Sequence[str],
    labels: Sequence[str],
    seed: int = 42,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    n_train: int | None = None,
) -> dict:
    """A stratified split of ``ids`` (with their ``labels``, same length).

    Returns the ``split.json`` dict: ``seed``, ``fractions``, ``n_train``, ``train`` (seeded
    order, cut to the first ``n_train`` when given), ``val``, ``test`` (sorted ids) and
    ``n_train_pool`` (train size before the cut). val and test do not depend on ``n_train``.
    """
    if len(ids) != len(labels):
        raise SplitError(f"make_split: {len(ids)} ids but {len(labels)} labels")
    if len(set(ids)) != len(ids):
        raise SplitError("make_split: ids are not unique")
    fr = [float(f) for f in fractions]
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise SplitError(f"fractions must be 3 non-negative numbers summing to 1, got {list(fractions)}")
    if n_train is not None and n_train < 1:
        raise SplitError(f"n_train must be positive, got {n_train}")

    by_class: dict[str, list[str]] = {}
    for i, lab in zip(ids, labels):
        by_class.setdefault(str(lab), []).append(str(i))
    sizes = {lab: len(v) for lab, v in by_class.items()}
    n_test = _apportion(sizes, fr[2])
    n_val = _apportion({lab: sizes[lab] - n_test[lab] for lab in sizes}, fr[1] / (1 - fr[2]) if fr[2] < 1 else 0.0)
    parts: dict[str, list[str]] = {name: [] for name in SPLIT_NAMES}
    for lab in sorted(by_class):
        order = seeded_order(by_class[lab], seed, f"class:{lab}")
        t, v = n_test[lab], n_val[lab]
        parts["test"] += order[:t]
        parts["val"] += order[t : t + v]
        parts["train"] += order[t + v :]
    train = seeded_order(parts["train"], seed, "train")
    pool = len(train)
    if n_train is not None:
        if n_train > pool:
            raise SplitError(f"n_train={n_train} but only {pool} training images are available")
        train = train[:n_train]
    return {
        "seed": seed,
        "fractions": fr,
        "n_train": n_train,
        "train": train,
        "val": sorted(parts["val"]),
        "test": sorted(parts["test"]),
        "n_train_pool": pool,
    }


def write_split(split: dict, path: str | Path) -> None:
    """Write ``split.json`` atomically (stable key order, so equal splits are equal bytes)."""
    atomic_write_text(path, json.dumps(split, indent=1) + "\n")


def load_split(path: str | Path, known_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Read ``split.json``: ``{"train": [...], "val": [...], "test": [...]}`` (ids).

    ``train`` is already cut to ``n_train``. With ``known_ids`` (e.g. ``ImageIndex.ids``) every
    id must be known; a ``SplitError`` names the ones that are not. Overlapping sets are an error.
    """
    path = Path(path)
    # missing (exit 4), empty, cut, garbled or without the three lists (exit 3): named
    data = read_json(path, required={name: list for name in SPLIT_NAMES}, what="a split.json")
    out: dict[str, list[str]] = {name: [str(i) for i in data[name]] for name in SPLIT_NAMES}
    seen: dict[str, str] = {}
    for name in SPLIT_NAMES:
        for i in out[name]:
            if i in seen:
                raise SplitError(f"{path}: id {i} is in both {seen[i]} and {name}")
            seen[i] = name
    if known_ids is not None:
        unknown = sorted(set(seen) - set(known_ids))
        if unknown:
            raise SplitError(f"{path}: {len(unknown)} id(s) not in the index, e.g. {unknown[:5]}")
    return out


def parse_shard(spec: str) -> tuple[int, int]:
    """``"i/N"`` -> (i, N) with 0 <= i < N, for ``--shard`` of ``cache build`` and ``experiment``."""
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise UsageError(f"--shard {spec!r}: expected i/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {spec!r}: need 0 <= i < N")
    return i, n
