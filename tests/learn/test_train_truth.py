"""Must-show: on 5000 simulated images with known truth, logic-only learning recovers the true
source weights, and ProbLog-style EM agrees with gradient learning.

The simulator's defaults (standard variant, snr 1). The frozen scene net is the cross-fitted,
responsibility-refitted pretrained one (``pretrain_refit=3``); with plain label-fitted
pretraining (``pretrain_refit=0``) the scene weight comes out ~0.58, see docs/training.md.
"""

from __future__ import annotations

import pytest

from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.runs.train import train_run

SOURCES = ("scene", "face1", "face2", "face3")


@pytest.fixture(scope="module")
def data5k(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim5k") / "D"
    write_simulation(simulate(SimConfig(n=5000, seed=0)), path)
    return path


def test_logic_only_recovers_truth_and_em_agrees(data5k, tmp_path):
    # full batch (one Adam step per epoch) so that the result is the training-set optimum,
    # which EM reaches too; early stopping off for the same reason
    grad = train_run(
        {
            "regime": "logic-only",
            "data": str(data5k),
            "logic.param": "softmax",
            "logic.optimizer": "adam",
            "logic.lr": 0.05,
            "train.batch_size": 4096,
            "train.epochs": 100,
            "train.patience": None,
        },
        tmp_path / "grad",
        progress=False,
    )
    emr = train_run(
        {"regime": "problog-em", "data": str(data5k), "train.em_iterations": 100, "train.patience": None},
        tmp_path / "em",
        progress=False,
    )
    truth = grad["true_source_weights"]
    assert truth == pytest.approx(dict(zip(SOURCES, (0.53, 0.18, 0.17, 0.12))))
    for s in SOURCES:
        assert abs(grad["source_weights"][s] - truth[s]) <= 0.03, (s, grad["source_weights"], truth)
        assert abs(emr["source_weights"][s] - grad["source_weights"][s]) <= 0.01, (s, emr["source_weights"])
    # both used the same cached, cross-fitted scene net
    assert emr["pretrain"]["key"] == grad["pretrain"]["key"] and emr["pretrain"]["cached"]
    # the learned program beats its uniform start on held-out data
    assert grad["metrics"]["test"]["nll"] < grad["metrics_before"]["test"]["nll"]
