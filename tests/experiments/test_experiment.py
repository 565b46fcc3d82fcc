"""`emolog experiment` on a small simulated set: every file, consistent numbers, resumable."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from emolog.cli import main
from emolog.errors import EXIT_INPUT
from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.experiments import experiment
from emolog.experiments.experiment import RunSpec, parse_sweep, read_predictions
from emolog.metrics.classification import macro_f1

ARGS = [
    "--regimes",
    "logic-only,joint",
    "--seeds",
    "0,1",
    "--memorisation",
    "100,200",
    "--set",
    "train.epochs=2",
    "--set",
    "device=cpu",
    "--baseline-epochs",
    "3",
    "--n-boot",
    "100",
    "--quiet",
]


def _cli(*argv: str) -> int:
    """`emolog experiment ARGV` through the command line's error handler (its exit codes)."""
    return main(["experiment", *argv])


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    write_simulation(simulate(SimConfig(n=600, seed=1, scene_dim=64)), root / "D")
    assert _cli("--data", str(root / "D"), "--out", str(root / "E"), *ARGS) == 0
    return root


def test_writes_every_file(exp):
    E = exp / "E"
    for f in ("comparison.csv", "comparison.tex", "bootstrap.csv", "memorisation.csv", "experiment.json"):
        assert (E / f).stat().st_size > 0, f
    info = json.loads((E / "experiment.json").read_text())
    names = {"logic-only-s0", "logic-only-s1", "joint-s0", "joint-s1"} | {
        f"{r}-s{s}-n_train={n}" for r in ("logic-only", "joint") for s in (0, 1) for n in (100, 200)
    }
    assert {p.split("/")[1] for p in info["runs"]} == names
    for p in info["runs"]:
        assert (E / p / "results.json").exists() and (E / p / "predictions.csv").exists()
    assert info["failed"] == [] and info["reference"] == "logic-only"
    assert info["data"]["kind"] == "simulated"
    assert info["true_source_weights"] == {"scene": 0.53, "face1": 0.18, "face2": 0.17, "face3": 0.12}
    tex = (E / "comparison.tex").read_text()
    assert tex.startswith("\\begin{tabular}") and "logic-only & $" in tex and "\\pm" in tex


def test_numbers_are_consistent(exp):
    E = exp / "E"
    table = pd.read_csv(E / "comparison.csv").set_index("system")
    for regime in ("logic-only", "joint"):
        res = [json.loads((E / "runs" / f"{regime}-s{s}" / "results.json").read_text()) for s in (0, 1)]
        accs = [r["metrics"]["test"]["accuracy"] for r in res]
        ws = [r["source_weights"]["scene"] for r in res]
        assert table.loc[regime, "accuracy_mean"] == pytest.approx(np.mean(accs), abs=1e-5)
        assert table.loc[regime, "accuracy_std"] == pytest.approx(np.std(accs, ddof=1), abs=1e-5)
        assert table.loc[regime, "w_scene_mean"] == pytest.approx(np.mean(ws), abs=1e-5)
        assert table.loc[regime, "n_seeds"] == 2
    assert {"baseline: majority", "baseline: fusion-mlp"} <= set(table.index)
    assert table.loc["baseline: majority", "macro_f1_mean"] < 0.1

    boot = pd.read_csv(E / "bootstrap.csv")
    assert set(boot["metric"]) == {"macro_f1", "accuracy", "nll"} and (boot["reference"] == "logic-only").all()
    assert (boot["lo"] <= boot["diff"]).all() and (boot["diff"] <= boot["hi"]).all()
    row = boot[(boot["system"] == "joint") & (boot["metric"] == "accuracy")].iloc[0]
    assert row["diff"] == pytest.approx(
        table.loc["joint", "accuracy_mean"] - table.loc["logic-only", "accuracy_mean"], abs=1e-4
    )

    # macro-F1 difference recomputed from the runs' predictions.csv
    def mf1(regime):
        return np.mean(
            [
                macro_f1(p, y)
                for _, y, p in (read_predictions(E / "runs" / f"{regime}-s{s}" / "predictions.csv") for s in (0, 1))
            ]
        )

    row = boot[(boot["system"] == "joint") & (boot["metric"] == "macro_f1")].iloc[0]
    assert row["diff"] == pytest.approx(mf1("joint") - mf1("logic-only"), abs=1e-4)

    memo = pd.read_csv(E / "memorisation.csv")
    assert list(memo.columns) == [
        "regime",
        "n_train",
        "seed",
        "w_scene",
        "w_face1",
        "w_face2",
        "w_face3",
        "val_accuracy",
        "train_accuracy",
    ]
    assert len(memo) == 8 and set(memo["n_train"]) == {100, 200}
    r = json.loads((E / "runs" / "joint-s1-n_train=100" / "results.json").read_text())
    m = memo[(memo.regime == "joint") & (memo.n_train == 100) & (memo.seed == 1)].iloc[0]
    assert m["w_face2"] == pytest.approx(r["source_weights"]["face2"], abs=1e-5)
    assert m["val_accuracy"] == pytest.approx(r["metrics"]["val"]["accuracy"], abs=1e-5)
    assert r["n_train"] == 100


def test_resume_does_not_rerun(exp, capsys):
    E = exp / "E"
    stamps = {p: p.stat().st_mtime_ns for p in (E / "runs").glob("*/results.json")}
    base = {p: p.stat().st_mtime_ns for p in (E / "baselines").glob("*.csv")}
    assert _cli("--data", str(exp / "D"), "--out", str(E), *ARGS) == 0
    assert {p: p.stat().st_mtime_ns for p in (E / "runs").glob("*/results.json")} == stamps
    assert {p: p.stat().st_mtime_ns for p in (E / "baselines").glob("*.csv")} == base
    out = capsys.readouterr().out
    assert "logic-only" in out and "accuracy" in out  # the comparison table is printed


def test_a_run_that_lacks_a_tables_metric_is_retrained_saying_so(exp, capsys):
    """A finished run whose results.json predates a metric of the tables (here: one deleted) is
    recomputed with a line naming the file and the metric, and the tables come out as before."""
    E = exp / "E"
    before = (E / "comparison.csv").read_text()
    path = E / "runs" / "joint-s1" / "results.json"
    res = json.loads(path.read_text())
    del res["metrics"]["test"]["macro_f1"]
    path.write_text(json.dumps(res))
    capsys.readouterr()
    assert _cli("--data", str(exp / "D"), "--out", str(E), *ARGS) == 0
    err = capsys.readouterr().err
    assert f"{path}: its test metrics lack ['macro_f1']" in err and "recomputing the run" in err
    assert "macro_f1" in json.loads(path.read_text())["metrics"]["test"]
    assert (E / "comparison.csv").read_text() == before


def test_bad_requests_are_refused(exp, capsys):
    E = exp / "E"
    assert (
        _cli("--data", str(exp / "D"), "--out", str(exp / "F"), "--regimes", "logic-only", "--set", "bogus=1")
        == EXIT_INPUT
    )
    assert "bogus" in capsys.readouterr().err
    assert _cli("--data", str(exp / "D"), "--out", str(exp / "F"), "--regimes", "nonsense") == EXIT_INPUT
    assert _cli("--data", str(exp / "D"), "--out", str(exp / "F"), "--memorisation", "100000") == EXIT_INPUT
    assert "training images" in capsys.readouterr().err
    # another base config into the same experiment directory would mix runs
    assert (
        _cli(
            "--data",
            str(exp / "D"),
            "--out",
            str(E),
            "--regimes",
            "logic-only",
            "--seeds",
            "0",
            "--set",
            "train.epochs=3",
        )
        == EXIT_INPUT
    )
    assert "another overrides" in capsys.readouterr().err


def test_sweep_parsing_and_names():
    assert parse_sweep("logic.lr=3e-3,1e-2") == ("logic.lr", [0.003, 0.01])
    assert parse_sweep("train.imbalance=none,class-weighted")[1] == ["none", "class-weighted"]
    assert RunSpec("joint", 2, ("logic.lr", 0.01)).name == "joint-s2-logic.lr=0.01"
    assert RunSpec("joint", 2, ("train.imbalance", "logit-adjust")).system == "joint [train.imbalance=logit-adjust]"
    base = {"data": "D"}
    main, memo = experiment.plan_runs(["logic-only"], [0], [("logic.lr", [0.03, 0.1])], [], base)
    # 3e-2 is the default: it is the base run, not a second one
    assert [s.name for s in main] == ["logic-only-s0", "logic-only-s0-logic.lr=0.1"] and memo == []
