"""``emolog train``: one regime on one data directory, with a short summary for a thesis.

    emolog train --data D --regime logic-only --out RUN [--config cfg.json] [--set key=value ...] [--resume]

Exit codes (one per kind of error, README "Errors and exit codes"): 0 done, 3 bad config or
data directory, 4 a file missing, 5 the cache fails verification (or a run file its record),
6 another process is writing RUN, 1 training stopped (non-finite loss, resume mismatch).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from emolog.config.regimes import REGIMES
from emolog.config.run import SOURCES, RunConfig

if TYPE_CHECKING:  # imported where used: `train --help` stays light
    from emolog.runs.record import Results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="data directory (index.csv, split.json, cache/); or in --config")
    parser.add_argument("--regime", choices=REGIMES, help="what trains (default: logic-only); see docs/training.md")
    parser.add_argument(
        "--spec",
        help="model spec: a shipped name (seed, gated, context_rules, emo8_buckets) "
        "or a .toml path (docs/model.md); config key spec",
    )
    parser.add_argument("--out", required=True, help="run directory to write")
    parser.add_argument("--config", help="JSON (or .toml) file of config keys (docs/training.md)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. logic.lr=0.1 (JSON value or plain string); repeatable",
    )
    parser.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.pt")
    parser.add_argument(
        "--backbone-weights",
        metavar="PATH",
        help="the scene backbone's weights file, when it moved since the cache was built "
        "(joint-unfreeze rebuilds its last block; config key backbone.weights)",
    )
    parser.add_argument(
        "--recogniser-weights",
        metavar="PATH",
        help="the expression recogniser's weights file or folder, when it moved since the "
        "cache was built (regime original reads a grey face; config key "
        "perception.recogniser_weights)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse a class program whose answers do not sum to 1 on its first batches "
        "(the answer-mass check; default: a warning)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from emolog.runs.train import train_run  # here, not above: `train --help` imports no torch

    base = {}
    if args.data:
        base["data"] = args.data
    if args.regime:
        base["regime"] = args.regime
    for arg, key in (
        ("spec", "spec"),
        ("backbone_weights", "backbone.weights"),
        ("recogniser_weights", "perception.recogniser_weights"),
    ):
        if getattr(args, arg, None):
            base[key] = getattr(args, arg)
    if args.strict:
        base["strict"] = True
    # errors (ConfigError, CacheError, TrainingError, ...) go to the command line's handler:
    # one line and the exit code of their kind
    cfg = RunConfig.load(args.config, args.overrides, **base)
    results = train_run(cfg, args.out, resume=args.resume, progress=not args.quiet)
    print(summary(results))
    return 0


def summary(results: dict) -> str:
    """A short plain-text summary of a results dict (what a researcher copies into notes)."""
    from emolog.runs.record import Results

    r = Results.from_dict(results)
    lines = [
        f"regime {r.regime} (program {r.program}, semantics {r.semantics}, seed {r.seed}): "
        f"{r.epochs_run} epochs{' (early stop, best epoch ' + str(r.best_epoch) + ')' if r.stopped_early else ''}, "
        f"{r.train_time_s:.1f} s on {r.n_train} training images"
    ]
    lines += _metric_lines(r)
    lines += _parameter_lines(r)
    bad = r.unscorable
    if bad.get("n"):
        lines.append(
            f"{bad['n']} image(s) the program cannot score (evidence of probability 0; predicted "
            "uniform): " + "; ".join(f"{k} {v[:10]}" for k, v in bad.items() if k != "n")
        )
    if r.sanity_warning:
        lines.append(r.sanity_warning)
    lines += [f"note: {n}" for n in results.get("notes") or []]
    return "\n".join(lines)


def _metric_lines(r: Results) -> list[str]:
    """The classification metrics table, and a valence/arousal target's regression figures."""
    lines = [f"{'':14s}{'accuracy':>9s}{'macro-F1':>9s}{'UAR':>7s}{'NLL':>7s}{'ECE':>7s}"]
    rows = [("test before", r.metrics_before["test"]), ("val", r.metrics["val"]), ("test", r.metrics["test"])]
    for name, m in rows:
        lines.append(f"{name:14s}{m['accuracy']:9.3f}{m['macro_f1']:9.3f}{m['uar']:7.3f}{m['nll']:7.3f}{m['ece']:7.3f}")
    for var, m in (r.metrics["test"].get("va") or {}).items():  # a valence/arousal target: its regression
        lines.append(
            f"test {var}: MAE {m['mae']:.3f} [{m['mae_lo']:.3f}, {m['mae_hi']:.3f}]  RMSE {m['rmse']:.3f}  "
            f"Spearman {m['spearman']:.3f} [{m['spearman_lo']:.3f}, {m['spearman_hi']:.3f}]  "
            f"Pearson {m['pearson']:.3f}  CCC {m['ccc']:.3f}   (accuracy etc. above: of its bins)"
        )
    return lines


def _parameter_lines(r: Results) -> list[str]:
    """The learned source weights and t() values, against the true ones when the data was simulated."""
    lines = []
    w, tw = r.source_weights, r.true_source_weights
    if w:
        lines.append("source weights  " + "  ".join(f"{s} {w[s]:.3f}" for s in SOURCES))
    if w and tw:
        lines.append(
            "true weights    "
            + "  ".join(f"{s} {tw[s]:.3f}" for s in SOURCES)
            + f"   (max |diff| {max(abs(w[s] - tw[s]) for s in SOURCES):.3f})"
        )
    tv, ttv = r.t_values, r.true_t_values or {}
    # a source-choosing program's t() values are its source weights, already shown above
    if len(tv) > len(SOURCES) or (tv and not w):
        line = f"{len(tv)} t() values learned (results.json t_values; program.pl has them filled in)"
        if ttv:
            k = max(ttv, key=lambda n: abs(tv[n] - ttv[n]))
            line += f"; max |learned - true| {abs(tv[k] - ttv[k]):.3f} at {k}"
        lines.append(line)
    return lines
