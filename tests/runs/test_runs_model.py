"""The one model object (emolog.Model): built from a spec, fitted by the one fit loop, saved and
loaded, asked on a cache, its image ids or photos; the same numbers as ``train_run`` and
``load_run``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import emolog
from emolog.data.index import ImageIndex
from emolog.data.split import load_split
from emolog.config.run import ConfigError
from emolog.errors import EXIT_INPUT, EXIT_USAGE, InputError, UsageError
from emolog.labels import BASIC7
from emolog.runs.model import Model, NotFittedError
from emolog.simulate import SimConfig, simulate, write_simulation
from helpers.paths import REPO, TESTS

SETTINGS = {
    "regime": "logic-only",
    "train": {"epochs": 2},
    "pretrain": {"epochs": 3, "refit": 0, "folds": 2},
    "logic": {"param": "softmax", "optimizer": "adam", "lr": 0.05},
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "D"
    write_simulation(simulate(SimConfig(n=300, seed=2, scene_dim=16, variant="context")), d)
    return d


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "run"
    model = Model.from_spec("seed", data, progress=False, **SETTINGS)
    assert model.run is None and model.classes == list(BASIC7)
    return model.fit(out, progress=False), out


def test_fit_writes_the_run_that_train_run_writes(data, fitted, tmp_path):
    """One path: ``Model.from_spec(...).fit(out)`` and ``train_run`` give the same results,
    predictions and learned weights (bit for bit)."""
    model, out = fitted
    res = emolog.train_run({**SETTINGS, "spec": "seed", "data": str(data)}, tmp_path / "ref", progress=False)
    mine = json.loads((out / "results.json").read_text())
    assert mine["metrics"] == res["metrics"] and mine["t_values"] == res["t_values"]
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "predictions.csv"), pd.read_csv(tmp_path / "ref" / "predictions.csv")
    )
    assert model.run.dir == out and model.config.regime == "logic-only"


def test_predict_proba_on_cached_ids_is_the_runs_own_test_prediction(data, fitted):
    model, out = fitted
    test_ids = load_split(data / "split.json")["test"]
    p = model.predict_proba(data / "cache", ids=test_ids)
    table = pd.read_csv(out / "predictions.csv", dtype={"image_id": str})
    assert p.shape == (len(test_ids), len(model.classes)) and p.dtype == np.float64
    np.testing.assert_allclose(p, table[[f"p_{c}" for c in model.classes]].to_numpy(), atol=5e-6)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    assert model.predict(data / "cache", ids=test_ids) == table["pred"].tolist()


def test_load_and_save_give_the_same_model(data, fitted, tmp_path):
    model, out = fitted
    ids = load_split(data / "split.json")["val"][:20]
    p = model.predict_proba(data / "cache", ids=ids)
    loaded = Model.load(out)
    np.testing.assert_array_equal(loaded.predict_proba(data / "cache", ids=ids), p)
    run = emolog.load_run(out)
    assert isinstance(run.model, Model) and run.model.classes == model.classes
    np.testing.assert_array_equal(run.model.predict_proba(data / "cache", ids=ids), p)
    saved = loaded.save(tmp_path / "copy")
    assert sorted(f.name for f in saved.iterdir() if not f.name.startswith(".")) == sorted(
        f.name
        for f in out.iterdir()
        if f.name in {*json.loads((out / "results.json").read_text())["files"], "results.json"}
    )
    np.testing.assert_array_equal(Model.load(saved).predict_proba(data / "cache", ids=ids), p)


def test_the_verbs_refuse_a_model_in_the_wrong_state(data, fitted, tmp_path):
    model, out = fitted
    with pytest.raises(UsageError, match="trained already"):
        Model.load(out).fit(tmp_path / "again")
    fresh = Model.from_spec("seed", data, progress=False, **{**SETTINGS, "train": {"epochs": 0}})
    with pytest.raises(NotFittedError, match=r"not trained yet: call fit\(out_dir\)") as e:
        fresh.predict_proba(data / "cache")
    assert e.value.exit_code == EXIT_USAGE
    with pytest.raises(NotFittedError):
        fresh.save(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_a_bad_setting_is_refused_before_anything_is_built(data):
    with pytest.raises(ConfigError, match="config key 'train.epochs'"):
        Model.from_spec("seed", data, train={"epochs": -1})


def test_photos_are_perceived_by_the_runs_recorded_networks(research_data, tmp_path):
    """``predict_proba`` on photo paths rebuilds the run's perception (a Places365-format
    ResNet18, real MTCNN, a ViT folder) and gives what the cache built from the same photos gives;
    an unreadable photo is named, not replaced."""
    d = research_data["emo8"]
    corpus = TESTS / "programs" / "research"
    model = Model.from_spec(
        str(corpus / "scene365.toml"),
        d,
        progress=False,
        regime="joint",
        train={"epochs": 1, "batch_size": 4, "patience": None},
    ).fit(tmp_path / "run", progress=False)
    test_ids = load_split(d / "split.json")["test"]
    rel = ImageIndex.load(d / "index.csv").df.set_index("image_id")["rel_path"]
    photos = [d.parent / "images" / rel[i] for i in test_ids]
    np.testing.assert_allclose(model.predict_proba(photos), model.predict_proba(d / "cache", ids=test_ids), atol=1e-4)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="broken.jpg") as e:
        model.predict_proba([*photos[:1], tmp_path / "broken.jpg"])
    assert e.value.exit_code == EXIT_INPUT


def test_the_readmes_python_block_runs_as_printed(tmp_path, monkeypatch):
    """README.md, "Use from Python": the block runs as written, in a folder holding data/sim."""
    import re

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Use from Python\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    write_simulation(simulate(SimConfig(n=200, seed=4, scene_dim=16)), tmp_path / "data" / "sim")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(
        compile(
            block.replace('regime="logic-only")', 'regime="logic-only", train={"epochs": 2}, pretrain={"epochs": 3})'),
            "README.md",
            "exec",
        ),
        scope,
    )
    assert scope["p"].shape == (200, 7) and len(scope["top"]) == 5
    assert (tmp_path / "runs" / "lo" / "results.json").is_file()
