"""Model specs: every shipped spec trains in every regime that applies, from Python and the CLI."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

import emolog
from emolog.cli import main
from emolog.labels import EMO8
from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.config.run import ConfigError
from emolog.model.spec import SPEC_DIR, load_spec
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
# context_rules: t(_)::trust_large_confident(F) is one parameter for three faces (EM counts each)
REGIMES = {
    "seed": ("logic-only", "problog-em", "nets-only", "joint", "original"),
    "gated": ("logic-only", "nets-only", "joint"),
    "context_rules": ("logic-only", "problog-em", "nets-only", "joint"),
    "emo8_buckets": ("logic-only", "problog-em", "nets-only", "joint"),
    # a DeepProbLog face list: one circuit per face count, EM over the per-face shared t()
    "face_list": ("logic-only", "problog-em", "nets-only", "joint"),
    # valence/arousal targets (docs/model.md section 5c); va_computed has no t() to learn
    "va_valence": ("logic-only", "problog-em", "joint"),
    "va_arousal": ("logic-only",),
    "va_head": ("nets-only",),
    "va_computed": ("nets-only", "joint"),
}
# joint-unfreeze needs a real cache's pre-last activations (tests/test_end_to_end.py,
# tests/runs/test_train_unfreeze.py); original reads grey faces of the seed program only


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = {}
    for labels in ("basic7", "emo8"):
        d = tmp_path_factory.mktemp(labels) / "D"
        write_simulation(simulate(SimConfig(n=300, seed=5, scene_dim=16, labels=labels, variant="context")), d)
        out[labels] = d
    return out


def _emo8_variant(tmp_path, name: str, program: str, *toml: tuple[str, str]):
    """emo8_buckets' spec with ``program`` (text) as its program ``<name>.pl``, and each
    (old, new) of ``toml`` replaced in the spec; returns the spec's path."""
    (tmp_path / f"{name}.pl").write_text(program)
    text = (SPEC_DIR / "emo8_buckets.toml").read_text().replace('program = "emo8_buckets.pl"', f'program = "{name}.pl"')
    for old, new in toml:
        assert old in text
        text = text.replace(old, new)
    (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path / f"{name}.toml"


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
    if spec == "emo8_buckets":  # the learned bucket disjunctions, by name, next to the simulator's truth
        assert len(res["t_values"]) == 36 and set(res["true_t_values"]) == set(res["t_values"])
    # once through the command line
    rc = main(
        [
            "train",
            "--data",
            str(d),
            "--spec",
            spec,
            "--regime",
            REGIMES[spec][0],
            "--out",
            str(tmp_path / "cli"),
            "--quiet",
            *[x for k, v in FAST.items() for x in ("--set", f"{k}={json.dumps(v)}")],
        ]
    )
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
        + "".join(
            f"query(emotion(X, {e})).\n" for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
        )
    )
    body = (
        'program = "faces.pl"\nquery = "emotion(X, E)"\nlabels = "{labels}"\n'
        '[nets.scene_net]\nbind = "scene_head"\n[nets.face_net]\nbind = "cache.face_probs"\n'
        '[nets.available]\nbind = "cache.face_mask"\n'
    )
    (tmp_path / "mine.toml").write_text(body.format(labels="basic7"))
    res = train_run(
        {**FAST, "spec": str(tmp_path / "mine.toml"), "data": str(data["basic7"])}, tmp_path / "run", progress=False
    )
    assert res["program_source"] == str(tmp_path / "faces.pl")
    assert "t(0.7)" not in (tmp_path / "run" / "program.pl").read_text()  # learned values written back
    (tmp_path / "emo8.toml").write_text(body.format(labels="emo8"))
    with pytest.raises(ConfigError, match=r"ranges over .*angry.*label set 'emo8' is .*anticipation"):
        train_run(
            {**FAST, "spec": str(tmp_path / "emo8.toml"), "data": str(data["basic7"])}, tmp_path / "r2", progress=False
        )
    (tmp_path / "unbound.toml").write_text(
        body.format(labels="basic7").replace('[nets.available]\nbind = "cache.face_mask"\n', "")
    )
    with pytest.raises(ConfigError, match="available"):
        train_run(
            {**FAST, "spec": str(tmp_path / "unbound.toml"), "data": str(data["basic7"])},
            tmp_path / "r3",
            progress=False,
        )
    # an Emo8 index under a basic-7 spec: refused naming the labels
    with pytest.raises(ConfigError, match="label set"):
        train_run({**FAST, "spec": "seed", "data": str(data["emo8"])}, tmp_path / "r4", progress=False)


def test_face_list_run_predicts_its_test_metrics(data, tmp_path):
    import numpy as np

    from emolog.data.split import load_split
    from emolog.metrics.classification import evaluate

    res = train_run(
        {**FAST, "regime": "problog-em", "spec": "face_list", "data": str(data["basic7"])},
        tmp_path / "run",
        progress=False,
    )
    assert res["kind"] == "none" and set(res["t_values"]) == {"t(trust_face(F))", "t(scene_reliable)"}
    run = emolog.load_run(tmp_path / "run")
    test_ids = load_split(data["basic7"] / "split.json")["test"]
    pred = run.predict(data["basic7"] / "cache", ids=test_ids)
    labels = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype={"image_id": str})["label"]
    y = np.array([run.classes.index(c) for c in labels])
    assert evaluate(pred.probs, y, tuple(run.classes)) == res["metrics"]["test"]


def test_em_on_the_face_list_reaches_the_likelihood_maximum():
    """EM over t(trust_face(F)) (one t() for every face of every image: a shared t()) and a
    ground t(): a step counts every ground fact (problog lfi's update, by enumeration), and at
    EM's fixed point the log-likelihood's gradient in the probabilities is 0."""
    import torch

    from emolog.model.bindings.program import BuildContext, ProgramLogic, open_program
    from emolog.learn.em import lfi_step

    s = load_spec("face_list")
    lm = ProgramLogic(s, open_program(s, "projected"), BuildContext(k=3))
    g = torch.Generator().manual_seed(0)
    n = 400
    scene = torch.softmax(2 * torch.randn(n, 7, generator=g), 1).double()
    faces = torch.softmax(2 * torch.randn(n, 3, 7, generator=g), 2).double()
    mask = torch.rand(n, 3, generator=g) < 0.6
    inputs, facts = {"scene_head": scene, "cache.face_probs": faces, "cache.face_mask": mask[..., None].double()}, {}
    with torch.no_grad():  # labels drawn from the program itself at trust 0.3, reliable 0.7
        lm.tparams.set_probs(torch.tensor([0.3, 0.7], dtype=torch.float64))
        labels = torch.multinomial(lm(inputs, facts).float(), 1, generator=g).squeeze(1)
    lm.tparams.set_probs(torch.tensor([0.5, 0.5], dtype=torch.float64))
    # one step is problog lfi's update: expected counts by enumerating every image's worlds
    # (a coin per face, one for the scene) over the ground facts, divided by their number
    import itertools

    counts, k_faces = torch.zeros(2, dtype=torch.float64), 0
    for i in range(n):
        present = [faces[i, j] for j in range(3) if mask[i, j]]
        k_faces += len(present)
        z, c = 0.0, torch.zeros(2, dtype=torch.float64)
        for coins in itertools.product((0, 1), repeat=len(present) + 1):
            w = 0.5 ** len(coins)
            first = next((j for j, cj in enumerate(coins[:-1]) if cj), None)
            lik = (
                present[first][labels[i]]
                if first is not None
                else (scene[i, labels[i]] if coins[-1] else float(labels[i] == 6))
            )
            z += w * lik
            c += w * lik * torch.tensor([sum(coins[:-1]), coins[-1]], dtype=torch.float64)
        counts += c / z
    expected = counts / torch.tensor([k_faces, n], dtype=torch.float64)
    lfi_step(lm, lambda idx: (inputs, facts), labels, list(range(7)), "condition")
    torch.testing.assert_close(lm.tparams.probs().detach().double(), expected, atol=1e-6, rtol=0)
    for _ in range(60):
        step = lfi_step(lm, lambda idx: (inputs, facts), labels, list(range(7)), "condition")
    p = lm.tparams.probs().detach().clone()
    from emolog.logic import TParams

    free = TParams(lm.program, "projected").double()
    lm.tparams = free
    free.set_probs(p)
    ll = lm(inputs, facts).gather(1, labels[:, None]).log().sum()
    grads = torch.autograd.grad(ll, list(free.values))
    assert all(float(x.abs().max()) < 1e-3 for x in grads), grads  # of a sum over 400 images
    assert abs(float(p[0]) - 0.3) < 0.1 and abs(float(p[1]) - 0.7) < 0.15 and step.log_likelihood < 0


def test_a_regime_that_trains_no_network_refuses_a_spec_with_a_head(data, tmp_path):
    """logic-only would leave places_mlp's MLP at its random start: refused before any work."""
    spec = (SPEC_DIR / "places_mlp.toml").read_text().replace('"cache.scene_classes"', '"cache.scene"')
    (tmp_path / "mlp.toml").write_text(spec)
    (tmp_path / "places_mlp.pl").write_text((SPEC_DIR / "places_mlp.pl").read_text())
    for regime, match in (
        ("logic-only", r"\['fusion_net'\].*random start.*nets-only or joint"),
        ("problog-em", r"places_mlp.pl' has no t\(\)"),
    ):
        with pytest.raises(ConfigError, match=match):
            train_run(
                {**FAST, "regime": regime, "spec": str(tmp_path / "mlp.toml"), "data": str(data["emo8"])},
                tmp_path / regime,
                progress=False,
            )
        assert not (tmp_path / regime / "results.json").exists()


def test_a_spec_written_in_python(data, tmp_path, monkeypatch):
    """The spec file's keys as a dict: a program of the test's own (noisy-or trust in each
    face, learnable per face slot, else the scene), relative paths from the current directory."""
    (tmp_path / "noisy.pl").write_text(
        "nn(scene_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: scene_emotion(X, E).\n"
        "nn(face_net, [X, F], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_emotion(X, F, E).\n"
        "nn(available, [X, F]) :: face_available(X, F).\n"
        "t(0.5)::trust(face1). t(0.5)::trust(face2). t(0.5)::trust(face3).\n"
        "picked(X, face1) :- face_available(X, face1), trust(face1).\n"
        "picked(X, face2) :- \\+ picked(X, face1), face_available(X, face2), trust(face2).\n"
        "picked(X, face3) :- \\+ picked(X, face1), \\+ picked(X, face2), face_available(X, face3), trust(face3).\n"
        "none(X) :- \\+ picked(X, face1), \\+ picked(X, face2), \\+ picked(X, face3).\n"
        "emotion(X, E) :- picked(X, F), face_emotion(X, F, E).\n"
        "emotion(X, E) :- none(X), scene_emotion(X, E).\n"
        + "".join(
            f"query(emotion(X, {e})).\n" for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
        )
    )
    (tmp_path / "labels.txt").write_text(
        "# basic-7 in the program's order\nangry\ndisgust\nfear\nhappy\nsad\nsurprise\nneutral\n"
    )
    monkeypatch.chdir(tmp_path)
    spec = {
        "name": "noisy",
        "program": "noisy.pl",
        "query": "emotion(X, E)",
        "labels": "labels.txt",
        "nets": {
            "scene_net": {"bind": "scene_head"},
            "face_net": {"bind": "cache.face_probs"},
            "available": {"bind": "cache.face_mask"},
        },
    }
    for regime in ("logic-only", "problog-em"):
        res = train_run(
            {**FAST, "regime": regime, "spec": spec, "data": str(data["basic7"])}, tmp_path / regime, progress=False
        )
        assert res["spec"]["name"] == "noisy" and res["program_source"] == str(tmp_path / "noisy.pl")
        assert set(res["t_values"]) == {"t(trust(face1))", "t(trust(face2))", "t(trust(face3))"}
        assert all(v != 0.5 for v in res["t_values"].values())  # every trust moved
    saved = json.loads((tmp_path / "logic-only" / "results.json").read_text())
    assert emolog.load_run(tmp_path / "logic-only").t_values == saved["t_values"]  # reloads from its record
    with pytest.raises(ConfigError, match=r"spec \(a Python dict\): unknown key\(s\) \['bogus'\]"):
        train_run({**FAST, "spec": {**spec, "bogus": 1}, "data": str(data["basic7"])}, tmp_path / "bad", progress=False)


def test_epoch_zero_reports_the_training_loss_at_the_start(data, tmp_path):
    """EM's row k is the NLL before iteration k, so rows 0 and 1 measure the same parameters;
    under "fail" both are the unnormalised program output's NLL."""
    train_run(
        {**FAST, "regime": "problog-em", "semantics": "fail", "data": str(data["basic7"])},
        tmp_path / "run",
        progress=False,
    )
    loss = pd.read_csv(tmp_path / "run" / "history.csv")["train_loss"]
    assert loss[0] == pytest.approx(loss[1], rel=1e-6)


def test_an_emo8_program_with_other_sources_pretrains_its_own_scene_net(data, tmp_path):
    """emo8_buckets with its source choice cut to the scene and face1: not the seed's four
    sources, so no source reports ("none"), its t() by name; its frozen scene net is
    pretrained for its own program and labels (not reused from emo8_buckets' on the same data)."""
    text = (SPEC_DIR / "emo8_buckets.pl").read_text()
    old = "t(_)::source(scene); t(_)::source(face1); t(_)::source(face2); t(_)::source(face3)."
    assert old in text
    two = _emo8_variant(tmp_path, "two", text.replace(old, "t(_)::source(scene); t(_)::source(face1)."))
    first = train_run({**FAST, "spec": "emo8_buckets", "data": str(data["emo8"])}, tmp_path / "a", progress=False)
    res = train_run({**FAST, "spec": str(two), "data": str(data["emo8"])}, tmp_path / "b", progress=False)
    assert res["kind"] == "none" and res["source_weights"] is None and res["program"] == str(tmp_path / "two.pl")
    assert {"t(source(scene))", "t(source(face1))"} <= set(res["t_values"])
    assert res["pretrain"]["key"] != first["pretrain"]["key"] and not res["pretrain"]["cached"]


def test_the_query_names_the_answer_predicate(data, tmp_path):
    """A spec's query ``feeling(X, E)``: the classes are read from ``feeling(X, <label>)`` in
    training, pretraining, EM, and in the reloaded run's predictions."""
    feel = _emo8_variant(
        tmp_path,
        "feel",
        (SPEC_DIR / "emo8_buckets.pl").read_text().replace("emotion(", "feeling("),
        ('query = "emotion(X, E)"', 'query = "feeling(X, E)"'),
    )
    for regime in ("logic-only", "problog-em"):
        res = train_run(
            {**FAST, "regime": regime, "spec": str(feel), "data": str(data["emo8"])}, tmp_path / regime, progress=False
        )
        assert res["kind"] == "global" and res["metrics"]["test"]["n"] > 0
    test_ids = json.loads((data["emo8"] / "split.json").read_text())["test"]
    pred = emolog.load_run(tmp_path / "problog-em").predict(data["emo8"] / "cache", ids=test_ids)
    assert pred.probs.shape == (len(test_ids), 8)


def test_a_program_without_queries_takes_them_from_the_spec(data, tmp_path):
    """A DeepProbLog-style file declares no query/1 (its queries come from the data): the spec's
    query, once per label, is appended; the run equals the one of the same program with them."""
    text = (SPEC_DIR / "emo8_buckets.pl").read_text()
    noq = _emo8_variant(tmp_path, "noq", "\n".join(ln for ln in text.splitlines() if not ln.startswith("query(")))
    cfg = {**FAST, "regime": "logic-only", "data": str(data["emo8"])}
    res = train_run({**cfg, "spec": str(noq)}, tmp_path / "noq", progress=False)
    ref = train_run({**cfg, "spec": "emo8_buckets"}, tmp_path / "ref", progress=False)
    assert res["t_values"] == pytest.approx(ref["t_values"], abs=1e-6)
    assert res["metrics"]["test"]["accuracy"] == ref["metrics"]["test"]["accuracy"]
    assert "query(emotion(X,anticipation))." in (tmp_path / "noq" / "program.pl").read_text()


@pytest.mark.parametrize("spec", ["seed", "face_list"])
def test_a_program_names_its_networks_as_it_likes(data, tmp_path, spec):
    """nn(scenery, ...), nn(expr, ...), nn(present, ...) bound to scene_head / cache.face_probs
    / cache.face_mask train exactly as the shipped names do (a program in the seed's shape and
    a DeepProbLog one) and keep their names; a face domain in another order is mapped by name."""
    s = load_spec(spec)
    text = (
        (SPEC_DIR / f"{spec}.pl").read_text()
        if spec == "face_list"
        else (SPEC_DIR.parent.parent / "logic" / "programs" / "seed.pl").read_text()
    )
    names = {"scene_net": "scenery", "face_net": "expr", "available": "present"}
    for a, b in names.items():
        text = text.replace(f"nn({a},", f"nn({b},")
    (tmp_path / "mine.pl").write_text(text)
    toml = (
        (SPEC_DIR / f"{spec}.toml")
        .read_text()
        .replace(f'program = "{spec}.pl"', 'program = "mine.pl"')
        .replace('program = "seed"', 'program = "mine.pl"')
    )
    for a, b in names.items():
        toml = toml.replace(f"[nets.{a}]", f"[nets.{b}]")
    (tmp_path / "mine.toml").write_text(toml)
    cfg = {**FAST, "regime": "logic-only", "data": str(data["basic7"])}
    res = train_run({**cfg, "spec": str(tmp_path / "mine.toml")}, tmp_path / "mine", progress=False)
    ref = train_run({**cfg, "spec": spec}, tmp_path / "ref", progress=False)
    assert (
        res["t_values"] == pytest.approx(ref["t_values"], abs=1e-6) and res["metrics"]["test"] == ref["metrics"]["test"]
    )
    # the program's own names everywhere: the spec record, the layer table, the history
    assert set(res["spec"]["nets"]) == {names.get(n, n) for n in s.nets}
    layers = {la["net"] for la in json.loads((tmp_path / "mine" / "changes.json").read_text())["layers"]}
    assert "scenery" in layers and "scene_net" not in layers
    assert "grad_norm_scenery" in pd.read_csv(tmp_path / "mine" / "history.csv").columns
    # the face network declared over the recogniser's classes in another order: mapped by name
    (tmp_path / "mine.pl").write_text(
        text.replace(
            "[angry, disgust, fear, happy, sad, surprise, neutral]) :: face",
            "[disgust, angry, fear, happy, sad, surprise, neutral]) :: face",
        )
    )
    moved = train_run({**cfg, "spec": str(tmp_path / "mine.toml")}, tmp_path / "moved", progress=False)
    assert moved["t_values"] == pytest.approx(ref["t_values"], abs=1e-6)
    assert moved["metrics"]["test"]["accuracy"] == ref["metrics"]["test"]["accuracy"]
    assert moved["spec"]["class_maps"]["expr"]["disgust"] == ["disgust"]


def test_a_label_file_with_capitalised_labels(data, tmp_path):
    """Labels such as Joy are atoms ('Joy'), never variables: the spec's queries, the program's
    answers and the index's labels meet by name."""
    d = tmp_path / "D"
    shutil.copytree(data["emo8"], d)
    idx = pd.read_csv(d / "index.csv", dtype=str, keep_default_na=False)
    idx["label"] = idx["label"].str.capitalize()
    idx.to_csv(d / "index.csv", index=False)

    def caps(line: str) -> str:  # the Emo8 side only: the scene net's domain and the bucket table
        if not (line.startswith("nn(scene_net") or line.startswith("t(_)::bucket_emotion")):
            return line
        for e in EMO8:
            line = re.sub(rf"\b{e}\b", f"'{e.capitalize()}'", line)
        return line

    lines = (SPEC_DIR / "emo8_buckets.pl").read_text().splitlines()
    (tmp_path / "labels.txt").write_text("\n".join(e.capitalize() for e in EMO8) + "\n")
    caps_spec = _emo8_variant(
        tmp_path,
        "caps",
        "\n".join(caps(ln) for ln in lines if not ln.startswith("query(")),
        ('labels = "emo8"', 'labels = "labels.txt"'),
    )
    res = train_run({**FAST, "spec": str(caps_spec), "data": str(d)}, tmp_path / "run", progress=False)
    assert res["classes"] == [e.capitalize() for e in EMO8] and res["metrics"]["test"]["n"] > 0
    assert "t(bucket_emotion(pos_high,'Joy'))" in res["t_values"]
