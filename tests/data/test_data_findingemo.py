"""FindingEmo from findingemo-light: annotations, label frequencies, URLs, and `emolog index`."""

import json

import pandas as pd
from skimage import data as skdata

from helpers.data_files import small
from emolog.cli import main
from emolog.data.findingemo import image_urls, label_distribution, load_annotations, url_coverage
from emolog.data.index import ImageIndex
from emolog.data.paths import normalize_rel_path
from emolog.labels import BASIC7, FINDINGEMO_TO_BASIC7

N_ANNOTATED = 25869
N_DROPPED = 1780 + 1433  # Anticipation + Vigilance


def test_annotations_as_shipped():
    df = load_annotations()
    assert len(df) == N_ANNOTATED
    assert {"image_path", "emotion", "valence", "arousal", "ambiguity", "dec_factors"} <= set(df.columns)
    assert df["image_path"].str.startswith("/").all()
    assert df["image_path"].is_unique
    assert df["valence"].between(-3, 3).all() and df["arousal"].between(0, 6).all()
    assert df["image_path"].str.contains("..", regex=False).sum() == 22


def test_label_distribution_matches_a_direct_count():
    dist = label_distribution()
    assert tuple(dist) == BASIC7
    assert abs(sum(dist.values()) - 1) < 1e-12
    mapped = load_annotations()["emotion"].map(FINDINGEMO_TO_BASIC7).dropna()
    assert len(mapped) == N_ANNOTATED - N_DROPPED
    direct = mapped.value_counts(normalize=True)
    for lab in BASIC7:
        assert abs(dist[lab] - direct[lab]) < 1e-12
    assert max(dist, key=dist.get) == "happy" and min(dist, key=dist.get) == "disgust"
    emo8 = label_distribution("plutchik24-emo8")
    assert abs(emo8["anticipation"] - (2688 + 1780 + 1433) / N_ANNOTATED) < 1e-12


def test_image_urls_are_grouped_normalised_and_ordered():
    urls = image_urls()
    assert all(not k.startswith("/") for k in urls)
    alt = urls["Run_1/Accepting adults workplace/s960_olderwoman-960x640.jpg"]
    assert len(alt) == 4 and "/file/10008/" in alt[0] and "/media/" in alt[3]
    annotated = {normalize_rel_path(p) for p in load_annotations()["image_path"]}
    assert len(annotated - set(urls)) == 258  # annotated images that have no URL at all
    cov = url_coverage()
    assert cov[0] == 258 and sum(cov.values()) == N_ANNOTATED
    assert sum(n for k, n in cov.items() if k > 1) > 10_000


def test_index_findingemo_annotations_without_images(tmp_path, capsys):
    assert main(["index", "findingemo", "--no-images", "--out", str(tmp_path), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"labels: {N_ANNOTATED} in, {N_ANNOTATED - N_DROPPED} kept, {N_DROPPED} dropped (12.4%)" in printed
    idx = ImageIndex.load(tmp_path / "index.csv")
    assert len(idx) == N_ANNOTATED - N_DROPPED
    assert (idx.df["content_hash"] == "").all()
    ann = load_annotations()
    ann = ann.assign(rel_path=ann["image_path"].map(normalize_rel_path)).set_index("rel_path")
    row = idx.df.iloc[123]
    src = ann.loc[row["rel_path"]]
    assert row["label_raw"] == src["emotion"] and row["label"] == FINDINGEMO_TO_BASIC7[src["emotion"]]
    assert (row["valence"], row["arousal"], row["ambiguity"]) == (src["valence"], src["arousal"], src["ambiguity"])
    assert row["dec_factors"] == src["dec_factors"]
    assert idx.df["rel_path"].str.contains("..", regex=False).sum() > 0  # kept, not "traversal"
    rej = pd.read_csv(tmp_path / "rejects.csv")
    assert rej["reason"].str.startswith("label dropped by mapping").all() and len(rej) == N_DROPPED
    split = json.loads((tmp_path / "split.json").read_text())
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == len(idx)


def test_index_findingemo_with_a_partial_download(tmp_path, capsys):
    """Only two images were downloaded: they are indexed, the rest is 'missing file'."""
    ann = load_annotations()
    present = ann[ann["emotion"].isin(["Joy", "Rage"])].groupby("emotion").head(1)
    root = tmp_path / "images"
    for p in present["image_path"]:
        dest = root / normalize_rel_path(p)
        dest.parent.mkdir(parents=True, exist_ok=True)
        small(skdata.astronaut()).save(dest, "PNG")  # whatever the extension, content decides
    assert main(["index", "findingemo", "--root", str(root), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    idx = ImageIndex.load(tmp_path / "o" / "index.csv")
    assert sorted(idx.df["label"]) == ["angry", "happy"]
    assert set(idx.df["rel_path"]) == {normalize_rel_path(p) for p in present["image_path"]}
    summary = json.loads((tmp_path / "o" / "index_summary.json").read_text())
    assert summary["rejects_per_reason"] == {
        "missing file": N_ANNOTATED - N_DROPPED - 2,
        "label dropped by mapping": N_DROPPED,
    }
