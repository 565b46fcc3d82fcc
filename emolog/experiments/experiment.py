"""`emolog experiment`: regimes x seeds x sweeps, the baselines, and the tables that compare them.

    emolog experiment --data D --regimes logic-only,problog-em,nets-only,joint --seeds 0,1,2 \\
        [--sweep logic.lr=3e-3,1e-2,3e-2,1e-1] [--sweep train.imbalance=none,class-weighted] \\
        [--memorisation 250,500,1000,2500,5000] [--set key=value ...] --out EXP

Sweeps vary one config key at a time from the base config (the base runs are always made);
a sweep value equal to the base value is the base run. ``--memorisation`` is an ``n_train``
sweep of logic-only and joint: it shows whether joint training on few images lets the scene
net absorb the credit (the learned scene weight rises as n_train falls).

Writes (docs/architecture.md section 4): ``runs/<regime>-s<seed>[-<key>=<value>]/`` run
directories, ``baselines/<name>-s<seed>.csv`` (test predictions), ``comparison.csv`` and
``comparison.tex`` (mean ± std over seeds), ``bootstrap.csv`` (paired bootstrap 95% CI of the
difference to logic-only), ``memorisation.csv`` and ``experiment.json``. Resumable: a run
whose ``results.json`` exists is not run again, one with only a checkpoint is resumed
(``emolog.experiments.runner.run_arms``).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from emolog.data.artefacts import FORMATS, read_json, record
from emolog.data.atomic import atomic_write_text
from emolog.data.lock import output_lock, remove_partials
from emolog.data.split import load_split, parse_shard
from emolog.labels import BASIC7
from emolog.experiments import distribute
from emolog.experiments.plan import ExperimentPlan, RunSpec, parse_sweep, plan_runs, spec_arm, unique
from emolog.experiments.runner import RunOptions, run_arms
from emolog.config.regimes import REGIMES
from emolog.config.run import BASELINES, ConfigError, RunConfig, parse_override
from emolog.model.target import experiment_target
from emolog.model.va_metrics import baseline_va_columns, va_columns
from emolog.experiments.tables import (
    METRICS,
    ExperimentError,
    bootstrap_table,
    comparison_table,
    comparison_tex,
    format_table,
    read_predictions,
    usable_baseline,
    write_predictions,
)  # noqa: F401

REFERENCE = "logic-only"
MEMO_COLUMNS = ["regime", "n_train", "seed", "val_accuracy", "train_accuracy"]  # with no run yet
TABLES = ("comparison.csv", "comparison.tex", "bootstrap.csv", "memorisation.csv")  # recorded in experiment.json


def execute_baselines(
    data: str,
    names: Sequence[str],
    seeds: Sequence[int],
    base: dict[str, Any],
    out: Path,
    epochs: int,
    classes: tuple[str, ...] = BASIC7,
    target: Any = None,
) -> dict[tuple[str, int], Path]:
    """Test predictions of each baseline per seed (deterministic ones once, as seed 0's file)."""
    from emolog.runtime import resolve_device, torch_threads  # torch: imported when the work starts
    from emolog.experiments.baselines import ClassifierFit, run_baselines

    device = resolve_device(base.get("device", "auto"))
    paths: dict[tuple[str, int], Path] = {}
    (out / "baselines").mkdir(parents=True, exist_ok=True)
    seeded = {"scene-only", "uniform-average", "fusion-mlp", "fusion-mlp-meta", "face-only", "tree"}
    test_ids = sorted(load_split(Path(data) / "split.json")["test"])
    for seed in seeds:
        todo = [
            n
            for n in names
            if not usable_baseline(out / "baselines" / f"{n}-s{seed}.csv", test_ids, classes)
            and (n in seeded or seed == seeds[0])
        ]
        if todo:
            with torch_threads(base.get("threads", RunConfig.threads)):
                r = run_baselines(
                    data,
                    tuple(todo),
                    ClassifierFit(epochs=epochs, seed=seed, device=device),
                    n_train=base.get("train.n_train"),
                    classes=classes,
                    target=target,
                )
            for n in todo:
                write_predictions(out / "baselines" / f"{n}-s{seed}.csv", r.ids, r.labels, r.probs[n], classes)
        for n in names:
            if n in seeded or seed == seeds[0]:
                paths[(n, seed)] = out / "baselines" / f"{n}-s{seed}.csv"
    return paths


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6g")
    atomic_write_text(path, buf.getvalue())


def _check_same_experiment(out: Path, config: dict) -> None:
    """Refuse to mix runs of different base configs or data in one experiment directory."""
    path = out / "experiment.json"
    if not path.exists():
        return
    old = read_json(path, "experiment", {"config": dict})["config"]  # damaged: refused, naming it
    for key in ("data", "overrides"):
        if old.get(key) != config[key]:
            raise ExperimentError(
                f"{out} holds an experiment with another {key} ({old.get(key)!r} != "
                f"{config[key]!r}); use a new --out directory"
            )


def run_experiment(plan: ExperimentPlan, out: str | Path, options: RunOptions = RunOptions()) -> dict:
    """Run (or resume) the experiment and write its directory; returns experiment.json's dict.

    A run that fails is recorded in ``experiment.json["failed"]`` (with its error) and left
    out of the tables; every other run is kept. Scale-out (``emolog.experiments.distribute``):
    ``options.jobs`` runs at once in processes; ``options.shard=(i, N)`` runs only that shard's
    runs (shard 0 also the baselines) and writes a shard record instead of the tables;
    ``options.train=False`` trains nothing and builds the tables from the runs on disk
    (``emolog experiment merge``).
    """
    from emolog.cache.store import CacheError

    out, shard = Path(out), options.shard
    _check_choices(plan.regimes, plan.seeds, plan.baselines)
    base = _base_config(plan.data, plan.overrides)
    parsed_sweeps = [parse_sweep(s) for s in plan.sweeps]
    _check_memorisation(plan.data, plan.memorisation)
    main, memo_specs = plan_runs(plan.regimes, plan.seeds, parsed_sweeps, plan.memorisation, base)
    specs = unique(main + memo_specs)
    config = plan.config()
    if options.train:
        _check_same_experiment(out, config)
    elif (out / "experiment.json").exists():  # merge rewrites it from the shard records
        print(f"{out / 'experiment.json'}: rewritten from the shard records and runs", file=sys.stderr)
    # one writer per experiment directory (per shard: the N shards of one experiment run at once);
    # experiment.json, the mark of a finished experiment, goes first and is written last
    lock = None if shard is None else f"shard-{shard[0]}-of-{shard[1]}"
    with output_lock(out, "emolog experiment", name=lock):
        _clear_output(out, shard)
        t0 = time.perf_counter()
        results, failed = run_arms(
            [spec_arm(s, base) for s in specs],
            out / "runs",
            options,
            errors=(ConfigError, CacheError, RuntimeError, ValueError),
        )
        classes, skipped, target = _label_set(
            base, plan.baselines
        )  # baselines needing basic-7 face probabilities: not for Emo8
        todo = [b for b in plan.baselines if b not in skipped]
        do_baselines = bool(todo) and (shard is None or shard[0] == 0)
        baseline_files = (
            execute_baselines(str(plan.data), todo, list(plan.seeds), base, out, plan.baseline_epochs, classes, target)
            if do_baselines
            else {}
        )
        if shard is not None:
            distribute.write_record(out, shard, config, list(results), failed, do_baselines, time.perf_counter() - t0)
            return {
                "shard": shard,
                "runs": [f"runs/{n}" for n in results],
                "failed": failed,
                "baselines": _relative(out, baseline_files),
                "sanity_warnings": _sanity_warnings(results),
                "table": pd.DataFrame(),
            }
        va = experiment_target(plan.data, target, base.get("train.n_train")) if target else None
        table, reference = _write_tables(out, main, memo_specs, results, baseline_files, classes, va, plan.n_boot)

        first = next(iter(results.values()), {})
        experiment = {
            "config": config,
            "runs": [f"runs/{s.name}" for s in specs if s.name in results],
            "baselines": _relative(out, baseline_files),
            "data": first.get("data", {"data_dir": str(plan.data)}),
            "true_source_weights": first.get("true_source_weights"),
            "reference": reference,
            "failed": failed,
            "classes": list(classes),
            "baselines_skipped": skipped,
            "sanity_warnings": _sanity_warnings(results),
            "wall_time_s": time.perf_counter() - t0,
            "format": FORMATS["experiment"],
            # written last: it marks the experiment finished and vouches for its tables by sha256
            "files": record(
                out, [*TABLES, *_relative(out, baseline_files), *(f"runs/{n}/results.json" for n in results)]
            ),
        }
        atomic_write_text(out / "experiment.json", json.dumps(experiment, indent=1))
        experiment["table"] = table
        return experiment


def _from_config(config: dict, out: Path, options: RunOptions) -> dict:
    """``run_experiment`` of experiment.json's (or a shard record's) ``config``."""
    return run_experiment(ExperimentPlan(**config), out, options)


def _check_choices(regimes: Sequence[str], seeds: Sequence[int], baselines: Sequence[str]) -> None:
    bad = [r for r in regimes if r not in REGIMES]
    if bad:
        raise ExperimentError(f"--regimes: unknown {bad}; choose from {list(REGIMES)}")
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        raise ExperimentError(f"--baselines: unknown {bad}; choose from {list(BASELINES)}")
    if not seeds or not regimes:
        raise ExperimentError("--regimes and --seeds must each list at least one value")


def _base_config(data: str, overrides: Sequence[str]) -> dict[str, Any]:
    """The config every run shares: the data and the ``--set`` overrides (keys by their current
    name, "group.key")."""
    base: dict[str, Any] = {"data": str(data)}
    for item in overrides:
        key, value = parse_override(item)
        base[key] = value
    if "regime" in base or "seed" in base:
        raise ExperimentError("--set regime/seed: use --regimes and --seeds")
    return base


def _check_memorisation(data: str, memorisation: Sequence[int]) -> None:
    pool = len(load_split(Path(data) / "split.json")["train"])
    too_big = [n for n in memorisation if n > pool]
    if too_big:
        raise ExperimentError(f"--memorisation {too_big}: the data has only {pool} training images")


def _clear_output(out: Path, shard: tuple[int, int] | None) -> None:
    """Remove what a killed writer left of the files this lock covers (runs/: each run's own lock)."""
    if shard is None:
        (out / "experiment.json").unlink(missing_ok=True)
    remove_partials(out / distribute.SHARDS, "*" if shard is None else distribute.record_path(out, shard).name)
    if shard is None or shard[0] == 0:
        remove_partials(out / "baselines")
    (out / "runs").mkdir(parents=True, exist_ok=True)


def _sanity_warnings(results: dict[str, dict]) -> dict[str, str]:
    return {n: r["sanity_warning"] for n, r in results.items() if r.get("sanity_warning")}


def _relative(out: Path, baseline_files: dict[tuple[str, int], Path]) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in baseline_files.values())


def _write_tables(
    out: Path,
    main: list[RunSpec],
    memo_specs: list[RunSpec],
    results: dict[str, dict],
    baseline_files: dict[tuple[str, int], Path],
    classes: tuple[str, ...],
    va: tuple[Any, dict] | None,
    n_boot: int,
) -> tuple[pd.DataFrame, str | None]:
    """Write comparison.csv/.tex, bootstrap.csv and memorisation.csv; (the comparison table,
    the bootstrap's reference system)."""
    rows, pred_files = _regime_rows(main, results, out)
    _add_baseline_rows(rows, pred_files, baseline_files, classes, va)
    table = comparison_table(rows) if rows else pd.DataFrame()
    _write_csv(table, out / "comparison.csv")
    atomic_write_text(out / "comparison.tex", comparison_tex(table) if rows else "")
    reference = REFERENCE if REFERENCE in pred_files else (next(iter(pred_files)) if pred_files else None)
    boot = bootstrap_table(pred_files, reference, n_boot, seed=0, va=va or (None, {})) if reference else pd.DataFrame()
    _write_csv(boot, out / "bootstrap.csv")
    _write_memorisation(memo_specs, results, out)
    return table, reference


def _regime_rows(main: list[RunSpec], results: dict[str, dict], out: Path) -> tuple[list[dict], dict[str, list[Path]]]:
    """Comparison rows of the finished runs, and their prediction files by system."""
    rows: list[dict] = []
    pred_files: dict[str, list[Path]] = {}
    for spec in main:
        if spec.name not in results:
            continue
        r = results[spec.name]
        m = r["metrics"]["test"]
        rows.append(
            {
                "system": spec.system,
                "kind": "regime",
                "regime": spec.regime,
                "sweep": spec.sweep_label,
                "seed": spec.seed,
                **{k: m[k] for k in METRICS},
                **va_columns(r),
                **{f"w_{s}": w for s, w in (r.get("source_weights") or {}).items()},
            }
        )
        pred_files.setdefault(spec.system, []).append(out / "runs" / spec.name / "predictions.csv")
    return rows, pred_files


def _add_baseline_rows(
    rows: list[dict],
    pred_files: dict[str, list[Path]],
    baseline_files: dict[tuple[str, int], Path],
    classes: tuple[str, ...],
    va: tuple[Any, dict] | None,
) -> None:
    """Append the baselines' comparison rows; ``va``: (fitted target, values by id) when the spec has one."""
    from emolog.metrics.classification import evaluate

    for (name, seed), path in baseline_files.items():
        ids, y, probs = read_predictions(path)
        m = evaluate(probs, y, classes)
        system = f"baseline: {name}"
        rows.append(
            {
                "system": system,
                "kind": "baseline",
                "regime": name,
                "sweep": "",
                "seed": seed,
                **{k: m[k] for k in METRICS},
                **(baseline_va_columns(va[0], probs, np.stack([va[1][i] for i in ids])) if va else {}),
            }
        )
        pred_files.setdefault(system, []).append(path)


def _write_memorisation(memo_specs: list[RunSpec], results: dict[str, dict], out: Path) -> None:
    memo = []
    for spec in memo_specs:
        if spec.name not in results:
            continue
        r = results[spec.name]
        # the program's parameters: its source weights where it chooses a source, else every t() by name
        params = (
            {f"w_{k}": w for k, w in r["source_weights"].items()}
            if r.get("source_weights")
            else dict(r.get("t_values") or {})
        )
        memo.append(
            {
                "regime": spec.regime,
                "n_train": spec.sweep[1],
                "seed": spec.seed,
                **params,
                "val_accuracy": r["metrics"]["val"]["accuracy"],
                "train_accuracy": r.get("train_accuracy"),
            }
        )
    columns = list(dict.fromkeys(k for row in memo for k in row)) or MEMO_COLUMNS
    _write_csv(pd.DataFrame(memo, columns=columns).sort_values(["regime", "n_train", "seed"]), out / "memorisation.csv")


def _label_set(base: dict[str, Any], baselines: Sequence[str]) -> tuple[tuple[str, ...], dict[str, str], Any]:
    """The runs' classes (the spec's label set; basic-7 without a spec), the baselines that do
    not apply to them, with why, and the spec's valence/arousal target (or None)."""
    from emolog.experiments.baselines import inapplicable
    from emolog.model.spec import load_spec

    spec = load_spec(base["spec"]) if base.get("spec") else None
    classes = tuple(spec.classes) if spec else BASIC7
    return classes, inapplicable(baselines, classes), spec.target if spec else None


def _ints(s: str, flag: str) -> list[int]:
    try:
        return [int(v) for v in s.split(",") if v != ""]
    except ValueError:
        raise ExperimentError(f"{flag} must be comma-separated integers, got {s!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # `merge` is a plain optional positional, not a sub-parser: a misspelt flag's value then
    # still gets argparse's "unrecognized arguments" instead of "invalid choice".
    parser.add_argument(
        "action",
        nargs="?",
        default=None,
        metavar="merge",
        help="`emolog experiment merge OUT`: join the --shard parts in OUT into the tables",
    )
    parser.add_argument("target", nargs="?", default=None, metavar="OUT", help=argparse.SUPPRESS)
    parser.add_argument("--data", help="data directory (index.csv, split.json, cache/); required")
    parser.add_argument("--out", help="experiment directory to write (resumable); required")
    parser.add_argument(
        "--shard",
        default=None,
        metavar="i/N",
        help="run only this shard's share of the runs (by sorted run name; shard 0 "
        "also the baselines), then `emolog experiment merge OUT`",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="K",
        help="runs at once, in K processes of one torch thread each (default 1)",
    )
    parser.add_argument(
        "--regimes", default="logic-only,problog-em,nets-only,joint", help=f"comma-separated, from {', '.join(REGIMES)}"
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated integers")
    parser.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="vary one config key (one at a time from the base config); repeatable",
    )
    parser.add_argument(
        "--memorisation",
        default="",
        metavar="N1,N2,...",
        help="n_train sweep of logic-only and joint (learned weights vs training size)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="base config key for every run (e.g. train.epochs=5); repeatable",
    )
    parser.add_argument("--baselines", default=",".join(BASELINES), help="comma-separated baselines, or 'none'")
    parser.add_argument("--baseline-epochs", type=int, default=30)
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    _check_usage(args)
    # errors go to the command line's handler: one line and the exit code of their kind
    exp = _merge(args) if args.action == "merge" else _experiment_from_args(args)
    _print_summary(exp)
    if "shard" in exp:
        i, n = exp["shard"]
        print(
            f"shard {i}/{n} done: {len(exp['runs'])} runs, {len(exp['baselines'])} baseline prediction files; "
            f"when all {n} shards are done: emolog experiment merge {args.out}"
        )
        return 1 if exp["failed"] else 0
    print(f"wrote {args.out} ({len(exp['runs'])} runs, {len(exp['baselines'])} baseline prediction files)")
    return 1 if exp["failed"] else 0


def _check_usage(args: argparse.Namespace) -> None:
    from emolog.errors import UsageError

    if args.action not in (None, "merge"):
        raise UsageError(f"unexpected argument {args.action!r} (the only action is `merge OUT`)")
    if args.action is None and (args.data is None or args.out is None or args.target is not None):
        raise UsageError("usage: emolog experiment --data D --out EXP [options] | emolog experiment merge EXP")
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: need at least 1")


def _merge(args: argparse.Namespace) -> dict:
    from emolog.errors import UsageError

    if (args.target or args.out) is None:
        raise UsageError("usage: emolog experiment merge EXP (the --out of the shards)")
    args.out = args.target or args.out  # the closing message names it
    return distribute.merge(args.out, _from_config, progress=not args.quiet)


def _experiment_from_args(args: argparse.Namespace) -> dict:
    plan = ExperimentPlan(
        args.data,
        [r for r in args.regimes.split(",") if r],
        _ints(args.seeds, "--seeds"),
        sweeps=args.sweep,
        memorisation=_ints(args.memorisation, "--memorisation"),
        overrides=args.overrides,
        baselines=() if args.baselines == "none" else [b for b in args.baselines.split(",") if b],
        baseline_epochs=args.baseline_epochs,
        n_boot=args.n_boot,
    )
    return run_experiment(
        plan,
        args.out,
        RunOptions(jobs=args.jobs, progress=not args.quiet, shard=parse_shard(args.shard) if args.shard else None),
    )


def _print_summary(exp: dict) -> None:
    """The table, the runs' sanity warnings and the failed runs."""
    if len(exp["table"]):
        print(format_table(exp["table"]))
    if exp["sanity_warnings"]:  # one line, not one per run: the runs of a sweep share the warning
        names = list(exp["sanity_warnings"])
        print(
            f"{len(names)} run(s) carry a sanity warning ({', '.join(names)}); "
            f"{names[0]}: {exp['sanity_warnings'][names[0]]}"
        )
    for f in exp["failed"]:
        print(f"FAILED {f['run']}: {f['error']}")
