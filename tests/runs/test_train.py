"""The trainer on small simulated data sets: run directory contract, resume, errors, imbalance."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from emolog.cache.store import CacheError
from emolog.cli import main
from emolog.errors import EXIT_VERIFY
from emolog.labels import BASIC7
from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.config.run import ConfigError
from emolog.runs.train import Loss, TrainingError, epoch_order, train_run

SOURCES = ("scene", "face1", "face2", "face3")


def make_data(path, n=400, mutate=None, **kw):
    """A simulated data directory (small scene_dim keeps the nets tiny); ``mutate(sim)`` may
    alter the tensors before they are written."""
    sim = simulate(SimConfig(n=n, seed=1, scene_dim=kw.pop("scene_dim", 32), **kw))
    if mutate is not None:
        mutate(sim)
    write_simulation(sim, path)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("sim") / "D")


# ----------------------------------------------------------------------------- a full run via the CLI


def test_logic_only_run_directory_and_what_changed(data, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(
        [
            "train",
            "--data",
            str(data),
            "--regime",
            "logic-only",
            "--out",
            str(run),
            "--quiet",
            "--set",
            "train.epochs=3",
            "--set",
            "logic.param=softmax",
            "--set",
            "logic.optimizer=adam",
            "--set",
            "logic.lr=0.1",
            "--set",
            "train.patience=null",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "true weights" in out and "source weights" in out

    cfg = json.loads((run / "config.json").read_text())
    assert cfg["regime"] == "logic-only" and cfg["provenance"]["data"]["kind"] == "simulated"
    assert cfg["provenance"]["packages"]["torch"] == torch.__version__.split("+")[0]
    res = json.loads((run / "results.json").read_text())
    for key in (
        "regime",
        "seed",
        "program",
        "semantics",
        "metrics",
        "metrics_before",
        "source_weights",
        "true_source_weights",
        "train_time_s",
        "epochs_run",
        "data",
    ):
        assert key in res
    assert set(res["metrics"]) == {"val", "test"} and res["epochs_run"] == 3
    assert res["true_source_weights"] == pytest.approx(dict(zip(SOURCES, (0.53, 0.18, 0.17, 0.12))))
    assert sum(res["source_weights"].values()) == pytest.approx(1.0, abs=1e-6)

    hist = pd.read_csv(run / "history.csv")
    assert list(hist["epoch"]) == [0, 1, 2, 3]
    assert hist.loc[0, ["w_scene", "w_face1", "w_face2", "w_face3"]].tolist() == pytest.approx([0.25] * 4)
    assert hist["w_scene"].iloc[-1] == pytest.approx(res["source_weights"]["scene"], abs=1e-6)
    assert {"train_loss", "val_loss", "val_accuracy", "val_macro_f1", "grad_norm_logic", "grad_norm_scene_net"} <= set(
        hist.columns
    )
    assert (hist["grad_norm_scene_net"] == 0).all() and (hist["grad_norm_logic"].iloc[1:] > 0).all()

    pred = pd.read_csv(run / "predictions.csv")
    assert len(pred) == res["metrics"]["test"]["n"]
    probs = pred[[f"p_{c}" for c in BASIC7]].to_numpy()
    post = pred[[f"post_{s}" for s in SOURCES]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
    np.testing.assert_allclose(post.sum(1), 1, atol=1e-4)
    assert (post[pred["n_faces"].to_numpy() == 0][:, 1:] < 1e-6).all()  # no face: only the scene
    assert (pred["pred"] == [BASIC7[i] for i in probs.argmax(1)]).all()

    # "which parameters really train": with frozen nets only t() moves
    ch = json.loads((run / "changes.json").read_text())
    by_net = {}
    for layer in ch["layers"]:
        by_net.setdefault(layer["net"], []).append(layer)
    assert all(layer["abs_change"] == 0 and layer["grad_norm"] == 0 for layer in by_net["scene_net"])
    assert all(layer["abs_change"] > 0 and layer["grad_norm"] > 0 for layer in by_net["logic"])
    assert ch["flips"]["n"] == len(pred)
    assert ch["flips"]["n_flipped"] == int((pred["pred"] != pred["pred_before"]).sum())
    assert (run / "scene_net.pt").exists() and (run / "checkpoint.pt").exists()
    # the pretrained scene net was cached for the next run
    assert list((data / "pretrained").glob("scene_net-*.pt"))


def test_joint_resume_equals_uninterrupted(data, tmp_path):
    cfg = {"regime": "joint", "data": str(data), "train.epochs": 3, "train.patience": None, "train.batch_size": 32}
    full = train_run(cfg, tmp_path / "full", progress=False)
    train_run({**cfg, "train.epochs": 1}, tmp_path / "part", progress=False)
    with pytest.raises(TrainingError, match="resume"):
        train_run({**cfg, "train.epochs": 1}, tmp_path / "part", progress=False)  # no silent overwrite
    with pytest.raises(TrainingError, match=r"nets\.lr"):
        train_run({**cfg, "nets.lr": 0.1}, tmp_path / "part", resume=True, progress=False)
    resumed = train_run(cfg, tmp_path / "part", resume=True, progress=False)
    assert resumed["source_weights"] == pytest.approx(full["source_weights"], abs=1e-6)
    h_full = pd.read_csv(tmp_path / "full" / "history.csv")
    h_res = pd.read_csv(tmp_path / "part" / "history.csv")
    pd.testing.assert_frame_equal(h_full, h_res, atol=1e-6)
    # joint training moves the scene net as well as t()
    layers = json.loads((tmp_path / "full" / "changes.json").read_text())["layers"]
    assert all(layer["abs_change"] > 0 for layer in layers)


# ----------------------------------------------------------------------------- errors


def test_unverified_cache_is_refused_with_ids(tmp_path, capsys):
    bad = {}

    def break_one_row(sim):
        row = int(np.nonzero(sim.tensors["face_mask"][:, 0])[0][0])
        sim.tensors["face_probs"][row, 0] *= 0.5  # no longer a distribution
        bad["id"] = sim.ids[row]

    d = make_data(tmp_path / "D", n=120, mutate=break_one_row)
    rc = main(["train", "--data", str(d), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == EXIT_VERIFY  # the cache fails verification
    assert bad["id"] in err and "does not sum to 1" in err
    assert not (tmp_path / "run" / "results.json").exists()
    with pytest.raises(CacheError, match=bad["id"]):
        train_run({"data": str(d)}, tmp_path / "run2", progress=False)


def test_non_finite_values_stop_the_run_naming_the_images(tmp_path):
    bad = {}

    def extreme_row(sim):
        # finite (so the cache verifies) but overflows float32 inside the scene net
        row = 7
        sim.tensors["scene"][row] = np.sign(sim.tensors["scene"][row]) * 3e38
        bad["id"] = sim.ids[row]

    d = make_data(tmp_path / "D", n=120, mutate=extreme_row)
    with pytest.raises(TrainingError, match=bad["id"]):
        train_run({"regime": "joint", "data": str(d), "train.epochs": 1}, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "results.json").exists()


def test_bad_data_directory_and_n_train(tmp_path, data):
    with pytest.raises(ConfigError, match="index.csv"):
        train_run({"data": str(tmp_path)}, tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="'train.n_train'"):
        train_run({"data": str(data), "train.n_train": 10**6}, tmp_path / "run", progress=False)


# ----------------------------------------------------------------------------- imbalance


def test_imbalance_losses_and_balanced_sampling():
    labels = torch.tensor([0] * 90 + [3] * 10)
    probs = torch.full((100, 7), 1 / 7)
    probs[:, 3] = 0.4
    probs = probs / probs.sum(1, keepdim=True)
    plain = Loss("none", labels, 1.0)(probs, labels)
    weighted = Loss("class-weighted", labels, 1.0)(probs, labels)
    p0, p3 = probs[0, 0], probs[0, 3]
    # weights n / (C n_c): 100/(2*90) and 100/(2*10) -> the two classes count equally
    assert float(weighted) == pytest.approx(float(-(p0.log() + p3.log()) / 2), rel=1e-5)
    assert float(plain) == pytest.approx(float(-(0.9 * p0.log() + 0.1 * p3.log())), rel=1e-5)
    # logit adjustment: the loss sees p * prior^tau renormalised; tau = 0 is the plain loss
    assert float(Loss("logit-adjust", labels, 0.0)(probs, labels)) == pytest.approx(float(plain), rel=1e-5)
    adj = torch.log_softmax(probs.log() + Loss("logit-adjust", labels, 1.0).log_prior, 1)
    assert float(Loss("logit-adjust", labels, 1.0)(probs, labels)) == pytest.approx(
        float(-adj.gather(1, labels[:, None]).mean()), rel=1e-5
    )
    order = epoch_order(labels, "balanced-sampling", seed=0, epoch=1)
    frac3 = float((labels[order] == 3).float().mean())
    assert len(order) == 100 and 0.35 < frac3 < 0.65
    assert sorted(epoch_order(labels, "none", 0, 1).tolist()) == list(range(100))


@pytest.mark.parametrize("imbalance", ["class-weighted", "balanced-sampling", "logit-adjust"])
def test_imbalance_options_run(data, tmp_path, imbalance):
    res = train_run(
        {"regime": "nets-only", "data": str(data), "train.epochs": 1, "train.imbalance": imbalance},
        tmp_path / imbalance,
        progress=False,
    )
    # nets-only keeps t() at the uniform weights
    assert res["source_weights"] == pytest.approx({s: 0.25 for s in SOURCES}, abs=1e-6)
    assert np.isfinite(res["metrics"]["test"]["nll"])


def test_original_regime_uses_grey_faces(data, tmp_path):
    res = train_run({"regime": "original", "data": str(data), "train.epochs": 1}, tmp_path / "orig", progress=False)
    assert res["semantics"] == "original"
    # simulated caches name no recogniser: the default recogniser's reading of a grey face
    assert res["grey_face_logits"]["source"] == "recogniser fer2013-minixception"
    assert len(res["grey_face_logits"]["values"]) == 7
    given = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0]  # a grey face read as clearly "neutral"
    res2 = train_run(
        {"regime": "original", "data": str(data), "train.epochs": 1, "perception.grey_face_logits": given},
        tmp_path / "orig2",
        progress=False,
    )
    assert res2["grey_face_logits"] == {"values": given, "source": "config"}
    # the padding changes what the program predicts
    assert res2["metrics"]["test"]["nll"] != pytest.approx(res["metrics"]["test"]["nll"], abs=1e-6)
