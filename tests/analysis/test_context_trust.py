"""Per-image trust (faces vs scene) against FindingEmo's real dec_factors annotations."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from emolog.analysis.trust import (
    DEC_CLASSES,
    TrustError,
    add_arguments,
    agreement_stats,
    decision_class,
    join_trust,
    run,
    trust_agreement,
)
from emolog.analysis.trust import main as trust_main
from emolog.data.findingemo import annotation_records, load_annotations
from emolog.data.index import ImageIndex, build_index
from emolog.errors import EXIT_MISSING
from emolog.labels import get_mapping


@pytest.fixture(scope="module")
def real_index() -> pd.DataFrame:
    """The real FindingEmo annotations as an emolog index (no images needed)."""
    return build_index(annotation_records(), get_mapping(), check_images=False, progress=False).index.df


def test_decision_classes_of_the_real_tokens() -> None:
    tokens = {t for v in load_annotations()["dec_factors"] for t in str(v).split(",")}
    assert {"FacialExpression", "Context", "BodyLanguage", "Staging"} <= tokens
    assert decision_class("BodyLanguage,FacialExpression") == "face"
    assert decision_class("Context,Staging") == "context"
    assert decision_class("BodyLanguage,Context,FacialExpression") == "both"
    assert decision_class("Neutral,BodyLanguage") == "neither"
    assert decision_class("") is None


def _predictions(index: pd.DataFrame, classes: dict[str, int], seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A predictions.csv-shaped table for real annotated ids: n images per annotator class."""
    rng = np.random.default_rng(seed)
    cls = index["dec_factors"].map(decision_class)
    rows = pd.concat([index[cls == c].head(n) for c, n in classes.items()])
    c = rows["dec_factors"].map(decision_class).to_numpy()
    w_scene = np.where(c == "face", 0.25, 0.75)  # exact in binary: ties stay ties
    flip = rng.random(len(rows)) < 0.25  # a quarter of the images disagree
    w_scene = np.where(flip, 1 - w_scene, w_scene)
    pred = pd.DataFrame(
        {
            "image_id": rows["image_id"].to_numpy(),
            "label": rows["label"].to_numpy(),
            "n_faces": rng.integers(0, 5, len(rows)),
            "w_scene": w_scene,
            "w_face1": 1 - w_scene,
            "w_face2": 0.0,
            "w_face3": 0.0,
        }
    )
    return pred, flip


def test_agreement_on_real_annotations(real_index) -> None:
    pred, flip = _predictions(real_index, {"face": 300, "context": 200, "both": 50, "neither": 50})
    table, counts = trust_agreement(pred, real_index)
    assert counts["n_joined"] == 600 and counts["not_in_index"] == [] and counts["no_annotation"] == []
    overall = table[table["group"] == "all"].iloc[0]
    assert (overall["n_face"], overall["n_context"], overall["n_both"], overall["n_neither"]) == (300, 200, 50, 50)
    decisive = np.r_[np.ones(300, bool), np.ones(200, bool), np.zeros(100, bool)]
    assert overall["agreement"] == pytest.approx(1 - flip[decisive].mean())
    # two trust levels: P(face image trusted more) + half the ties
    f_right, c_right = 1 - flip[:300].mean(), 1 - flip[300:500].mean()
    assert overall["auc"] == pytest.approx(
        f_right * c_right + 0.5 * (f_right * (1 - c_right) + (1 - f_right) * c_right)
    )
    assert overall["kappa"] > 0.3
    labels = table[table["group"] == "label"]
    assert set(labels["value"]) == set(pred["label"])
    assert labels["n"].sum() == 600
    assert table[table["group"] == "n_faces"]["n"].sum() == 600


def test_agreement_stats_exact_small_case() -> None:
    s = agreement_stats(
        np.array([0.9, 0.8, 0.2, 0.1, 0.6, 0.5]),
        np.array(["face", "face", "context", "context", "context", "both"], dtype=object),
    )
    assert s["agreement"] == pytest.approx(4 / 5)
    assert s["auc"] == pytest.approx(1.0)
    assert s["trust_face_if_face"] == pytest.approx(0.85) and s["trust_face_if_context"] == pytest.approx(0.3)
    chance = 0.4 * 0.6 + 0.6 * 0.4
    assert s["kappa"] == pytest.approx((0.8 - chance) / (1 - chance))
    none = agreement_stats(np.array([0.5]), np.array(["both"], dtype=object))
    assert np.isnan(none["agreement"]) and none["n_both"] == 1
    assert set(DEC_CLASSES) == {"face", "context", "both", "neither"}


def test_bad_input_is_named_and_unjoined_ids_are_counted(real_index) -> None:
    pred, _ = _predictions(real_index, {"face": 5, "context": 5})
    with pytest.raises(TrustError, match=r"lack column\(s\) \['w_scene'\]"):
        trust_agreement(pred.drop(columns="w_scene"), real_index)
    bad = pred.copy()
    bad.loc[2, "w_scene"] = 1.5
    with pytest.raises(TrustError, match=bad.loc[2, "image_id"]):
        trust_agreement(bad, real_index)
    extra = pd.concat([pred, pred.head(1).assign(image_id="0000000000000000")], ignore_index=True)
    table, counts = join_trust(extra, real_index)
    assert counts["not_in_index"] == ["0000000000000000"] and len(table) == 10
    with pytest.raises(TrustError, match="no prediction joins"):
        trust_agreement(pred.assign(image_id=[f"{i:016x}" for i in range(10)]), real_index)


def test_command_writes_the_table(real_index, tmp_path) -> None:
    pred, _ = _predictions(real_index, {"face": 20, "context": 20})
    (tmp_path / "run").mkdir()
    pred.to_csv(tmp_path / "run" / "predictions.csv", index=False)
    ImageIndex(real_index).save(tmp_path / "index.csv")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert (
        run(
            parser.parse_args(
                [
                    "--run",
                    str(tmp_path / "run"),
                    "--index",
                    str(tmp_path / "index.csv"),
                    "--out",
                    str(tmp_path / "trust.csv"),
                ]
            )
        )
        == 0
    )
    out = pd.read_csv(tmp_path / "trust.csv")
    assert out.iloc[0]["group"] == "all" and out.iloc[0]["n"] == 40
    assert trust_main(["--run", str(tmp_path / "nope"), "--index", str(tmp_path / "index.csv")]) == EXIT_MISSING
