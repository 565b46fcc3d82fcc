"""Valence and arousal as targets: a spec's ``[target]`` table, its bins, the expected value,
the squared-error loss (docs/model.md, "Valence and arousal"; its regression metrics: ``va_metrics``).

A target turns a continuous annotation (the index's ``valence`` / ``arousal`` columns, on
FindingEmo's scales ``emolog.labels.VA_RANGES``) into the classes of the program's query, so
that every program, regime, experiment, ``load_run`` and report works on it unchanged::

    [target]
    variable = "valence"          # "valence", "arousal", or ["valence", "arousal"]
    bins = ["vm3", "vm2", "vm1", "v0", "vp1", "vp2", "vp3"]   # the query's answers, low to high
    edges = [...]                 # optional: len(bins) + 1 increasing edges; default equal-width
    loss = "nll"                  # "nll" (of the target's bin) | "squared-error" (of the expected value)

* **Bins.** Bin k holds the values in [edge_k, edge_k+1) (the last bin also its upper edge).
  Default edges: ``len(bins)`` equal-width bins over the variable's range; 7 bins over
  FindingEmo's integer scales give one bin per integer. A program that *computes* a number
  (``V is (S + 2 * F) / 3``) puts it into these bins with comparisons (va_computed.pl).
* **Both variables.** ``bins`` (and ``edges``) become tables keyed by variable; the classes
  are the pairs, named ``<valence bin>_<arousal bin>`` (the query ranges over those names).
* **The prediction** is the expected value of the query's distribution over each variable's
  bins; a bin's value is the mean of the training split's values that fall into it (the
  least-squares representative; the integer itself on FindingEmo's scales), its midpoint when
  none does. The distribution is kept (predictions.csv ``p_<bin>``).
* **The loss**: ``nll`` is the classification loss on the bins (every imbalance option applies;
  problog-em and the scene net's pretraining always maximise this likelihood); ``squared-error``
  is the batch mean of (expected value - target)^2, summed over the variables, and early
  stopping then watches its validation mean.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from emolog.labels import VA_RANGES
from emolog.config.run import ConfigError

if TYPE_CHECKING:  # torch, scipy and scikit-learn (metrics) are imported where used: `--help` stays instant
    import torch

LOSSES: tuple[str, ...] = ("nll", "squared-error")
KEYS = {"variable", "bins", "edges", "loss"}


@dataclass(frozen=True)
class Target:
    """A parsed ``[target]`` table; ``values`` (each bin's value) is set from the training split
    by ``fitted`` and recorded in results.json (``Target.from_dict``)."""

    variables: tuple[str, ...]
    bins: tuple[tuple[str, ...], ...]
    edges: tuple[tuple[float, ...], ...]
    loss: str = "nll"
    values: tuple[tuple[float, ...], ...] | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        """The query's classes: the bins, or for two variables their pairs ``<a>_<b>``."""
        if len(self.variables) == 1:
            return self.bins[0]
        return tuple(f"{a}_{b}" for a in self.bins[0] for b in self.bins[1])

    def to_dict(self) -> dict:
        return {
            "variables": list(self.variables),
            "bins": [list(b) for b in self.bins],
            "edges": [list(e) for e in self.edges],
            "loss": self.loss,
            "values": [list(v) for v in self.values] if self.values is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Target":
        return cls(
            tuple(d["variables"]),
            tuple(tuple(b) for b in d["bins"]),
            tuple(tuple(e) for e in d["edges"]),
            d.get("loss", "nll"),
            tuple(tuple(v) for v in d["values"]) if d.get("values") is not None else None,
        )

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """[N, V] values -> [N, V] bin indices (values outside the edges: ``check_values``)."""
        return np.stack(
            [
                np.clip(np.searchsorted(np.asarray(e[1:-1]), values[:, j], side="right"), 0, len(self.bins[j]) - 1)
                for j, e in enumerate(self.edges)
            ],
            1,
        )

    def class_of(self, values: np.ndarray) -> np.ndarray:
        """[N, V] values -> [N] class indices (the pair's index for two variables)."""
        b = self.bin_of(np.asarray(values, dtype=np.float64).reshape(len(values), len(self.variables)))
        return b[:, 0] * len(self.bins[1]) + b[:, 1] if len(self.variables) == 2 else b[:, 0]

    def check_values(self, values: np.ndarray, ids: Sequence[str]) -> None:
        """Refuse missing values and values outside the edges, naming the images."""
        for j, var in enumerate(self.variables):
            v = values[:, j]
            lo, hi = self.edges[j][0], self.edges[j][-1]
            bad = [ids[i] for i in np.flatnonzero(~np.isfinite(v) | (v < lo) | (v > hi))]
            if bad:
                raise ConfigError(
                    f"the target {var} needs a value in [{lo}, {hi}] for every image; "
                    f"{len(bad)} have none or one outside it: {bad[:10]}"
                    f"{' ...' if len(bad) > 10 else ''} (index.csv column {var})"
                )

    def fitted(self, train_values: np.ndarray) -> "Target":
        """This target with each bin's value: the training mean of the values in it (its
        midpoint when none is)."""
        out = []
        bins = self.bin_of(np.asarray(train_values, dtype=np.float64))
        for j, names in enumerate(self.bins):
            e = self.edges[j]
            out.append(
                tuple(
                    float(train_values[bins[:, j] == k, j].mean()) if (bins[:, j] == k).any() else (e[k] + e[k + 1]) / 2
                    for k in range(len(names))
                )
            )
        return replace(self, values=tuple(out))

    def marginals(self, probs: np.ndarray | torch.Tensor) -> list:
        """Per variable, the distribution over its bins [N, n_bins] (probs renormalised)."""
        p = probs / probs.sum(1, keepdims=True)
        if len(self.variables) == 1:
            return [p]
        p = p.reshape(len(p), len(self.bins[0]), len(self.bins[1]))
        return [p.sum(2), p.sum(1)]

    def expected(self, probs: np.ndarray) -> np.ndarray:
        """The prediction [N, V]: the expected value of each variable under ``probs`` [N, C]."""
        if self.values is None:
            raise ValueError("Target.expected needs the bins' values (Target.fitted)")
        probs = np.asarray(probs, dtype=np.float64)
        return np.stack([m @ np.asarray(v) for m, v in zip(self.marginals(probs), self.values)], 1)


# ----------------------------------------------------------------------------- parsing


def _list(x: object, key: str, where: str, variable: str | None) -> list | None:
    """The per-variable entry of ``bins`` / ``edges``: a list, or a table keyed by variable."""
    if isinstance(x, dict):
        if variable is None or set(x) - set(VA_RANGES):
            raise ConfigError(
                f"{where}: [target] {key} keyed by variable needs two variables and keys "
                f"from {list(VA_RANGES)}, got {sorted(x)}"
            )
        x = x.get(variable)
    if x is not None and not isinstance(x, list):
        raise ConfigError(f"{where}: [target] {key} must be a list (or, for two variables, a table of lists)")
    return x


def parse_target(d: object, where: str) -> Target:
    """A spec's ``[target]`` table checked (the module docstring lists its keys)."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: [target] must be a table")
    unknown = sorted(set(d) - KEYS)
    if unknown:
        raise ConfigError(f"{where}: [target] unknown key(s) {unknown}; known: {sorted(KEYS)}")
    variables = _variables(d, where)
    loss = d.get("loss", "nll")
    if loss not in LOSSES:
        raise ConfigError(f"{where}: [target] loss {loss!r} is not one of {list(LOSSES)}")
    # with two variables, bins and edges may be tables keyed by variable
    keyed = len(variables) == 2
    bins, edges = [], []
    for var in variables:  # checked variable by variable: the first mistake is the one said
        bins.append(_bins(d, var, keyed, where))
        edges.append(_edges(d, var, bins[-1], keyed, where))
    return Target(tuple(variables), tuple(bins), tuple(edges), loss)


def _variables(d: dict, where: str) -> list[str]:
    """``variable``: one of VA_RANGES, or a list of one or both (each once)."""
    variables = d.get("variable")
    variables = [variables] if isinstance(variables, str) else variables
    if not (
        isinstance(variables, list)
        and 1 <= len(variables) <= 2
        and len(set(variables)) == len(variables)
        and set(variables) <= set(VA_RANGES)
    ):
        raise ConfigError(
            f"{where}: [target] variable must be one of {list(VA_RANGES)} or a list of both, got {d.get('variable')!r}"
        )
    return variables


def _bins(d: dict, var: str, keyed: bool, where: str) -> tuple[str, ...]:
    """The bin names of ``var``: at least 2 distinct non-empty strings, low to high."""
    b = _list(d.get("bins"), "bins", where, var if keyed else None)
    if not b or len(b) < 2 or not all(isinstance(x, str) and x for x in b):
        raise ConfigError(
            f"{where}: [target] bins of {var} must name at least 2 bins, low to high (the query's answers), got {b!r}"
        )
    if len(set(b)) != len(b):
        raise ConfigError(f"{where}: [target] bins of {var} repeat a name: {b}")
    return tuple(b)


def _edges(d: dict, var: str, bins: tuple[str, ...], keyed: bool, where: str) -> tuple[float, ...]:
    """The bin edges of ``var``: len(bins) + 1 increasing numbers; by default, equal-width bins
    over the variable's range."""
    e = _list(d.get("edges"), "edges", where, var if keyed else None)
    if e is None:
        lo, hi = VA_RANGES[var]
        e = list(np.linspace(lo, hi, len(bins) + 1))
    if (
        len(e) != len(bins) + 1
        or any(not isinstance(x, (int, float)) for x in e)
        or any(x >= y for x, y in zip(e, e[1:]))
    ):
        raise ConfigError(f"{where}: [target] edges of {var} must be {len(bins) + 1} increasing numbers, got {e}")
    return tuple(float(x) for x in e)


def index_values(index, ids: Sequence[str], target: Target) -> np.ndarray:
    """[N, V] the target's variables of ``ids`` from an ``ImageIndex``, checked (``check_values``)."""
    values = index.df.set_index("image_id").loc[list(ids), list(target.variables)].to_numpy(np.float64)
    target.check_values(values, ids)
    return values


# ----------------------------------------------------------------------------- loss


def expected_t(target: Target, probs: torch.Tensor) -> torch.Tensor:
    """``Target.expected`` in torch (differentiable), [B, C] -> [B, V]."""
    import torch

    vals = [torch.tensor(v, dtype=probs.dtype, device=probs.device) for v in target.values]
    return torch.stack([m @ v for m, v in zip(target.marginals(probs), vals)], 1)


class SquaredErrorLoss:
    """Batch mean of sum over the target's variables of (expected value - value)^2; its
    ``targets`` are the split's continuous values [N, V] (``SplitData.values``)."""

    def __init__(self, target: Target) -> None:
        self.target = target

    @staticmethod
    def targets(s) -> torch.Tensor:
        return s.values

    def __call__(
        self, probs: torch.Tensor, values: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        err = ((expected_t(self.target, probs) - values.to(probs.dtype)) ** 2).sum(1)
        if sample_weight is None:
            return err.mean()
        return (sample_weight * err).sum() / sample_weight.sum().clamp_min(1e-12)


def val_loss(target: Target | None, probs: torch.Tensor, s, nll_fn) -> float:
    """The validation loss early stopping watches: NLL of the bins (``nll_fn``), or the mean
    squared error of the expected values under ``loss = "squared-error"``."""
    if target is not None and target.loss == "squared-error":
        return float(SquaredErrorLoss(target)(probs.double(), s.values.double()))
    return nll_fn(probs, s.labels)


# ----------------------------------------------------------------------------- experiments


def experiment_target(data_dir: str | Path, target: Target, n_train: int | None) -> tuple[Target, dict]:
    """The target with its bins' values fitted on the (first ``n_train``) training images of a
    data directory, as its runs fit them, and {image id: values [V]} of the test images."""
    from emolog.data.index import ImageIndex
    from emolog.data.split import load_split

    index = ImageIndex.load(Path(data_dir) / "index.csv")
    split = load_split(Path(data_dir) / "split.json")
    fitted = target.fitted(index_values(index, split["train"][:n_train] if n_train else split["train"], target))
    return fitted, dict(zip(split["test"], index_values(index, split["test"], target)))
