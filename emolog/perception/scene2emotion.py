"""Scene2EmotionNet: the small trainable net from scene features to emotion logits."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Scene2EmotionNet(nn.Module):
    """in_dim -> hidden (ReLU, dropout) -> n_classes.

    ``forward`` returns **logits** [B, n_classes]; no softmax is applied here. The caller
    (the logic layer, or a plain classifier's loss) applies ``softmax`` so that it can also
    use log-softmax for numerically stable losses. Classes are in ``emolog.labels.BASIC7``
    order when n_classes is 7.
    """

    def __init__(self, in_dim: int = 512, hidden: int = 64, n_classes: int = 7, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_dim, self.hidden, self.n_classes = in_dim, hidden, n_classes
        self.dropout = dropout
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc2 = nn.Linear(hidden, n_classes)
        # Kaiming (He) init suits the ReLU after fc1; zero biases so the untrained net starts
        # near-uniform rather than with an arbitrary class preference.
        nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")
        nn.init.kaiming_normal_(self.fc2.weight, nonlinearity="linear")
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scene features [B, in_dim] float32 -> logits [B, n_classes]."""
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"Scene2EmotionNet expects features [B, {self.in_dim}], got {tuple(x.shape)}")
        # functional calls, not the submodules': a training step at batch 4 is short enough for
        # the module-call overhead to show
        h = F.dropout(F.relu(F.linear(x, self.fc1.weight, self.fc1.bias)), self.dropout, self.training)
        return F.linear(h, self.fc2.weight, self.fc2.bias)
