"""Building the cache with the real offline networks (EfficientNet-Lite0, MTCNN, mini-Xception)
on small real photos from skimage.data: alignment by id, rejects, SIGKILL + resume, sharding.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emolog import cli
from emolog.cache.build import BuildOptions, KILL_ENV, build_cache, index_rejects
from emolog.cache.store import MANIFEST, CacheError, load_cache, read_manifest
from emolog.cache.verify import verify_cache
from emolog.data.index import ImageIndex
from emolog.data.split import load_split
from emolog.labels import get_mapping
from helpers.cache import assert_same_cache
from helpers.photos import write_data_dir
from helpers.paths import REPO


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> dict:
    """The data directory of ``write_data_dir`` with its index, ids and the damaged image's id."""
    d = tmp_path_factory.mktemp("data")
    root = d / "images"
    truth = write_data_dir(d)
    index = ImageIndex.load(d / "index.csv")
    split = load_split(d / "split.json")
    ids = split["train"] + split["val"] + split["test"]
    bad = index.df.set_index("rel_path").loc["c/rocket.jpg", "image_id"]
    return {
        "dir": d,
        "root": root,
        "index": index,
        "ids": ids,
        "truth": truth,
        "bad": bad,
        "good": sorted(set(ids) - {bad}),
    }


@pytest.fixture(scope="module")
def reference(perception, dataset, tmp_path_factory) -> Path:
    """An uninterrupted build, two rows per shard file."""
    out = tmp_path_factory.mktemp("ref") / "cache"
    rep = build_cache(
        perception,
        dataset["index"],
        dataset["ids"],
        dataset["root"],
        out,
        prior_rejects=index_rejects(dataset["dir"] / "rejects.csv"),
        options=BuildOptions(rows_per_file=2, batch_size=4, progress=False),
    )
    assert (rep.n_written, rep.n_rejected) == (5, 1)
    return out


def _group_gone(pgid: int, within_s: float) -> bool:
    """Whether no process of group ``pgid`` is left (waiting up to ``within_s`` seconds)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def test_build_stores_every_good_image_and_rejects_the_rest(perception, dataset, reference) -> None:
    m = read_manifest(reference)
    assert m["fingerprint"] == perception.fingerprint() and m["scene_dim"] == 1280
    stages = {(r["rel_path"], r["stage"]): r["reason"] for r in m["rejects"]}
    assert stages[("c/rocket.jpg", "load")].startswith("changed since indexing")
    assert stages[("c/notes.jpg", "index")].startswith("not an image")
    report = verify_cache(reference, dataset["ids"], expected_fingerprint=perception.fingerprint())
    assert report.problems == [(dataset["bad"], f"rejected, not cached: {stages[('c/rocket.jpg', 'load')]}")]
    assert report.n_present == 5
    assert verify_cache(reference, dataset["ids"], perception.fingerprint(), allow_rejects=True).ok
    with pytest.raises(CacheError, match=dataset["bad"]):
        load_cache(reference, ids=dataset["ids"])  # never a dummy row for the rejected image
    c = load_cache(reference)
    assert c.n_faces.max() >= 2 and c.face_mask[:, 1].any()  # the multi-face slots are exercised
    # CLI verify: fails on the rejected id, passes when rejects are allowed.
    args = ["cache", "verify", str(reference), "--index", str(dataset["dir"])]
    assert cli.main(args) == 5  # verification failed
    assert cli.main(args + ["--allow-rejects"]) == 0


def test_rows_follow_ids_not_positions_after_shuffling(perception, dataset, reference, tmp_path) -> None:
    # The original keyed tensors by the row number of a shuffled DataFrame. Rebuild from an
    # index whose rows are shuffled and a split whose lists are reversed, then read the rows
    # back in yet another order: every row must still describe its own image.
    d = tmp_path / "shuffled"
    d.mkdir()
    dataset["index"].df.sample(frac=1, random_state=3).to_csv(d / "index.csv", index=False)
    split = json.loads((dataset["dir"] / "split.json").read_text())
    for s in ("train", "val", "test"):
        split[s] = split[s][::-1]
    (d / "split.json").write_text(json.dumps(split))
    index = ImageIndex.load(d / "index.csv")
    ids = [i for s in ("test", "val", "train") for i in load_split(d / "split.json")[s]]
    build_cache(
        perception,
        index,
        ids,
        dataset["root"],
        d / "cache",
        options=BuildOptions(rows_per_file=3, batch_size=2, progress=False),
    )
    assert_same_cache(reference, d / "cache")

    order = list(np.random.default_rng(7).permutation(dataset["good"]))
    c = load_cache(d / "cache", ids=order)
    labels = index.label_of(order)
    mapping = get_mapping()
    for row, (iid, rel) in enumerate(zip(order, index.rel_path_of(order))):
        lab, size = dataset["truth"][rel]
        assert tuple(c.image_size[row].tolist()) == size
        assert labels[row] == mapping.map_one(lab)
    # And the tensors are that image's own perception, computed alone.
    row = order.index(dataset["index"].df.set_index("rel_path").loc["b/pair.jpg", "image_id"])
    alone = perception.perceive_batch([Image.open(dataset["root"] / "b/pair.jpg").convert("RGB")])
    assert np.allclose(c.scene[row].numpy(), alone["scene"][0], atol=1e-4)
    assert c.n_faces[row].item() == alone["n_faces"][0] >= 2


def test_resume_after_sigkill_gives_the_uninterrupted_cache(perception, dataset, reference, tmp_path) -> None:
    out = tmp_path / "cache"
    cmd = [
        sys.executable,
        "-m",
        "emolog",
        "cache",
        "build",
        "--index",
        str(dataset["dir"]),
        "--root",
        str(dataset["root"]),
        "--out",
        str(out),
        "--rows-per-file",
        "2",
        "--batch-size",
        "2",
        "--workers",
        "1",
        "--device",
        "cpu",
        "--quiet",
    ]
    env = {**os.environ, KILL_ENV: "1", "OMP_NUM_THREADS": "1"}
    log = tmp_path / "build.log"
    with open(log, "w") as f:  # a file, not a pipe: nothing here waits on the killed run's pipes
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=240)
            assert rc == -signal.SIGKILL, log.read_text()[-2000:]
            assert _group_gone(proc.pid, within_s=10), "a DataLoader worker outlived the killed builder"
        finally:
            if not _group_gone(proc.pid, within_s=0):
                os.killpg(proc.pid, signal.SIGKILL)
    m = json.loads((out / MANIFEST).read_text())
    assert [s["n"] for s in m["shards"]] == [2]  # killed right after its first shard

    rep = build_cache(
        perception,
        dataset["index"],
        dataset["ids"],
        dataset["root"],
        out,
        prior_rejects=index_rejects(dataset["dir"] / "rejects.csv"),
        options=BuildOptions(rows_per_file=2, batch_size=4, progress=False),
    )
    assert rep.n_already == 2 and rep.n_written == 3
    assert_same_cache(reference, out)
    assert verify_cache(out, dataset["good"], expected_fingerprint=perception.fingerprint()).ok
    again = build_cache(
        perception, dataset["index"], dataset["ids"], dataset["root"], out, options=BuildOptions(progress=False)
    )
    assert (again.n_written, again.n_rejected) == (0, 0)  # a finished cache stays as it is


def test_sharded_builds_merge_into_the_single_build(perception, dataset, reference, tmp_path) -> None:
    out = tmp_path / "cache"
    for i in range(2):
        rep = build_cache(
            perception,
            dataset["index"],
            dataset["ids"],
            dataset["root"],
            out,
            shard=(i, 2),
            options=BuildOptions(rows_per_file=2, progress=False),
        )
        assert rep.cache_dir == out / f"part-{i}-of-2" and rep.n_slice == 3
    assert cli.main(["cache", "merge", str(out)]) == 0
    assert_same_cache(reference, out)
    assert [r["rel_path"] for r in read_manifest(out)["rejects"]] == ["c/rocket.jpg"]
