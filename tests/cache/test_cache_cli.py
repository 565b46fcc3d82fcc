"""``emolog cache build|verify|merge`` as a command: sub-command errors, the data root (relative,
unmounted), retried "missing file" rejects, Ctrl-C keeping what was computed, one thread."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from emolog import cli
from emolog.cache.build import BuildOptions, build_cache
from emolog.cache.commands import add_arguments
from emolog.cache.store import load_cache, read_manifest
from emolog.data.index import ImageIndex, build_index
from emolog.data.readers import RECORD_COLUMNS
from emolog.data.split import load_split, make_split, write_split
from emolog.labels import get_mapping
from emolog.perception.pipeline import Perception
from helpers.photos import six_photos

KEEP = ("a/astronaut.jpg", "b/pair.jpg", "a/chelsea.jpg", "c/rocket.jpg")


@pytest.fixture
def data(tmp_path) -> Path:
    root = tmp_path / "d" / "images"
    photos = six_photos()
    recs = []
    for rel in KEEP:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        photos[rel][0].save(root / rel, quality=92)
        recs.append({"path": rel, "label_raw": photos[rel][1], "source": rel})
    res = build_index(
        pd.DataFrame(recs).reindex(columns=RECORD_COLUMNS, fill_value=""), get_mapping(), root=root, progress=False
    )
    res.index.save(tmp_path / "d" / "index.csv")
    write_split(make_split(res.index.ids, res.index.df["label"].tolist(), seed=1), tmp_path / "d" / "split.json")
    return tmp_path / "d"


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _build(data: Path, root: str | Path, out: Path, *extra: str) -> int:
    return cli.main(
        [
            "cache",
            "build",
            "--index",
            str(data),
            "--root",
            str(root),
            "--out",
            str(out),
            "--workers",
            "0",
            "--quiet",
            *extra,
        ]
    )


def test_misspelt_flag_is_named_by_its_subcommand(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli.dispatch(["cache", "build", "--index", "D", "--out", "C", "--detect-max-size", "640"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "emolog cache build: error: unrecognized arguments: --detect-max-size 640" in err
    assert "invalid choice" not in err
    with pytest.raises(SystemExit):
        cli.dispatch(["cache", "verify", "C", "--max-face", "2", "--bogus"])
    assert "emolog cache verify: error: unrecognized arguments: --bogus" in capsys.readouterr().err


def test_missing_index_is_named(tmp_path, capsys) -> None:
    assert cli.main(["cache", "build", "--index", str(tmp_path / "nope"), "--out", str(tmp_path / "c")]) == 4
    err = capsys.readouterr().err
    assert "no such index" in err and "--root" not in err


def test_defaults_one_torch_thread_and_K_spelling() -> None:
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["build", "--index", "D", "--out", "C", "-K", "2"])
    assert args.threads == 1 and args.K == 2
    assert p.parse_args(["build", "--index", "D", "--out", "C", "--max-faces", "4"]).K == 4


def test_relative_root_is_relative_to_the_current_directory(data, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(data)
    assert _build(data, "images", tmp_path / "cache") == 0
    assert len(load_cache(tmp_path / "cache")) == len(KEEP)


def test_unmounted_root_fails_and_records_nothing(data, tmp_path, capsys) -> None:
    empty = tmp_path / "mnt"
    empty.mkdir()
    assert _build(data, empty, tmp_path / "cache") == 4
    assert "none of the 4 images to cache exists under the data root" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists() or read_manifest(tmp_path / "cache")["rejects"] == []
    assert _build(data, tmp_path / "absent", tmp_path / "cache2") == 4


def test_missing_file_rejects_are_retried(data, tmp_path) -> None:
    moved = tmp_path / "away.jpg"
    shutil.move(data / "images" / "b/pair.jpg", moved)
    out = tmp_path / "cache"
    assert _build(data, data / "images", out) == 0  # the rest is cached; the absent file is a reject
    assert [r["reason"] for r in read_manifest(out)["rejects"]] == ["missing file"]
    shutil.move(moved, data / "images" / "b/pair.jpg")  # the disk is back
    assert _build(data, data / "images", out) == 0
    assert read_manifest(out)["rejects"] == [] and len(load_cache(out)) == len(KEEP)


class _InterruptAfter:
    """The real pipeline, with a Ctrl-C arriving during the n-th batch (as SIGINT would)."""

    def __init__(self, perception: Perception, n: int) -> None:
        self.p, self.n, self.calls = perception, n, 0
        self.K, self.scene_dim = perception.K, perception.scene_dim
        self.fingerprint, self.preparer = perception.fingerprint, perception.preparer

    def perceive_prepared(self, items):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.p.perceive_prepared(items)


def test_ctrl_c_keeps_computed_rows_and_resume_completes(data, tmp_path) -> None:
    torch.set_num_threads(1)
    p = Perception(device="cpu")
    index = ImageIndex.load(data / "index.csv")
    split = load_split(data / "split.json")
    ids = split["train"] + split["val"] + split["test"]
    out = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):  # rows_per_file 100: nothing flushed before the Ctrl-C
        build_cache(
            _InterruptAfter(p, 2),
            index,
            ids,
            data / "images",
            out,
            options=BuildOptions(batch_size=2, rows_per_file=100, progress=False),
        )
    assert len(load_cache(out)) == 2  # the first batch was written on the way out
    rep = build_cache(p, index, ids, data / "images", out, options=BuildOptions(batch_size=2, progress=False))
    assert (rep.n_already, rep.n_written) == (2, 2)
