"""One run's configuration: the ``RunConfig`` dataclass (docs/architecture.md section 5).

A run is fully described by its config: it is built from defaults, an optional JSON or TOML
file and ``key=value`` overrides (``group.key=value`` for a group's setting), validated once
(an unknown key or an impossible value is refused with the key named; the constraints are the
table ``emolog.config.rules.RULES``), and saved beside the run's results in the nested form.
The previous emolog's flat keys (``logic_lr``, ...) are still read, with a deprecation warning
(``emolog.config.legacy``). Defaults are the original thesis hyper-parameters except
``train.batch_size`` (64; the original's 4 is ``--set train.batch_size=4``).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from emolog.config.groups import (
    GROUPS,
    BackboneSettings,
    GateSettings,
    LogicSettings,
    NetSettings,
    PerceptionSettings,
    PretrainSettings,
    TrainSettings,
)
from emolog.config.legacy import canonical, flatten, nest
from emolog.config.rules import check
from emolog.errors import InputError
from emolog.labels import SOURCES

__all__ = ["BASELINES", "SOURCES", "ConfigError", "RunConfig", "parse_override"]

# emolog.experiments.baselines, by name (here: the experiment command lists them without importing torch)
BASELINES: tuple[str, ...] = (
    "majority",
    "scene-only",
    "largest-face",
    "uniform-average",
    "fusion-mlp",
    "fusion-mlp-meta",
    "face-only",
    "tree",
)


class ConfigError(InputError, ValueError):
    """A run config with an unknown key or an impossible value (the message names the key)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run: a few top-level keys and the setting
    groups of ``emolog.config.groups`` (``cfg.logic.lr``, ``cfg.train.epochs``, ...)."""

    regime: str = "logic-only"
    data: str = ""  # data directory D (index.csv, split.json, cache/)
    program: str = "seed"  # emolog/logic/programs/<name>.pl or a path
    # a model spec (emolog/model/specs/<name>.toml or a path): program, query, label set and
    # bindings in one file (docs/model.md); when given it names the program
    spec: str | dict | None = None  # or the spec file's keys as a dict (a spec in Python)
    semantics: str = "condition"  # condition | fail | original (regime original forces it)
    seed: int = 0
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N
    # CPU threads for torch during the run. The tensors are tiny (batch x 7), so thread
    # hand-offs cost more than they save: 1 thread was 25x faster per step than 2 on the
    # shared 2-core machine (docs/benchmarks.md). null = leave torch's setting.
    threads: int | None = 1
    # a class program's answers that do not sum to 1 on the first batches (the answer-mass
    # check, docs/logic.md): False = a warning (and a note in results.json), True = refused
    strict: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (e.g. sweep name)
    train: TrainSettings = field(default_factory=TrainSettings)
    logic: LogicSettings = field(default_factory=LogicSettings)
    nets: NetSettings = field(default_factory=NetSettings)
    backbone: BackboneSettings = field(default_factory=BackboneSettings)
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)
    perception: PerceptionSettings = field(default_factory=PerceptionSettings)
    gate: GateSettings = field(default_factory=GateSettings)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], warn: bool = True) -> "RunConfig":
        """A validated config from a dict: nested groups, "group.key" keys or (deprecated, a
        warning per key unless ``warn`` is False) old flat keys; unknown keys are refused."""
        nested = nest(d, warn)
        _refuse_unknown(nested)
        groups = {name: GROUPS[name](**nested.get(name, {})) for name in GROUPS}
        top = {k: v for k, v in nested.items() if k not in GROUPS and k != "provenance"}
        cfg = cls(**top, **groups)
        cfg.validate()
        return cfg

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> "RunConfig":
        """A run directory's config.json (or checkpoint config) as the RunConfig it was; one
        written by the previous emolog (flat keys) is read without a warning."""
        return cls.from_dict({k: v for k, v in d.items() if k != "perception"}, warn=False)

    @classmethod
    def load(cls, path: str | Path | None, overrides: list[str] | None = None, **given: Any) -> "RunConfig":
        """Defaults <- JSON or TOML file at ``path`` (may be None) <- ``given`` keys (e.g. the
        command line's --data/--regime) <- ``key=value`` overrides (``--set``); later wins."""
        d = nest(_read_file(Path(path))) if path is not None else {}
        for key, value in [*given.items(), *(parse_override(item) for item in overrides or [])]:
            _merge(d, nest({key: value}))
        return cls.from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        """The nested form (what config.json holds)."""
        return asdict(self)

    def flat(self) -> dict[str, Any]:
        """{"key" or "group.key": value} of every setting."""
        return flatten(self.to_dict())

    def get(self, key: str) -> Any:
        """The value of ``key`` ("group.key", a top-level key, or an old flat key)."""
        return self.flat()[canonical(key, warn=False)]

    def updated(self, changes: Mapping[str, Any]) -> "RunConfig":
        """A copy with ``changes`` ("group.key" or top-level keys) applied and validated."""
        d = self.to_dict()
        _merge(d, nest(changes))
        return RunConfig.from_dict(d)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ConfigError naming the first impossible value (``emolog.config.rules.RULES``)."""
        problem = check(self)
        if problem:
            raise ConfigError(problem)


def known_keys() -> list[str]:
    """Every key a config may set: top-level keys and "group.key"."""
    return sorted(RunConfig().flat())


def _refuse_unknown(nested: dict[str, Any]) -> None:
    """ConfigError naming every key of ``nested`` (top level or "group.key") the config lacks."""
    top = {f.name for f in fields(RunConfig)} | {"provenance"}
    unknown = [k for k in nested if k not in top]
    for name, group in GROUPS.items():
        given = nested.get(name, {})
        if not isinstance(given, Mapping):
            raise ConfigError(f"config key {name!r}: must be an object of its keys (got {given!r})")
        known = {f.name for f in fields(group)}
        unknown += [f"{name}.{k}" for k in given if k not in known]
    if unknown:
        raise ConfigError(f"unknown config key(s) {sorted(unknown)}; known keys: {known_keys()}")


def _merge(into: dict[str, Any], nested: Mapping[str, Any]) -> None:
    """``nested``'s keys into ``into``, group by group (later wins)."""
    for key, value in nested.items():
        if key in GROUPS and isinstance(value, Mapping) and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        else:
            into[key] = value


def _read_file(p: Path) -> dict[str, Any]:
    """A config file's keys: TOML when it ends in .toml, else JSON."""
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    try:
        loaded = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: not valid JSON ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{p}: must hold a JSON object of config keys")
    return loaded


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, value); value parsed as JSON when it is JSON, else a string.

    So ``train.epochs=3`` is 3, ``train.n_train=null`` is None, ``train.imbalance=class-weighted``
    is a string and ``logic.fixed_weights={"scene":0.25,...}`` a dict. An old flat key is read
    as its new name (with a deprecation warning); the key returned is the new name.
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value")
    key, raw = item.split("=", 1)
    key = canonical(key.strip())
    known = known_keys()
    if key not in known and key not in GROUPS:
        raise ConfigError(f"unknown config key {key!r} in override {item!r}; known keys: {known}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if key == "data" and not isinstance(value, str):
        value = raw  # a directory called e.g. "1" stays a path
    return key, value
