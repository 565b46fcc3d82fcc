"""Scale-out of the cache build: torchrun ranks (gloo, CPU) on real photos give the very cache
one process builds, row for row; so does the ``--nproc`` shortcut when a rank is SIGKILLed
mid-build and torchrun's agent restarts the job (``--max-restarts``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from emolog import cli
from emolog.cache.build import KILL_ENV, KILL_RANK_ENV
from emolog.cache.store import load_cache, read_manifest
from emolog.cache.verify import verify_cache
from helpers.cache import assert_same_cache
from helpers.photos import write_data_dir
from helpers.paths import REPO


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """An indexed data directory of six small real photos (0-3 faces each); one is truncated
    after indexing (a load reject) and one is not an image (an index reject)."""
    d = tmp_path_factory.mktemp("scale")
    write_data_dir(d)
    return d


def _build_args(data: Path, out: Path) -> list[str]:
    return [
        "cache",
        "build",
        "--index",
        str(data),
        "--root",
        str(data / "images"),
        "--out",
        str(out),
        "--rows-per-file",
        "2",
        "--workers",
        "0",
        "--quiet",
    ]


@pytest.fixture(scope="module")
def single(data) -> Path:
    """The one-process build every multi-process build must equal."""
    out = data / "single"
    threads = torch.get_num_threads()
    try:
        assert cli.main(_build_args(data, out)) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def _run(cmd: list[str], log: Path, **env: str) -> tuple[int, str]:
    with open(log, "w") as f:  # a file, not a pipe: a killed rank cannot block on it
        rc = subprocess.run(
            cmd,
            cwd=REPO,
            stdout=f,
            stderr=subprocess.STDOUT,
            timeout=300,
            env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        ).returncode
    return rc, log.read_text()


def _torchrun(*extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        *extra,
        "-m",
        "emolog",
    ]


def _same_as_single(single: Path, out: Path) -> None:
    assert_same_cache(single, out)
    a, b = read_manifest(single), read_manifest(out)
    key = lambda r: (r["image_id"], r["rel_path"], r["reason"], r["stage"])  # noqa: E731
    assert sorted(map(key, a["rejects"])) == sorted(map(key, b["rejects"]))
    assert b["info"]["merged_from"] == ["part-0-of-2", "part-1-of-2"]


def test_torchrun_two_ranks_equal_one_process(data, single, tmp_path) -> None:
    out = tmp_path / "cache"
    rc, log = _run(_torchrun() + _build_args(data, out), tmp_path / "log")
    assert rc == 0, log[-3000:]
    _same_as_single(single, out)
    assert "OK; 5/6 requested ids present, 1 rejected" in log  # rank 0 verified the merge
    for i in range(2):  # each rank wrote its own part, of its own slice
        assert read_manifest(out / f"part-{i}-of-2")["info"]["part"]["index"] == i


def test_killed_rank_restarted_gives_the_same_cache(data, single, tmp_path) -> None:
    # `--nproc 2 --max-restarts 1`: torchrun's elastic agent started by emolog itself (the
    # shortcut); rank 1 SIGKILLs itself after its first shard, in the first attempt only
    out = tmp_path / "cache"
    cmd = [sys.executable, "-m", "emolog", *_build_args(data, out), "--nproc", "2", "--max-restarts", "1"]
    rc, log = _run(cmd, tmp_path / "log", **{KILL_ENV: "1", KILL_RANK_ENV: "1"})
    assert rc == 0, log[-3000:]
    assert "exitcode: -9" in log  # the kill really happened, and the job survived it
    assert "2 were done before, 1 written" in log  # rank 1 resumed after its first shard
    _same_as_single(single, out)
    assert verify_cache(out, load_cache(single).ids).ok
