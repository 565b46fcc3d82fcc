"""Model specs: every shipped spec trains in every regime that applies, from Python and the CLI."""

from __future__ import annotations

import json

import pytest

from emolog.cli import main
from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.training.config import ConfigError
from emolog.training.spec import SPEC_DIR, load_spec
from emolog.training.train import train_run

FAST = {"epochs": 2, "em_iterations": 2, "patience": None, "pretrain_epochs": 2, "pretrain_refit": 1,
        "pretrain_folds": 2, "net_hidden": 8}
# context_rules' t(_)::trust_large_confident(F) is one parameter for three faces: EM refuses it
REGIMES = {"seed": ("logic-only", "problog-em", "nets-only", "joint", "original"),
           "gated": ("logic-only", "nets-only", "joint"),
           "context_rules": ("logic-only", "joint"),
           "emo8_buckets": ("logic-only", "problog-em", "joint")}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = {}
    for labels in ("basic7", "emo8"):
        d = tmp_path_factory.mktemp(labels) / "D"
        write_simulation(simulate(SimConfig(n=300, seed=5, scene_dim=16, labels=labels, variant="context")), d)
        out[labels] = d
    return out


def test_every_shipped_spec_is_listed():
    # places_mlp reads the Places365 classifier: trained on a real-photo cache in test_train_rebuild.py
    assert sorted(f.stem for f in SPEC_DIR.glob("*.toml")) == sorted([*REGIMES, "places_mlp"])


@pytest.mark.parametrize("spec", sorted(REGIMES))
def test_shipped_spec_trains_in_each_regime(data, tmp_path, spec):
    s = load_spec(spec)
    d = data["emo8" if s.label_set == "emo8" else "basic7"]
    for regime in REGIMES[spec]:
        res = train_run({**FAST, "regime": regime, "spec": spec, "data": str(d)}, tmp_path / regime, progress=False)
        assert res["classes"] == list(s.classes) and res["epochs_run"] == 2 and res["spec"]["name"] == spec
        assert res["metrics"]["test"]["n"] > 0 and len(res["metrics"]["test"]["per_class"]) == len(s.classes)
        assert (tmp_path / regime / "program.pl").is_file() or not res["t_values"]
    if spec == "emo8_buckets":   # the learned bucket disjunctions, by name, next to the simulator's truth
        assert len(res["t_values"]) == 36 and set(res["true_t_values"]) == set(res["t_values"])
    # once through the command line
    rc = main(["train", "--data", str(d), "--spec", spec, "--regime", REGIMES[spec][0], "--out",
               str(tmp_path / "cli"), "--quiet", *[x for k, v in FAST.items() for x in ("--set", f"{k}={json.dumps(v)}")]])
    assert rc == 0 and json.loads((tmp_path / "cli" / "results.json").read_text())["spec"]["name"] == spec


def test_a_spec_written_here_and_label_mismatch(data, tmp_path):
    """A program the package does not ship: faces only, no scene; and a wrong label set."""
    (tmp_path / "faces.pl").write_text(
        "nn(scene_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: scene_emotion(X, E).\n"
        "nn(face_net, [X, F], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_emotion(X, F, E).\n"
        "nn(available, [X, F]) :: face_available(X, F).\n"
        "face(face1). face(face2). face(face3).\n"
        "t(0.7)::source(scene); t(0.1)::source(face1); t(0.1)::source(face2); t(0.1)::source(face3).\n"
        "emotion(X, E) :- source(scene), scene_emotion(X, E).\n"
        "emotion(X, E) :- source(F), face(F), face_emotion(X, F, E).\n"
        "available(X, scene).\navailable(X, F) :- face(F), face_available(X, F).\n"
        "ok(X) :- source(S), available(X, S).\nevidence(ok(X)).\n"
        + "".join(f"query(emotion(X, {e})).\n" for e in ("angry", "disgust", "fear", "happy", "sad", "surprise",
                                                        "neutral")))
    body = ('program = "faces.pl"\nquery = "emotion(X, E)"\nlabels = "{labels}"\n'
            '[nets.scene_net]\nbind = "scene_head"\n[nets.face_net]\nbind = "cache.face_probs"\n'
            '[nets.available]\nbind = "cache.face_mask"\n')
    (tmp_path / "mine.toml").write_text(body.format(labels="basic7"))
    res = train_run({**FAST, "spec": str(tmp_path / "mine.toml"), "data": str(data["basic7"])}, tmp_path / "run",
                    progress=False)
    assert res["program_source"] == str(tmp_path / "faces.pl")
    assert "t(0.7)" not in (tmp_path / "run" / "program.pl").read_text()   # learned values written back
    (tmp_path / "emo8.toml").write_text(body.format(labels="emo8"))
    with pytest.raises(ConfigError, match=r"ranges over .*angry.*label set 'emo8' is .*anticipation"):
        train_run({**FAST, "spec": str(tmp_path / "emo8.toml"), "data": str(data["basic7"])}, tmp_path / "r2",
                  progress=False)
    (tmp_path / "unbound.toml").write_text(body.format(labels="basic7").replace('[nets.available]\nbind = "cache.face_mask"\n', ""))
    with pytest.raises(ConfigError, match="available"):
        train_run({**FAST, "spec": str(tmp_path / "unbound.toml"), "data": str(data["basic7"])}, tmp_path / "r3",
                  progress=False)
    # an Emo8 index under a basic-7 spec: refused naming the labels
    with pytest.raises(ConfigError, match="label set"):
        train_run({**FAST, "spec": "seed", "data": str(data["emo8"])}, tmp_path / "r4", progress=False)
