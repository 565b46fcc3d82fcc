"""One training run: ``train_run(config, out_dir) -> results`` (docs/architecture.md sections 4-5).

Every program and every regime goes through the same steps: the model is built
(``emolog.runs.build``: the program, its data, its networks and the parameter groups the regime
trains), the one fit loop runs (``emolog.learn.fit``: early stopping, checkpoints, resume, the
NaN stop) and the run directory is written (``emolog.runs.writer``). ``emolog.load_run`` reads
it back as a model (``emolog.runs.model.Model``).

The run directory receives config.json, results.json, history.csv, predictions.csv,
changes.json, scene_net.pt, logic.pt, program.pl (the program with its learned t() values),
gate_net.pt / backbone_last_block.pt when present, and checkpoint.pt.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from emolog import runtime
from emolog.config.regimes import get_regime
from emolog.config.run import ConfigError, RunConfig
from emolog.data.artefacts import FORMATS, record
from emolog.data.atomic import atomic_write_text
from emolog.data.lock import output_lock
from emolog.learn.checkpoint import CHECKPOINT, read_checkpoint
from emolog.learn.fit import fit
from emolog.learn.losses import Loss, TrainingError, epoch_order
from emolog.model.kinds import ProgramKind
from emolog.runs.build import Built, build
from emolog.runs.writer import provenance, run_files, write_run

__all__ = ["CHECKPOINT", "Loss", "TrainingError", "epoch_order", "train_run"]


def train_run(config: RunConfig | dict, out_dir: str | Path, resume: bool = False, progress: bool = True) -> dict:
    """Run one regime and write the run directory; returns the results dict (results.json).

    Raises ConfigError for a bad config or data directory, CacheError when the cache fails
    verification (naming ids and reasons), TrainingError for a non-finite loss (naming the
    batch's image ids) or a resume against a different config.
    """
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    cfg.validate()
    out = Path(out_dir)
    with output_lock(out, "emolog train"), runtime.torch_threads(cfg.threads):
        check_start(cfg, out, resume)
        return fit_built(build(cfg, progress), out, resume, progress)


def _finish_gate_record(extra: dict, kind: ProgramKind, lm: Any) -> None:
    """After the fit: the gate's evidence features and a rules program's learned t() probabilities."""
    if "gate" in extra:
        from emolog.model.gate import EVIDENCE_FEATURES

        extra["gate"].update(
            features=list(EVIDENCE_FEATURES) if kind.gate_net else None, t_probs=lm.t_probs() if kind.rules else None
        )


def fit_built(b: Built, out: Path, resume: bool, progress: bool) -> dict:
    """Train a built model with the one fit loop and write its run directory to ``out``;
    returns the results dict (results.json, written last)."""
    atomic_write_text(
        out / "config.json",
        json.dumps(
            {**b.cfg.to_dict(), "perception": b.perception, "provenance": provenance(b.manifest, b.data_info)}, indent=1
        ),
    )
    if not b.regime.trains_scene_net:
        # out-of-fold scene probabilities on the training split (pretrain_folds): the logic (or
        # a gate reading the scene's confidence) would otherwise trust a memorised scene
        b.network.freeze_scene(b.splits, b.oof)
    fitted = fit(b.network, b.groups, b.splits, b.cfg, b.regime, out, resume, progress)
    _finish_gate_record(b.extra, b.network.kind, b.network.lm)
    results = write_run(out, b, fitted)
    results["wall_time_s"] = time.perf_counter() - b.t0
    # written last: it marks the run finished and vouches for every other file by sha256
    results.update(format=FORMATS["run"], files=record(out, run_files(out)))
    atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    return results


def check_start(cfg: RunConfig, out: Path, resume: bool) -> None:
    """Refusals that need nothing loaded (a semantics EM cannot learn, a finished or foreign
    run in ``out``), and the resume announcement, before the run touches its directory."""
    regime = get_regime(cfg.regime)
    semantics = regime.semantics or cfg.semantics
    if regime.learner == "em" and semantics not in ("condition", "fail"):
        raise ConfigError(f"config key 'semantics': problog-em is defined for 'condition' or 'fail', not {semantics!r}")
    if (out / CHECKPOINT).exists() and not resume:
        raise TrainingError(
            f"{out} already holds a run ({CHECKPOINT}); pass resume=True (--resume) "
            "to continue it, or choose another output directory"
        )
    if resume:
        if (out / CHECKPOINT).exists():
            read_checkpoint(out / CHECKPOINT, cfg)  # a damaged or foreign checkpoint: refused before any change
        announce_resume(out)


def announce_resume(out: Path) -> None:
    """Before a resumed run writes anything: results.json (the mark of a finished run) goes
    first, so that until the run finishes again no reader takes a mix of old and new files
    for a finished run; say what the run resumes from."""
    (out / "results.json").unlink(missing_ok=True)
    start = f"from {out / CHECKPOINT}" if (out / CHECKPOINT).is_file() else f"from the start (no {CHECKPOINT})"
    print(f"resuming {out} {start}; its other files are recomputed", file=sys.stderr)
