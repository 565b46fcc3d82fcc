"""Every constraint on a run's config, in one table (``RULES``), checked by ``check``.

A rule names its key ("group.key" for a group's), reads that key's value (or the whole config
for a constraint between keys) and says in its ``why`` what a valid value is; the first rule
that fails is the error, so their order is the order users see the errors in.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from emolog.config.regimes import REGIMES
from emolog.labels import SEMANTICS, SOURCES

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
LOGIC_PARAMS: tuple[str, ...] = ("softmax", "projected")
IMBALANCE: tuple[str, ...] = ("none", "class-weighted", "balanced-sampling", "logit-adjust")
SCENE_INITS: tuple[str, ...] = ("auto", "pretrained", "random")
GATE_INITS: tuple[str, ...] = ("global", "uniform")


def value(cfg: Any, key: str) -> Any:
    """The value of ``key`` ("group.key" or a top-level key) in ``cfg``."""
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


class Rule(NamedTuple):
    """One constraint: ``ok`` reads the key's value, or the whole config when ``whole``."""

    key: str
    ok: Callable[[Any], bool]
    why: str
    whole: bool = False


def check(cfg: Any) -> str | None:
    """The first failing rule's message (naming the key and the value), or None."""
    for key, ok, why, whole in RULES:
        if not ok(cfg if whole else value(cfg, key)):
            return f"config key {key!r}: {why} (got {value(cfg, key)!r})"
    return None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _path_or_null(v: Any) -> bool:
    return v is None or (isinstance(v, str) and bool(v))


def _one_of(key: str, allowed: tuple[str, ...]) -> Rule:
    return Rule(key, lambda v: v in allowed, f"must be one of {list(allowed)}")


def _int_at_least(key: str, low: int, nullable: bool = False) -> Rule:
    return Rule(
        key,
        lambda v: (nullable and v is None) or (_is_int(v) and v >= low),
        f"must be {'null or ' if nullable else ''}an integer >= {low}",
    )


def _weights_rules(key: str) -> list[Rule]:
    """Source weights (null, or a probability per source summing to 1), checked in this order
    so that each check may assume the ones before it passed."""
    return [
        Rule(
            key,
            lambda w: w is None or (isinstance(w, dict) and set(w) == set(SOURCES)),
            f"must map exactly the sources {list(SOURCES)} to probabilities",
        ),
        Rule(
            key,
            lambda w: w is None or all(_is_num(v) and 0 <= v <= 1 for v in w.values()),
            "probabilities must be in [0, 1]",
        ),
        Rule(key, lambda w: w is None or abs(sum(w.values()) - 1) < 1e-6, "probabilities must sum to 1"),
    ]


RULES: tuple[Rule, ...] = (
    _one_of("regime", tuple(REGIMES)),
    Rule("data", lambda v: isinstance(v, str) and bool(v), "a data directory is required"),
    _one_of("semantics", SEMANTICS),
    Rule("seed", _is_int, "must be an integer"),
    _int_at_least("train.epochs", 0),
    _int_at_least("train.em_iterations", 0),
    _int_at_least("train.batch_size", 1),
    _int_at_least("train.n_train", 1, nullable=True),
    _one_of("logic.param", LOGIC_PARAMS),
    *(_one_of(f"{group}.optimizer", OPTIMIZERS) for group in ("logic", "nets", "backbone")),
    Rule(
        "logic.optimizer",
        lambda c: not (c.logic.param == "projected" and c.logic.optimizer != "sgd"),
        "the projected (DeepProbLog) parameterisation is defined for plain SGD only; "
        "set logic.param=softmax to use Adam",
        whole=True,
    ),
    *(
        Rule(f"{group}.lr", lambda v: _is_num(v) and 0 < v < 1e3, "must be a number > 0")
        for group in ("logic", "nets", "backbone")
    ),
    *(
        Rule(key, lambda v: _is_num(v) and v >= 0, "must be a number >= 0")
        for key in ("logic.weight_decay", "nets.weight_decay", "backbone.weight_decay", "train.logit_adjust_tau")
    ),
    _int_at_least("nets.hidden", 1),
    Rule("nets.dropout", lambda v: _is_num(v) and 0 <= v < 1, "must be in [0, 1)"),
    _one_of("train.imbalance", IMBALANCE),
    Rule("strict", lambda v: isinstance(v, bool), "true or false"),
    _int_at_least("train.patience", 1, nullable=True),
    _int_at_least("pretrain.folds", 1),
    _int_at_least("pretrain.refit", 0),
    Rule("pretrain.scene_init", lambda v: v in SCENE_INITS, "must be auto, pretrained or random"),
    _int_at_least("pretrain.epochs", 1),
    _int_at_least("pretrain.batch_size", 1),
    _int_at_least("pretrain.patience", 1),
    *_weights_rules("logic.fixed_weights"),
    *_weights_rules("logic.init_weights"),
    Rule(
        "logic.init_weights",
        lambda w: w is None or all(v > 0 for v in w.values()),
        "initial probabilities must be > 0 (a zero weight can never be learned back)",
    ),
    Rule(
        "perception.grey_face_logits",
        lambda v: v is None or (isinstance(v, list) and len(v) == 7 and all(_is_num(x) for x in v)),
        "must be 7 numbers",
    ),
    Rule(
        "device", lambda v: v == "auto" or v == "cpu" or str(v).startswith("cuda"), "must be auto, cpu, cuda or cuda:N"
    ),
    _int_at_least("threads", 1, nullable=True),
    Rule("extra", lambda v: isinstance(v, dict), "must be an object"),
    Rule(
        "spec",
        lambda v: v is None or (isinstance(v, str) and bool(v)) or isinstance(v, dict),
        "must be null, a spec name / .toml path, or a dict of the spec file's keys",
    ),
    Rule(
        "program",
        lambda c: c.spec is None or c.program == "seed",
        "set either 'spec' (which names its program) or 'program', not both",
        whole=True,
    ),
    Rule("backbone.weights", _path_or_null, "must be null or a path"),
    Rule("perception.recogniser_weights", _path_or_null, "must be null or a path"),
    _int_at_least("gate.hidden", 0),
    _one_of("gate.init", GATE_INITS),
    Rule("gate.scene_features", lambda v: isinstance(v, bool), "must be true or false"),
)
