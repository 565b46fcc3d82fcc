"""The runs of `emolog experiment`: regimes x seeds x one-key sweeps, and the memorisation
(``n_train``) sweep, each checked as a RunConfig before anything trains."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from emolog.config.legacy import canonical
from emolog.config.run import BASELINES, RunConfig, parse_override
from emolog.experiments.runner import Arm
from emolog.experiments.tables import ExperimentError

MEMORISATION_REGIMES: tuple[str, ...] = ("logic-only", "joint")


@dataclass(frozen=True)
class ExperimentPlan:
    """What `emolog experiment` compares (``config()``: experiment.json's ``config``).
    ``sweeps``: "key=v1,v2,..." items; ``overrides``: "key=value" items of the base config;
    ``memorisation``: the n_train values of the memorisation sweep; ``baseline_epochs``: the
    neural baselines' epochs; ``n_boot``: bootstrap resamples."""

    data: str
    regimes: Sequence[str]
    seeds: Sequence[int]
    sweeps: Sequence[str] = ()
    memorisation: Sequence[int] = ()
    overrides: Sequence[str] = ()
    baselines: Sequence[str] = BASELINES
    baseline_epochs: int = 30
    n_boot: int = 1000

    def config(self) -> dict[str, Any]:
        return {
            "data": str(self.data),
            "regimes": list(self.regimes),
            "seeds": list(self.seeds),
            "sweeps": list(self.sweeps),
            "memorisation": list(self.memorisation),
            "overrides": list(self.overrides),
            "baselines": list(self.baselines),
            "baseline_epochs": self.baseline_epochs,
            "n_boot": self.n_boot,
        }


@dataclass(frozen=True)
class RunSpec:
    """One training run of the experiment."""

    regime: str
    seed: int
    sweep: tuple[str, Any] | None  # (key, value) varied from the base config, or None

    @property
    def name(self) -> str:
        suffix = "" if self.sweep is None else f"-{self.sweep_label}"
        return f"{self.regime}-s{self.seed}{suffix}"

    @property
    def sweep_label(self) -> str:
        """``key=value`` of the sweep, or "" for a base run."""
        return "" if self.sweep is None else f"{self.sweep[0]}={_fmt_value(self.sweep[1])}"

    @property
    def system(self) -> str:
        """The comparison row this run belongs to (seeds pooled)."""
        return self.regime if self.sweep is None else f"{self.regime} [{self.sweep_label}]"


def _fmt_value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def parse_sweep(item: str) -> tuple[str, list[Any]]:
    """``"logic.lr=3e-3,1e-2"`` -> ("logic.lr", [0.003, 0.01]); values parsed like ``--set``.
    The key stays as written (it names the runs: an old flat key keeps an old experiment's names)."""
    if "=" not in item:
        raise ExperimentError(f"--sweep {item!r} must look like key=v1,v2,...")
    key, raw = item.split("=", 1)
    values = [parse_override(f"{key}={v}")[1] for v in raw.split(",") if v != ""]
    if not values:
        raise ExperimentError(f"--sweep {item!r} lists no values")
    return key.strip(), values


def plan_runs(
    regimes: Sequence[str],
    seeds: Sequence[int],
    sweeps: Sequence[tuple[str, list[Any]]],
    memorisation: Sequence[int],
    base: dict[str, Any],
) -> tuple[list[RunSpec], list[RunSpec]]:
    """(runs of the comparison table, runs of the memorisation table), each validated as a
    RunConfig before anything is trained. A run may be in both (an n_train sweep point)."""
    main: list[RunSpec] = []
    for regime in regimes:
        for seed in seeds:
            main.append(RunSpec(regime, seed, None))
            for key, values in sweeps:
                default = RunConfig.from_dict({**base, "regime": regime, "seed": seed}).get(key)
                main += [RunSpec(regime, seed, (key, v)) for v in values if v != default]
    memo = [
        RunSpec(regime, seed, ("n_train", int(n)))
        for regime in (MEMORISATION_REGIMES if memorisation else ())
        for seed in seeds
        for n in memorisation
    ]
    for s in main + memo:
        run_config(s, base)  # raises ConfigError naming the key
    return unique(main), unique(memo)


def unique(specs: list[RunSpec]) -> list[RunSpec]:
    """The specs without repeats (by run name), in order."""
    return list({s.name: s for s in specs}.values())


def spec_arm(spec: RunSpec, base: dict[str, Any]) -> Arm:
    """The arm that trains ``spec``: the base config with its regime, seed and sweep value."""
    d = {**base, "regime": spec.regime, "seed": spec.seed}
    if spec.sweep is not None:
        d[canonical(spec.sweep[0], warn=False)] = spec.sweep[1]  # parse_sweep warned of an old key
        d["extra"] = {**d.get("extra", {}), "sweep": spec.sweep_label}
    return Arm(spec.name, d)


def run_config(spec: RunSpec, base: dict[str, Any]) -> RunConfig:
    return RunConfig.from_dict(dict(spec_arm(spec, base).config))
