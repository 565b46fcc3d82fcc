"""Open bindings: one engine as the user sees it, class maps, label tables, face addresses.

emolog compiles a program in the seed's shape once for every image (the fastest for it) and
every other program through DeepProgram; the user never chooses. Here both compilations of
the shipped specs give the same answers on the same data, and train to the same result.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from problog.logic import Constant, Term

import emolog
from emolog.logic.bindings import PLACEHOLDER
from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.model.bindings import program as program_mod
from emolog.model.bindings.fields import address
from emolog.model.bindings.maps import apply_map, class_map_matrix, label_values
from emolog.model.bindings.program import ProgramLogic, build_logic, open_program
from emolog.model.bindings.schema import SpecError
from emolog.config.run import RunConfig
from emolog.model.data import load_data
from emolog.model.gate import program_kind
from emolog.model.kinds import NONE
from emolog.learn.losses import new_scene_net
from emolog.model.model import Network, Parts
from emolog.model.perception import perception_record
from emolog.model.spec import SPEC_DIR, load_spec
from emolog.runs.build import prepare_spec
from emolog.runs.networks import build_heads
from emolog.runs.train import train_run
from helpers.paths import TESTS

FAST = {
    "train.epochs": 2,
    "train.patience": None,
    "pretrain.epochs": 2,
    "pretrain.refit": 1,
    "pretrain.folds": 2,
    "nets.hidden": 8,
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = {}
    for labels in ("basic7", "emo8"):
        d = tmp_path_factory.mktemp(labels) / "D"
        write_simulation(simulate(SimConfig(n=200, seed=3, scene_dim=16, labels=labels, variant="context")), d)
        out[labels] = d
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOLOG_LOGIC_CACHE", str(tmp_path_factory.mktemp("logic")))
        yield out


def _both(spec_name: str, data) -> tuple[Network, Network, object]:
    """(the seed-shaped model, the DeepProgram model) of a shipped spec on ``data``'s test
    split, sharing one scene net, gate and heads."""
    spec = load_spec(spec_name)
    cfg = RunConfig.from_dict({"data": str(data), "spec": spec_name, "nets.hidden": 8})
    splits, manifest, _ = load_data(cfg, torch.device("cpu"), prelast=False, classes=spec.classes)
    prog = open_program(spec, "projected")
    ctx = prepare_spec(cfg, splits, perception_record(manifest), spec, prog)
    fast = build_logic(spec, prog, "condition", "projected", None)
    assert fast is not None and not getattr(fast, "general", False)
    torch.manual_seed(0)
    scene = new_scene_net(cfg, splits["train"].scene.shape[1], n_classes=fast.input_sizes.get("scene_net", 7))
    heads = build_heads(cfg, spec, fast, splits, torch.device("cpu"))
    inputs = {n: b.inputs for n, b in spec.nets.items() if n in heads}
    ctx.heads = heads
    general = ProgramLogic(spec, open_program(spec, "projected"), ctx)
    m_fast = Network(fast, scene, "condition", program_kind(fast), spec.classes, Parts(heads=heads, head_inputs=inputs))
    m_general = Network(general, scene, "condition", NONE, spec.classes, Parts(heads=heads))
    return m_fast.eval(), m_general.eval(), splits["test"]


@pytest.mark.parametrize("spec", ["seed", "context_rules", "emo8_buckets"])
def test_both_compilations_answer_alike(sim, spec):
    m_fast, m_general, te = _both(spec, sim["emo8" if spec == "emo8_buckets" else "basic7"])
    idx = torch.arange(len(te))
    with torch.no_grad():
        torch.testing.assert_close(m_general(te, idx).double(), m_fast(te, idx).double(), atol=1e-6, rtol=0)


def test_both_compilations_answer_alike_with_a_head_over_places365_classes(research_data):
    """places_mlp: one MLP head over the 365 Places365 classes and every face slot."""
    m_fast, m_general, te = _both("places_mlp", research_data["emo8"])
    idx = torch.arange(len(te))
    with torch.no_grad():
        torch.testing.assert_close(m_general(te, idx).double(), m_fast(te, idx).double(), atol=1e-6, rtol=0)


def test_a_gate_has_only_the_seed_compilation(sim):
    spec = load_spec("gated")
    with pytest.raises(SpecError, match=r'\[nets.gate_net\] bind = "gate" chooses the seed program\'s source'):
        ProgramLogic(spec, open_program(spec, "projected"), program_mod.BuildContext())


@pytest.mark.parametrize("spec,regime", [("seed", "logic-only"), ("seed", "joint"), ("emo8_buckets", "problog-em")])
def test_both_compilations_train_to_the_same_result(sim, tmp_path, monkeypatch, spec, regime):
    d = sim["emo8" if spec == "emo8_buckets" else "basic7"]
    # refits fit the frozen scene net as an expert of the seed's source choice, which only the
    # seed-shaped compilation reports; without them both pretrain the same net
    cfg = {**FAST, "regime": regime, "spec": spec, "data": str(d), "pretrain.refit": 0, "train.em_iterations": 20}
    fast = train_run(cfg, tmp_path / "fast", progress=False)
    monkeypatch.setattr(program_mod, "seed_shaped", lambda spec, nets: False)
    general = train_run(cfg, tmp_path / "general", progress=False)
    assert general["t_values"] == pytest.approx(fast["t_values"], abs=1e-4)
    assert general["metrics"]["test"]["accuracy"] == fast["metrics"]["test"]["accuracy"]
    assert general["metrics"]["test"]["nll"] == pytest.approx(fast["metrics"]["test"]["nll"], abs=1e-4)


def test_class_maps_rename_merge_drop_and_renormalise():
    feed = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    merge = {"positive": ["happy", "surprise"], "negative": ["angry", "sad"]}
    m, renorm, table = class_map_matrix(feed, ["positive", "negative"], merge, "s: [nets.x]")
    x = torch.tensor([[0.1, 0.1, 0.1, 0.3, 0.2, 0.1, 0.1], [0.0] * 7], dtype=torch.float64)
    y = apply_map(x, m, renorm)
    assert renorm and table["positive"] == ["happy", "surprise"]
    torch.testing.assert_close(y[0], torch.tensor([0.4, 0.3], dtype=torch.float64) / 0.7)
    assert y[1].tolist() == [0.0, 0.0]  # an absent face stays 0, never 0/0
    # reordered by name: a permutation, nothing renormalised
    m, renorm, _ = class_map_matrix(feed, list(reversed(feed)), None, "s: [nets.x]")
    assert not renorm and apply_map(x, m, renorm)[0].tolist() == list(reversed(x[0].tolist()))
    assert class_map_matrix(feed, feed, None, "s: [nets.x]")[0] is None
    with pytest.raises(ValueError, match=r"feeds \['happy'\] into more than one domain value"):
        class_map_matrix(feed, ["a", "b"], {"a": "happy", "b": ["happy", "sad"]}, "s: [nets.x]")


def test_label_tables(tmp_path):
    classes = ("joy", "sadness")
    assert label_values("position", classes, tmp_path, "s:") == {"joy": 0, "sadness": 1}
    (tmp_path / "v.csv").write_text("# label,value\njoy,Happiness\nsadness, 3\n")
    assert label_values("v.csv", classes, tmp_path, "s:") == {"joy": "Happiness", "sadness": 3}
    with pytest.raises(ValueError, match=r"missing: \['sadness'\]; not labels: \['anger'\]"):
        label_values({"joy": 1, "anger": 2}, classes, tmp_path, "s:")
    with pytest.raises(ValueError, match=r"gives the program values \['1'\] to more than one label"):
        label_values({"joy": 1, "sadness": 1}, classes, tmp_path, "s:")


def test_which_face_an_input_reads():
    face = lambda k: Term("tensor", Term("face", PLACEHOLDER, Constant(k)))  # noqa: E731
    slots = {"face1": 1, "front": 2}
    lst = lambda *xs: Term(".", xs[0], lst(*xs[1:])) if xs else Term("[]")  # noqa: E731
    assert address(lst(face(2)), slots) == ("face", 2)  # the 2nd present face
    assert address(lst(PLACEHOLDER, Term("front")), slots) == ("slot", 2)  # a slot atom
    assert address(lst(Term("tensor", Term("scene", PLACEHOLDER))), slots) is None  # the whole image
    with pytest.raises(ValueError, match="names faces"):
        address(lst(face(1), face(2)), slots)


def test_engine_key_is_accepted_with_a_note(sim, tmp_path):
    text = (
        (SPEC_DIR / "face_list.toml")
        .read_text()
        .replace('program = "face_list.pl"', f'program = "{SPEC_DIR / "face_list.pl"}"')
    )
    (tmp_path / "old.toml").write_text('engine = "deep"\n' + text)
    res = train_run(
        {**FAST, "regime": "logic-only", "spec": str(tmp_path / "old.toml"), "data": str(sim["basic7"])},
        tmp_path / "run",
        progress=False,
    )
    assert any("engine = 'deep' is no longer needed" in n for n in res["notes"])


def test_a_spec_in_python_with_a_function_object(research_data, tmp_path, monkeypatch):
    """A spec written in Python binds a network to a function object; the run records it by
    module:name, and load_run finds it again."""
    corpus = TESTS / "programs" / "research"
    monkeypatch.syspath_prepend(str(corpus))
    import va_tools

    spec = {
        "program": str(corpus / "function_net.pl"),
        "query": "emotion(Faces, I, E)",
        "labels": "emo8",
        "nets": {
            "expr": {"bind": "cache.face_probs"},
            "mood_net": {"bind": "head", "inputs": ["cache.scene"], "hidden": [8]},
            "centroid": {"bind": "function", "function": va_tools.soft_centroid},
        },
    }
    res = train_run(
        {
            "regime": "joint",
            "train.epochs": 1,
            "train.patience": None,
            "train.batch_size": 4,
            "spec": spec,
            "data": str(research_data["emo8"]),
        },
        tmp_path / "run",
        progress=False,
    )
    assert res["spec"]["nets"]["centroid"]["function"] == "va_tools:soft_centroid"
    assert (
        json.loads((tmp_path / "run" / "config.json").read_text())["spec"]["nets"]["centroid"]["function"]
        == "va_tools:soft_centroid"
    )
    pred = emolog.load_run(tmp_path / "run").predict(research_data["emo8"] / "cache")
    assert pred.probs.shape == (16, 8) and np.allclose(pred.probs.sum(1), 1)
