"""`emolog analyse`: every table and figure, each checked against a direct computation from the
runs' own files; and the error-vs-disagreement check that tells faces that matter from faces
that are noise.

The experiment is the demo's, small: the seed program, logic-only and nets-only, on simulated
data (the demo: 5000 images, 3 seeds; here 1500 images, one seed, short training)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from emolog.analysis.error_stats import disagreement_stats
from emolog.analysis.errors import js_divergence, run_errors
from emolog.cli import main
from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.runs.train import train_run

CHEAP = {"pretrain.folds": 2, "pretrain.refit": 1, "pretrain.epochs": 8}
RUNS = ("logic-only-s0", "nets-only-s0")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyse")
    data, exp, out = root / "D", root / "exp", root / "A"
    write_simulation(simulate(SimConfig(n=1500, seed=1, scene_dim=32)), data)
    assert (
        main(
            [
                "experiment",
                "--data",
                str(data),
                "--regimes",
                "logic-only,nets-only",
                "--seeds",
                "0",
                "--baselines",
                "none",
                "--set",
                "train.epochs=3",
                *[a for k, v in CHEAP.items() for a in ("--set", f"{k}={v}")],
                "--out",
                str(exp),
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["analyse", str(exp), "--out", str(out), "--worst", "5", "--n-boot", "200"]) == 0
    return exp, out


def _preds(exp, name):
    return pd.read_csv(exp / "runs" / name / "predictions.csv", dtype={"image_id": str}).set_index("image_id")


def test_every_file_is_written(analysed):
    _, out = analysed
    summary = json.loads((out / "analysis.json").read_text())
    for f in [
        "errors.csv",
        "overlap.csv",
        "wrong_in_k.csv",
        "overlap.png",
        "disagreement.csv",
        "meta.csv",
        "confusion.csv",
        "confused_pairs.csv",
        "gallery.csv",
        "analysis.html",
        *[f"confusion-{r}.png" for r in RUNS],
        *[f"disagreement-{r}-class.png" for r in RUNS],
    ]:
        assert (out / f).is_file(), f
        assert f in summary["files"], f
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_the_error_table_is_each_runs_predictions_and_sources(analysed):
    exp, out = analysed
    errors = pd.read_csv(out / "errors.csv", dtype={"image_id": str}, keep_default_na=False)
    for name in RUNS:
        t = errors[errors["run"] == name].set_index("image_id")
        p = _preds(exp, name)
        assert sorted(t.index) == sorted(p.index)
        assert (t["label"] == p.loc[t.index, "label"]).all() and (t["pred"] == p.loc[t.index, "pred"]).all()
        p_label = np.array([p.at[i, f"p_{lab}"] for i, lab in zip(t.index, t["label"])])
        np.testing.assert_allclose(t["p_label"].astype(float) / p_label, 1, atol=1e-4)  # 6-digit CSV rounding
        # face 1's source prediction is its recogniser distribution (the seed program's face path)
        e = run_errors(exp / "runs" / name)
        from emolog.cache.store import load_cache

        c = load_cache(
            json.loads((exp / "runs" / name / "results.json").read_text())["data"]["cache"],
            ids=e.table["image_id"].tolist(),
        )
        has = c.face_mask[:, 0].numpy()
        np.testing.assert_allclose(e.sources["face1"][has], c.face_probs[:, 0].double().numpy()[has], atol=1e-5)
        assert np.isnan(e.sources["face1"][~has]).all()
        np.testing.assert_allclose(e.table["disagreement"], js_divergence(e.sources["face1"], e.sources["scene"]))
        assert (e.table["n_faces"].to_numpy() == c.n_faces.numpy()).all()


def test_overlap_counts_equal_a_direct_computation(analysed):
    exp, out = analysed
    wrong = {}
    for name in RUNS:
        p = _preds(exp, name)
        wrong[name] = set(p.index[p["label"] != p["pred"]])
    a, b = (wrong[r] for r in RUNS)
    ov = pd.read_csv(out / "overlap.csv").iloc[0]
    n = len(_preds(exp, RUNS[0]))
    assert (ov["run_a"], ov["run_b"]) == RUNS
    assert (ov["wrong_a"], ov["wrong_b"], ov["both"], ov["only_a"], ov["only_b"], ov["neither"]) == (
        len(a),
        len(b),
        len(a & b),
        len(a - b),
        len(b - a),
        n - len(a | b),
    )
    assert ov["jaccard"] == pytest.approx(len(a & b) / len(a | b))
    k = pd.read_csv(out / "wrong_in_k.csv").set_index("k_runs_wrong")["n_images"]
    assert k.tolist() == [n - len(a | b), len((a | b) - (a & b)), len(a & b)]


def test_confusion_and_the_most_confused_pairs(analysed):
    exp, out = analysed
    conf = pd.read_csv(out / "confusion.csv")
    pairs = pd.read_csv(out / "confused_pairs.csv")
    for name in RUNS:
        res = json.loads((exp / "runs" / name / "results.json").read_text())
        cm = np.array(res["metrics"]["test"]["confusion"])
        mine = conf[conf["run"] == name].pivot(index="true", columns="pred", values="count")
        classes = res["classes"]
        assert (mine.loc[classes, classes].to_numpy() == cm).all()
        sym = cm + cm.T
        np.fill_diagonal(sym, 0)
        top = pairs[pairs["run"] == name].iloc[0]
        i, j = classes.index(top["class_a"]), classes.index(top["class_b"])
        assert top["confusions"] == sym.max() == sym[i, j] and top["a_as_b"] == cm[i, j]


def test_disagreement_meta_and_gallery_tables(analysed):
    exp, out = analysed
    dis = pd.read_csv(out / "disagreement.csv")
    errors = pd.read_csv(out / "errors.csv", dtype={"image_id": str}, keep_default_na=False)
    for name in RUNS:
        row = dis[(dis["run"] == name) & (dis["target"] == "class")].iloc[0]
        t = errors[errors["run"] == name].replace("", np.nan)
        d = t[["disagreement", "scene_loss"]].astype(float).dropna()
        assert row["n"] == len(d) == (t["n_faces"].astype(int) > 0).sum()  # CSV values: 6 digits
        assert row["pearson"] == pytest.approx(np.corrcoef(d["disagreement"], d["scene_loss"])[0, 1], rel=1e-4)
        assert row["pearson_lo"] <= row["pearson"] <= row["pearson_hi"] and row["t1"] <= row["t2"]
        assert row["slope"] == pytest.approx(np.polyfit(d["disagreement"], d["scene_loss"], 1)[0], rel=1e-4)
        assert row["n_small"] + row["n_medium"] + row["n_big"] == row["n"]
    meta = pd.read_csv(out / "meta.csv")
    for (run, target), g in meta.groupby(["run", "target"]):
        assert g["rank"].tolist() == list(range(1, len(g) + 1))
        assert g["mutual_information"].is_monotonic_decreasing
        assert {"n_faces", "face1_area", "scene_entropy", "scene_top", "disagreement"} <= set(g["variable"])
    gal = pd.read_csv(out / "gallery.csv", dtype={"image_id": str}, keep_default_na=False)
    for name in RUNS:
        worst = (
            errors[errors["run"] == name]
            .astype({"loss": float})
            .sort_values(["loss", "image_id"], ascending=[False, True])
            .head(5)
        )
        assert gal[gal["run"] == name]["image_id"].tolist() == worst["image_id"].tolist()
    assert (gal["note"] == "simulated data: no photo").all() and (gal["thumbnail"] == "").all()
    html = (out / "analysis.html").read_text()
    assert html.count('class="card"') == 10 and "Worst errors" in html and "data:image/png;base64," in html


def test_the_report_shows_the_analysis_folder(analysed):
    exp, out = analysed
    import shutil

    shutil.copytree(out, exp / "analysis")
    assert main(["report", str(exp)]) == 0
    html = (exp / "report.html").read_text()
    assert 'id="analysis"' in html and 'alt="disagreement-logic-only-s0-class"' in html and "overlap" in html


@pytest.mark.parametrize("va_source, faces_matter", [("label", True), ("scene", False)])
def test_error_rises_with_disagreement_only_where_faces_matter(tmp_path, va_source, faces_matter):
    """Valence from the emotion that decided the label (faces decide ~40% of them) against valence
    from the scene's emotion alone: the scene's valence error correlates with the face-scene
    disagreement (interval above 0) in the first, not in the second (interval contains 0)."""
    data = tmp_path / "D"
    write_simulation(simulate(SimConfig(n=3000, seed=0, snr=4, scene_dim=32, va_source=va_source)), data)
    train_run(
        {"regime": "logic-only", "data": str(data), "spec": "va_valence", "train.epochs": 4, **CHEAP},
        tmp_path / "run",
        progress=False,
    )
    s = disagreement_stats(run_errors(tmp_path / "run"), "valence", n_boot=1000)
    assert s["n"] > 400
    if faces_matter:
        assert s["pearson_lo"] > 0 and s["faces_matter"] and s["scene_error_big"] > s["scene_error_small"], s
    else:
        assert s["pearson_lo"] < 0 < s["pearson_hi"] and not s["faces_matter"], s
