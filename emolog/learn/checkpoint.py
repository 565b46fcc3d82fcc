"""The fit loop's checkpoint: what it holds between epochs, written atomically, read back for a resume.

``Progress`` is the loop's state besides the config and the nets; ``save_checkpoint`` writes it
with every net's parameters after each epoch, ``read_checkpoint`` refuses a damaged, newer or
foreign checkpoint before anything changes, and ``load_checkpoint`` restores a run from it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import torch
from torch import nn

from emolog.config.legacy import flatten, nest
from emolog.config.run import RunConfig
from emolog.data.artefacts import FORMATS, ArtefactError, check_fields, check_format, load_torch
from emolog.data.atomic import atomic_write_bytes
from emolog.learn import changes
from emolog.learn.losses import TrainingError
from emolog.learn.stopping import EarlyStopping

CHECKPOINT = "checkpoint.pt"
# may differ between a run and its resume (a weights file may move; it is checked by sha256)
RESUMABLE_KEYS = (
    "train.epochs",
    "train.em_iterations",
    "device",
    "threads",
    "backbone.weights",
    "perception.recogniser_weights",
)
# what a checkpoint holds (checked before a resume changes anything)
CHECKPOINT_FIELDS = {
    "config": dict,
    "state": dict,
    "stopper": dict,
    "history": list,
    "before": dict,
    "nets": dict,
    "best_states": dict,
    "optims": dict,
    "tracker": dict,
}


class Named(Protocol):
    """A named parameter group (``emolog.learn.fit.Group``) as a checkpoint sees it."""

    name: str
    net: nn.Module


@dataclass
class Progress:
    """The loop's state between epochs: what a checkpoint holds besides the config and the nets.
    ``state``: {epoch, elapsed (s)}; ``before``: test predictions before training;
    ``best_states``: each group's parameters at the best epoch so far."""

    state: dict[str, Any]
    history: list[dict]
    before: dict[str, torch.Tensor]
    best_states: dict[str, dict]
    stopper: EarlyStopping
    optims: dict
    tracker: changes.GradTracker


def states(groups: Sequence[Named]) -> dict[str, dict]:
    """A copy of each group's parameters, by the group's name."""
    return {g.name: {k: v.detach().clone() for k, v in g.net.state_dict().items()} for g in groups}


def restore(groups: Sequence[Named], saved: dict[str, dict]) -> None:
    """Each group's parameters set back to ``saved`` (as ``states`` took them)."""
    for g in groups:
        g.net.load_state_dict(saved[g.name])


def save_checkpoint(path: Path, cfg: RunConfig, groups: Sequence[Named], p: Progress) -> None:
    blob = {
        "format": FORMATS["checkpoint"],
        "config": cfg.to_dict(),
        "state": p.state,
        "stopper": p.stopper.state_dict(),
        "history": p.history,
        "before": {k: v.cpu() for k, v in p.before.items()},
        "nets": states(groups),
        "best_states": p.best_states,
        "optims": {k: o.state_dict() for k, o in p.optims.items()},
        "tracker": p.tracker.state_dict(),
    }
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_checkpoint(path: Path, cfg: RunConfig) -> dict:
    """The checkpoint at ``path``, refused (naming it) when it is damaged, from a newer emolog
    or of another config: ArtefactError, or TrainingError naming the keys that differ."""
    blob = load_torch(path, "a checkpoint")  # plain data + tensors only
    if not isinstance(blob, dict):
        raise ArtefactError(f"{path}: holds a {type(blob).__name__}, not an emolog checkpoint")
    check_format(blob, "checkpoint", path)
    check_fields(blob, CHECKPOINT_FIELDS, path)
    # compared key by key in the nested form; a checkpoint of the previous emolog holds flat keys
    # and lacks the groups it had no keys of (the gate's): those held their defaults
    saved = {**RunConfig().flat(), **flatten(nest(blob["config"], warn=False))}
    saved = {k: v for k, v in saved.items() if k not in RESUMABLE_KEYS}
    now = {k: v for k, v in cfg.flat().items() if k not in RESUMABLE_KEYS}
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if diff:
        raise TrainingError(
            f"cannot resume {path}: the config differs in {diff} "
            f"(only {', '.join(RESUMABLE_KEYS)} may change on resume)"
        )
    return blob


def load_checkpoint(path: Path, cfg: RunConfig, groups: Sequence[Named], p: Progress, device: torch.device) -> None:
    """Restore the nets and fill ``p`` from the checkpoint at ``path`` (refused before any change)."""
    blob = read_checkpoint(path, cfg)
    absent = sorted({g.name for g in groups} - set(blob["nets"]) | set(p.optims) - set(blob["optims"]))
    if absent:
        raise ArtefactError(f"{path}: holds no state for {absent}: written by another model")
    restore(groups, blob["nets"])
    for k, o in p.optims.items():
        o.load_state_dict(blob["optims"][k])
    p.tracker.load_state_dict(blob["tracker"])
    p.stopper.load_state_dict(blob["stopper"])
    p.state, p.history, p.best_states = blob["state"], blob["history"], blob["best_states"]
    p.before = {k: v.to(device) for k, v in blob["before"].items()}
