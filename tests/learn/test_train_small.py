"""Tiny training sets (issue "Real data", item 3): a run always completes and names what it cannot score.

With 5 training images one projected-SGD step can push w_scene to 0; an image without a
detected face then has no source (its evidence has probability 0). The floor on projected
SGD (``fit.T_FLOOR``) keeps every t() > 0, and an image a program still cannot score is
predicted uniform and named by id in results.json, never a batch-row error.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.config.run import ConfigError
from emolog.learn.fit import T_FLOOR
from emolog.runs.train import train_run

# lr 0.3 at 5 images drove w_scene (and w_face2) to exactly 0 before the floor
SMALL = {"regime": "logic-only", "train.n_train": 5, "logic.lr": 0.3, "train.patience": None, "pretrain.epochs": 3}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "D"
    write_simulation(simulate(SimConfig(n=300, seed=1, scene_dim=16)), d)
    return d


def test_five_images_complete_and_resume(data, tmp_path):
    full = train_run({**SMALL, "data": str(data), "train.epochs": 4}, tmp_path / "full", progress=False)
    assert min(full["source_weights"].values()) >= T_FLOOR / 2  # never exactly 0
    assert full["unscorable"] == {"n": 0}
    n_faceless = int((pd.read_csv(tmp_path / "full" / "predictions.csv")["n_faces"] == 0).sum())
    assert n_faceless > 0  # the images that had no source before the floor are scored
    train_run({**SMALL, "data": str(data), "train.epochs": 2}, tmp_path / "part", progress=False)
    resumed = train_run({**SMALL, "data": str(data), "train.epochs": 4}, tmp_path / "part", resume=True, progress=False)
    assert resumed["source_weights"] == pytest.approx(full["source_weights"], abs=1e-7)
    assert resumed["metrics"]["test"] == full["metrics"]["test"]


def test_unscorable_images_are_named_not_raised(data, tmp_path):
    # the scene held at 0 under the "fail" semantics: a faceless image has P(evidence) = 0
    w = {"scene": 0.0, "face1": 0.5, "face2": 0.3, "face3": 0.2}
    res = train_run(
        {"regime": "nets-only", "semantics": "fail", "logic.fixed_weights": w, "data": str(data), "train.epochs": 1},
        tmp_path / "run",
        progress=False,
    )
    pred = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype={"image_id": str})
    faceless = sorted(pred.loc[pred["n_faces"] == 0, "image_id"])
    assert faceless and sorted(res["unscorable"]["test"]) == faceless
    assert res["unscorable"]["n"] >= len(faceless)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["unscorable"] == res["unscorable"]
    assert pred.loc[pred["n_faces"] == 0, "p_happy"].round(6).eq(round(1 / 7, 6)).all()  # uniform
    # under "condition" the same weights are refused before training, naming the key
    with pytest.raises(ConfigError, match="fixed_weights"):
        train_run({"regime": "nets-only", "logic.fixed_weights": w, "data": str(data)}, tmp_path / "r2", progress=False)
