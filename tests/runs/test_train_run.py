"""A finished run read back as a model: load_run(dir).predict(cache) reproduces its own test metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import emolog
from emolog.cache.store import CacheError, load_cache
from emolog.data.split import load_split
from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.metrics.classification import evaluate
from emolog.runs.reader import RunError
from emolog.runs.train import train_run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "D"
    write_simulation(simulate(SimConfig(n=300, seed=2, scene_dim=16, variant="context")), d)
    return d


@pytest.mark.parametrize(
    "regime, program, semantics",
    [("logic-only", "seed", "condition"), ("joint", "gated", "condition"), ("nets-only", "seed", "fail")],
)
def test_load_run_predict_reproduces_the_test_metrics(data, tmp_path, regime, program, semantics):
    res = train_run(
        {
            "regime": regime,
            "program": program,
            "semantics": semantics,
            "data": str(data),
            "train.epochs": 2,
            "pretrain.epochs": 3,
            "pretrain.refit": 0,
            "pretrain.folds": 2,
            "logic.param": "softmax",
            "logic.optimizer": "adam",
            "logic.lr": 0.05,
        },
        tmp_path / "run",
        progress=False,
    )
    run = emolog.load_run(tmp_path / "run")
    assert run.classes == res["classes"] and run.metrics["test"] == res["metrics"]["test"]
    assert len(run.history) == res["epochs_run"] + 1 and "val_loss" in run.history.columns
    logic = [la for la in run.layers if la["net"] == "logic"]
    assert bool(logic) == bool(res["t_values"]) and all(la["label"].startswith("t(") for la in logic)
    assert run.flips["n"] == res["metrics"]["test"]["n"]
    typed = run.typed  # results.json as typed fields
    assert (typed.regime, typed.kind.name, typed.epochs_run, typed.t_values) == (
        regime,
        res["kind"],
        res["epochs_run"],
        res["t_values"],
    )
    test_ids = load_split(data / "split.json")["test"]
    pred = run.predict(data / "cache", ids=test_ids)
    labels = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype={"image_id": str})["label"]
    y = np.array([run.classes.index(c) for c in labels])
    assert pred.ids == test_ids
    assert evaluate(pred.probs, y, tuple(run.classes)) == res["metrics"]["test"]
    # the same through a loaded FeatureCache holding other rows too, in another order
    cache = load_cache(data / "cache")
    again = run.predict(cache, ids=test_ids)
    np.testing.assert_array_equal(again.probs, pred.probs)
    assert pred.sources == ["scene", "face1", "face2", "face3"]
    np.testing.assert_allclose(pred.source_posterior.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(pred.source_probs.sum(1), 1, atol=1e-5)
    with pytest.raises(CacheError, match="nope"):
        run.predict(cache, ids=["nope"])
    with pytest.raises(RunError, match="empty"):
        run.predict(cache, ids=[])


def test_run_records_its_perception_and_program(data, tmp_path):
    res = train_run(
        {
            "regime": "logic-only",
            "data": str(data),
            "train.epochs": 1,
            "pretrain.epochs": 2,
            "pretrain.refit": 0,
            "pretrain.folds": 2,
        },
        tmp_path / "run",
        progress=False,
    )
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    manifest = json.loads((data / "cache" / "manifest.json").read_text())
    assert cfg["perception"] == res["perception"]
    assert cfg["perception"]["simulated"] is True
    assert cfg["perception"]["fingerprint_hash"] == manifest["fingerprint_hash"]
    assert cfg["perception"]["K"] == 3
    # the learned program, written back with its t() values (as problog lfi does)
    text = (tmp_path / "run" / "program.pl").read_text()
    w = res["source_weights"]
    for s in ("scene", "face1", "face2", "face3"):
        assert f"t({w[s]:.6g})::source({s})" in text
    assert res["t_values"]["t(source(scene))"] == pytest.approx(w["scene"])
    with pytest.raises(RunError, match="not a finished run"):
        emolog.load_run(tmp_path)
