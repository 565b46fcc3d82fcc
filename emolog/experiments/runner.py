"""The one runner of every comparison: train (or resume, or read) a list of arms.

An arm is one trained system of a comparison: a run directory name and the full run config
it trains with (``emolog experiment``'s regime x seed x sweep runs, the context experiment's
global / gated / rules programs, the gate-start sweep's settings). ``run_arms`` gives each
arm's ``results.json``: read when the run finished (and its files check out), resumed from
its checkpoint, or trained; in ``jobs`` processes at once, only one shard's share, or, with
``train=False``, from disk only. What a comparison does with the runs (its tables) is its own.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emolog.data.artefacts import ArtefactError, ArtefactMissing, ChecksumError, check_record, read_json


@dataclass(frozen=True)
class Arm:
    """One system of a comparison: ``runs/<name>/`` trained with run config ``config``."""

    name: str
    config: Mapping[str, Any]


@dataclass(frozen=True)
class RunOptions:
    """How arms are run. ``jobs``: runs at once, in processes of one torch thread each;
    ``shard`` (i, N): only that shard's arms (``assign``); ``train=False``: nothing is
    trained, an arm without results.json is a failure (``known_failures`` by name says why);
    ``progress``: a progress bar over the arms."""

    jobs: int = 1
    shard: tuple[int, int] | None = None
    train: bool = True
    known_failures: Mapping[str, str] | None = None
    progress: bool = True


def assign(names: Sequence[str], shard: tuple[int, int]) -> set[str]:
    """The run names shard ``(i, N)`` runs: every N-th of the sorted names, from i."""
    i, n = shard
    return set(sorted(set(names))[i::n])


def shard_arms(arms: Sequence[Arm], shard: tuple[int, int] | None) -> list[Arm]:
    """The arms shard ``shard`` runs (all of them without a shard), in their order."""
    if shard is None:
        return list(arms)
    mine = assign([a.name for a in arms], shard)
    return [a for a in arms if a.name in mine]


def read_finished_run(run_dir: Path) -> dict:
    """A finished run's results.json, refused (naming the file) when it or the file the tables
    read (its predictions.csv) is damaged."""
    from emolog.experiments.tables import METRICS
    from emolog.runs.reader import RESULTS_FIELDS

    results = read_json(run_dir / "results.json", "run", RESULTS_FIELDS)
    check_record(run_dir / "predictions.csv", results.get("files"), run_dir / "results.json")
    # a run finished before a metric joined the tables lacks it: damaged for the tables' purpose
    # (retrained, or refused by merge), never a KeyError half-way through writing them
    test = (results.get("metrics") or {}).get("test")
    missing = [k for k in METRICS if not isinstance(test, dict) or k not in test]
    if missing:
        raise ArtefactError(
            f"{run_dir / 'results.json'}: its test metrics lack {missing} (written by an older emolog, or edited)"
        )
    return results


def execute_arm(arm: Arm, run_dir: Path) -> dict:
    """results.json of one arm: read when it exists and vouches for the run's files, else
    trained (resumed from a checkpoint; a damaged finished run is recomputed, saying so)."""
    from emolog.runs.train import CHECKPOINT, train_run

    if (run_dir / "results.json").exists():
        try:
            return read_finished_run(run_dir)
        except (ArtefactError, ArtefactMissing, ChecksumError) as e:
            print(f"{e}; recomputing the run {run_dir}", file=sys.stderr)
    return train_run(dict(arm.config), run_dir, resume=(run_dir / CHECKPOINT).exists(), progress=False)


def _one_thread() -> None:
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def run_arms(
    arms: Sequence[Arm],
    runs_dir: Path,
    options: RunOptions = RunOptions(),
    errors: tuple[type[BaseException], ...] = (),
) -> tuple[dict[str, dict], list[dict]]:
    """(results.json by arm name, failures) of ``options.shard``'s arms, in the arms' order;
    each arm's run lives in ``runs_dir / arm.name``. An exception of ``errors`` fails that arm
    only (recorded with its message); any other propagates."""
    arms = shard_arms(arms, options.shard)
    if not options.train:
        return _read_arms(arms, runs_dir, options.known_failures or {})
    from tqdm import tqdm

    results: dict[str, dict] = {}
    failed: list[dict] = []
    bar = tqdm(total=len(arms), desc="experiment runs", unit="run", disable=not options.progress)

    def done(name: str, get: Callable[[], dict]) -> None:
        try:
            results[name] = get()
        except errors as e:
            failed.append({"run": name, "error": f"{type(e).__name__}: {e}"})
            print(f"run {name} failed: {e}", file=sys.stderr)
        bar.update(1)

    if options.jobs <= 1:
        for a in arms:
            done(a.name, lambda a=a: execute_arm(a, runs_dir / a.name))
    else:
        # spawn: a forked child would inherit CUDA state and torch's thread pools
        with ProcessPoolExecutor(
            options.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread
        ) as pool:
            futures = [(a.name, pool.submit(execute_arm, a, runs_dir / a.name)) for a in arms]
            for name, fut in futures:
                done(name, fut.result)
    bar.close()
    order = {a.name: k for k, a in enumerate(arms)}
    failed.sort(key=lambda f: order[f["run"]])
    return {a.name: results[a.name] for a in arms if a.name in results}, failed


def _read_arms(
    arms: Sequence[Arm], runs_dir: Path, known_failures: Mapping[str, str]
) -> tuple[dict[str, dict], list[dict]]:
    """``run_arms`` without training: the finished runs, and a failure for each other arm."""
    results: dict[str, dict] = {}
    failed: list[dict] = []
    for a in arms:
        if (runs_dir / a.name / "results.json").exists():  # a damaged run is refused, naming the file
            results[a.name] = read_finished_run(runs_dir / a.name)
        else:
            failed.append(
                {
                    "run": a.name,
                    "error": known_failures.get(a.name, "no results.json: not run (a shard did not finish?)"),
                }
            )
    return results, failed
