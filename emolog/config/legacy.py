"""Config keys of the previous emolog (one flat ``RunConfig``) and their nested names.

A file, a dict or a ``--set`` that uses an old key still works for one release: the key is
read as its new name with one ``DeprecatedKeyWarning`` per key naming the new one. A run
directory written by the previous emolog (its config.json, its checkpoint) is read the same
way without the warning: it is a record, not something its user can edit.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

from emolog.config.groups import GROUPS

# old flat key -> "group.key" (docs/training.md, "Configuration", has this table)
OLD_KEYS: dict[str, str] = {
    "epochs": "train.epochs",
    "em_iterations": "train.em_iterations",
    "batch_size": "train.batch_size",
    "n_train": "train.n_train",
    "patience": "train.patience",
    "imbalance": "train.imbalance",
    "logit_adjust_tau": "train.logit_adjust_tau",
    "logic_param": "logic.param",
    "logic_optimizer": "logic.optimizer",
    "logic_lr": "logic.lr",
    "logic_weight_decay": "logic.weight_decay",
    "init_weights": "logic.init_weights",
    "fixed_weights": "logic.fixed_weights",
    "net_optimizer": "nets.optimizer",
    "net_lr": "nets.lr",
    "net_weight_decay": "nets.weight_decay",
    "net_hidden": "nets.hidden",
    "net_dropout": "nets.dropout",
    "backbone_optimizer": "backbone.optimizer",
    "backbone_lr": "backbone.lr",
    "backbone_weight_decay": "backbone.weight_decay",
    "backbone_weights": "backbone.weights",
    "scene_init": "pretrain.scene_init",
    "pretrain_epochs": "pretrain.epochs",
    "pretrain_batch_size": "pretrain.batch_size",
    "pretrain_patience": "pretrain.patience",
    "pretrain_folds": "pretrain.folds",
    "pretrain_refit": "pretrain.refit",
    "pretrain_cache": "pretrain.cache",
    "recogniser_weights": "perception.recogniser_weights",
    "grey_face_logits": "perception.grey_face_logits",
}


class DeprecatedKeyWarning(FutureWarning):
    """An old config key was used (a FutureWarning, so the command line shows it)."""


def canonical(key: str, warn: bool = True) -> str:
    """``key``'s current name: an old flat key becomes its "group.key" (warning when ``warn``)."""
    new = OLD_KEYS.get(key)
    if new is None:
        return key
    if warn:
        warnings.warn(
            f"config key {key!r} is deprecated and will be removed in the next release: use {new!r}",
            DeprecatedKeyWarning,
            stacklevel=3,
        )
    return new


def nest(d: Mapping[str, Any], warn: bool = True) -> dict[str, Any]:
    """A config dict in the nested form: groups as dicts; "group.key" and old flat keys moved
    into their group (later keys win). Unknown keys are kept for ``RunConfig`` to refuse."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if key == "extra" and isinstance(value, Mapping) and "gate" in value:
            value = _gate_from_extra(out, value, warn)
        key = canonical(key, warn)
        group, _, name = key.partition(".")
        if name and group in GROUPS:
            out.setdefault(group, {})[name] = value
        elif group in GROUPS and isinstance(value, Mapping):
            out.setdefault(group, {}).update(value)
        else:
            out[key] = value
    return out


def _gate_from_extra(out: dict[str, Any], extra: Mapping[str, Any], warn: bool) -> dict[str, Any]:
    """The gate's settings, formerly ``extra["gate"]``, moved to the ``gate`` group; the rest of
    ``extra`` returned."""
    if warn:
        warnings.warn(
            "config key 'extra.gate' is deprecated and will be removed in the next release: use 'gate'",
            DeprecatedKeyWarning,
            stacklevel=4,
        )
    gate = extra["gate"] or {}
    out.setdefault("gate", {}).update(gate if isinstance(gate, Mapping) else {"<not an object>": gate})
    return {k: v for k, v in extra.items() if k != "gate"}


def flatten(d: Mapping[str, Any]) -> dict[str, Any]:
    """A nested config dict as {"key" or "group.key": value} (a checkpoint's comparison)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if key in GROUPS and isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out
