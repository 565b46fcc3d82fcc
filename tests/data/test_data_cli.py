"""`emolog index` end to end on a folder of real images mixed with every kind of bad file."""

import json

import pandas as pd
import pytest

from helpers.data_files import BOMB_LIMIT, write_bad_files, write_good_images
from emolog.cli import main
from emolog.data.index import ImageIndex
from emolog.data.paths import image_id
from emolog.data.split import load_split


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    good = write_good_images(root)
    bad = write_bad_files(root)
    (root / "loose.jpg").write_bytes((root / "happy/astronaut_rgb.jpg").read_bytes())  # no class folder
    (root / "happy/.DS_Store").write_bytes(b"\0\1")
    return root, good, bad


def _index(root, out, *extra):
    return main(["index", str(root), "--out", str(out), "--max-pixels", str(BOMB_LIMIT), "--quiet", *extra])


def test_index_help_works(capsys):
    with pytest.raises(SystemExit) as e:
        main(["index", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--no-images" in out and "--n-train" in out and "--max-pixels" in out


def test_index_on_a_mixed_folder(mixed, tmp_path, capsys):
    root, good, bad = mixed
    assert _index(root, tmp_path / "a") == 0
    printed = capsys.readouterr().out
    idx = ImageIndex.load(tmp_path / "a" / "index.csv")
    # Every good image is kept, with its folder's label and its upright size.
    assert dict(zip(idx.df["rel_path"], idx.df["label"])) == good
    assert (idx.df["content_hash"].str.len() == 64).all()
    rot = idx.df.set_index("rel_path").loc["fear/chelsea_exif6.jpg"]
    assert (rot["width"], rot["height"]) == (106, 160)
    # Every bad file is rejected with its reason; the loose file has no label.
    rej = pd.read_csv(tmp_path / "a" / "rejects.csv", keep_default_na=False)
    cats = {r: reason.split(":")[0] for r, reason in zip(rej["rel_path"], rej["reason"])}
    assert cats == {**bad, "loose.jpg": "no label"}
    # The summary shows counts per class and per reject reason.
    assert "indexed: 10, rejected: 5" in printed
    for line in (
        "happy        2",
        "fear         2",
        "truncated image",
        "decompression bomb",
        "not an image",
        "empty file",
        "skipped 1 hidden",
    ):
        assert line in printed, line
    summary = json.loads((tmp_path / "a" / "index_summary.json").read_text())
    assert summary["per_class"] == {"angry": 2, "fear": 2, "happy": 2, "neutral": 2, "sad": 2}
    assert summary["rejects_per_reason"]["decompression bomb"] == 1
    split = load_split(tmp_path / "a" / "split.json", known_ids=idx.ids)
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(idx.ids)


def test_split_file_is_reproducible_byte_for_byte(mixed, tmp_path):
    root, _, _ = mixed
    for name, seed, workers in (("a", "7", "3"), ("b", "7", "1"), ("c", "8", "3")):
        assert _index(root, tmp_path / name, "--seed", seed, "--workers", workers) == 0
    a, b, c = ((tmp_path / n / "split.json").read_bytes() for n in "abc")
    assert a == b and a != c
    assert (tmp_path / "a" / "index.csv").read_bytes() == (tmp_path / "b" / "index.csv").read_bytes()


def test_csv_source_with_escaping_path_and_shuffled_rows(mixed, tmp_path):
    root, good, _ = mixed
    rows = [f"{rel},{lab}" for rel, lab in sorted(good.items())] + ["../outside.jpg,happy"]
    (tmp_path / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "labels_rev.csv").write_text("path,label\n" + "\n".join(reversed(rows)) + "\n")
    for csv_name, out in (("labels.csv", "x"), ("labels_rev.csv", "y")):
        assert _index(tmp_path / csv_name, tmp_path / out, "--root", str(root), "--n-train", "3") == 0
    for f in ("index.csv", "split.json", "rejects.csv"):
        assert (tmp_path / "x" / f).read_bytes() == (tmp_path / "y" / f).read_bytes(), f
    rej = pd.read_csv(tmp_path / "x" / "rejects.csv")
    assert rej.values.tolist() == [["../outside.jpg", "path escapes data root: ../outside.jpg"]]
    split = json.loads((tmp_path / "x" / "split.json").read_text())
    assert len(split["train"]) == 3 and split["n_train"] == 3
    idx = ImageIndex.load(tmp_path / "x" / "index.csv")
    assert idx.label_of([image_id("happy/chelsea_rgb.png")]) == ["happy"]


def test_bad_input_gives_a_clear_error(tmp_path, capsys):
    assert main(["index", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 4
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["index", "findingemo", "--out", str(tmp_path / "o")]) == 3
    assert "--root" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["index", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 3
    assert "no usable images" in capsys.readouterr().err
