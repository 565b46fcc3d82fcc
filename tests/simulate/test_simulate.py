"""The simulator: format, realism of its numbers, its truth, determinism and its variants."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from emolog.cache.store import load_cache
from emolog.cli import main
from emolog.errors import EXIT_INPUT
from emolog.data.findingemo import label_distribution
from emolog.data.index import ImageIndex
from emolog.data.paths import image_id
from emolog.data.split import load_split
from emolog.labels import BASIC7
from emolog.simulate import (
    SMALL_FACE_AREA,
    SOURCES,
    TRUE_WEIGHTS,
    SimConfig,
    SimulationError,
    write_simulation,
    simulate,
    source_weights,
    true_scene_posterior,
)

N_BIG = 20_000  # in memory only: ~1 s


def _cli(*argv: str) -> int:
    """`emolog simulate ARGV` through the command line's error handler (its exit codes)."""
    return main(["simulate", *argv])


@pytest.fixture(scope="module")
def big():
    return simulate(SimConfig(n=N_BIG, seed=3))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "D"
    assert _cli("--out", str(d), "--n", "600", "--seed", "1") == 0
    return d


def test_data_directory_is_valid(data_dir):
    index = ImageIndex.load(data_dir / "index.csv")
    split = load_split(data_dir / "split.json", known_ids=index.ids)
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(index.ids)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == pytest.approx((420, 60, 120), abs=4)
    cache = load_cache(data_dir / "cache", ids=split["test"])  # raises if any id is missing
    assert cache.ids == split["test"]
    full = load_cache(data_dir / "cache")
    assert sorted(full.ids) == sorted(index.ids) and len(full) == 600
    assert full.scene.shape == (600, 512) and full.face_probs.shape == (600, 3, 7)
    assert set(index.df["label"]) <= set(BASIC7)
    assert index.df["rel_path"].str.match(r"^sim/\d{6}\.jpg$").all()
    # ids are the data layer's sha1 of the relative path, as for real images
    assert all(image_id(p) == i for p, i in zip(index.df["rel_path"], index.df["image_id"]))

    m = full.face_mask
    k_filled = torch.clamp(full.n_faces, max=3)
    assert torch.equal(m.sum(1), k_filled)
    assert torch.equal(m, torch.arange(3)[None] < k_filled[:, None])  # leading Trues
    assert torch.allclose(full.face_probs.sum(-1)[m], torch.ones(int(m.sum())), atol=1e-5)
    assert (full.face_probs[~m] == 0).all() and (full.face_logits[~m] == 0).all()
    assert torch.allclose(torch.softmax(full.face_logits, -1)[m], full.face_probs[m], atol=1e-5)
    area = full.face_area
    assert (area[:, :-1] >= area[:, 1:]).all()  # largest first
    w, h = full.image_size[:, 0:1].float(), full.image_size[:, 1:2].float()
    b = full.face_boxes
    box_area = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) / (w * h)
    assert torch.allclose(box_area, area, atol=1e-5)
    assert (b[..., 0] >= 0).all() and (b[..., 2] <= w + 1e-3).all() and (b[..., 3] <= h + 1e-3).all()
    assert ((full.face_conf[m] >= 0.9) & (full.face_conf[m] <= 1)).all()
    assert full.fingerprint["simulator"] and full.fingerprint["seed"] == 1

    truth = json.loads((data_dir / "truth.json").read_text())
    assert truth["source_weights"] == dict(zip(SOURCES, TRUE_WEIGHTS))
    tdf = pd.read_csv(data_dir / "truth.csv", keep_default_na=False)
    assert sorted(tdf["image_id"]) == sorted(index.ids)
    assert np.allclose(tdf[[f"p_{s}" for s in SOURCES]].sum(axis=1), 1.0, atol=1e-5)
    assert (tdf.set_index("image_id").loc[index.ids, "label"].values == index.df["label"].values).all()


def test_existing_directory_is_refused_without_force(data_dir, capsys):
    assert _cli("--out", str(data_dir), "--n", "50") == EXIT_INPUT
    assert "already holds" in capsys.readouterr().err


def test_bad_config_is_refused():
    with pytest.raises(SimulationError, match="--n"):
        SimConfig(n=0)
    with pytest.raises(SimulationError, match="--variant"):
        SimConfig(variant="bogus")
    with pytest.raises(SimulationError, match="--snr"):
        SimConfig(snr=0)


def test_label_distribution_is_findingemos(big):
    target = np.array([label_distribution()[c] for c in BASIC7])
    got = np.bincount(big.labels, minlength=7) / len(big.labels)
    assert 0.5 * np.abs(got - target).sum() < 0.015  # total variation distance


def test_face_recogniser_is_fer_level(big):
    tdf, m = big.truth_df, big.tensors["face_mask"]
    true = np.stack(
        [tdf[f"e_face{k}"].map({c: i for i, c in enumerate(BASIC7)}).fillna(-1).to_numpy(int) for k in (1, 2, 3)],
        axis=1,
    )
    pred = big.tensors["face_probs"].argmax(-1)
    acc = (pred[m] == true[m]).mean()
    assert 0.62 < acc < 0.68
    assert big.truth["recogniser"]["top1_accuracy"] == pytest.approx(acc)
    cm = np.asarray(big.truth["recogniser"]["confusion"], dtype=float)
    cm /= cm.sum(1, keepdims=True)
    ix = {c: i for i, c in enumerate(BASIC7)}
    # the classic FER confusions: the rarer class of each pair is read as its partner
    assert cm[ix["surprise"], ix["fear"]] > 3 * cm[ix["surprise"], ix["angry"]]
    assert cm[ix["disgust"], ix["angry"]] > 3 * cm[ix["disgust"], ix["fear"]]
    assert cm[ix["sad"], ix["neutral"]] > 3 * cm[ix["sad"], ix["angry"]]
    assert cm[ix["happy"], ix["happy"]] > 0.75  # the easy class


def test_chosen_source_frequencies_match_truth(big):
    tdf = big.truth_df
    n_slots = big.tensors["face_mask"].sum(1)
    for k in range(4):
        sel = n_slots == k
        w = np.asarray(TRUE_WEIGHTS[: k + 1]) / sum(TRUE_WEIGHTS[: k + 1])
        freq = np.array([(tdf["source"][sel] == s).mean() for s in SOURCES[: k + 1]])
        se = np.sqrt(w * (1 - w) / sel.sum())
        assert np.all(np.abs(freq - w) < 4 * se + 1e-9), (k, freq, w)
        assert np.allclose(tdf.loc[sel, "p_scene"], w[0])
    # the chosen source always exists in the image
    src_index = tdf["source"].map({s: i for i, s in enumerate(SOURCES)}).to_numpy()
    assert (src_index <= n_slots).all()
    # about 15% of images have no face
    assert 0.13 < (n_slots == 0).mean() < 0.17
    # the label is the chosen source's emotion
    col = {"scene": "e_scene", "face1": "e_face1", "face2": "e_face2", "face3": "e_face3"}
    chosen_emotion = [row[col[row["source"]]] for _, row in tdf.head(2000).iterrows()]
    assert chosen_emotion == tdf["label"].head(2000).tolist()


def test_scene_features_carry_the_scene_emotion(big):
    # The Bayes posterior from truth.json recovers the scene emotion at the rate snr=1 implies.
    post = true_scene_posterior(big.tensors["scene"][:5000], big.truth)
    e = big.truth_df["e_scene"].head(5000).map({c: i for i, c in enumerate(BASIC7)}).to_numpy()
    assert 0.74 < (post.argmax(1) == e).mean() < 0.80
    weak = simulate(SimConfig(n=5000, seed=3, snr=0.25))
    post_w = true_scene_posterior(weak.tensors["scene"], weak.truth)
    e_w = weak.truth_df["e_scene"].map({c: i for i, c in enumerate(BASIC7)}).to_numpy()
    assert 0.49 < (post_w.argmax(1) == e_w).mean() < 0.57


def test_deterministic_per_seed(tmp_path):
    a, b = simulate(SimConfig(n=300, seed=5)), simulate(SimConfig(n=300, seed=5))
    c = simulate(SimConfig(n=300, seed=6))
    for k in a.tensors:
        assert np.array_equal(a.tensors[k], b.tensors[k]), k
    assert np.array_equal(a.labels, b.labels) and a.truth_df.equals(b.truth_df)
    assert not np.array_equal(a.tensors["scene"], c.tensors["scene"])
    for d in ("x", "y"):
        assert _cli("--out", str(tmp_path / d), "--n", "300", "--seed", "5") == 0
    for f in ("index.csv", "split.json", "truth.json", "truth.csv"):
        assert (tmp_path / "x" / f).read_bytes() == (tmp_path / "y" / f).read_bytes(), f
    mx, my = (json.loads((tmp_path / d / "cache" / "manifest.json").read_text()) for d in ("x", "y"))
    assert [s["sha256"] for s in mx["shards"]] == [s["sha256"] for s in my["shards"]]


def test_shuffle_labels_breaks_alignment():
    good = simulate(SimConfig(n=5000, seed=2))
    bad = simulate(SimConfig(n=5000, seed=2, shuffle_labels=True))
    assert np.array_equal(np.sort(good.labels), np.sort(bad.labels))  # same label counts
    assert (good.truth_df["label"] == good.truth_df["label_generated"]).all()
    # Largest-face agreement with the label: clearly above chance when aligned, at chance when not.
    m = good.tensors["face_mask"][:, 0]
    pred = good.tensors["face_probs"][:, 0].argmax(-1)
    agree_good = (pred[m] == good.labels[m]).mean()
    agree_bad = (pred[m] == bad.labels[m]).mean()
    chance = (np.bincount(pred[m], minlength=7) / m.sum() * np.bincount(bad.labels, minlength=7) / 5000).sum()
    assert agree_good > chance + 0.05
    assert abs(agree_bad - chance) < 0.03


def test_misspecified_variant():
    sim = simulate(SimConfig(n=10_000, seed=4, variant="misspecified"))
    none = sim.truth_df["source"] == "none"
    assert 0.18 < none.mean() < 0.22
    assert sim.truth["misspecified_fraction"] == 0.2
    target = np.array([label_distribution()[c] for c in BASIC7])
    assert 0.5 * np.abs(np.bincount(sim.labels, minlength=7) / 10_000 - target).sum() < 0.02


def test_context_variant():
    sim = simulate(SimConfig(n=N_BIG, seed=4, variant="context"))
    t, rec = sim.truth_df, sim.truth["recogniser"]
    assert 0.72 < rec["top1_accuracy_large"] < 0.78 and 0.34 < rec["top1_accuracy_small"] < 0.42
    mask, area = sim.tensors["face_mask"], sim.tensors["face_area"]
    one = mask.sum(1) == 1
    small1, large1 = one & (area[:, 0] < SMALL_FACE_AREA), one & (area[:, 0] >= SMALL_FACE_AREA)
    # one large face: 0.53 : 0.18; one small face: scene x2, face x0.5 -> 1.06 : 0.09
    assert (t["source"][large1] == "face1").mean() == pytest.approx(0.18 / 0.71, abs=0.03)
    assert (t["source"][small1] == "face1").mean() == pytest.approx(0.09 / 1.15, abs=0.02)
    w = source_weights(mask, area, "context")
    assert np.allclose(w[small1, 1], 0.09 / 1.15) and np.allclose(w[large1, 1], 0.18 / 0.71)
    assert "0.02" in sim.truth["variant_rule"]


def test_shuffled_labels_are_detected_by_training(tmp_path):
    """A deliberately broken data set: training itself reports accuracy at the majority level
    with the loud warning, while the same images with aligned labels train clearly above it.
    (snr 2: a clear scene signal, so that 400 test images separate the two cases.)"""
    from emolog.metrics.classification import MAJORITY_WARNING
    from emolog.runs.train import train_run

    out = {}
    for shuffle in (False, True):
        d = tmp_path / f"D{int(shuffle)}"
        write_simulation(simulate(SimConfig(n=2000, seed=11, snr=2.0, shuffle_labels=shuffle)), d)
        res = train_run(
            {"regime": "logic-only", "data": str(d), "train.epochs": 3, "device": "cpu"},
            tmp_path / f"R{int(shuffle)}",
            progress=False,
        )
        on_disk = json.loads((tmp_path / f"R{int(shuffle)}" / "results.json").read_text())
        assert on_disk["sanity_warning"] == res["sanity_warning"]
        out[shuffle] = res
    test_labels = pd.read_csv(tmp_path / "R1" / "predictions.csv")["label"]
    majority = test_labels.value_counts(normalize=True).max()
    margin = 1.96 * np.sqrt(majority * (1 - majority) / len(test_labels))
    assert out[False]["sanity_warning"] is None
    assert out[False]["metrics"]["test"]["accuracy"] > majority + margin
    assert MAJORITY_WARNING in out[True]["sanity_warning"]
    assert out[True]["metrics"]["test"]["accuracy"] <= majority + margin


@pytest.mark.parametrize("variant", ["context", "standard"])
def test_overconfident_recogniser_keeps_top1_and_sharpens(variant, tmp_path):
    """face_calibration="overconfident" multiplies the same logits by OVERCONFIDENCE_FACTOR:
    every face's top-1 (hence its accuracy, per size in the context variant) and everything
    else drawn stay identical, the outputs get sharper and the recogniser's own NLL worse."""
    from emolog.cache.store import fingerprint_hash
    from emolog.simulate import OVERCONFIDENCE_FACTOR, fingerprint

    cal = simulate(SimConfig(n=2000, seed=5, variant=variant))
    over = simulate(SimConfig(n=2000, seed=5, variant=variant, face_calibration="overconfident"))
    mask = cal.tensors["face_mask"]
    assert np.array_equal(cal.labels, over.labels) and np.array_equal(cal.tensors["scene"], over.tensors["scene"])
    assert np.array_equal(cal.tensors["face_probs"][mask].argmax(-1), over.tensors["face_probs"][mask].argmax(-1))
    assert np.allclose(over.tensors["face_logits"], OVERCONFIDENCE_FACTOR * cal.tensors["face_logits"], atol=1e-5)
    assert np.all(over.tensors["face_probs"][~mask] == 0)
    rc, ro = cal.truth["recogniser"], over.truth["recogniser"]
    for key in ("top1_accuracy", "top1_accuracy_small", "top1_accuracy_large"):
        assert rc.get(key) == ro.get(key)
    assert (rc["calibration"], ro["calibration"]) == ("calibrated", "overconfident")
    assert ro["mean_max_prob"] > rc["mean_max_prob"] + 0.15  # measured 0.63 -> 0.84 (context)
    assert ro["nll"] > rc["nll"] + 0.3  # measured 0.97 -> 1.48 nats (context)
    # calibrated means calibrated: mean top probability ~ top-1 accuracy (2000 images: ~2700 faces)
    assert rc["mean_max_prob"] == pytest.approx(rc["top1_accuracy"], abs=0.03)
    assert over.truth["config"]["face_calibration"] == "overconfident"
    assert fingerprint_hash(fingerprint(over.config)) != fingerprint_hash(fingerprint(cal.config))
    with pytest.raises(SimulationError, match="--face-calibration"):
        SimConfig(face_calibration="bogus")
    d = tmp_path / "D"
    assert _cli("--out", str(d), "--n", "50", "--variant", variant, "--face-calibration", "overconfident") == 0
    assert json.loads((d / "truth.json").read_text())["recogniser"]["logit_factor"] == OVERCONFIDENCE_FACTOR
