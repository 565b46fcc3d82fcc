"""The closed-form training step (emolog.learn.closed_form) equals autograd through the loss:
the same batch loss and the same gradient of the trained t() disjunction, and it is used only
where exactly that disjunction trains under the plain NLL."""

from __future__ import annotations

import pytest
import torch

from emolog.config.run import RunConfig
from emolog.learn.closed_form import ClosedFormNLL
from emolog.learn.fit import _linearise, make_optimizers
from emolog.learn.losses import Loss
from emolog.runs.build import build
from emolog.simulate import SimConfig, simulate, write_simulation


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "D"
    write_simulation(simulate(SimConfig(n=400, seed=5, scene_dim=16)), d)
    return d


def _trained_as_fit_trains(data, **settings):
    """(network, training split, loss) prepared as the fit loop prepares them."""
    cfg = RunConfig.from_dict(
        {"data": str(data), "regime": "logic-only", "pretrain": {"epochs": 2, "folds": 2, "refit": 0}, **settings}
    )
    b = build(cfg, progress=False)
    for g in b.groups:
        for p in g.net.parameters():
            p.requires_grad_(g.trainable)
    b.network.freeze_scene(b.splits, b.oof)
    tr = b.splits["train"]
    _linearise(b.network, tr, b.groups)
    loss = Loss(cfg.train.imbalance, tr.labels, cfg.train.logit_adjust_tau)
    return b.network.train(), tr, loss, make_optimizers(cfg, b.groups)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"semantics": "fail"},
        {"logic": {"param": "softmax", "optimizer": "adam"}},
        {"logic": {"init_weights": {"scene": 0.7, "face1": 0.1, "face2": 0.1, "face3": 0.1}}},
    ],
)
def test_loss_and_gradient_equal_autograds(data, settings):
    network, tr, loss_fn, optims = _trained_as_fit_trains(data, **settings)
    closed = ClosedFormNLL.of(network, tr, loss_fn)
    assert closed is not None
    param = network.lm.tparams.values[0]
    g = torch.Generator().manual_seed(0)
    for step in range(20):  # batches of 1, 4 and 64 rows, along a short SGD path
        idx = torch.randperm(len(tr), generator=g)[: (1, 4, 64)[step % 3]]
        param.grad = None
        ref = loss_fn(network(tr, idx, check=False), tr.labels[idx])
        ref.backward()
        ref_grad = param.grad.clone()
        loss = closed.step(idx)
        torch.testing.assert_close(loss, ref.detach(), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(param.grad, ref_grad, rtol=1e-5, atol=1e-6)
        for opt in optims.values():
            opt.step()


@pytest.mark.parametrize(
    "settings",
    [
        {"regime": "joint", "train": {"epochs": 1}},  # the scene net trains too
        {"train": {"imbalance": "class-weighted"}},  # not the plain NLL
        {"program": "gated"},  # a gate trains, not a t() disjunction
    ],
)
def test_anything_else_trains_through_autograd(data, settings):
    network, tr, _, _ = _trained_as_fit_trains(data, **settings)
    loss_fn = Loss(settings.get("train", {}).get("imbalance", "none"), tr.labels, 1.0)
    assert ClosedFormNLL.of(network, tr, loss_fn) is None
