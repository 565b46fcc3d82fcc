"""Disk full and I/O errors at every write of a cache build, a training run and an experiment.

The N-th atomic write of the command fails: ENOSPC while its bytes are written (half of them
reached the temporary file) for odd N, EIO when they are fsynced for even N (where a full
disk or a failing one surfaces). Each time: the command stops with one line naming the
file it was writing; no temporary file is left; no reader takes what is on disk for a
finished result; and once the disk has room again, the same command (``train`` with
``--resume``) finishes with exactly the uninterrupted result.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest

from emolog.data import atomic
from procs import pool_map
from world import TRAIN, experiment_digest, run_api, run_cli, run_digest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: helpers.photos, helpers.cache

RUN = ["train", "--data", "D", "--out", "K", *TRAIN]
EXPERIMENT = [
    "experiment",
    "--data",
    "D",
    "--out",
    "X",
    "--regimes",
    "logic-only",
    "--seeds",
    "0",
    "--baselines",
    "majority",
    "--n-boot",
    "20",
    *TRAIN,
]
ERRORS = {1: (errno.ENOSPC, "No space left on device"), 0: (errno.EIO, "Input/output error")}


class _HalfWritten:
    """A file whose write puts half the bytes on disk, then fails as a full disk does."""

    def __init__(self, f) -> None:
        self.f = f

    def write(self, data: bytes) -> int:
        self.f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


class FailingOS:
    """``os`` as emolog.data.atomic sees it, with its ``n``-th atomic write failing."""

    def __init__(self, n: int) -> None:
        self.n, self.failed_on = n, None

    def __getattr__(self, name: str):
        return getattr(os, name)

    def fdopen(self, fd: int, *args, **kwargs):
        f = os.fdopen(fd, *args, **kwargs)
        return _HalfWritten(f) if atomic._count == self.n and self.n % 2 else f

    def fsync(self, fd: int) -> None:
        if atomic._count == self.n and not self.n % 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.fsync(fd)


@contextlib.contextmanager
def failing_write(n: int):
    """Atomic writes counted from 1 inside the block; the ``n``-th fails."""
    real, start = atomic.os, atomic._count
    atomic.os, atomic._count = FailingOS(n), 0
    try:
        yield
    finally:
        atomic.os, atomic._count = real, start + atomic._count


def _parts(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*.part"))


def _count_writes(argv: list[str]) -> int:
    with failing_write(0):
        got = run_cli(argv)
        assert got.code == 0, got.err
        return atomic._count


def _fail_then_rerun(start: Path, work: Path, argv: list[str], rerun: list[str], n: int, out: str) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(start, work)
    with contextlib.chdir(work):
        with failing_write(n):
            failed = run_cli(argv)
        state = {
            "code": failed.code,
            "line": failed.last_error_line,
            "parts": _parts(Path(out)),
            "traceback": failed.traceback,
        }
        if out == "K":  # a reader must not take the half-done run for a finished one
            from emolog import load_run

            state["load_run"] = run_api(lambda: load_run("K"))[0].code
        else:
            state["finished"] = Path("X/experiment.json").is_file()
        again = run_cli(rerun)
        state["rerun"] = again.code
        state["digest"] = (
            (run_digest(Path(out)) if out == "K" else experiment_digest(Path(out))) if again.code == 0 else again.err
        )
    return state


@pytest.mark.parametrize("what", ["train", "experiment"])
def test_every_write_failing_stops_cleanly_and_a_rerun_finishes_the_same(world, tmp_path, what):
    argv, rerun, out = (RUN, [*RUN, "--resume"], "K") if what == "train" else (EXPERIMENT, EXPERIMENT, "X")
    shutil.copytree(world / "D", tmp_path / "start" / "D")
    shutil.copytree(tmp_path / "start", tmp_path / "ref")
    with contextlib.chdir(tmp_path / "ref"):
        n_writes = _count_writes(argv)
        reference = run_digest(Path(out)) if out == "K" else experiment_digest(Path(out))
    got = pool_map(
        _fail_then_rerun,
        [(tmp_path / "start", tmp_path / f"w{n}", argv, rerun, n, out) for n in range(1, n_writes + 1)],
    )
    assert n_writes >= 9
    for n, g in enumerate(got, start=1):
        where = f"{what}: write {n} of {n_writes} failing"
        _, words = ERRORS[n % 2]
        assert g["traceback"] is None and g["code"] == 1, (where, g)
        assert g["line"].startswith(f"emolog: error: {words}: ") and "/" in g["line"], (where, g["line"])
        assert not g["parts"], (where, g["parts"])
        if out == "K":
            assert g["load_run"] != 0, where
        else:
            assert not g["finished"], where
        assert g["rerun"] == 0 and g["digest"] == reference, (where, g["digest"] if g["rerun"] else "")


class _Memo:
    """The real perception, each image perceived once (the injected builds see its real
    outputs without paying for the networks again)."""

    def __init__(self, perception) -> None:
        self.p, self.seen = perception, {}
        self.K, self.scene_dim = perception.K, perception.scene_dim

    def fingerprint(self) -> dict:
        return self.p.fingerprint()

    def perceive_batch(self, images: list) -> dict:
        import numpy as np

        rows = []
        for im in images:
            key = hashlib.sha256(im.tobytes()).hexdigest()
            if key not in self.seen:
                self.seen[key] = {k: v[0] for k, v in self.p.perceive_batch([im]).items()}
            rows.append(self.seen[key])
        return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def test_cache_build_every_write_failing_then_resumed(tmp_path):
    import torch

    from emolog.cache.build import BuildOptions, build_cache, index_rejects
    from emolog.cache.store import load_cache
    from emolog.data.index import ImageIndex
    from emolog.data.split import load_split
    from emolog.perception.pipeline import Perception
    from helpers.cache import TENSORS
    from helpers.photos import write_data_dir

    d = tmp_path / "data"
    write_data_dir(d)
    index = ImageIndex.load(d / "index.csv")
    split = load_split(d / "split.json")
    ids = split["train"] + split["val"] + split["test"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        perception = _Memo(Perception(device="cpu"))

        def build(out: Path) -> None:
            build_cache(
                perception,
                index,
                ids,
                d / "images",
                out,
                prior_rejects=index_rejects(d / "rejects.csv"),
                options=BuildOptions(rows_per_file=2, batch_size=4, progress=False),
            )

        with failing_write(0):
            build(tmp_path / "ref")
            n_writes = atomic._count
        ref = load_cache(tmp_path / "ref")
        assert n_writes >= 8
        for n in range(1, n_writes + 1):
            out = tmp_path / f"c{n}"
            with failing_write(n), pytest.raises(OSError) as failed:
                build(out)
            assert failed.value.errno == ERRORS[n % 2][0] and str(out) in str(failed.value.filename), n
            assert not _parts(out), n
            build(out)  # the disk has room again: the same call resumes
            got = load_cache(out).select(ref.ids)
            for k in TENSORS:
                assert torch.equal(getattr(got, k), getattr(ref, k)), (n, k)
            assert got.manifest["rejects"] == ref.manifest["rejects"], n
    finally:
        torch.set_num_threads(threads)
