"""Split an experiment's runs over processes (``--jobs K``) and over jobs or machines
(``--shard i/N`` + ``emolog experiment merge``).

Assignment is by run name (``runner.assign``): the names sorted, every N-th from i, so it depends only on the set
of runs the command plans (not on flag order, host or time) and every shard of one command
agrees. Each run writes its own ``runs/<name>/`` directory (atomic files, resumable), so shards
share nothing but the experiment directory. Shard 0 also computes the baselines. A finished
shard writes ``shards/shard-i-of-N.json`` (its config, runs, failures, wall time); ``merge``
refuses until all N exist with one config, then builds the tables exactly as one process
would: from the same ``results.json`` and prediction files, by the same code
(``run_experiment`` with ``train=False``, which reads runs and trains none).

``--jobs K`` runs K runs at once in worker processes with one torch thread each (``runner.run_arms``):
the runs are small (batch x 7 tensors), so one process per core beats threads inside one run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

from emolog.data.artefacts import FORMATS, ArtefactMissing, read_json
from emolog.data.atomic import atomic_write_text
from emolog.errors import InputError, MissingError
from emolog.experiments.runner import RunOptions

SHARDS = "shards"


class ShardError(InputError, ValueError):
    """Shard records that disagree about the experiment."""


class ShardMissingError(MissingError, ShardError):
    """A shard's record is absent: the shard has not finished (exit 4)."""


def record_path(out: Path, shard: tuple[int, int]) -> Path:
    return Path(out) / SHARDS / f"shard-{shard[0]}-of-{shard[1]}.json"


def write_record(
    out: Path,
    shard: tuple[int, int],
    config: dict,
    runs: Sequence[str],
    failed: list[dict],
    baselines: bool,
    seconds: float,
) -> Path:
    """Mark shard ``(i, N)`` finished (written last, atomically)."""
    path = record_path(out, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        path,
        json.dumps(
            {
                "format": FORMATS["shard-record"],
                "shard": list(shard),
                "config": config,
                "runs": list(runs),
                "failed": failed,
                "baselines": baselines,
                "wall_time_s": seconds,
            },
            indent=1,
        ),
    )
    return path


def read_records(out: Path) -> tuple[dict, list[dict]]:
    """(the experiment config, every shard record); ShardError names absent shards or
    disagreeing configs."""
    files = sorted((Path(out) / SHARDS).glob("shard-*-of-*.json"))
    if not files:
        raise ShardMissingError(f"{out}: no {SHARDS}/shard-i-of-N.json; run `emolog experiment --shard i/N` first")
    records = [
        read_json(f, "shard-record", {"shard": list, "config": dict, "runs": list, "failed": list}) for f in files
    ]
    counts = {r["shard"][1] for r in records}
    if len(counts) > 1:
        raise ShardError(f"{out}/{SHARDS}: records of different splittings N={sorted(counts)}; remove the stale ones")
    (n,) = counts
    have = {r["shard"][0] for r in records}
    absent = [i for i in range(n) if i not in have]
    if absent:
        raise ShardMissingError(
            f"{out}: shards {', '.join(f'{i}/{n}' for i in absent)} have not finished "
            f"(missing: {', '.join(record_path(out, (i, n)).name for i in absent)}); "
            "run them, then merge"
        )
    first = records[0]["config"]
    for r in records[1:]:
        if r["config"] != first:
            raise ShardError(f"{out}: shard {r['shard'][0]}/{n} ran another experiment ({r['config']} != {first})")
    return first, sorted(records, key=lambda r: r["shard"][0])


def merge(out: str | Path, run_experiment: Callable[[dict, Path, RunOptions], dict], progress: bool = True) -> dict:
    """Join the shards' runs into the comparison, bootstrap, memorisation tables and
    experiment.json of ``out``, as one unsharded run writes them: ``run_experiment(config, out,
    options)`` of the shards' experiment config (passed in by ``emolog.experiments.experiment``,
    which imports this module)."""
    out = Path(out)
    config, records = read_records(out)
    for r in records:  # a run a shard finished must still be there: its absence is damage, not a failure
        for name in r["runs"]:
            if not (out / "runs" / name / "results.json").is_file():
                raise ArtefactMissing(
                    f"{out / 'runs' / name / 'results.json'}: missing, though "
                    f"{record_path(out, tuple(r['shard']))} records the run as finished; "
                    f"rerun shard {r['shard'][0]}/{r['shard'][1]} to recompute it"
                )
    failures = {f["run"]: f"shard {r['shard'][0]}/{r['shard'][1]}: {f['error']}" for r in records for f in r["failed"]}
    t0 = time.perf_counter()
    exp = run_experiment(config, out, RunOptions(train=False, known_failures=failures, progress=progress))
    exp["shards"] = [{"shard": r["shard"], "runs": len(r["runs"]), "wall_time_s": r["wall_time_s"]} for r in records]
    exp["merge_time_s"] = time.perf_counter() - t0
    return exp
