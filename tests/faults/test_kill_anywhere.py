"""kill -9 anywhere: a training run and a sharded experiment, SIGKILLed at 20 seeded points
each, resume (the same command again; `train` with --resume) to exactly the uninterrupted
result: every file a run or an experiment computes is compared byte for byte (weights by
their tensors' bytes), only the seconds it took left out.

What a kill can leave on disk changes only at a write, and every write is atomic, so the
points are drawn from the writes the uninterrupted command makes (emolog.data.atomic.KILL_ENV:
the N-th write, killed before it, with its temporary file complete but not renamed, or after
it): every point is a state some real kill leaves. The killed process also leaves its lock
file behind; the resumed command takes it over.
"""

from __future__ import annotations

import contextlib
import random
import shutil
from pathlib import Path

from emolog.data import atomic
from procs import killed_at, pool_map
from world import TRAIN, experiment_digest, run_cli, run_digest

POINTS = 20
SIGKILL = 9
RUN = ["train", "--data", "D", "--out", "K", "--set", "train.epochs=4", *TRAIN]
# two logic-only runs (one per shard) and a baseline: every kind of file an experiment writes
SHARDED = ["--regimes", "logic-only", "--seeds", "0,1", "--baselines", "majority", "--n-boot", "20", *TRAIN]
STAGES = {
    "shard 0/2": ["experiment", "--data", "D", "--out", "X", "--shard", "0/2", *SHARDED],
    "shard 1/2": ["experiment", "--data", "D", "--out", "X", "--shard", "1/2", *SHARDED],
    "merge": ["experiment", "merge", "X", "--quiet"],
}


def _copy(src: Path, work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work, symlinks=True)


def _writes(argv: list[str]) -> int:
    """How many atomic writes ``emolog ARGV`` makes (run here, in the current directory)."""
    before = atomic._count
    got = run_cli(argv)
    assert got.code == 0, got.err
    return atomic._count - before


def _points(counts: dict[str, int], seed: int) -> list[tuple[str, int, str]]:
    events = [(stage, n, phase) for stage, w in counts.items() for n in range(1, w + 1) for phase in atomic.KILL_PHASES]
    return random.Random(seed).sample(events, POINTS)


def _leftovers(root: Path) -> list[str]:
    """Temporary files of atomic writes left in the output directories (a killed process's
    are removed by the next writer that takes the directory's lock)."""
    return sorted(str(p.relative_to(root)) for d in ("K", "X") for p in (root / d).rglob(".*.part"))


def _kill_train(start: Path, work: Path, n: int, phase: str) -> dict:
    _copy(start, work)
    sig = killed_at(str(work), RUN, f"{n}:{phase}")
    with contextlib.chdir(work):
        finished = Path("K/results.json").is_file()
        before = run_digest(Path("K")) if finished else None
        got = run_cli([*RUN, "--resume"])
        return {
            "signal": sig,
            "finished_before": before,
            "code": got.code,
            "err": got.err,
            "digest": run_digest(Path("K")) if got.code == 0 else None,
            "left": _leftovers(Path(".")),
        }


def test_training_killed_anywhere_resumes_to_the_same_run(world, tmp_path):
    _copy(world / "D", tmp_path / "start" / "D")
    _copy(tmp_path / "start", tmp_path / "ref")
    with contextlib.chdir(tmp_path / "ref"):
        n_writes = _writes(RUN)
        reference = run_digest(Path("K"))
    points = _points({"train": n_writes}, seed=0)
    got = pool_map(
        _kill_train, [(tmp_path / "start", tmp_path / f"k{i}", n, phase) for i, (_, n, phase) in enumerate(points)]
    )
    for (_, n, phase), g in zip(points, got):
        where = f"killed at write {n}/{n_writes} ({phase})"
        assert g["signal"] == SIGKILL, where
        # a results.json left by the killed run is the mark of a finished run: then it is whole
        assert g["finished_before"] in (None, reference), where
        assert g["code"] == 0, (where, g["err"])
        assert "took over the lock" in g["err"], where
        assert g["digest"] == reference, where
        assert not g["left"], (where, g["left"])


def _kill_experiment(snapshots: Path, work: Path, stage: str, n: int, phase: str) -> dict:
    _copy(snapshots / stage.replace("/", " of "), work)  # the other shards done, this stage not started
    sig = killed_at(str(work), STAGES[stage], f"{n}:{phase}")
    with contextlib.chdir(work):  # the same command again, then the merge
        codes = [run_cli(STAGES[s]).code for s in dict.fromkeys([stage, "merge"])]
        return {
            "signal": sig,
            "codes": codes,
            "digest": experiment_digest(Path("X")) if set(codes) == {0} else None,
            "left": _leftovers(Path(".")),
        }


def test_sharded_experiment_killed_anywhere_resumes_to_the_same_tables(world, tmp_path):
    snapshots = tmp_path / "snapshots"
    _copy(world / "D", tmp_path / "ref" / "D")
    counts = {}
    with contextlib.chdir(tmp_path / "ref"):
        for argv in STAGES.values():  # once to cache every seed's pretrained scene net in D (not a point)
            assert run_cli(argv).code == 0
        shutil.rmtree("X")
        _copy(Path("."), snapshots / "shard 0 of 2")
        with contextlib.chdir(snapshots / "shard 0 of 2"):  # the state "shard 1 done, shard 0 not started"
            assert run_cli(STAGES["shard 1/2"]).code == 0
        for stage, argv in STAGES.items():
            if stage != "shard 0/2":
                _copy(Path("."), snapshots / stage.replace("/", " of "))
            counts[stage] = _writes(argv)
        reference = experiment_digest(Path("X"))
    points = _points(counts, seed=1)
    assert {stage for stage, _, _ in points} == set(STAGES)  # every stage is hit
    got = pool_map(_kill_experiment, [(snapshots, tmp_path / f"x{i}", *p) for i, p in enumerate(points)])
    for (stage, n, phase), g in zip(points, got):
        where = f"{stage} killed at write {n}/{counts[stage]} ({phase})"
        assert g["signal"] == SIGKILL, where
        assert set(g["codes"]) == {0}, where
        assert g["digest"] == reference, where
        assert not g["left"], (where, g["left"])
