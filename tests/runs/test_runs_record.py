"""The one reader of a run's records (emolog/runs/record.py): the class list every reader of a
run gets, and a missing or damaged results.json refused naming the file."""

from __future__ import annotations

import json

import pytest

from emolog.data.artefacts import ArtefactError, ArtefactMissing
from emolog.labels import BASIC7, EMO8
from emolog.runs.record import Results, RunFiles, group_runs, read_results, read_run_files, run_classes

FIELDS = {
    "regime": "logic-only",
    "seed": 0,
    "program": "seed",
    "semantics": "exact",
    "metrics_before": {"test": {}},
    "epochs_run": 2,
    "train_time_s": 1.5,
}


def test_class_list_falls_back_the_same_way_for_every_reader(tmp_path):
    # an older run records its classes only in its metrics: every view of it reads the same list
    res = {**FIELDS, "metrics": {"val": {"classes": list(EMO8)}, "test": {"classes": list(EMO8)}}}
    (tmp_path / "results.json").write_text(json.dumps(res))
    assert run_classes(res) == list(EMO8)
    assert read_run_files(RunFiles(tmp_path)).classes == list(EMO8)
    assert Results.from_dict(res).classes == list(EMO8)
    assert run_classes({**res, "classes": ["a", "b"]}) == ["a", "b"]  # the recorded list comes first
    assert run_classes({"metrics": {}}) == run_classes(None) == list(BASIC7)


def test_read_results_refuses_a_missing_or_damaged_file_naming_it(tmp_path):
    with pytest.raises(ArtefactMissing, match=f"{tmp_path / 'results.json'}: missing"):
        read_results(tmp_path)
    (tmp_path / "results.json").write_text('{"trunc')
    with pytest.raises(ArtefactError, match=f"{tmp_path / 'results.json'}: not valid JSON"):
        read_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({**FIELDS, "kind": "no-such-kind"}))
    with pytest.raises(ArtefactError, match="results.json"):
        read_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({**FIELDS, "metrics": {}}))
    assert read_results(tmp_path)["program"] == "seed"


def test_runs_group_by_regime_and_sweep_in_first_seen_order(tmp_path):
    runs = [
        RunFiles(tmp_path / n, name=f"runs/{n}")
        for n in ("joint-s0", "logic-only-s0", "joint-s1", "joint-s0-n_train=250")
    ]
    assert {g: [r.name for r in rs] for g, rs in group_runs(runs).items()} == {
        "joint": ["runs/joint-s0", "runs/joint-s1"],
        "logic-only": ["runs/logic-only-s0"],
        "joint-n_train=250": ["runs/joint-s0-n_train=250"],
    }
