"""Label sets and the mappings between them.

The canonical order of the 7 basic emotions is fixed here and used by every tensor in
emolog (cache, logic program, metrics). Recognisers with another class order declare it and
are permuted into this order at load time (see ``emolog.perception``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from emolog.errors import InputError

BASIC7: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# The seed program's evidence sources, in the order of its source(S) disjunction (the one
# definition: the simulator, training, the report and the demo read it from here).
SOURCES: tuple[str, ...] = ("scene", "face1", "face2", "face3")
# How a program reads an image without a detected face (docs/logic.md): the one definition, here
# beside the sources because the config checks it without importing the (torch) logic package.
SEMANTICS: tuple[str, ...] = ("condition", "fail", "original")

# FindingEmo's valence and arousal scales (integer annotations, findingemo-light): the ranges a
# valence/arousal target's equal-width bins cover (emolog.model.target) and the simulator draws in.
VA_RANGES: dict[str, tuple[float, float]] = {"valence": (-3.0, 3.0), "arousal": (0.0, 6.0)}

# Plutchik's 8 primary emotions (the "Emo8" families of FindingEmo).
EMO8: tuple[str, ...] = ("joy", "trust", "fear", "surprise", "sadness", "disgust", "anger", "anticipation")

# FindingEmo's 24 Plutchik emotions: per family (low, medium, high intensity).
PLUTCHIK_FAMILIES: dict[str, tuple[str, str, str]] = {
    "joy": ("Serenity", "Joy", "Ecstasy"),
    "trust": ("Acceptance", "Trust", "Admiration"),
    "fear": ("Apprehension", "Fear", "Terror"),
    "surprise": ("Distraction", "Surprise", "Amazement"),
    "sadness": ("Pensiveness", "Sadness", "Grief"),
    "disgust": ("Boredom", "Disgust", "Loathing"),
    "anger": ("Annoyance", "Anger", "Rage"),
    "anticipation": ("Interest", "Anticipation", "Vigilance"),
}
PLUTCHIK24: tuple[str, ...] = tuple(e for fam in PLUTCHIK_FAMILIES.values() for e in fam)

# The mapping the original thesis code used (its label-mapping table). Anticipation and Vigilance are
# deliberately absent: they are dropped (about 12% of FindingEmo's rows).
FINDINGEMO_TO_BASIC7: dict[str, str] = {
    "Anger": "angry",
    "Rage": "angry",
    "Annoyance": "angry",
    "Loathing": "disgust",
    "Disgust": "disgust",
    "Apprehension": "fear",
    "Fear": "fear",
    "Terror": "fear",
    "Joy": "happy",
    "Serenity": "happy",
    "Ecstasy": "happy",
    "Admiration": "happy",
    "Grief": "sad",
    "Sadness": "sad",
    "Pensiveness": "sad",
    "Amazement": "surprise",
    "Surprise": "surprise",
    "Trust": "neutral",
    "Interest": "neutral",
    "Boredom": "neutral",
    "Acceptance": "neutral",
    "Distraction": "neutral",
}

# Plutchik 24 -> its family (Emo8). Every label maps; nothing is dropped.
PLUTCHIK24_TO_EMO8: dict[str, str] = {e: fam for fam, members in PLUTCHIK_FAMILIES.items() for e in members}

LABEL_SETS: dict[str, tuple[str, ...]] = {"basic7": BASIC7, "emo8": EMO8, "plutchik24": PLUTCHIK24}

MAPPINGS: dict[str, tuple[dict[str, str], str, str]] = {
    # name -> (table, target label set, source label set: the labels the data may carry)
    "findingemo-basic7": (FINDINGEMO_TO_BASIC7, "basic7", "plutchik24"),
    "plutchik24-emo8": (PLUTCHIK24_TO_EMO8, "emo8", "plutchik24"),
}
DEFAULT_MAPPING = "findingemo-basic7"


class LabelError(InputError, ValueError):
    """A label or mapping is unknown or inconsistent."""


@dataclass
class MappingReport:
    """What a mapping did to a column of labels: counts per outcome, always reported."""

    kept: Counter = field(default_factory=Counter)  # target label -> count
    dropped: Counter = field(default_factory=Counter)  # source label -> count (policy 'drop')
    redirected: Counter = field(default_factory=Counter)  # source label -> count (policy 'map:X')
    unknown: Counter = field(default_factory=Counter)  # label outside the source set (a typo?) -> count

    @property
    def n_in(self) -> int:
        return sum(self.kept.values()) + sum(self.dropped.values()) + sum(self.unknown.values())

    def summary(self) -> str:
        n = self.n_in
        lines = [
            f"labels: {n} in, {sum(self.kept.values())} kept, {sum(self.dropped.values())} dropped"
            + (f" ({100 * sum(self.dropped.values()) / n:.1f}%)" if n else "")
            + (f", {sum(self.unknown.values())} unknown" if self.unknown else "")
        ]
        for lab, c in sorted(self.dropped.items(), key=lambda kv: -kv[1]):
            lines.append(f"  dropped {lab!r}: {c}")
        for lab, c in sorted(self.redirected.items(), key=lambda kv: -kv[1]):
            lines.append(f"  mapped unmapped {lab!r}: {c}")
        for lab, c in sorted(self.unknown.items(), key=lambda kv: -kv[1]):
            lines.append(f"  unknown {lab!r}: {c}")
        return "\n".join(lines)


@dataclass(frozen=True)
class LabelMapping:
    """A table from source labels to a target label set, plus a policy for unmapped labels.

    ``unmapped`` is ``"drop"`` (the row is removed, and counted) or ``"map:<class>"`` (the
    row is given that target class, and counted). Labels are matched case-insensitively.
    ``source`` is the label set the data may carry (None: any label); a label outside it and
    outside ``target`` is *unknown* - a typo, not a label dropped on purpose - and is never
    mapped, whatever the ``unmapped`` policy.
    """

    table: Mapping[str, str]
    target: tuple[str, ...]
    unmapped: str = "drop"
    name: str = "custom"
    source: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        bad = sorted({v for v in self.table.values() if v not in self.target})
        if bad:
            raise LabelError(f"mapping {self.name!r} maps to labels outside its target set: {bad}")
        if self.unmapped != "drop":
            if not self.unmapped.startswith("map:") or self.unmapped[4:] not in self.target:
                raise LabelError(
                    f"unmapped policy must be 'drop' or 'map:<one of {list(self.target)}>', got {self.unmapped!r}"
                )

    @property
    def known(self) -> tuple[str, ...] | None:
        """Every label the data may carry (source, table and target labels), or None: any."""
        if self.source is None:
            return None
        return tuple(dict.fromkeys([*self.source, *self.table, *self.target]))

    def is_known(self, label: str) -> bool:
        known = self.known
        return known is None or _fold(label) in {_fold(k) for k in known}

    def map_one(self, label: str) -> str | None:
        """The target label, or None when the policy drops it or the label is unknown."""
        if not self.is_known(label):
            return None
        key = _fold(label)
        for src, dst in self.table.items():
            if _fold(src) == key:
                return dst
        if key in {_fold(t) for t in self.target}:
            return next(t for t in self.target if _fold(t) == key)
        return None if self.unmapped == "drop" else self.unmapped[4:]

    def map_many(self, labels: Iterable[str]) -> tuple[list[str | None], MappingReport]:
        """Map a column of labels; returns the mapped column and a report of what happened."""
        report = MappingReport()
        out: list[str | None] = []
        folded = {_fold(s): d for s, d in self.table.items()}
        folded.update({_fold(t): t for t in self.target})
        known = None if self.known is None else {_fold(k) for k in self.known}
        for lab in labels:
            if known is not None and _fold(lab) not in known:
                report.unknown[lab] += 1
                out.append(None)
                continue
            dst = folded.get(_fold(lab))
            if dst is None and self.unmapped != "drop":
                dst = self.unmapped[4:]
                report.redirected[lab] += 1
            if dst is None:
                report.dropped[lab] += 1
            else:
                report.kept[dst] += 1
            out.append(dst)
        return out, report


def _fold(s: str) -> str:
    return str(s).strip().lower()


def get_mapping(name_or_path: str | Path = DEFAULT_MAPPING, unmapped: str = "drop") -> LabelMapping:
    """A named mapping (see ``MAPPINGS``) or one read from a JSON file.

    The JSON file holds ``{"target": "basic7" | [labels...], "table": {source: target},
    "unmapped": "drop" | "map:<class>", "source": "plutchik24" | [labels...]}`` (``source``
    optional: without it every label is known); ``unmapped`` in the file wins over the argument.
    """
    if str(name_or_path) in MAPPINGS:
        table, target, source = MAPPINGS[str(name_or_path)]
        return LabelMapping(dict(table), LABEL_SETS[target], unmapped, str(name_or_path), LABEL_SETS[source])
    path = Path(name_or_path)
    if not path.exists():
        raise LabelError(f"unknown mapping {str(name_or_path)!r}: not one of {sorted(MAPPINGS)} and no such file")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LabelError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(spec, dict):
        raise LabelError(f"{path}: must hold a JSON object with 'target' and 'table'")
    target = spec.get("target", "basic7")
    if isinstance(target, str) and target not in LABEL_SETS:
        raise LabelError(
            f"{path}: unknown target label set {target!r}; expected one of {sorted(LABEL_SETS)} or a list of labels"
        )
    target_labels = LABEL_SETS[target] if isinstance(target, str) else tuple(target)
    if not isinstance(spec.get("table"), dict):
        raise LabelError(f"{path}: needs a 'table' object mapping source -> target labels")
    source = spec.get("source")
    if isinstance(source, str) and source not in LABEL_SETS:
        raise LabelError(
            f"{path}: unknown source label set {source!r}; expected one of {sorted(LABEL_SETS)} or a list of labels"
        )
    source_labels = LABEL_SETS[source] if isinstance(source, str) else None if source is None else tuple(source)
    return LabelMapping(spec["table"], target_labels, spec.get("unmapped", unmapped), str(path), source_labels)


def class_index(label: str, classes: tuple[str, ...] = BASIC7) -> int:
    """Position of ``label`` in ``classes``; a clear error for an unknown label."""
    try:
        return classes.index(label)
    except ValueError:
        raise LabelError(f"unknown label {label!r}; expected one of {list(classes)}") from None
