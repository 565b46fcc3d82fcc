"""The training step of a program that learns one t() disjunction, in closed form.

When the only thing that trains is one t() disjunction v (the seed program's source weights
under logic-only: the scene net frozen, the faces cached), the program on the training split is
a ``LinearProgram`` in v alone (``emolog.model.linear``), and each image's output is

    P(y | evidence) = (a . v) / (n . v)        ("condition" semantics)
    P(y and evidence) = a . v                  ("fail" / "original")

with a = the image's coefficients of its label and n those of its evidence, fixed per image.
The batch-mean NLL's gradient is then the closed form

    d/dv  -mean_b log P_b = mean_b ( n_b / (n_b . v)  -  a_b / (a_b . v) )

(the first term only under "condition"). A step computes it in a handful of tensor operations
and builds no autograd graph: on batches of 4 images each operation's bookkeeping costs more
than its arithmetic, and the graph (a dozen nodes forward, as many backward) was most of a
step. The loss and the gradient equal autograd's through ``Loss`` (tested); the loss is the
same clamped NLL, and an image whose probability is clamped (below ``CLAMP``) contributes no
gradient, as ``clamp_min`` gives none.
"""

from __future__ import annotations

import torch

from emolog.learn.losses import Loss
from emolog.model.data import SplitData
from emolog.model.model import Network

CLAMP = 1e-12  # Loss's floor on a probability before its log


class ClosedFormNLL:
    """``step(idx)``: the batch-mean NLL of rows ``idx`` (a 0-d tensor), with the gradient of the
    trained t() disjunction's parameter written to its ``.grad``."""

    def __init__(self, network: Network, tr: SplitData) -> None:
        lin = tr.linear
        coef = lin.coef  # [N, K, C + 1]
        label = coef.gather(2, tr.labels.view(-1, 1, 1).expand(-1, coef.shape[1], 1))
        self.ab = torch.cat([label, coef[:, :, -1:]], 2).contiguous()  # [N, K, 2]: a, n
        self.condition = lin.condition
        self.param = network.lm.tparams.values[0]
        self.softmax = network.lm.tparams.param == "softmax"

    @classmethod
    def of(cls, network: Network, tr: SplitData, loss_fn: object) -> "ClosedFormNLL | None":
        """The closed-form step for this training, or None when it does not apply: the loss is
        not the plain NLL, the split has no linear program, or anything but one t()
        disjunction trains (a live net, a head, a gate, a lone t() fact, several blocks)."""
        lin = tr.linear
        if type(loss_fn) is not Loss or loss_fn.imbalance != "none" or lin is None:
            return None
        if not lin.live_t or lin.live_scene or lin.live_gate or len(lin.t_blocks) != 1 or not lin.t_blocks[0][1]:
            return None
        tparams = network.lm.tparams
        trained = [p for p in network.parameters() if p.requires_grad]
        if tparams.param not in ("projected", "softmax") or len(trained) != 1 or trained[0] is not tparams.values[0]:
            return None
        return cls(network, tr)

    def step(self, idx: torch.Tensor) -> torch.Tensor:
        """The loss of rows ``idx`` [B]; the parameter's gradient is set (not accumulated)."""
        p = self.param.detach()
        v = torch.softmax(p, 0) if self.softmax else p
        c = self.ab[idx]  # [B, K, 2]
        dots = torch.matmul(v, c)  # [B, 2]: a . v, n . v
        prob = dots[:, 0] / dots[:, 1] if self.condition else dots[:, 0]
        loss = -prob.clamp_min(CLAMP).log().mean()
        per_row = -c[:, :, 0] / dots[:, :1]  # d(-log a.v)/dv, [B, K]
        if self.condition:
            per_row = per_row + c[:, :, 1] / dots[:, 1:]
        grad = (per_row * (prob >= CLAMP).unsqueeze(1)).sum(0) / len(idx)
        if self.softmax:  # through v = softmax(p): J^T g
            grad = v * (grad - (grad * v).sum())
        self.param.grad = grad
        return loss
