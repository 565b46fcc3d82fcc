"""Experiments split across jobs: ``--shard 0/2`` + ``--shard 1/2`` (one of them with
``--jobs 2`` worker processes) + ``merge`` write the very tables one unsharded process writes."""

from __future__ import annotations

import argparse
import json

import pytest

from emolog.simulate import SimConfig, simulate, write_simulation
from emolog.experiments import experiment
from emolog.experiments.distribute import ShardError
from emolog.experiments.runner import assign

ARGS = [
    "--regimes",
    "logic-only",
    "--seeds",
    "0,1",
    "--memorisation",
    "60",
    "--set",
    "train.epochs=1",
    "--set",
    "device=cpu",
    "--baselines",
    "scene-only,uniform-average",
    "--baseline-epochs",
    "2",
    "--n-boot",
    "50",
    "--quiet",
]
TABLES = ("comparison.csv", "comparison.tex", "bootstrap.csv", "memorisation.csv")


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    experiment.add_arguments(parser)
    return experiment.run(parser.parse_args(list(argv)))


def test_assignment_is_a_deterministic_partition() -> None:
    names = [f"run-{k}" for k in range(7)]
    parts = [assign(names, (i, 3)) for i in range(3)]
    assert set().union(*parts) == set(names) and sum(map(len, parts)) == 7
    assert assign(list(reversed(names)), (1, 3)) == parts[1]  # independent of the order given


def test_shards_plus_merge_equal_one_process(tmp_path) -> None:
    write_simulation(simulate(SimConfig(n=300, seed=2, scene_dim=16)), tmp_path / "D")
    data = str(tmp_path / "D")
    assert _cli("--data", data, "--out", str(tmp_path / "one"), *ARGS) == 0
    sharded = str(tmp_path / "sharded")
    assert _cli("--data", data, "--out", sharded, "--shard", "1/2", "--jobs", "2", *ARGS) == 0
    with pytest.raises(ShardError, match="shards 0/2 have not finished"):
        _cli("merge", sharded, "--quiet")
    assert _cli("--data", data, "--out", sharded, "--shard", "0/2", *ARGS) == 0
    assert _cli("merge", sharded, "--quiet") == 0
    for name in TABLES:
        assert (tmp_path / "sharded" / name).read_text() == (tmp_path / "one" / name).read_text(), name
    one, merged = (json.loads((tmp_path / d / "experiment.json").read_text()) for d in ("one", "sharded"))
    for key in ("config", "runs", "baselines", "reference", "failed", "true_source_weights"):
        assert merged[key] == one[key], key
