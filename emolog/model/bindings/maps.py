"""Class maps (a feed's classes onto a network's domain) and label tables (the data set's labels
onto the program's output values). Both are refused, listing both sides and the table that
would fix it, when they do not fit.

A **class map** ``[nets.<name>.class_map]`` has one key per value of the network's domain and
names the feed's class(es) it takes: ``joy = "happy"`` renames, the keys' order is the
domain's (any order of the feed's), ``positive = ["happy", "surprise"]`` sums (a merge), and a
feed class no key names is dropped, the rest renormalised to sum to 1 (an all-zero row, e.g.
an absent face, stays 0). A domain value spelled as one of the feed's classes needs no key.
``class_map = "position"`` takes the feed's classes in order (the domain's i-th value is the
feed's i-th class). Without a class map the domain must name the feed's classes (any order).

A **label table** ``label_values`` maps each label of the label set to the program's output
value for it: ``"position"`` (0, 1, ... in the label set's order), a table (``[label_values]
anger = "anger"``, ``joy = 0``) or a file of ``label,value`` lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch


def _close(a: str, b: str) -> bool:
    """A likely respelling (anger ~ angry, Joy ~ joy): same first three letters, any case."""
    return a.lower().strip("'")[:3] == b.lower().strip("'")[:3]


def short(xs: Sequence) -> str:
    """A list for a one-line message: long ones (365 scene classes) cut to their ends."""
    xs = list(xs)
    return (
        str(xs)
        if len(xs) <= 12
        else f"[{', '.join(map(repr, xs[:5]))}, ... {len(xs) - 10} more ..., "
        f"{', '.join(map(repr, xs[-5:]))}] ({len(xs)})"
    )


def suggest_table(left: Sequence[str], right: Sequence[str]) -> str:
    """``key = "value"`` lines pairing each of ``left`` with a likely spelling in ``right``
    (``"?"`` where none is close)."""
    pairs = []
    for a in list(left)[:8]:
        match = next((b for b in right if _close(a, b)), "?")
        pairs.append(f'{_key(a)} = "{match}"')
    return "; ".join(pairs)


def _key(a: str) -> str:
    a = a.strip("'")
    return a if a.replace("_", "").isalnum() and not a[0].isdigit() else f'"{a}"'


def class_map_matrix(
    feed: Sequence[str], domain: Sequence[str], cmap, where: str
) -> tuple[torch.Tensor | None, bool, dict[str, list[str]]]:
    """(M [len(feed), len(domain)] with M[f, d] = 1 where feed class f feeds domain value d,
    or None for the identity; whether dropped classes need a renormalisation; the map as
    {domain value: [feed classes]} for the run's config). ``where`` prefixes errors
    (``spec.toml: [nets.expr]``); raises ValueError with the whole message."""
    feed, domain = [str(c) for c in feed], [str(d).strip("'") for d in domain]
    if cmap == "position":
        if len(feed) != len(domain):
            raise ValueError(
                f'{where} class_map = "position" pairs the feed\'s {len(feed)} classes with the '
                f"domain's {len(domain)} values: they differ in number"
            )
        table = {d: [f] for d, f in zip(domain, feed)}
    elif cmap is None:
        if set(domain) != set(feed) or len(domain) != len(feed):
            raise ValueError(
                f"{where} its domain {short(domain)} does not name the feed's classes {short(feed)} (only in the "
                f"domain: {short(sorted(set(domain) - set(feed)))}; only in the feed: "
                f"{short(sorted(set(feed) - set(domain)))}); add a "
                f"class map, e.g. [{where.rsplit('[', 1)[-1].rstrip(']')}.class_map] "
                f"{suggest_table([d for d in domain if d not in feed], feed)}"
                + (' (or class_map = "position")' if len(feed) == len(domain) else "")
            )
        table = {d: [d] for d in domain}
    elif isinstance(cmap, dict):
        table = _table(feed, domain, cmap, where)
    else:
        raise ValueError(
            f'{where} class_map must be a table {{domain value = feed class(es)}} or "position", got {cmap!r}'
        )
    if [t[0] for t in table.values()] == feed and all(len(t) == 1 for t in table.values()):
        return None, False, table
    m = torch.zeros(len(feed), len(domain), dtype=torch.float64)
    for j, d in enumerate(domain):
        for f in table[d]:
            m[feed.index(f), j] = 1.0
    return m, bool((m.sum(1) == 0).any()), table


def _table(feed: list[str], domain: list[str], cmap: dict, where: str) -> dict[str, list[str]]:
    keys = {str(k).strip("'"): ([v] if isinstance(v, str) else v) for k, v in cmap.items()}
    unknown = sorted(set(keys) - set(domain))
    if unknown:
        raise ValueError(f"{where} class_map names {unknown}, which are not values of the network's domain {domain}")
    table: dict[str, list[str]] = {}
    for d in domain:
        src = keys.get(d, [d] if d in feed else None)
        if src is None:
            raise ValueError(
                f"{where} class_map gives no feed class for the domain value {d!r} (feed classes: "
                f"{feed}); add e.g. {suggest_table([d], feed)}"
            )
        if not isinstance(src, list) or not src or not all(isinstance(x, str) for x in src):
            raise ValueError(f"{where} class_map {d} = {src!r}: give a feed class or a list of them")
        bad = [x for x in src if x not in feed]
        if bad:
            raise ValueError(f"{where} class_map {d} = {src}: {bad} are not classes of the feed {feed}")
        table[d] = list(src)
    used = [x for v in table.values() for x in v]
    twice = sorted({x for x in used if used.count(x) > 1})
    if twice:
        raise ValueError(
            f"{where} class_map feeds {twice} into more than one domain value; each feed class "
            "goes to one value (or is dropped)"
        )
    return table


def apply_map(x: torch.Tensor, m: torch.Tensor | None, renorm: bool) -> torch.Tensor:
    """Rows of feed distributions [n, F] -> [n, D] through ``class_map_matrix``'s M."""
    if m is None:
        return x
    y = x @ m.to(x)
    if renorm:  # an all-zero row (an absent face) stays 0 rather than 0/0
        z = y.sum(1, keepdim=True)
        y = torch.where(z > 0, y / torch.where(z > 0, z, torch.ones_like(z)), y)
    return y


def label_values(value, classes: Sequence[str], base: Path, where: str) -> dict[str, object] | None:
    """{label: program value} from a spec's ``label_values`` (None when absent); ``base``
    resolves a file; raises ValueError naming what is wrong."""
    if value is None:
        return None
    if value == "position":
        return {c: i for i, c in enumerate(classes)}
    table = _read_table(base / value, where, value) if isinstance(value, str) else value
    if not isinstance(table, dict):
        raise ValueError(f'{where} label_values must be "position", a table or a file, got {table!r}')
    _check_covers(table, classes, where)
    seen = [str(v) for v in table.values()]
    dup = sorted({v for v in seen if seen.count(v) > 1})
    if dup:
        raise ValueError(f"{where} label_values gives the program values {dup} to more than one label")
    return {c: table[c] for c in classes}


def _read_table(path: Path, where: str, value: str) -> dict[str, object]:
    """A label table file: ``label,value`` (or whitespace-separated) lines, ``#`` comments."""
    if not path.is_file():
        raise ValueError(f'{where} label_values {value!r} is neither "position", a table nor a file')
    return dict(
        _line(ln, path) for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    )


def _check_covers(table: dict, classes: Sequence[str], where: str) -> None:
    """Exactly the label set's labels are keys of ``table``."""
    unknown = sorted(set(table) - set(classes))
    missing = [c for c in classes if c not in table]
    if unknown or missing:
        raise ValueError(
            f"{where} label_values must give a value for each label of the label set {list(classes)}"
            + (f"; missing: {missing}" if missing else "")
            + (f"; not labels: {unknown}" if unknown else "")
        )


def _line(line: str, path: Path) -> tuple[str, object]:
    parts = [p.strip() for p in (line.split(",") if "," in line else line.split())]
    if len(parts) != 2:
        raise ValueError(f"{path}: each line is label,value; got {line!r}")
    v = parts[1]
    for cast in (int, float):
        try:
            return parts[0], cast(v)
        except ValueError:
            pass
    return parts[0], v
