"""The program kind (emolog.model.kinds): chosen once per program, recorded by name, read back."""

from __future__ import annotations

import json

import pytest
import torch

from emolog.data.artefacts import ArtefactError
from emolog.logic import compile_program
from emolog.model.bindings.program import build_logic, open_program
from emolog.model.gate import program_kind
from emolog.model.kinds import GATE, GLOBAL, KINDS, NONE, RULES, kind_named
from emolog.model.model import Network
from emolog.model.spec import load_spec
from emolog.report.inputs import load_run
from emolog.runs.record import Results


@pytest.mark.parametrize(
    "program, kind",
    [("seed", GLOBAL), ("extra_rule", GLOBAL), ("gated", GATE), ("context_rules", RULES), ("partial", NONE)],
)
def test_each_shipped_program_gets_its_kind(program, kind) -> None:
    assert program_kind(compile_program(program)) is kind


@pytest.mark.parametrize("spec, kind", [("seed", GLOBAL), ("gated", GATE), ("context_rules", RULES)])
def test_each_shipped_seed_shaped_spec_gets_its_kind(spec, kind) -> None:
    sp = load_spec(spec)
    assert program_kind(build_logic(sp, open_program(sp, "projected"), "condition", "projected", None)) is kind


def test_the_flags_say_what_each_kind_is() -> None:
    assert [k.name for k in KINDS] == ["global", "gate", "rules", "none"]
    assert [k.has_sources for k in KINDS] == [True, True, True, False]
    assert [k.per_image_sources for k in KINDS] == [False, True, True, False]
    assert [(k.global_weights, k.gate_net, k.rules) for k in KINDS] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
        (False, False, False),
    ]


def test_the_recorded_name_round_trips_and_an_unknown_one_is_refused() -> None:
    for k in KINDS:
        assert kind_named(json.loads(json.dumps({"kind": k.name}))["kind"], "results.json") is k
    for bad in ("fixed", "GLOBAL", None, ["gate"]):
        with pytest.raises(
            ArtefactError,
            match=r"run/results.json: field 'kind' is .*not a program kind "
            r"\(one of \['global', 'gate', 'rules', 'none'\]\)",
        ):
            kind_named(bad, "run/results.json")


def _results(kind: str | None) -> dict:
    res = {
        "regime": "joint",
        "seed": 0,
        "program": "seed",
        "semantics": "condition",
        "metrics": {},
        "metrics_before": {},
        "epochs_run": 1,
        "train_time_s": 1.0,
        "source_weights": {"scene": 0.4, "face1": 0.3, "face2": 0.2, "face3": 0.1},
    }
    return res if kind is None else {**res, "kind": kind}


def test_results_view_reads_the_kind_back() -> None:
    assert Results.from_dict(_results("rules")).kind is RULES
    assert Results.from_dict(_results(None)).kind is GLOBAL  # a run of an older emolog: the seed's
    with pytest.raises(ArtefactError, match="r/results.json: field 'kind' is 'fixed'"):
        Results.from_dict(_results("fixed"), "r/results.json")


def test_report_reads_the_kind_and_refuses_an_unknown_one(tmp_path) -> None:
    views = {}
    for kind in ("gate", "none", None, "fixed"):
        d = tmp_path / str(kind)
        d.mkdir()
        (d / "results.json").write_text(json.dumps(_results(kind)))
        views[kind] = load_run(d)
    assert views["gate"].sources == views[None].sources == ["scene", "face1", "face2", "face3"]
    assert views["none"].sources == []
    bad = views["fixed"]
    assert bad.results is None and "results.json" in bad.broken
    assert (
        f"{tmp_path / 'fixed' / 'results.json'}: field 'kind' is 'fixed', not a program kind"
        in bad.absent["results.json"]
    )


def test_model_takes_a_kind_object_not_its_name() -> None:
    lm = compile_program("seed")
    with pytest.raises(ValueError, match=r"kind must be one of \['global', 'gate', 'rules', 'none'\], got 'global'"):
        Network(lm, torch.nn.Linear(4, 7), "condition", kind="global")
    assert Network(lm, torch.nn.Linear(4, 7), "condition").kind is GLOBAL
