"""How a program chooses its source (scene, face1..3): the program's kind, chosen once.

``emolog.model.gate.program_kind(lm)`` picks one of ``KINDS`` when the model is built; every
reader asks the object what it needs (``kind.global_weights``, ``kind.gate_net``, ...) instead
of comparing its name. The name is what run records hold (results.json ``kind``, the gate
record's ``kind``); ``kind_named`` maps a recorded name back and refuses an unknown one.
Plain Python (no torch): the report reads it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from emolog.data.artefacts import ArtefactError


@dataclass(frozen=True)
class ProgramKind:
    """One way of choosing the source; the flags are what the model, the learners and the run's
    writer and readers ask of it."""

    name: str  # the recorded string (results.json "kind")
    has_sources: bool  # a choice over scene, face1..3: the source reports exist
    global_weights: bool = False  # one trainable weight per source, a t(_)::source(S) disjunction (seed.pl)
    gate_net: bool = False  # the source is the neural predicate gate_net over per-image evidence
    rules: bool = False  # the program queries source(X, S) from per-image rule facts

    @property
    def per_image_sources(self) -> bool:
        """The source distribution varies per image (reported as the mean of ``w_<source>``,
        as the gate's is) rather than being the global weights."""
        return self.has_sources and not self.global_weights


GLOBAL = ProgramKind("global", has_sources=True, global_weights=True)
GATE = ProgramKind("gate", has_sources=True, gate_net=True)
RULES = ProgramKind("rules", has_sources=True, rules=True)
NONE = ProgramKind("none", has_sources=False)
KINDS: tuple[ProgramKind, ...] = (GLOBAL, GATE, RULES, NONE)
_BY_NAME = {k.name: k for k in KINDS}


def kind_named(name: str, where: str) -> ProgramKind:
    """The kind recorded as ``name`` in ``where`` (the file read); an unknown name is refused
    (``ArtefactError``), naming the file and the known kinds."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):  # TypeError: a name that is not a string (a list, a dict)
        raise ArtefactError(
            f"{where}: field 'kind' is {name!r}, not a program kind (one of {list(_BY_NAME)})"
        ) from None
