"""The one epoch loop of the small nets fitted outside a run: scene-only pretraining
(``learn.pretrain``), the face-weighting baseline and the neural baselines (``emolog.experiments``).

Each caller says what one epoch of training is (its batches, its loss; ``optimiser_step`` per
batch) and what the validation loss is; ``fit_small`` runs the epochs, keeps the best epoch by
the one early-stopping rule (``learn.stopping``) and restores it. The loop draws no random
numbers itself, so a caller's seeds and order of draws decide the result alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from emolog.learn.stopping import EarlyStopping


@dataclass
class SmallFit:
    """How a ``fit_small`` went: the stopper (its ``best`` validation loss and ``best_epoch``)
    and the number of epochs trained."""

    stopper: EarlyStopping
    epochs_run: int


def optimiser_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One update of ``opt``'s parameters down the gradient of the scalar ``loss``."""
    opt.zero_grad()
    loss.backward()
    opt.step()


def fit_small(
    model: nn.Module,
    train_epoch: Callable[[int], None],
    val_loss: Callable[[], float | torch.Tensor] | None,
    epochs: int,
    patience: int | None = None,
    desc: str | None = None,
) -> SmallFit:
    """Train ``model`` for up to ``epochs`` epochs (1-based ``train_epoch(epoch)``, in train mode).

    After each epoch ``val_loss()`` (eval mode, no gradients) feeds the early stopping rule
    (``patience=None``: all epochs run, the best is still kept); the best epoch's parameters
    are restored at the end (the start's only when no epoch had a finite loss: the start is
    not scored, unlike a run's epoch 0). Without ``val_loss`` the last epoch is kept. ``desc``: a progress bar over the epochs with that label. Leaves ``model``
    in eval mode with no gradients.
    """
    stopper, best, run = EarlyStopping(patience), copy.deepcopy(model.state_dict()), 0
    for epoch in tqdm(range(1, epochs + 1), desc=desc, unit="epoch", leave=False, disable=desc is None):
        model.train()
        train_epoch(epoch)
        run = epoch
        if val_loss is None:
            continue
        model.eval()
        with torch.no_grad():
            v = float(val_loss())
        if stopper.update(epoch, v):
            best = copy.deepcopy(model.state_dict())
        elif stopper.stop:
            break
    if val_loss is not None:
        model.load_state_dict(best)
    model.zero_grad(set_to_none=True)
    model.eval()
    return SmallFit(stopper, run)
