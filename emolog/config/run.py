"""One run's configuration: the ``RunConfig`` dataclass (docs/architecture.md section 5).

A run is fully described by its config: it is built from defaults, an optional JSON file and
``key=value`` overrides, validated once (an unknown key or an impossible value is refused with
the key named), and saved beside the run's results. Defaults are the original thesis
hyper-parameters except ``batch_size`` (64; the original's 4 is ``--set batch_size=4``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

from emolog.errors import InputError
from emolog.labels import SOURCES

__all__ = ["SOURCES", "ConfigError", "RunConfig", "parse_override"]

REGIMES: tuple[str, ...] = ("logic-only", "problog-em", "nets-only", "joint", "joint-unfreeze", "original")
SEMANTICS: tuple[str, ...] = ("condition", "fail", "original")
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
LOGIC_PARAMS: tuple[str, ...] = ("softmax", "projected")
IMBALANCE: tuple[str, ...] = ("none", "class-weighted", "balanced-sampling", "logit-adjust")
# emolog.experiments.baselines, by name (here: the experiment command lists them without importing torch)
BASELINES: tuple[str, ...] = ("majority", "scene-only", "largest-face", "uniform-average", "fusion-mlp",
                              "fusion-mlp-meta", "face-only", "tree")


class ConfigError(InputError, ValueError):
    """A run config with an unknown key or an impossible value (the message names the key)."""


@dataclass
class RunConfig:
    """Everything that determines one training run.

    Learning rates are per optimiser step; a step is one batch of ``batch_size`` images and
    the loss is the batch *mean* NLL (nats per image).
    """

    regime: str = "logic-only"
    data: str = ""                      # data directory D (index.csv, split.json, cache/)
    program: str = "seed"               # emolog/logic/programs/<name>.pl or a path
    # a model spec (emolog/model/specs/<name>.toml or a path): program, query, label set and
    # bindings in one file (docs/model.md); when given it names the program
    spec: str | dict | None = None      # or the spec file's keys as a dict (a spec in Python)
    semantics: str = "condition"        # condition | fail | original (regime original forces it)
    seed: int = 0
    epochs: int = 12                    # gradient regimes (the original's budget)
    # problog-em: EM iterations. EM on mixture weights converges slowly (measured on 5000
    # simulated images: 12 iterations leave face3 0.05 off the truth, 100 reach 0.01) and one
    # iteration costs ~30 ms, so the default is generous.
    em_iterations: int = 100
    batch_size: int = 64
    n_train: int | None = None          # first N of split.json's train list; None = all
    # logic parameters t(): DeepProbLog's projected probabilities (SGD on the probabilities,
    # clipped to [0, 1], renormalised: what the original's "SGD lr 3e-3" meant) or softmax
    # logits (any torch optimiser, e.g. Adam)
    logic_param: str = "projected"
    logic_optimizer: str = "sgd"
    # 3e-2, not the original's 3e-3: the original took 4-image batches (1250 steps per epoch);
    # at batch 64 (78 steps) 3e-3 leaves the weights near uniform after 12 epochs, 3e-2 reaches
    # the truth within 0.03 on simulated data (docs/training.md, "learning rate").
    logic_lr: float = 3e-2
    logic_weight_decay: float = 0.0
    init_weights: dict[str, float] | None = None   # initial t(); None = uniform
    # Scene2EmotionNet
    net_optimizer: str = "adam"
    net_lr: float = 3e-3
    net_weight_decay: float = 1e-5
    net_hidden: int = 64
    net_dropout: float = 0.5
    # the scene backbone's last block (joint-unfreeze only)
    backbone_optimizer: str = "adam"
    backbone_lr: float = 1e-5
    backbone_weight_decay: float = 1e-5
    # weights files to rebuild the cache's networks from when the paths recorded with the cache
    # (manifest info.weights_paths) moved: the backbone (joint-unfreeze), the recogniser
    # (original semantics: its reading of a grey face); None = the recorded path
    backbone_weights: str | None = None
    recogniser_weights: str | None = None
    # class imbalance
    imbalance: str = "none"
    logit_adjust_tau: float = 1.0
    # early stopping on validation NLL: stop after `patience` epochs without improvement and
    # restore the best epoch's parameters; None = run all epochs (and keep the last)
    patience: int | None = 3
    # a class program's answers that do not sum to 1 on the first batches (the answer-mass
    # check, docs/logic.md): False = a warning (and a note in results.json), True = refused
    strict: bool = False
    fixed_weights: dict[str, float] | None = None  # nets-only: t() held at these; None = uniform
    # scene-only pretraining of Scene2EmotionNet (logic-only, problog-em): cached on disk
    scene_init: str = "auto"            # auto (per regime) | pretrained | random
    pretrain_epochs: int = 30
    pretrain_batch_size: int = 64       # own key: a logic batch-size sweep keeps one scene net
    pretrain_patience: int = 3
    # K-fold cross-fitting: the logic sees each training image's scene distribution from a net
    # that did not train on it; 1 = in-sample (the memorising net: shows the collapse)
    pretrain_folds: int = 5
    # EM rounds refitting the scene net to its responsibility-weighted labels (the scene's own
    # emotion rather than the image label); 0 = plain scene-only pretraining
    pretrain_refit: int = 3
    pretrain_cache: str | None = None   # folder for pretrained nets; None = <data>/pretrained
    grey_face_logits: list[float] | None = None    # original semantics; None = from the cache
    device: str = "auto"                # auto (CUDA when present) | cpu | cuda | cuda:N
    # CPU threads for torch during the run. The tensors are tiny (batch x 7), so thread
    # hand-offs cost more than they save: 1 thread was 25x faster per step than 2 on the
    # shared 2-core machine (docs/benchmarks.md). null = leave torch's setting.
    threads: int | None = 1
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (e.g. sweep name)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunConfig":
        """A validated config from a dict; unknown keys are refused, naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in d if k not in known and k != "provenance")
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown}; known keys: {sorted(known)}")
        cfg = cls(**{k: v for k, v in d.items() if k in known})
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path | None, overrides: list[str] | None = None,
             **given: Any) -> "RunConfig":
        """Defaults <- JSON file at ``path`` (may be None) <- ``given`` keys (e.g. the command
        line's --data/--regime) <- ``key=value`` overrides (``--set``); later wins."""
        d: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            try:
                loaded = json.loads(p.read_text())
            except FileNotFoundError:
                raise ConfigError(f"config file not found: {p}") from None
            except json.JSONDecodeError as e:
                raise ConfigError(f"{p}: not valid JSON ({e})") from None
            if not isinstance(loaded, dict):
                raise ConfigError(f"{p}: must hold a JSON object of config keys")
            d.update(loaded)
        d.update(given)
        for item in overrides or []:
            key, value = parse_override(item)
            d[key] = value
        return cls.from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ConfigError naming the first impossible value (``_RULES``, in order)."""
        for key, ok, why, whole in _RULES:
            if not ok(self if whole else getattr(self, key)):
                raise ConfigError(f"config key {key!r}: {why} (got {getattr(self, key)!r})")


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, value); value parsed as JSON when it is JSON, else a string.

    So ``epochs=3`` is 3, ``n_train=null`` is None, ``imbalance=class-weighted`` is a string
    and ``fixed_weights={"scene":0.25,...}`` a dict.
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    known = {f.name for f in fields(RunConfig)}
    if key not in known:
        raise ConfigError(f"unknown config key {key!r} in override {item!r}; known keys: {sorted(known)}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if key == "data" and not isinstance(value, str):
        value = raw  # a directory called e.g. "1" stays a path
    return key, value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


class _Rule(NamedTuple):
    """One constraint of ``RunConfig.validate``: ``ok`` reads the key's value, or the whole
    config when ``whole`` (a constraint between keys); ``why`` is the error's wording."""
    key: str
    ok: Callable[[Any], bool]
    why: str
    whole: bool = False


def _one_of(key: str, allowed: tuple[str, ...]) -> _Rule:
    return _Rule(key, lambda v: v in allowed, f"must be one of {list(allowed)}")


def _int_at_least(key: str, low: int, nullable: bool = False) -> _Rule:
    return _Rule(key, lambda v: (nullable and v is None) or (_is_int(v) and v >= low),
                 f"must be {'null or ' if nullable else ''}an integer >= {low}")


def _weights_rules(key: str) -> list[_Rule]:
    """Source weights (null, or a probability per source summing to 1), checked in this order
    so that each check may assume the ones before it passed."""
    return [_Rule(key, lambda w: w is None or (isinstance(w, dict) and set(w) == set(SOURCES)),
                  f"must map exactly the sources {list(SOURCES)} to probabilities"),
            _Rule(key, lambda w: w is None or all(_is_num(v) and 0 <= v <= 1 for v in w.values()),
                  "probabilities must be in [0, 1]"),
            _Rule(key, lambda w: w is None or abs(sum(w.values()) - 1) < 1e-6, "probabilities must sum to 1")]


def _path_or_null(v: Any) -> bool:
    return v is None or (isinstance(v, str) and bool(v))


# every constraint on a config in one table; the first that fails is the error (their order is
# the order users have always seen the errors in)
_RULES: tuple[_Rule, ...] = (
    _one_of("regime", REGIMES),
    _Rule("data", lambda v: isinstance(v, str) and bool(v), "a data directory is required"),
    _one_of("semantics", SEMANTICS),
    _Rule("seed", _is_int, "must be an integer"),
    _int_at_least("epochs", 0),
    _int_at_least("em_iterations", 0),
    _int_at_least("batch_size", 1),
    _int_at_least("n_train", 1, nullable=True),
    _one_of("logic_param", LOGIC_PARAMS),
    *(_one_of(key, OPTIMIZERS) for key in ("logic_optimizer", "net_optimizer", "backbone_optimizer")),
    _Rule("logic_optimizer", lambda c: not (c.logic_param == "projected" and c.logic_optimizer != "sgd"),
          "the projected (DeepProbLog) parameterisation is defined for plain SGD only; "
          "set logic_param=softmax to use Adam", whole=True),
    *(_Rule(key, lambda v: _is_num(v) and 0 < v < 1e3, "must be a number > 0")
      for key in ("logic_lr", "net_lr", "backbone_lr")),
    *(_Rule(key, lambda v: _is_num(v) and v >= 0, "must be a number >= 0")
      for key in ("logic_weight_decay", "net_weight_decay", "backbone_weight_decay", "logit_adjust_tau")),
    _int_at_least("net_hidden", 1),
    _Rule("net_dropout", lambda v: _is_num(v) and 0 <= v < 1, "must be in [0, 1)"),
    _one_of("imbalance", IMBALANCE),
    _Rule("strict", lambda v: isinstance(v, bool), "true or false"),
    _int_at_least("patience", 1, nullable=True),
    _int_at_least("pretrain_folds", 1),
    _int_at_least("pretrain_refit", 0),
    _Rule("scene_init", lambda v: v in ("auto", "pretrained", "random"), "must be auto, pretrained or random"),
    _int_at_least("pretrain_epochs", 1),
    _int_at_least("pretrain_batch_size", 1),
    _int_at_least("pretrain_patience", 1),
    *_weights_rules("fixed_weights"),
    *_weights_rules("init_weights"),
    _Rule("init_weights", lambda w: w is None or all(v > 0 for v in w.values()),
          "initial probabilities must be > 0 (a zero weight can never be learned back)"),
    _Rule("grey_face_logits", lambda v: v is None or (isinstance(v, list) and len(v) == 7
                                                      and all(_is_num(x) for x in v)), "must be 7 numbers"),
    _Rule("device", lambda v: v == "auto" or v == "cpu" or str(v).startswith("cuda"),
          "must be auto, cpu, cuda or cuda:N"),
    _int_at_least("threads", 1, nullable=True),
    _Rule("extra", lambda v: isinstance(v, dict), "must be an object"),
    _Rule("spec", lambda v: v is None or (isinstance(v, str) and bool(v)) or isinstance(v, dict),
          "must be null, a spec name / .toml path, or a dict of the spec file's keys"),
    _Rule("program", lambda c: c.spec is None or c.program == "seed",
          "set either 'spec' (which names its program) or 'program', not both", whole=True),
    _Rule("backbone_weights", _path_or_null, "must be null or a path"),
    _Rule("recogniser_weights", _path_or_null, "must be null or a path"),
)
