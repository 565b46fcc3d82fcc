"""The one early-stopping rule of emolog (runs, scene-net pretraining, baselines, face weighting).

Rule: after every epoch the validation loss (NLL, nats per image) is compared with the best
so far. An epoch *improves* only when its loss is below the best by more than ``MIN_DELTA``
(1e-7); a tie or a smaller gain counts as no improvement, so on a tie the **earlier** epoch
is kept (fewer updates, and a resumed run makes the same choice). After ``patience``
consecutive epochs without improvement training stops; ``patience=None`` never stops early.
The caller restores the best epoch's parameters when it asked for early stopping (epoch 0,
the state before training, is a candidate too: a run may keep its start).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_DELTA = 1e-7


@dataclass
class EarlyStopping:
    """Tracks the best epoch. ``update(epoch, loss) -> bool`` (True: a new best);
    ``stop`` is True once ``patience`` epochs in a row did not improve."""

    patience: int | None
    best: float = math.inf
    best_epoch: int = 0
    bad: int = 0

    def update(self, epoch: int, loss: float) -> bool:
        if loss < self.best - MIN_DELTA:
            self.best, self.best_epoch, self.bad = loss, epoch, 0
            return True
        self.bad += 1
        return False

    @property
    def stop(self) -> bool:
        return self.patience is not None and self.bad >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad": self.bad}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.bad = state["best"], state["best_epoch"], state["bad"]
