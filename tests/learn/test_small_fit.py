"""The small nets' epoch loop (learn.small.fit_small): best epoch kept and restored, patience stops."""

from __future__ import annotations

import torch
from torch import nn

from emolog.learn.small import fit_small


def w(model: nn.Linear) -> float:
    return float(model.weight.detach())


def _stepper(model: nn.Linear, steps: list[float]):
    """Each epoch sets the weight to the next value of ``steps`` (a scripted optimiser)."""

    def train_epoch(epoch: int) -> None:
        assert model.training
        with torch.no_grad():
            model.weight.fill_(steps[epoch - 1])

    return train_epoch


def test_best_epoch_is_restored_and_patience_stops() -> None:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(5.0)
    # validation loss |w - 1|: epochs 1..6 reach 3, 1.5, 1.25 (best), 2, 2.5, 3
    steps = [3.0, 1.5, 1.25, 2.0, 2.5, 3.0, 0.0, 0.0]
    done = fit_small(model, _stepper(model, steps), lambda: abs(w(model) - 1), epochs=8, patience=3)
    assert done.epochs_run == 6 and done.stopper.best_epoch == 3  # stopped after 3 epochs without a gain
    assert w(model) == 1.25 and not model.training
    assert done.stopper.best == 0.25


def test_without_a_finite_validation_loss_the_start_is_kept_and_without_validation_the_last() -> None:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    done = fit_small(model, _stepper(model, [4.0, 3.0]), lambda: float("nan"), epochs=2)
    assert done.epochs_run == 2 and done.stopper.best_epoch == 0 and w(model) == 1.0
    done = fit_small(model, _stepper(model, [4.0, 3.0]), None, epochs=2)
    assert done.epochs_run == 2 and w(model) == 3.0
