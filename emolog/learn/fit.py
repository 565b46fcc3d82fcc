"""The one fit loop of every regime and every program: epochs, early stopping, checkpoints, resume.

``fit`` trains the parameter groups of ``Group``s marked trainable (each with its own
optimiser) by gradient steps on index batches, or the program's ``t()`` by EM (problog-em),
evaluates validation NLL after every epoch, keeps the best epoch by the rule of
``emolog.learn.stopping``, and writes an atomic checkpoint after every epoch so that
``resume=True`` continues and equals an uninterrupted run (batches and dropout masks are
seeded per epoch). A non-finite loss stops the run naming the batch's image ids.

Why it is fast: every frozen network's output is read from the feature cache (a frozen scene
net runs once per split, not once per epoch), the logic is a batched circuit, and a step is
a handful of tensor operations on index tensors; per-step bookkeeping (loss sum, gradient
norms) stays in tensors and is read once per epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emolog.labels import SOURCES
from emolog.learn import changes
from emolog.learn import em
from emolog.config.run import RunConfig
from emolog.model.data import SplitData
from emolog.learn.losses import Loss, check_finite, epoch_order, make_optimizer, nll
from emolog.learn.closed_form import ClosedFormNLL
from emolog.model.linear import build_linear
from emolog.model.model import Network, predict_split
from emolog.config.regimes import Regime
from emolog.learn.stopping import EarlyStopping
from emolog.learn.checkpoint import CHECKPOINT, Progress, load_checkpoint, restore, save_checkpoint, states
from emolog.model.target import SquaredErrorLoss, val_loss


@dataclass
class Group:
    """A named parameter group: a net (``logic``, the scene head, the gate, a head,
    ``backbone_last_block``) and whether this regime trains it. ``name`` is the program's own
    name for the network (layer tables, history, checkpoints); ``role`` what it is to emolog
    (``scene_net``, ``gate_net``; the name when empty)."""

    name: str
    net: nn.Module
    trainable: bool
    role: str = ""

    @property
    def kind(self) -> str:
        return self.role or self.name


@dataclass
class FitResult:
    """What the loop leaves for the run's outputs."""

    history: list[dict]
    before: dict[str, torch.Tensor]  # test predictions before training
    stopper: EarlyStopping
    epochs_run: int
    n_epochs: int
    train_time_s: float
    tracker: changes.GradTracker
    init: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def stopped_early(self) -> bool:
        return self.epochs_run < self.n_epochs


T_FLOOR = 1e-6


class FlooredProjectedSGD:
    """DeepProbLog's projected SGD on t() probabilities (``emolog.logic.ProjectedSGD``) with a
    floor: after the step every probability is clipped to [T_FLOOR, 1] (a lone fact to
    [T_FLOOR, 1 - T_FLOOR]) before the disjunctions are renormalised, so learning never sets a
    probability to exactly 0 or 1.

    Why the floor: with few images (5 in a memorisation sweep) one large step can clip w_scene
    to 0; an image without a detected face then has no source at all (its evidence has
    probability 0) and cannot be scored, and a probability of exactly 0 has no way back.
    1e-6 changes no learned weight at the precision reported (docs/training.md, "Unscorable
    images"). A plain object rather than a torch optimiser: the optimiser wrapper's per-step
    bookkeeping cost more than the update itself."""

    def __init__(self, tparams: nn.Module, lr: float) -> None:
        if tparams.param != "projected":
            raise ValueError("projected SGD needs the 'projected' parameterisation")
        self.lr = lr
        self.groups = [(v, g) for v, g in zip(tparams.values, tparams.is_group)]

    @torch.no_grad()
    def step(self) -> None:
        for p, disjunction in self.groups:
            if p.grad is not None:
                p.sub_(p.grad, alpha=self.lr)
            p.clamp_(T_FLOOR, 1.0 if disjunction else 1.0 - T_FLOOR)
            if disjunction:
                p.div_(p.sum())

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p, _ in self.groups:
            p.grad = None

    def state_dict(self) -> dict:
        return {"lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        self.lr = state["lr"]


def make_optimizers(cfg: RunConfig, groups: list[Group]) -> dict[str, Any]:
    """One optimiser per trainable group: t() by the logic settings (projected SGD or any torch
    optimiser on softmax logits), a gate by the logic settings (it is an ordinary net: with
    ``logic.param=projected``, which forces ``logic.optimizer=sgd``, it trains by SGD), the
    scene net and any head by the net settings, the last block by the backbone settings."""
    out: dict[str, Any] = {}
    for g in groups:
        params = [p for p in g.net.parameters()]
        if not g.trainable or not params:
            continue
        if g.kind == "logic" and cfg.logic.param == "projected":
            out[g.name] = FlooredProjectedSGD(g.net.tparams, lr=cfg.logic.lr)
        elif g.kind in ("logic", "gate_net"):
            out[g.name] = make_optimizer(cfg.logic.optimizer, params, cfg.logic.lr, cfg.logic.weight_decay)
        elif g.kind == "backbone_last_block":
            out[g.name] = make_optimizer(cfg.backbone.optimizer, params, cfg.backbone.lr, cfg.backbone.weight_decay)
        else:
            out[g.name] = make_optimizer(cfg.nets.optimizer, params, cfg.nets.lr, cfg.nets.weight_decay)
    return out


def history_row(epoch: int, train_loss: float, model: Network, va: SplitData, grad_norms: dict[str, float]) -> dict:
    """One history.csv row: losses, validation accuracy / macro-F1, source weights (global, or
    the validation mean of the per-image ones), mean gradient norm per group."""
    from emolog.metrics.classification import accuracy, macro_f1

    pred = predict_split(model, va, sources=model.kind.per_image_sources)
    probs, labels = pred["probs"].cpu().double().numpy(), va.labels.cpu().numpy()
    row = {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": val_loss(model.target, pred["probs"], va, nll),
        "val_accuracy": accuracy(probs, labels),
        "val_macro_f1": macro_f1(probs, labels),
    }
    g = model.global_weights()
    if g is not None:
        row.update({f"w_{s}": g[s] for s in SOURCES})
    elif "w" in pred:
        row.update({f"w_{s}": float(pred["w"][:, j].mean()) for j, s in enumerate(SOURCES)})
    row.update({f"grad_norm_{k}": v for k, v in grad_norms.items()})
    return row


def gradient_epoch(
    model: Network, tr: SplitData, loss_fn: Loss, optims: dict, tracker: changes.GradTracker, cfg: RunConfig, epoch: int
) -> float:
    """One pass over the training rows in batches of index tensors; returns the mean batch loss.

    The batch losses stay tensors, stacked and read once per epoch: a non-finite one then stops
    the run naming the first such batch's image ids (``check_finite``)."""
    model.train()
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout: same masks on a resumed run
    order = epoch_order(tr.labels, cfg.train.imbalance, cfg.seed, epoch).to(tr.labels.device)
    batches = order.split(cfg.train.batch_size)
    opts = list(optims.values())
    # clearing .grad directly: the optimisers' zero_grad() walks their parameter groups each step
    params = [p for p in model.parameters() if p.requires_grad]
    losses: list[torch.Tensor] = []
    labels = loss_fn.targets(tr)  # the labels, or a valence/arousal target's values
    closed = ClosedFormNLL.of(model, tr, loss_fn)  # one t() disjunction trains: no autograd graph
    for idx in batches:
        if closed is not None:
            loss = closed.step(idx)
        else:
            loss = loss_fn(model(tr, idx, check=False), labels[idx])
            for p in params:
                p.grad = None
            loss.backward()
        tracker.record()
        for opt in opts:
            opt.step()
        losses.append(loss.detach())
    model.eval()
    losses = torch.stack(losses)
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):  # the first non-finite batch, named by its image ids (the run stops here)
        b = int(bad[0, 0])
        check_finite(losses[b], tr, batches[b], "training", epoch)
    sizes = torch.tensor([len(i) for i in batches], dtype=torch.float64, device=losses.device)
    return float((losses.double() * sizes).sum() / len(order))


def _em_epoch(model: Network, tr: SplitData, semantics: str, coef: torch.Tensor | None) -> float:
    """One EM iteration; ``coef``: the program's ``em.source_coefficients`` on ``tr`` (a
    seed-like program: closed-form EM), else None (every t(), ``em.lfi_step``)."""
    model.eval()
    lm = model.lm
    if coef is not None:
        step = em.linear_em_step(coef, tr.labels, em.weights_tensor(lm), semantics)
        em.set_source_weights(lm, step.weights)
        return -step.log_likelihood
    with torch.no_grad():
        scene = model.scene_probs(tr, torch.arange(len(tr), device=tr.labels.device))
    step = em.lfi_step(lm, lambda idx: model.program_io(tr, idx, scene=scene[idx]), tr.labels, model._cols, semantics)
    return -step.log_likelihood  # NLL before this iteration's update


def em_coefficients(model: Network, tr: SplitData) -> torch.Tensor | None:
    """``em.source_coefficients`` of a seed-like program with a global source choice on ``tr``
    (its networks are fixed under EM), else None."""
    if not (em.seed_like(model.lm) and model.kind.global_weights):
        return None
    with torch.no_grad():
        scene = model.scene_probs(tr, torch.arange(len(tr), device=tr.labels.device))
    return em.source_coefficients(
        model.lm, lambda idx: model.program_io(tr, idx, scene=scene[idx]), len(tr), model._cols
    )


def fit(
    model: Network,
    groups: list[Group],
    splits: dict[str, SplitData],
    cfg: RunConfig,
    regime: Regime,
    out: Path,
    resume: bool,
    progress: bool,
) -> FitResult:
    """Train ``groups`` of ``model`` on ``splits`` (in ``model.semantics``); see the module docstring."""
    from tqdm.auto import tqdm

    tr, va = splits["train"], splits["val"]
    nets = {g.name: g.net for g in groups}
    _mark_trainable(groups, regime)
    init = {g.name: changes.snapshot(g.net) for g in groups}
    tracker = changes.GradTracker(nets)
    optims = make_optimizers(cfg, groups) if regime.learner == "gradient" else {}
    p = Progress({"epoch": 0, "elapsed": 0.0}, [], {}, {}, EarlyStopping(cfg.train.patience), optims, tracker)
    loss_fn = _loss(cfg, model, tr)
    if resume and (out / CHECKPOINT).exists():
        load_checkpoint(out / CHECKPOINT, cfg, groups, p, tr.labels.device)
    else:
        _fresh_start(model, groups, splits, regime, loss_fn, p)

    t_start = time.perf_counter() - p.state["elapsed"]
    if regime.learner == "gradient":  # counted in the training time: it is part of training
        _linearise(model, tr, groups)
    n_epochs = cfg.train.em_iterations if regime.learner == "em" else cfg.train.epochs
    coef = em_coefficients(model, tr) if regime.learner == "em" else None
    bar = tqdm(range(p.state["epoch"] + 1, n_epochs + 1), desc="epochs", leave=False, disable=not progress)
    for epoch in bar:
        if p.stopper.stop:
            break
        if regime.learner == "em":
            train_loss = _em_epoch(model, tr, model.semantics, coef)
        else:
            train_loss = gradient_epoch(model, tr, loss_fn, p.optims, p.tracker, cfg, epoch)
        row = history_row(epoch, train_loss, model, va, p.tracker.end_epoch())
        p.history.append(row)
        p.state["epoch"] = epoch
        if p.stopper.update(epoch, row["val_loss"]):
            p.best_states = states(groups)
        p.state["elapsed"] = time.perf_counter() - t_start
        save_checkpoint(out / CHECKPOINT, cfg, groups, p)
    train_time = time.perf_counter() - t_start
    if cfg.train.patience is not None:
        restore(groups, p.best_states)
    return FitResult(p.history, p.before, p.stopper, int(p.state["epoch"]), n_epochs, train_time, p.tracker, init)


def _mark_trainable(groups: list[Group], regime: Regime) -> None:
    """Gradients only for the groups a gradient regime trains (EM needs none)."""
    for g in groups:
        for p in g.net.parameters():
            p.requires_grad_(g.trainable and regime.learner == "gradient")


def _loss(cfg: RunConfig, model: Network, tr: SplitData) -> Loss | SquaredErrorLoss:
    """The training loss: NLL with the imbalance option, or a valence/arousal target's squared error."""
    if model.target is None or model.target.loss == "nll":
        return Loss(cfg.train.imbalance, tr.labels, cfg.train.logit_adjust_tau, n_classes=len(model.classes))
    return SquaredErrorLoss(model.target)


def _fresh_start(
    model: Network,
    groups: list[Group],
    splits: dict[str, SplitData],
    regime: Regime,
    loss_fn: Loss | SquaredErrorLoss,
    p: Progress,
) -> None:
    """Fill ``p`` for a run that does not resume: the history with its epoch-0 row, the test
    predictions before training and the starting states as the best so far."""
    tr = splits["train"]
    p.before = predict_split(model, splits["test"])
    # epoch 0's train_loss is each later epoch's loss at the starting parameters: the
    # program's unnormalised output under fail / original, the gradient's loss or EM's NLL
    raw = predict_split(model, tr, sources=False, normalise=False)["probs"]
    start = float(loss_fn(raw, loss_fn.targets(tr))) if regime.learner == "gradient" else nll(raw, tr.labels)
    p.history = [history_row(0, start, model, splits["val"], {g.name: 0.0 for g in groups})]
    p.stopper.update(0, p.history[0]["val_loss"])
    p.best_states = states(groups)


def _linearise(model: Network, tr: SplitData, groups: list[Group]) -> None:
    """The program precomputed on ``tr`` (``build_linear``) when it is small enough: a step is
    then a few matrix products instead of a circuit evaluation."""
    trains = {g.kind: g.trainable for g in groups}
    lin = build_linear(
        model, tr, live_t=trains["logic"], live_scene=trains["scene_net"] or trains.get("backbone_last_block", False)
    )
    if lin is not None:
        tr.linear = lin


__all__ = ["FitResult", "Group", "fit", "gradient_epoch", "history_row", "make_optimizers"]
