"""Context trust: gated and rules programs, evidence features, gate training and the experiment."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from emolog.analysis.context_experiment import ContextPlan, fold_data, run_experiment
from emolog.analysis.trust import trust_agreement
from emolog.cache.store import load_cache
from emolog.logic import compile_program
from emolog.perception.scene2emotion import Scene2EmotionNet
from emolog.config.run import SOURCES, ConfigError
from emolog.model.gate import (
    EVIDENCE_FEATURES,
    N_STATIC,
    GateNet,
    evidence_features,
    explain_sources,
    gate_settings,
    load_gate,
    program_kind,
    rule_facts,
    source_correlation,
    static_evidence,
)
from emolog.model.kinds import GATE, GLOBAL, NONE, RULES
from emolog.runs.train import train_run


def _one_hot(k: int, n: int = 7) -> torch.Tensor:
    return torch.eye(n)[k]


def test_context_rules_compiles_and_is_the_stick_breaking_choice() -> None:
    lm = compile_program("context_rules")
    assert program_kind(lm) is RULES
    lm.tparams.set_probs(torch.tensor([0.6, 0.3, 0.2, 0.1], dtype=torch.float64))  # lc, lu, sc, su
    names = lm.tparams.names
    assert names[0].startswith("trust_large_confident")
    # image 0: face1 large+confident (happy), face2 small+unsure (sad), no face3; scene says angry
    scene = _one_hot(0)[None]
    inputs = {
        "scene_net": scene,
        "face_net(face1)": _one_hot(3)[None],
        "face_net(face2)": _one_hot(4)[None],
        "face_net(face3)": torch.full((1, 7), 1 / 7),
    }
    facts = {
        "available(face1)": torch.tensor([1.0]),
        "available(face2)": torch.tensor([1.0]),
        "available(face3)": torch.tensor([0.0]),
        "large(face1)": torch.tensor([1.0]),
        "large(face2)": torch.tensor([0.0]),
        "large(face3)": torch.tensor([0.0]),
        "confident(face1)": torch.tensor([1.0]),
        "confident(face2)": torch.tensor([0.0]),
        "confident(face3)": torch.tensor([0.0]),
    }
    out = lm(inputs, facts)[0]
    q = dict(zip(lm.query_names, out.tolist()))
    p_f1, p_f2 = 0.6, 0.4 * 0.1
    p_scene = 1 - p_f1 - p_f2
    assert q["source(face1)"] == pytest.approx(p_f1, abs=1e-6)
    assert q["source(face2)"] == pytest.approx(p_f2, abs=1e-6)
    assert q["source(face3)"] == pytest.approx(0.0, abs=1e-7)
    assert q["source(scene)"] == pytest.approx(p_scene, abs=1e-6)
    assert q["emotion(happy)"] == pytest.approx(p_f1, abs=1e-6)
    assert q["emotion(sad)"] == pytest.approx(p_f2, abs=1e-6)
    assert q["emotion(angry)"] == pytest.approx(p_scene, abs=1e-6)


def test_static_evidence_values_and_absent_slots() -> None:
    mask = torch.tensor([[True, False, False]])
    area = torch.tensor([[0.01, 0.0, 0.0]])
    boxes = torch.tensor([[[450.0, 300.0, 550.0, 400.0], [0, 0, 0, 0], [0, 0, 0, 0]]])  # centred in 1000x700
    conf = torch.tensor([[0.99, 0.0, 0.0]])
    size = torch.tensor([[1000, 700]])
    probs = torch.zeros(1, 3, 7)
    probs[0, 0] = torch.full((7,), 1 / 7)
    ev = static_evidence(mask, area, boxes, conf, size, probs, torch.tensor([5]))
    assert ev.shape == (1, N_STATIC)
    f = dict(zip(EVIDENCE_FEATURES, ev[0].tolist()))
    assert f["face1_present"] == 1 and f["face1_log_area"] == pytest.approx(0.0, abs=1e-6)
    assert f["face1_dx"] == pytest.approx(0.0, abs=1e-6) and f["face1_centrality"] == pytest.approx(1.0)
    assert f["face1_det_conf"] == pytest.approx(0.5, abs=1e-5)  # -log10(0.01) / 4
    assert f["face1_entropy"] == pytest.approx(1.0, abs=1e-6) and f["face1_max_prob"] == pytest.approx(1 / 7)
    assert all(f[f"face{k}_{x}"] == 0 for k in (2, 3) for x in ("present", "log_area", "centrality", "entropy"))
    assert f["n_faces"] == pytest.approx(math.log(6) / math.log(9))
    full = evidence_features(ev, torch.tensor([[1.0, 0, 0, 0, 0, 0, 0]]))
    assert full.shape == (1, len(EVIDENCE_FEATURES))
    assert full[0, -2] == pytest.approx(0.0, abs=1e-6) and full[0, -1] == pytest.approx(1.0)


def test_rule_facts_discretise_size_and_confidence() -> None:
    mask = torch.tensor([[True, True, False]])
    area = torch.tensor([[0.05, 0.01, 0.3]])
    probs = torch.zeros(1, 3, 7)
    probs[0, 0, 3], probs[0, 0, 0] = 0.8, 0.2
    probs[0, 1] = 1 / 7
    probs[0, 2, 1] = 1.0  # absent slot: whatever it holds, no fact is true
    f = rule_facts(mask, area, probs)
    assert [f[f"large(face{k})"].item() for k in (1, 2, 3)] == [1, 0, 0]
    assert [f[f"confident(face{k})"].item() for k in (1, 2, 3)] == [1, 0, 0]


def test_gate_starts_at_init_masks_absent_faces_and_learns() -> None:
    torch.manual_seed(0)
    gate = GateNet(init={"scene": 0.4, "face1": 0.3, "face2": 0.2, "face3": 0.1})
    ev = torch.randn(3, len(EVIDENCE_FEATURES))
    avail = torch.tensor([[True, True, True, True], [True, True, False, False], [True, False, False, False]])
    w = gate(ev, avail)
    assert torch.allclose(w[0], torch.tensor([0.4, 0.3, 0.2, 0.1]), atol=1e-6)
    assert torch.allclose(w[1], torch.tensor([0.4 / 0.7, 0.3 / 0.7, 0, 0]), atol=1e-6)
    assert w[2].tolist() == [1.0, 0.0, 0.0, 0.0]
    loss = -torch.log(w[0, 1])
    loss.backward()
    assert gate.head.bias.grad is not None and gate.head.bias.grad.abs().sum() > 0
    assert torch.isfinite(gate.head.weight.grad).all()


def test_gate_settings_and_regimes_refused_by_name(tmp_path) -> None:
    from emolog.config.run import RunConfig

    with pytest.raises(ConfigError, match=r"unknown config key.*'gate\.depth'"):
        RunConfig.from_dict({"data": "x", "gate": {"depth": 3}})
    with pytest.raises(ConfigError, match=r"'gate\.init'"):
        RunConfig.from_dict({"data": "x", "gate": {"init": "zeros"}})
    assert gate_settings(RunConfig.from_dict({"data": "x", "gate.hidden": 0})) == {
        "hidden": 0,
        "scene_features": False,
        "init": "global",
    }
    with pytest.raises(ConfigError, match="problog-em.*EM"):
        train_run({"regime": "problog-em", "program": "gated", "data": str(tmp_path)}, tmp_path / "run")
    assert program_kind(_no_source_program(tmp_path)) is NONE


def _no_source_program(tmp_path):
    p = tmp_path / "nosource.pl"
    p.write_text(
        "nn(scene_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: "
        "scene_emotion(X, E).\nemotion(X, E) :- scene_emotion(X, E).\n"
        "query(emotion(X, angry)).\n"
    )
    return compile_program(str(p))


def test_source_correlation_ignores_absent_faces() -> None:
    p_true = np.array([[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [0.2, 0.3, 0.5, 0]])
    r = source_correlation(p_true, p_true)
    assert r["r_available"] == pytest.approx(1.0) and r["n_pairs"] == 6
    flipped = source_correlation(p_true[:, [0, 1, 2, 3]][::-1].copy(), p_true)
    assert flipped["r_available"] < 1


# ------------------------------------------------------------------ the small experiment (~20-40 s)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """2000 simulated context images, one seed, scene snr 3: global vs gated vs rules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small tensor ops: extra threads only contend on 2 shared cores
    try:
        out = tmp_path_factory.mktemp("context_exp")
        result = run_experiment(
            out, ContextPlan(n=2000, seeds=(0,), variants=("context",), snr=3.0, n_boot=200), progress=False
        )
    finally:
        torch.set_num_threads(threads)
    return out, result


def test_context_programs_learn_the_true_trust_and_the_rules_win_nll(experiment) -> None:
    """At this size the gate's NLL gain is within seed noise (docs/context-trust.md: at 2000
    images it wins on 1 seed of 3); what must hold is that it learns the truth's per-image
    trust, is not significantly worse than the global disjunction, and that the rules program
    and the true per-image weights (oracle) beat it."""
    out, result = experiment
    s = result["variants"]["context"]["summary"]
    assert s["gated"]["r_available_mean"] >= 0.8 and s["gated"]["r_scene_mean"] >= 0.8
    assert s["rules"]["r_available_mean"] >= 0.8 and s["rules"]["r_scene_mean"] >= 0.8
    assert s["rules"]["nll_mean"] < s["global"]["nll_mean"]
    assert s["oracle"]["nll_mean"] < s["global"]["nll_mean"]
    assert s["gated"]["vs_global"]["nll"]["lo"] < 0  # not significantly worse
    assert s["gated"]["vs_global"]["nll"]["diff"] == pytest.approx(
        s["gated"]["nll_mean"] - s["global"]["nll_mean"], abs=1e-4
    )
    # the context rule itself: photos whose faces are all small lean on the scene
    for arm in ("gated", "rules"):
        pred = pd.read_csv(out / "runs" / "context-s0" / arm / "predictions.csv")
        faces = pred[pred["n_faces"] >= 1]
        small = faces["max_face_area"] < 0.02
        assert faces.loc[small, "w_scene"].mean() > faces.loc[~small, "w_scene"].mean() + 0.05


def test_gated_run_writes_per_image_source_probabilities(experiment) -> None:
    out, _ = experiment
    run = out / "runs" / "context-s0" / "gated"
    pred = pd.read_csv(run / "predictions.csv", dtype={"image_id": str})
    w = pred[[f"w_{s}" for s in SOURCES]].to_numpy()
    assert np.allclose(w.sum(1), 1, atol=1e-4)
    for k in (1, 2, 3):  # an absent face is never the source
        assert (w[pred["n_faces"].to_numpy() < k, k] == 0).all()
    assert w[:, 0].std() > 0.05  # per image, not one global number
    assert "max_face_area" in pred.columns
    res = json.loads((run / "results.json").read_text())
    assert res["gate"]["kind"] == "gate" and res["trust_vs_truth"]["r_available"] >= 0.8
    hist = pd.read_csv(run / "history.csv")
    assert hist["epoch"].iloc[0] == 0 and len(hist) >= 2

    # explain's view of one test image reproduces the run's w_ for it
    data = out / "data" / "context-s0"
    row = pred.iloc[int(np.argmax(pred["n_faces"].to_numpy() >= 2))]
    c = load_cache(data / "cache", ids=[row["image_id"]])
    state = torch.load(run / "scene_net.pt", weights_only=True)
    net = Scene2EmotionNet(in_dim=state["fc1.weight"].shape[1], hidden=state["fc1.weight"].shape[0])
    net.load_state_dict(state)
    with torch.no_grad():
        scene_probs = torch.softmax(net.eval()(c.scene), 1)[0]
    perceived = {
        k: getattr(c, k).numpy()
        for k in ("face_mask", "face_area", "face_boxes", "face_conf", "image_size", "face_probs", "n_faces", "scene")
    }
    got = explain_sources(run, perceived, scene_probs.numpy())
    assert got == pytest.approx({s: row[f"w_{s}"] for s in SOURCES}, abs=1e-4)
    assert load_gate(out / "runs" / "context-s0" / "global") is None


def test_trust_plumbing_on_real_dec_factors(experiment) -> None:
    """PLUMBING ONLY, not a finding: simulated test images get the ids of real annotated
    FindingEmo rows, so that the real dec_factors join a real run's predictions.csv."""
    from emolog.data.findingemo import annotation_records
    from emolog.data.index import build_index
    from emolog.labels import get_mapping

    out, _ = experiment
    pred = pd.read_csv(out / "runs" / "context-s0" / "gated" / "predictions.csv", dtype={"image_id": str})
    index = build_index(annotation_records(), get_mapping(), check_images=False, progress=False).index.df
    pred = pred.assign(image_id=index["image_id"].iloc[: len(pred)].to_numpy())
    table, counts = trust_agreement(pred, index)
    assert counts["n_joined"] == len(pred) and not counts["not_in_index"]
    overall = table[table["group"] == "all"].iloc[0]
    assert overall["n"] == len(pred)
    assert overall["n_face"] + overall["n_context"] + overall["n_both"] + overall["n_neither"] == len(pred)
    assert 0 <= overall["agreement"] <= 1 and 0 <= overall["auc"] <= 1
    assert set(table["group"]) == {"all", "label", "n_faces"}


def test_report_shows_trust_against_dec_factors(experiment, tmp_path) -> None:
    """The report's trust section: the dec_factors table when the run's index has them
    (PLUMBING: the simulated images get real FindingEmo dec_factors strings, so the numbers mean
    nothing), and a note saying why not when it has none (simulated data)."""
    import shutil
    from emolog.data.findingemo import annotation_records
    from emolog.data.index import build_index
    from emolog.labels import get_mapping
    from emolog.report.build import build_report

    out, _ = experiment
    run = tmp_path / "gated"
    shutil.copytree(out / "runs" / "context-s0" / "gated", run)
    md = build_report(run).with_name("report.md").read_text()
    assert "index.csv has no dec_factors (simulated data has none)" in md

    real = build_index(annotation_records(), get_mapping(), check_images=False, progress=False).index.df
    sim = pd.read_csv(out / "data" / "context-s0" / "index.csv", dtype={"image_id": str})
    sim["dec_factors"] = real["dec_factors"].iloc[: len(sim)].to_numpy()
    sim.to_csv(tmp_path / "index.csv", index=False)
    res = json.loads((run / "results.json").read_text())
    res["data"]["index"] = str(tmp_path / "index.csv")
    (run / "results.json").write_text(json.dumps(res))
    md = build_report(run).with_name("report.md").read_text()
    n_test = len(pd.read_csv(run / "predictions.csv"))
    assert f"{n_test} of {n_test} test images have dec_factors" in md
    assert "face trust (1 - w_scene) against the annotators' deciding factors" in md
    assert "trust_face_if_face" in md and "kappa" in md


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from emolog.simulate import SimConfig, simulate, write_simulation

    d = tmp_path_factory.mktemp("ctx_tiny") / "D"
    write_simulation(simulate(SimConfig(n=400, seed=3, variant="context", scene_dim=32)), d)
    return d


@pytest.mark.parametrize("regime, gate_trains, scene_trains", [("joint", True, True), ("nets-only", False, True)])
def test_gate_trains_in_gradient_regimes(tiny_data, tmp_path, regime, gate_trains, scene_trains) -> None:
    res = train_run(
        {
            "regime": regime,
            "program": "gated",
            "data": str(tiny_data),
            "train.epochs": 2,
            "train.patience": None,
            "logic.param": "softmax",
            "logic.optimizer": "adam",
            "logic.lr": 0.01,
        },
        tmp_path / "run",
        progress=False,
    )
    layers = json.loads((tmp_path / "run" / "changes.json").read_text())["layers"]
    moved = {net: any(r["abs_change"] > 0 for r in layers if r["net"] == net) for net in ("gate_net", "scene_net")}
    assert moved == {"gate_net": gate_trains, "scene_net": scene_trains}
    assert res["epochs_run"] == 2 and res["gate"]["kind"] == "gate"
    # a scene net trained from scratch has no out-of-fold probabilities to fit a global start on
    assert res["gate"]["start"] == "uniform" and res["gate"]["start_weights"] is None
    assert (tmp_path / "run" / "gate_net.pt").is_file()


def test_gate_starts_as_the_fitted_global_program(tiny_data, tmp_path) -> None:
    """Default start (gate.init: global): the gate's epoch 0 *is* the global disjunction
    with EM-fitted weights, so early stopping can only keep a gate that beats it on validation."""
    from emolog.learn import em
    from emolog.config.run import RunConfig
    from emolog.model.data import load_data
    from emolog.runs.train import train_run

    cfg = {
        "regime": "logic-only",
        "program": "gated",
        "data": str(tiny_data),
        "train.epochs": 1,
        "train.patience": None,
        "logic.param": "softmax",
        "logic.optimizer": "adam",
        "logic.lr": 0.01,
    }
    res = train_run(cfg, tmp_path / "global-start", progress=False)
    assert res["gate"]["start"].startswith("global")
    w = res["gate"]["start_weights"]
    assert sum(w.values()) == pytest.approx(1) and w["scene"] != pytest.approx(0.25, abs=0.01)
    # the frozen scene net (unchanged by logic-only) with those weights in seed.pl gives epoch 0's NLL
    splits, _, _ = load_data(RunConfig.from_dict(cfg), torch.device("cpu"), prelast=False)
    va = splits["val"]
    state = torch.load(tmp_path / "global-start" / "scene_net.pt", weights_only=True)
    net = Scene2EmotionNet(in_dim=state["fc1.weight"].shape[1], hidden=state["fc1.weight"].shape[0])
    net.load_state_dict(state)
    lm = compile_program("seed", param="softmax")
    em.set_source_weights(lm, w)
    with torch.no_grad():
        p = lm.emotion_probs(torch.softmax(net.eval()(va.scene), 1), va.face_probs, va.face_mask)
    expected = float(-torch.log(p[torch.arange(len(va)), va.labels]).mean())
    hist = pd.read_csv(tmp_path / "global-start" / "history.csv")
    assert hist["val_loss"].iloc[0] == pytest.approx(expected, abs=1e-5)
    # the uniform start is still there, and starts elsewhere
    uni = train_run({**cfg, "gate.init": "uniform"}, tmp_path / "uniform", progress=False)
    assert uni["gate"]["start"] == "uniform"
    assert pd.read_csv(tmp_path / "uniform" / "history.csv")["val_loss"].iloc[0] != pytest.approx(expected, abs=1e-4)


def test_fold_data_partitions_every_image_into_one_test_fold(tiny_data) -> None:
    labels = pd.read_csv(tiny_data / "index.csv", dtype={"image_id": str}).set_index("image_id")["label"]
    tests = []
    for k in range(5):
        d = fold_data(tiny_data, 5, k, seed=0)
        split = json.loads((d / "split.json").read_text())
        parts = [set(split[n]) for n in ("train", "val", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert sum(map(len, parts)) == len(labels)
        assert [len(p) / len(labels) for p in parts] == pytest.approx([0.7, 0.1, 0.2], abs=0.02)
        assert (d / "cache").resolve() == (tiny_data / "cache").resolve()
        tests.append(split["test"])
    assert sorted(i for t in tests for i in t) == sorted(labels.index)  # each image tested once
    # stratified: per class, the five test folds differ by at most one image
    counts = pd.DataFrame([labels.loc[t].value_counts() for t in tests]).fillna(0)
    assert ((counts.max() - counts.min()) <= 1).all()


def test_cross_fitted_experiment_scores_every_image(tmp_path) -> None:
    result = run_experiment(
        tmp_path, ContextPlan(n=600, seeds=(0,), variants=("context",), snr=3.0, n_boot=50, folds=2), progress=False
    )
    v = result["variants"]["context"]
    assert result["config"]["folds"] == 2 and v["n_test_pooled"] == 600
    ids = pd.concat(
        [
            pd.read_csv(
                tmp_path / "runs" / f"context-s0-fold{k}of2" / "gated" / "predictions.csv", dtype={"image_id": str}
            )
            for k in range(2)
        ]
    )["image_id"]
    assert ids.is_unique and len(ids) == 600
    assert "2-fold cross-fitting" in (tmp_path / "context_experiment.md").read_text()


def test_gated_run_resumes_like_an_uninterrupted_one(tiny_data, tmp_path) -> None:
    """A gated program trains in the same fit loop as seed.pl: checkpoints and resume included."""
    assert [program_kind(compile_program(p)) for p in ("seed", "gated", "context_rules")] == [GLOBAL, GATE, RULES]
    cfg = {
        "regime": "joint",
        "program": "gated",
        "data": str(tiny_data),
        "train.epochs": 2,
        "train.patience": None,
        "logic.param": "softmax",
        "logic.optimizer": "adam",
        "logic.lr": 0.01,
    }
    full = train_run(cfg, tmp_path / "full", progress=False)
    train_run({**cfg, "train.epochs": 1}, tmp_path / "part", progress=False)
    resumed = train_run(cfg, tmp_path / "part", resume=True, progress=False)
    assert resumed["metrics"]["test"]["nll"] == pytest.approx(full["metrics"]["test"]["nll"], abs=1e-6)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "full" / "history.csv"), pd.read_csv(tmp_path / "part" / "history.csv"), atol=1e-6
    )


def test_gate_beats_global_nll_with_an_overconfident_recogniser(tmp_path) -> None:
    """With the simulator's over-confident recogniser (same top-1, logits x 3) the gate learns
    to distrust small faces beyond what one global weight can: its test NLL is below the
    global disjunction's. Checked at this size (5000 context images, snr 3, 1000 test images)
    on seeds 0-7 with the gate started at the fitted global weights: gated - global = -0.0105,
    -0.0135, -0.0101, +0.0007, -0.0068, -0.0069, -0.0066, -0.0091 nats (7 of 8 negative; seed 0,
    asserted here, has margin; docs/context-trust.md). At 2000 images the sign is not robust, so
    no smaller version is asserted; the CI is not asserted either (it needs the seeds pooled)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_experiment(
            tmp_path,
            ContextPlan(
                n=5000, seeds=(0,), variants=("context",), snr=3.0, n_boot=200, face_calibration="overconfident"
            ),
            progress=False,
        )
    finally:
        torch.set_num_threads(threads)
    assert result["config"]["face_calibration"] == "overconfident"
    truth = json.loads((tmp_path / "data" / "context-s0" / "truth.json").read_text())
    assert truth["recogniser"]["calibration"] == "overconfident"
    s = result["variants"]["context"]["summary"]
    assert s["gated"]["nll_mean"] < s["global"]["nll_mean"] - 0.002
    assert s["gated"]["r_available_mean"] >= 0.8 and s["gated"]["r_scene_mean"] >= 0.8
    # an experiment folder drawn with the other calibration is refused, not silently reused
    with pytest.raises(ValueError, match="face_calibration"):
        run_experiment(
            tmp_path, ContextPlan(n=5000, seeds=(0,), variants=("context",), snr=3.0, n_boot=10), progress=False
        )


def test_gate_start_sweep_compares_settings_on_validation(tmp_path) -> None:
    from emolog.analysis.gate_start_sweep import SETTINGS, summary, sweep

    df = sweep(tmp_path, n=300, seeds=(0,), snr=3.0, face_calibration="calibrated")
    assert len(df) == 2 * len(SETTINGS) and set(df["variant"]) == {"context", "standard"}
    assert np.isfinite(df[["d_val_nll", "d_test_nll"]].to_numpy()).all()
    runs = tmp_path / "sweep-runs" / "context-s0"
    starts = {
        json.loads((runs / d / "results.json").read_text())["gate"]["start"]
        for d in ("uniform_start", "global_start_(default)")
    }
    assert starts == {"uniform", "global (EM, out-of-fold scene probabilities)"}
    table = summary(df)
    assert table.count("\n") == 2 + len(SETTINGS) and "global start (default)" in table
