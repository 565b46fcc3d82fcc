"""Valence and arousal as targets: the spec's [target] table, the shipped programs against the
simulator's truth, truth recovery, the regression metrics, and a run end to end (train,
results, predictions, load_run, experiment, report).

The full truth-recovery measurement (n = 20,000, both learners, MAE against the oracle) is
benchmarks/va_truth.py (docs/simulation.md, "Valence and arousal"); here EM recovers the truth
from 5000 images given the Bayes scene posterior, and a small run checks the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from problog.logic import Or
from problog.program import PrologString
from scipy.stats import pearsonr, rankdata, spearmanr

import emolog
from emolog.cache.store import load_cache
from emolog.cli import main
from emolog.data.split import load_split
from emolog.labels import BASIC7, SOURCES
from emolog.simulate import SimConfig, simulate, true_scene_posterior, write_simulation
from emolog.simulate.va import VA_BINS, oracle_va, va_table
from emolog.learn import em
from emolog.config.run import ConfigError
from emolog.learn.pretrain import query_columns
from emolog.model.bindings.program import build_logic, open_program
from emolog.model.spec import SPEC_DIR, load_spec
from emolog.model.target import parse_target
from emolog.model.va_metrics import rank, regression_scores
from emolog.runs.train import train_run

TRUE = dict(zip(SOURCES, (0.53, 0.18, 0.17, 0.12)))
CHEAP = {"pretrain.folds": 2, "pretrain.refit": 1, "pretrain.epochs": 8, "train.epochs": 4}  # a fast pretraining


def _spec_dict(**target) -> dict:
    return {"program": "x.pl", "query": "valence(X, V)", "target": target}


# ----------------------------------------------------------------------------- the [target] table


def test_target_bins_one_per_integer_and_expected_values():
    t = parse_target({"variable": "valence", "bins": list(VA_BINS["valence"])}, "spec")
    values = np.arange(-3, 4, dtype=float)[:, None]
    assert t.class_of(values).tolist() == list(range(7))  # 7 equal-width bins over [-3, 3]
    f = t.fitted(np.repeat(values, 3, axis=0))
    assert f.values == (tuple(float(v) for v in range(-3, 4)),)
    probs = np.eye(7)[[0, 6, 3]] * 0.5 + np.eye(7)[[1, 5, 3]] * 0.5
    np.testing.assert_allclose(f.expected(probs)[:, 0], [-2.5, 2.5, 0.0])
    both = parse_target(
        {"variable": ["valence", "arousal"], "bins": {k: list(v) for k, v in VA_BINS.items()}, "loss": "squared-error"},
        "spec",
    )
    both = both.fitted(np.array([[v, a] for v in range(-3, 4) for a in range(7)], dtype=float))
    assert len(both.classes) == 49 and both.classes[8] == "vm2_a1"
    k = both.class_of(np.array([[-2.0, 1.0]]))[0]
    assert both.classes[k] == "vm2_a1"
    np.testing.assert_allclose(both.expected(np.eye(49)[[k]]), [[-2.0, 1.0]])
    # explicit edges: three bins; a bin without a training value takes its midpoint
    three = parse_target({"variable": "arousal", "bins": ["low", "mid", "high"], "edges": [0, 2, 4, 6]}, "s")
    assert three.class_of(np.array([[0.0], [1.9], [2.0], [6.0]])).tolist() == [0, 0, 1, 2]
    assert three.fitted(np.array([[0.0], [1.0], [6.0]])).values == ((0.5, 3.0, 6.0),)


@pytest.mark.parametrize(
    "table, message",
    [
        ({"variable": "joy", "bins": ["a", "b"]}, "variable must be one of"),
        ({"variable": "valence", "bins": ["a"]}, "at least 2 bins"),
        ({"variable": "valence", "bins": ["a", "a"]}, "repeat a name"),
        ({"variable": "valence", "bins": ["a", "b"], "edges": [0, 0, 1]}, "3 increasing numbers"),
        ({"variable": "valence", "bins": ["a", "b"], "loss": "l1"}, "loss 'l1'"),
        ({"variable": "valence", "bins": ["a", "b"], "colour": 1}, "unknown key"),
    ],
)
def test_a_bad_target_table_is_refused_naming_the_key(table, message):
    with pytest.raises(ConfigError, match=message):
        load_spec(_spec_dict(**table))


def test_a_target_spec_takes_no_label_set_and_values_outside_the_edges_are_named():
    with pytest.raises(ConfigError, match="drop 'labels'"):
        load_spec({**_spec_dict(variable="valence", bins=["a", "b"]), "labels": "basic7"})
    t = parse_target({"variable": "valence", "bins": ["a", "b"]}, "s")
    with pytest.raises(ConfigError, match=r"2 have none or one outside it: \['i1', 'i2'\]"):
        t.check_values(np.array([[0.0], [np.nan], [4.0]]), ["i0", "i1", "i2"])


def test_regression_scores_equal_scipy():
    rng = np.random.default_rng(3)
    true = rng.integers(-3, 4, 400).astype(float)  # many ties, as FindingEmo's integer scale
    pred = 0.6 * true + rng.normal(0, 1, 400)
    s = regression_scores(pred, true)
    np.testing.assert_allclose(rank(true), rankdata(true))
    assert s["spearman"] == pytest.approx(spearmanr(pred, true)[0], abs=1e-12)
    assert s["pearson"] == pytest.approx(pearsonr(pred, true)[0], abs=1e-12)
    assert s["mae"] == pytest.approx(np.abs(pred - true).mean()) and s["rmse"] == pytest.approx(
        np.sqrt(((pred - true) ** 2).mean())
    )
    ccc = 2 * np.cov(pred, true, bias=True)[0, 1] / (pred.var() + true.var() + (pred.mean() - true.mean()) ** 2)
    assert s["ccc"] == pytest.approx(ccc)


# ----------------------------------------------------------------------------- programs and truth


@pytest.mark.parametrize("variable", ["valence", "arousal"])
def test_the_shipped_programs_hold_the_simulators_tables(variable):
    text = (SPEC_DIR / f"va_{variable}.pl").read_text()
    table = np.zeros((7, 7))
    for clause in PrologString(text):
        heads = list(clause.to_list()) if isinstance(clause, Or) else [clause]
        for h in heads:
            if h.functor == f"expression_{variable}":
                table[BASIC7.index(str(h.args[0])), VA_BINS[variable].index(str(h.args[1]))] = float(h.probability)
    np.testing.assert_allclose(table, va_table(variable), atol=2e-6)


@pytest.fixture(scope="module")
def sim5k(tmp_path_factory):
    path = tmp_path_factory.mktemp("va5k") / "D"
    write_simulation(simulate(SimConfig(n=5000, seed=0, snr=4, scene_dim=32)), path)
    return path


def _bayes_inputs(data, part):
    truth = json.loads((data / "truth.json").read_text())
    ids = load_split(data / "split.json")[part]
    c = load_cache(data / "cache", ids=ids)
    tdf = pd.read_csv(data / "truth.csv", dtype={"image_id": str}).set_index("image_id").loc[ids]
    return truth, c, torch.tensor(true_scene_posterior(c.scene.numpy(), truth), dtype=torch.float32), tdf


@pytest.mark.parametrize("variable", ["valence", "arousal"])
def test_em_recovers_the_va_truth_and_the_true_weights_give_the_oracle(sim5k, variable):
    """EM on 3500 training images, the scene read by its Bayes posterior: the source weights
    within 0.03 of the truth, and the program with the true weights is the oracle exactly."""
    sp = load_spec(f"va_{variable}")
    lm = build_logic(sp, open_program(sp, "projected"), "condition", "projected", None)  # the seed's shape
    cols = query_columns(lm, sp.classes)
    truth, c, scene, tdf = _bayes_inputs(sim5k, "train")
    y = torch.tensor(sp.target.class_of(tdf[[variable]].to_numpy(float)))
    coef = em.source_coefficients(lm, lambda i: lm.seed_inputs(scene[i], c.face_probs[i], c.face_mask[i]), len(y), cols)
    w = torch.full((4,), 0.25, dtype=torch.float64)
    for _ in range(500):
        w = em.linear_em_step(coef, y, w, "condition").weights
    assert max(abs(float(w[k]) - TRUE[s]) for k, s in enumerate(lm.sources)) <= 0.03, w
    # test split: the program at the true weights equals the oracle; the learned weights' MAE is within 5%
    truth, c, scene, tdf = _bayes_inputs(sim5k, "test")
    target = sp.target.fitted(np.arange(-3, 4.0)[:, None] + (3 if variable == "arousal" else 0))
    oracle = oracle_va(
        truth,
        tdf[[f"p_{s}" for s in SOURCES]].to_numpy(),
        scene.double().numpy(),
        c.face_probs.double().numpy(),
        c.face_mask.numpy(),
    )[variable]
    mae = {}
    for name, weights in (("true", TRUE), ("learned", dict(zip(lm.sources, w.tolist())))):
        em.set_source_weights(lm, weights)
        with torch.no_grad():
            probs = lm(*lm.seed_inputs(scene.double(), c.face_probs.double(), c.face_mask))[:, cols].numpy()
        pred = target.expected(probs)[:, 0]
        if name == "true":
            np.testing.assert_allclose(pred, oracle, atol=1e-5)
        mae[name] = np.abs(pred - tdf[variable].to_numpy()).mean()
    assert mae["learned"] <= 1.05 * mae["true"], mae


def test_linear_em_step_is_em_step_for_the_seed(sim5k):
    from emolog.logic import compile_program

    _, c, scene, tdf = _bayes_inputs(sim5k, "val")
    y = torch.tensor([BASIC7.index(x) for x in tdf["label"]])
    w = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    for semantics in ("condition", "fail"):
        lm = compile_program("seed", semantics=semantics)
        coef = em.source_coefficients(
            lm, lambda i: lm.seed_inputs(scene[i], c.face_probs[i], c.face_mask[i]), len(y), query_columns(lm, BASIC7)
        )
        a = em.em_step(lm, w, scene, c.face_probs, c.face_mask, y, semantics)
        b = em.linear_em_step(coef, y, w, semantics)
        assert torch.allclose(a.weights, b.weights, atol=1e-6) and a.log_likelihood == pytest.approx(
            b.log_likelihood, abs=1e-5
        )


# ----------------------------------------------------------------------------- a run end to end


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("va-small") / "D"
    write_simulation(simulate(SimConfig(n=1500, seed=2, snr=4, scene_dim=32)), path)
    return path


@pytest.fixture(scope="module")
def runs(small):
    """logic-only to convergence (full-batch Adam on softmax t(), as the truth tests) and problog-em."""
    out = {}
    converged = {
        "logic-only": {
            "logic.param": "softmax",
            "logic.optimizer": "adam",
            "logic.lr": 0.05,
            "train.batch_size": 4096,
            "train.epochs": 100,
        },
        "problog-em": {"train.em_iterations": 100},
    }
    for regime, cfg in converged.items():
        out[regime] = small.parent / regime
        train_run(
            {"regime": regime, "data": str(small), "spec": "va_valence", **CHEAP, "train.patience": None, **cfg},
            out[regime],
            progress=False,
        )
    return out


def test_a_va_run_records_its_regression_and_reloads(small, runs):
    res = json.loads((runs["logic-only"] / "results.json").read_text())
    m = res["metrics"]["test"]["va"]["valence"]
    for k in ("mae", "rmse", "spearman", "pearson", "ccc"):
        assert m[f"{k}_lo"] <= m[k] <= m[f"{k}_hi"], k
    assert res["target"]["values"] == [[-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]]
    assert res["true_source_weights"] == pytest.approx(TRUE)
    assert res["classes"] == list(VA_BINS["valence"])
    # predictions.csv: the expected value of its own distribution; load_run predicts the same
    pred = pd.read_csv(runs["logic-only"] / "predictions.csv")
    target = emolog.load_run(runs["logic-only"]).target
    probs = pred[[f"p_{b}" for b in VA_BINS["valence"]]].to_numpy()
    np.testing.assert_allclose(pred["pred_valence"], target.expected(probs)[:, 0], atol=1e-4)
    again = emolog.load_run(runs["logic-only"]).predict(small / "cache", ids=pred["image_id"].tolist())
    np.testing.assert_allclose(again.values[:, 0], pred["pred_valence"], atol=1e-4)
    assert m["mae"] == pytest.approx(np.abs(pred["pred_valence"] - pred["valence"]).mean(), abs=1e-4)
    # better than predicting the training mean, and both learners land on the same weights
    train = pd.read_csv(small / "index.csv").set_index("image_id").loc[load_split(small / "split.json")["train"]]
    assert m["mae_hi"] < np.abs(pred["valence"] - train["valence"].mean()).mean()
    emr = json.loads((runs["problog-em"] / "results.json").read_text())
    assert max(abs(emr["source_weights"][s] - res["source_weights"][s]) for s in SOURCES) <= 0.02
    assert max(abs(emr["source_weights"][s] - TRUE[s]) for s in SOURCES) <= 0.1


def test_a_regime_with_nothing_to_train_is_refused(small, tmp_path):
    with pytest.raises(ConfigError, match="'va_computed.pl' has none: nothing would train; use nets-only or joint"):
        train_run({"regime": "logic-only", "data": str(small), "spec": "va_computed"}, tmp_path / "r", progress=False)
    assert not (tmp_path / "r" / "config.json").exists()


def test_a_head_for_both_variables_trains_by_squared_error(small, tmp_path):
    res = train_run(
        {"regime": "nets-only", "data": str(small), "spec": "va_head", "train.epochs": 3, "train.patience": None},
        tmp_path / "head",
        progress=False,
    )
    assert set(res["metrics"]["test"]["va"]) == {"valence", "arousal"} and len(res["classes"]) == 49
    hist = pd.read_csv(tmp_path / "head" / "history.csv")
    assert hist["val_loss"].iloc[-1] < hist["val_loss"].iloc[0]  # the expected values' squared error
    pred = pd.read_csv(tmp_path / "head" / "predictions.csv")
    mse = ((pred["pred_valence"] - pred["valence"]) ** 2 + (pred["pred_arousal"] - pred["arousal"]) ** 2).mean()
    assert (
        mse
        < ((pred["valence"] - pred["valence"].mean()) ** 2 + (pred["arousal"] - pred["arousal"].mean()) ** 2).mean()
        + 0.5
    )


def test_an_experiment_on_valence_compares_regimes_and_baselines_by_mae(small, runs, tmp_path):
    exp = tmp_path / "exp"
    assert (
        main(
            [
                "experiment",
                "--data",
                str(small),
                "--regimes",
                "logic-only",
                "--seeds",
                "0",
                "--set",
                "spec=va_valence",
                *[a for k, v in CHEAP.items() for a in ("--set", f"{k}={v}")],
                "--set",
                "train.patience=null",
                "--baselines",
                "majority,tree",
                "--baseline-epochs",
                "2",
                "--n-boot",
                "50",
                "--out",
                str(exp),
                "--quiet",
            ]
        )
        == 0
    )
    cmp = pd.read_csv(exp / "comparison.csv").set_index("system")
    pred = pd.read_csv(exp / "baselines" / "majority-s0.csv")
    test_values = pd.read_csv(small / "index.csv").set_index("image_id").loc[pred["image_id"], "valence"]
    train = pd.read_csv(small / "index.csv").set_index("image_id").loc[load_split(small / "split.json")["train"]]
    # the majority baseline's expected value is the training mean: its MAE is the mean predictor's
    assert cmp.at["baseline: majority", "valence_mae_mean"] == pytest.approx(
        np.abs(test_values.to_numpy() - train["valence"].mean()).mean(), abs=1e-4
    )
    assert cmp.at["logic-only", "valence_mae_mean"] < cmp.at["baseline: majority", "valence_mae_mean"]
    boot = pd.read_csv(exp / "bootstrap.csv")
    assert set(boot.loc[boot["metric"] == "valence_mae", "system"]) == {"baseline: majority", "baseline: tree"}
    assert main(["report", str(exp)]) == 0
    html = (exp / "report.html").read_text()
    assert 'id="va"' in html and "logic-only-s0-valence-mae" in html and 'alt="predicted valence' in html
