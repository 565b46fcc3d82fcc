"""The report, the experiment and the baselines are generic over the label set and the program:
Emo8 runs give 8-row per-class tables, the parameter tables name each t(), and a program
without a source choice renders without source-weight or trust sections."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from emolog.labels import EMO8
from emolog.report.build import build_report
from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.experiments.experiment import run_experiment
from emolog.experiments.plan import ExperimentPlan
from emolog.experiments.runner import RunOptions
from emolog.model.spec import SPEC_DIR
from emolog.runs.train import train_run

FAST = {
    "train.epochs": 2,
    "train.em_iterations": 2,
    "train.patience": None,
    "pretrain.epochs": 2,
    "pretrain.refit": 1,
    "pretrain.folds": 2,
    "nets.hidden": 8,
}


@pytest.fixture(scope="module")
def emo8(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("emo8") / "D"
    write_simulation(simulate(SimConfig(n=300, seed=5, scene_dim=16, labels="emo8")), d)
    return d


def _page(out: Path) -> str:
    """The report's HTML (no section failed: build_report raises otherwise)."""
    md = out.with_name("report.md").read_text()
    assert not md.startswith("PARTIAL REPORT") and "section failed" not in md
    return out.read_text()


def _sections(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', page)


def _assert_emo8_tables(page: str, ids: str) -> None:
    """8 rows, one per Emo8 class, in the table whose cell ids start with ``ids``."""
    rows = re.findall(rf'id="{ids}-([a-z]+)"', page)
    assert rows == list(EMO8), rows


def test_emo8_run_report_has_8_row_tables_and_names_each_t(emo8, tmp_path):
    res = train_run({**FAST, "spec": "emo8_buckets", "data": str(emo8)}, tmp_path / "run", progress=False)
    assert res["classes"] == list(EMO8) and res["t_values"]
    page = _page(build_report(tmp_path / "run"))
    _assert_emo8_tables(page, "f1-after-training")
    assert len(re.findall(r'id="pc-[a-z]+-f1"', page)) == 8
    for name in res["t_values"]:  # the parameter table names every t(), by its readable name
        assert f"<td>{html.escape(name)}</td>" in page, name
    assert {"weights", "trust"} <= set(_sections(page))


def test_program_without_source_choice_has_no_source_sections(emo8, tmp_path):
    spec = (SPEC_DIR / "places_mlp.toml").read_text().replace('"cache.scene_classes"', '"cache.scene"')
    (tmp_path / "mlp.toml").write_text(spec.replace("hidden = [64]", "hidden = [8]"))
    (tmp_path / "places_mlp.pl").write_text((SPEC_DIR / "places_mlp.pl").read_text())
    res = train_run(
        {**FAST, "regime": "joint", "spec": str(tmp_path / "mlp.toml"), "data": str(emo8)},
        tmp_path / "run",
        progress=False,
    )
    assert res["kind"] == "none" and res["source_weights"] is None
    page = _page(build_report(tmp_path / "run"))
    secs = _sections(page)
    assert "curves" in secs and not {"weights", "trust"} & set(secs)
    assert 'id="w-scene"' not in page
    _assert_emo8_tables(page, "f1-after-training")


def test_emo8_experiment_tables_and_report(emo8, tmp_path):
    plan = ExperimentPlan(
        str(emo8),
        ["logic-only", "joint"],
        [0],
        overrides=["spec=emo8_buckets", *(f"{k}={json.dumps(v)}" for k, v in FAST.items())],
        baselines=["majority", "largest-face", "fusion-mlp"],
        baseline_epochs=2,
        n_boot=50,
    )
    exp = run_experiment(plan, tmp_path / "E", RunOptions(progress=False))
    assert exp["failed"] == [] and exp["classes"] == list(EMO8)
    assert set(exp["baselines_skipped"]) == {"largest-face"}  # basic-7 face probabilities cannot predict Emo8
    table = exp["table"]
    assert list(table["system"]) == ["logic-only", "joint", "baseline: majority", "baseline: fusion-mlp"]
    assert "w_scene_mean" in table.columns and table["accuracy_mean"].notna().all()
    page = _page(build_report(tmp_path / "E"))
    _assert_emo8_tables(page, "f1-logic-only")
    results = json.loads((tmp_path / "E" / "runs" / "logic-only-s0" / "results.json").read_text())
    assert "parameters" in _sections(page)
    for name in results["t_values"]:
        assert f"<td>{html.escape(name)}</td>" in page, name
    assert "baseline largest-face not run" in page


def test_memorisation_of_a_program_without_source_weights_names_its_t(tmp_path):
    """face_list has no source choice: the memorisation table and curve show its t() values."""
    d = tmp_path / "D"
    write_simulation(simulate(SimConfig(n=300, seed=6, scene_dim=16)), d)
    plan = ExperimentPlan(
        str(d),
        ["logic-only"],
        [0],
        memorisation=[60, 120],
        overrides=["spec=face_list", *(f"{k}={json.dumps(v)}" for k, v in FAST.items())],
        baselines=[],
        n_boot=20,
    )
    exp = run_experiment(plan, tmp_path / "E", RunOptions(progress=False))
    assert exp["failed"] == []
    memo = pd.read_csv(tmp_path / "E" / "memorisation.csv")
    assert list(memo.columns) == [
        "regime",
        "n_train",
        "seed",
        "t(trust_face(F))",
        "t(scene_reliable)",
        "val_accuracy",
        "train_accuracy",
    ]
    r = json.loads((tmp_path / "E" / "runs" / "logic-only-s0-n_train=60" / "results.json").read_text())
    row = memo[(memo.regime == "logic-only") & (memo.n_train == 60)]
    assert row["t(scene_reliable)"].item() == pytest.approx(r["t_values"]["t(scene_reliable)"])
    page = _page(build_report(tmp_path / "E"))
    assert 'alt="memorisation curve"' in page
