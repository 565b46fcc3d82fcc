"""emolog.data.paths / readers / index: stable ids, traps, labels that stay with their image."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data as skdata

from helpers.data_files import small
from emolog.data.index import ImageIndex, UnknownIdError, build_index
from emolog.data.paths import PathRejected, image_id, normalize_rel_path, resolve_under
from emolog.data.readers import DataFormatError, read_csv_auto, read_folder_tree, read_generic_csv
from emolog.data.split import make_split
from emolog.labels import get_mapping

BASIC = get_mapping("findingemo-basic7")


# ---- paths -------------------------------------------------------------------------------


def test_leading_slash_means_the_data_root():
    assert normalize_rel_path("/Run_1/a b/x.jpg") == "Run_1/a b/x.jpg"
    assert normalize_rel_path("//Run_1/./x.jpg") == "Run_1/x.jpg"
    assert image_id("/Run_1/x.jpg") == image_id("Run_1/x.jpg") == hashlib.sha1(b"Run_1/x.jpg").hexdigest()[:16]


@pytest.mark.parametrize("name", ["x_03..jpg", "pakistan.....jpg", "..hidden.png", "a..b/c.jpg"])
def test_dots_inside_a_name_are_not_traversal(name):
    assert normalize_rel_path("/Run_2/" + name) == "Run_2/" + name


@pytest.mark.parametrize(
    "bad", ["../etc/passwd", "/Run_1/../../x.jpg", "a/..", "..\\..\\x.jpg", "C:/x.jpg", "", "/", "a\x00b.jpg"]
)
def test_escaping_or_empty_paths_are_refused(bad):
    with pytest.raises(PathRejected):
        normalize_rel_path(bad)


def test_resolve_under(tmp_path):
    assert resolve_under(tmp_path, "/a/b.jpg") == tmp_path / "a" / "b.jpg"
    with pytest.raises(PathRejected, match="escapes"):
        resolve_under(tmp_path, "../b.jpg")


# ---- readers -----------------------------------------------------------------------------


def test_generic_csv_keeps_na_like_names_as_text(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("path,label,valence\nNA.jpg,None,1.5\nnull.jpg,happy,\n")
    rec = read_generic_csv(p)
    assert rec["path"].tolist() == ["NA.jpg", "null.jpg"]
    assert rec["label_raw"].tolist() == ["None", "happy"]
    assert rec["valence"].tolist() == ["1.5", ""] and rec["ambiguity"].tolist() == ["", ""]


def test_csv_format_is_detected_from_the_header_and_bad_headers_are_named(tmp_path):
    p = tmp_path / "fe.csv"
    p.write_text(
        "index,image_path,emotion,valence,arousal,ambiguity,dec_factors\n"
        '0,/Run_1/x.jpg,Joy,2,3,1,"BodyLanguage,Context"\n'
    )
    rec = read_csv_auto(p)
    assert rec.loc[0, "label_raw"] == "Joy" and rec.loc[0, "dec_factors"] == "BodyLanguage,Context"
    q = tmp_path / "bad.csv"
    q.write_text("file,class\nx.jpg,happy\n")
    with pytest.raises(DataFormatError, match="neither FindingEmo"):
        read_csv_auto(q)
    with pytest.raises(DataFormatError, match="missing"):
        read_generic_csv(q)


def test_folder_tree_labels_by_top_folder_and_skips_hidden(tmp_path):
    (tmp_path / "happy" / "sub").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "happy" / "a.jpg").write_bytes(b"x")
    (tmp_path / "happy" / "sub" / "b.jpg").write_bytes(b"x")
    (tmp_path / "happy" / ".DS_Store").write_bytes(b"x")
    (tmp_path / "loose.jpg").write_bytes(b"x")
    rec, hidden = read_folder_tree(tmp_path)
    assert dict(zip(rec["path"], rec["label_raw"])) == {
        "happy/a.jpg": "happy",
        "happy/sub/b.jpg": "happy",
        "loose.jpg": "",
    }
    assert hidden == 2


# ---- build_index -------------------------------------------------------------------------


def _records(rows):
    df = pd.DataFrame(rows, columns=["path", "label_raw", "valence"])
    for c in ("arousal", "ambiguity", "dec_factors"):
        df[c] = ""
    return df


def test_annotation_only_index_rejects_bad_rows_and_keeps_good_ones():
    rec = _records(
        [
            ["/Run_1/a.jpg", "Joy", "2"],
            ["/Run_1/b..jpg", "Rage", "-3"],
            ["../../etc/passwd", "Joy", "0"],
            ["/Run_1/c.jpg", "Anticipation", "1"],
            ["/Run_1/d.jpg", "", "1"],
            ["/Run_1/e.jpg", "Joy", "lots"],
            ["/Run_1/f.jpg", "Fear", "1"],
            ["Run_1/f.jpg", "Fear", "1"],  # same path twice: keep one
            ["/Run_1/g.jpg", "Fear", "1"],
            ["/Run_1/g.jpg", "Joy", "1"],  # conflicting: reject both
        ]
    )
    res = build_index(rec, BASIC, check_images=False, progress=False)
    df = res.index.df
    assert df["rel_path"].tolist() == sorted(df["rel_path"], key=image_id)
    assert dict(zip(df["rel_path"], df["label"])) == {
        "Run_1/a.jpg": "happy",
        "Run_1/b..jpg": "angry",
        "Run_1/f.jpg": "fear",
    }
    assert df.set_index("rel_path").loc["Run_1/b..jpg", "valence"] == -3.0
    assert (df["content_hash"] == "").all() and df["width"].isna().all()
    reasons = dict(zip(res.rejects["rel_path"], res.rejects["reason"]))
    assert reasons["../../etc/passwd"].startswith("path escapes data root")
    assert reasons["Run_1/c.jpg"] == "label dropped by mapping: Anticipation"
    assert reasons["Run_1/d.jpg"] == "no label"
    assert reasons["Run_1/e.jpg"].startswith("bad value: valence='lots'")
    assert reasons["Run_1/f.jpg"].startswith("duplicate entry")
    assert (res.rejects["rel_path"] == "Run_1/g.jpg").sum() == 2
    assert res.reject_counts()["conflicting labels"] == 2
    assert res.mapping_report.dropped == {"Anticipation": 1}
    assert "label dropped by mapping" in res.summary()


def test_an_unknown_label_is_its_own_reason_and_does_not_conflict():
    """A typo (Zzyzx) is not a label the mapping drops on purpose (Anticipation): its own
    reject reason, naming the known labels, and it does not make the image's valid row a conflict."""
    rec = _records(
        [
            ["/Run_1/a.jpg", "Zzyzx", "1"],
            ["/Run_1/b.jpg", "Anticipation", "1"],
            ["/Run_1/c.jpg", "Joy", "1"],
            ["/Run_1/c.jpg", "Zzyzx", "1"],  # the typo row must not conflict
            ["/Run_1/d.jpg", "happy", "1"],  # a target label is known
        ]
    )
    res = build_index(rec, BASIC, check_images=False, progress=False)
    assert dict(zip(res.index.df["rel_path"], res.index.df["label"])) == {
        "Run_1/c.jpg": "happy",
        "Run_1/d.jpg": "happy",
    }
    reasons = {(r, why.split(":")[0]): why for r, why in zip(res.rejects["rel_path"], res.rejects["reason"])}
    assert set(reasons) == {
        ("Run_1/a.jpg", "unknown label"),
        ("Run_1/b.jpg", "label dropped by mapping"),
        ("Run_1/c.jpg", "unknown label"),
    }
    typo = reasons[("Run_1/a.jpg", "unknown label")]
    assert "'Zzyzx'" in typo and "Anticipation" in typo and "Joy" in typo and "findingemo-basic7" in typo
    assert res.reject_counts() == {"unknown label": 2, "label dropped by mapping": 1}
    assert res.mapping_report.unknown == {"Zzyzx": 2} and res.mapping_report.dropped == {"Anticipation": 1}
    assert "unknown 'Zzyzx': 2" in res.summary() and "conflicting" not in res.summary()
    # --unmapped map:neutral redirects what the mapping drops, never a typo
    res = build_index(rec, get_mapping("findingemo-basic7", unmapped="map:neutral"), check_images=False, progress=False)
    assert dict(zip(res.index.df["rel_path"], res.index.df["label"]))["Run_1/b.jpg"] == "neutral"
    assert "Run_1/a.jpg" not in set(res.index.df["rel_path"])


def test_missing_images_are_rejected_as_missing_file(tmp_path):
    rec = _records([["/Run_1/a.jpg", "Joy", ""], ["/Run_1/b.jpg", "Joy", ""]])
    (tmp_path / "Run_1").mkdir()
    small(skdata.astronaut()).save(tmp_path / "Run_1" / "a.jpg")
    res = build_index(rec, BASIC, root=tmp_path, progress=False)
    assert res.index.df["rel_path"].tolist() == ["Run_1/a.jpg"]
    row = res.index.df.iloc[0]
    assert row["content_hash"] == hashlib.sha256((tmp_path / "Run_1/a.jpg").read_bytes()).hexdigest()
    assert (row["width"], row["height"]) == (128, 128)
    assert res.rejects.values.tolist() == [["Run_1/b.jpg", "missing file"]]


def _write_photo_set(root, n=40):
    """n small distinct real images in one folder, with a labels CSV; returns {rel: label}."""
    base = np.asarray(small(skdata.astronaut(), 32))
    labels = {}
    (root / "img").mkdir()
    for k in range(n):
        rel = f"img/p{k:03d}.png"
        Image.fromarray(np.roll(base, k, axis=1)).save(root / rel)
        labels[rel] = ["Joy", "Rage", "Grief", "Fear", "Trust"][k % 5]
    return labels


def test_labels_stay_with_their_images_when_csv_rows_are_shuffled(tmp_path):
    """The original's bug: tensors keyed by the row number of a shuffled table."""
    labels = _write_photo_set(tmp_path)
    rows = [[rel, lab, ""] for rel, lab in labels.items()]
    results = []
    for order_seed in (0, 1):
        rng = np.random.default_rng(order_seed)
        shuffled = [rows[k] for k in rng.permutation(len(rows))]
        res = build_index(_records(shuffled), BASIC, root=tmp_path, progress=False)
        split = make_split(res.index.ids, res.index.df["label"].tolist(), seed=42)
        results.append((res.index.df, split))
    (df0, s0), (df1, s1) = results
    pd.testing.assert_frame_equal(df0, df1)
    assert s0 == s1
    # Every id's label and content hash are those of its own file, in every split.
    idx = ImageIndex(df0)
    expect = {image_id(r): BASIC.map_one(lab) for r, lab in labels.items()}
    for part in ("train", "val", "test"):
        assert idx.label_of(s0[part]) == [expect[i] for i in s0[part]]
        for i, rel in zip(s0[part], idx.rel_path_of(s0[part])):
            assert image_id(rel) == i
            h = df0.set_index("image_id").loc[i, "content_hash"]
            assert h == hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest()


def test_index_save_load_round_trip_keeps_types(tmp_path):
    rec = _records([["/a.jpg", "Joy", "2"], ["/b.jpg", "Rage", ""]])
    idx = build_index(rec, BASIC, check_images=False, progress=False).index
    # An all-digit hex id must stay a string through CSV.
    df = idx.df.copy()
    df.loc[0, "image_id"] = "0123456789012345"
    idx = ImageIndex(df)
    idx.save(tmp_path / "index.csv")
    back = ImageIndex.load(tmp_path / "index.csv")
    pd.testing.assert_frame_equal(back.df, idx.df)
    assert back.label_of(["0123456789012345"]) == [idx.df.set_index("image_id").loc["0123456789012345", "label"]]
    assert np.isnan(back.df.set_index("rel_path").loc["b.jpg", "valence"])
    with pytest.raises(UnknownIdError, match="not in the index"):
        back.label_of(["ffffffffffffffff"])


def test_index_refuses_duplicate_ids_and_missing_columns():
    with pytest.raises(ValueError, match="lacks columns"):
        ImageIndex(pd.DataFrame({"image_id": ["a"]}))
    rec = _records([["/a.jpg", "Joy", "2"]])
    df = build_index(rec, BASIC, check_images=False, progress=False).index.df
    with pytest.raises(ValueError, match="duplicate image ids"):
        ImageIndex(pd.concat([df, df]))


def test_build_index_needs_a_root_to_check_images():
    with pytest.raises(ValueError, match="data root"):
        build_index(_records([["a.jpg", "Joy", ""]]), BASIC, root=None)
