"""Split an experiment's runs over processes (``--jobs K``) and over jobs or machines
(``--shard i/N`` + ``emolog experiment merge``).

Assignment is by run name: the names sorted, every N-th from i, so it depends only on the set
of runs the command plans (not on flag order, host or time) and every shard of one command
agrees. Each run writes its own ``runs/<name>/`` directory (atomic files, resumable), so shards
share nothing but the experiment directory. Shard 0 also computes the baselines. A finished
shard writes ``shards/shard-i-of-N.json`` (its config, runs, failures, wall time); ``merge``
refuses until all N exist with one config, then builds the tables exactly as one process
would: from the same ``results.json`` and prediction files, by the same code
(``run_experiment`` with ``train=False``, which reads runs and trains none).

``--jobs K`` runs K runs at once in worker processes with one torch thread each: the runs are
small (batch x 7 tensors), so one process per core beats threads inside one run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

from emolog.data.artefacts import FORMATS, ArtefactError, ArtefactMissing, check_record, read_json
from emolog.data.atomic import atomic_write_text
from emolog.errors import InputError, MissingError

SHARDS = "shards"


class ShardError(InputError, ValueError):
    """Shard records that disagree about the experiment."""


class ShardMissingError(MissingError, ShardError):
    """A shard's record is absent: the shard has not finished (exit 4)."""


def assign(names: Sequence[str], shard: tuple[int, int]) -> set[str]:
    """The run names shard ``(i, N)`` runs: every N-th of the sorted names, from i."""
    i, n = shard
    return set(sorted(set(names))[i::n])


def _one_thread() -> None:
    import torch
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def run_specs(specs: Sequence[Any], execute: Callable[..., dict], base: dict, runs_dir: Path, *,
              jobs: int = 1, train: bool = True, errors: tuple[type[BaseException], ...] = (),
              known_failures: dict[str, str] | None = None, progress: bool = True
              ) -> tuple[dict[str, dict], list[dict]]:
    """``execute(spec, base, runs_dir / spec.name, False)`` for each spec: (results by name,
    failures). An exception of ``errors`` fails that run only. With ``train=False`` nothing
    is trained: a run without results.json is a failure (``known_failures`` says why)."""
    from tqdm import tqdm
    results: dict[str, dict] = {}
    failed: list[dict] = []
    if not train:
        for s in specs:
            path = runs_dir / s.name / "results.json"
            if path.exists():   # a damaged run is refused, naming the file: its shard recomputes it
                results[s.name] = read_finished_run(runs_dir / s.name)
            else:
                failed.append({"run": s.name, "error": (known_failures or {}).get(
                    s.name, "no results.json: not run (a shard did not finish?)")})
        return results, failed
    bar = tqdm(total=len(specs), desc="experiment runs", unit="run", disable=not progress)

    def done(name: str, get: Callable[[], dict]) -> None:
        try:
            results[name] = get()
        except errors as e:
            failed.append({"run": name, "error": f"{type(e).__name__}: {e}"})
            print(f"run {name} failed: {e}", file=sys.stderr)
        bar.update(1)

    if jobs <= 1:
        for s in specs:
            done(s.name, lambda s=s: execute(s, base, runs_dir / s.name, False))
    else:
        # spawn: a forked child would inherit CUDA state and torch's thread pools
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_one_thread) as pool:
            futures = [(s.name, pool.submit(execute, s, base, runs_dir / s.name, False)) for s in specs]
            for name, fut in futures:
                done(name, fut.result)
    bar.close()
    order = {s.name: k for k, s in enumerate(specs)}
    failed.sort(key=lambda f: order[f["run"]])
    return {s.name: results[s.name] for s in specs if s.name in results}, failed


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
        raise ArtefactError(f"{run_dir / 'results.json'}: its test metrics lack {missing} "
                            "(written by an older emolog, or edited)")
    return results


def record_path(out: Path, shard: tuple[int, int]) -> Path:
    return Path(out) / SHARDS / f"shard-{shard[0]}-of-{shard[1]}.json"


def write_record(out: Path, shard: tuple[int, int], config: dict, runs: Sequence[str],
                 failed: list[dict], baselines: bool, seconds: float) -> Path:
    """Mark shard ``(i, N)`` finished (written last, atomically)."""
    path = record_path(out, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"format": FORMATS["shard-record"], "shard": list(shard), "config": config,
                                        "runs": list(runs),
                                        "failed": failed, "baselines": baselines,
                                        "wall_time_s": seconds}, indent=1))
    return path


def read_records(out: Path) -> tuple[dict, list[dict]]:
    """(the experiment config, every shard record); ShardError names absent shards or
    disagreeing configs."""
    files = sorted((Path(out) / SHARDS).glob("shard-*-of-*.json"))
    if not files:
        raise ShardMissingError(f"{out}: no {SHARDS}/shard-i-of-N.json; run `emolog experiment --shard i/N` first")
    records = [read_json(f, "shard-record", {"shard": list, "config": dict, "runs": list, "failed": list})
               for f in files]
    counts = {r["shard"][1] for r in records}
    if len(counts) > 1:
        raise ShardError(f"{out}/{SHARDS}: records of different splittings N={sorted(counts)}; remove the stale ones")
    (n,) = counts
    have = {r["shard"][0] for r in records}
    absent = [i for i in range(n) if i not in have]
    if absent:
        raise ShardMissingError(f"{out}: shards {', '.join(f'{i}/{n}' for i in absent)} have not finished "
                                f"(missing: {', '.join(record_path(out, (i, n)).name for i in absent)}); "
                                "run them, then merge")
    first = records[0]["config"]
    for r in records[1:]:
        if r["config"] != first:
            raise ShardError(f"{out}: shard {r['shard'][0]}/{n} ran another experiment "
                             f"({r['config']} != {first})")
    return first, sorted(records, key=lambda r: r["shard"][0])


def merge(out: str | Path, run_experiment: Callable[..., dict], progress: bool = True) -> dict:
    """Join the shards' runs into the comparison, bootstrap, memorisation tables and
    experiment.json of ``out``, as one unsharded ``run_experiment`` (passed in by
    ``emolog.experiments.experiment``, which imports this module) writes them."""
    out = Path(out)
    config, records = read_records(out)
    for r in records:   # a run a shard finished must still be there: its absence is damage, not a failure
        for name in r["runs"]:
            if not (out / "runs" / name / "results.json").is_file():
                raise ArtefactMissing(f"{out / 'runs' / name / 'results.json'}: missing, though "
                                      f"{record_path(out, tuple(r['shard']))} records the run as finished; "
                                      f"rerun shard {r['shard'][0]}/{r['shard'][1]} to recompute it")
    failures = {f["run"]: f"shard {r['shard'][0]}/{r['shard'][1]}: {f['error']}"
                for r in records for f in r["failed"]}
    t0 = time.perf_counter()
    exp = run_experiment(out=out, **config, train=False, known_failures=failures, progress=progress)
    exp["shards"] = [{"shard": r["shard"], "runs": len(r["runs"]), "wall_time_s": r["wall_time_s"]}
                     for r in records]
    exp["merge_time_s"] = time.perf_counter() - t0
    return exp
