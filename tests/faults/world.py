"""The small world the fault suites damage: a simulated data directory, a finished run on it
and a sharded experiment on it, each written through the real commands (``emolog.cli.main``),
plus the commands (consumers) that read them and how each one's output is compared.

Everything runs in this process (``cli.main``), so one consumer run costs a fraction of a
second; a command that lets an unexpected exception escape ``cli.main`` is a traceback, the
one outcome the suites never accept.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from emolog import cli
from emolog.errors import EmologError
from emolog.simulate import SimConfig, simulate, write_simulation

# small and fast, but every regime kind of the pipeline: a pretrained scene net (logic-only),
# gradient nets (nets-only), baselines, a sharded experiment
TRAIN = ["--set", "train.epochs=2", "--set", "pretrain.epochs=2", "--set", "train.batch_size=64", "--quiet"]
EXPERIMENT = ["--regimes", "logic-only,nets-only", "--seeds", "0", "--baselines", "majority", "--n-boot", "20", *TRAIN]
SPEC = Path(__file__).resolve().parents[2] / "emolog" / "model" / "specs" / "seed.toml"
# results keys that measure time or where a file came from, not what was computed
VOLATILE = {"train_time_s", "wall_time_s", "merge_time_s", "shards", "files", "pretrain"}


@dataclass
class Outcome:
    """What one command did: exit code, stdout, stderr, and the traceback when it raised."""

    code: int
    out: str
    err: str
    traceback: str | None = None

    @property
    def last_error_line(self) -> str:
        lines = [x for x in self.err.splitlines() if x.startswith("emolog: error: ")]
        return lines[-1] if lines else ""


def run_cli(argv: list[str]) -> Outcome:
    """``emolog ARGV`` in this process; an exception escaping ``cli.main`` is a traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as e:  # argparse
            code = int(e.code or 0)
        except BaseException as e:  # noqa: BLE001 - a traceback is what the suites look for
            import traceback

            return Outcome(-1, out.getvalue(), err.getvalue(), "".join(traceback.format_exception(e)))
    return Outcome(code, out.getvalue(), err.getvalue())


def run_api(fn: Callable[[], object]) -> tuple[Outcome, object]:
    """A Python API call as a command: an EmologError is a refusal with its exit code (what the
    command line would print), anything else escaping is a traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            value = fn()
        except EmologError as e:
            return Outcome(e.exit_code, out.getvalue(), err.getvalue() + f"emolog: error: {cli._one_line(e)}\n"), None
        except BaseException as e:  # noqa: BLE001
            import traceback

            return Outcome(-1, out.getvalue(), err.getvalue(), "".join(traceback.format_exception(e))), None
    return Outcome(0, out.getvalue(), err.getvalue()), value


def build_world(root: Path) -> Path:
    """Write the world under ``root``: D (data), R (a finished logic-only run), E (a 2-shard
    experiment, merged), spec.toml. Every path is relative to ``root`` (the commands run
    there), so a copy of the world is the same world. Returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(root):
        write_simulation(simulate(SimConfig(n=200, seed=1, scene_dim=16)), "D")
        # an index's rejects and summary, as `emolog index` writes them (predict lists the rejects)
        Path("D/rejects.csv").write_text("rel_path,reason\nsim/gone.jpg,missing file: not found\n")
        Path("D/index_summary.json").write_text(json.dumps({"source": "simulated", "root": None, "n_rejected": 1}))
        shutil.copy(SPEC, "spec.toml")
        for argv in (
            ["train", "--data", "D", "--out", "R", *TRAIN],
            ["experiment", "--data", "D", "--out", "E", "--shard", "0/2", *EXPERIMENT],
            ["experiment", "--data", "D", "--out", "E", "--shard", "1/2", *EXPERIMENT],
            ["experiment", "merge", "E", "--quiet"],
        ):
            got = run_cli(argv)
            assert got.code == 0 and got.traceback is None, (argv, got.err, got.traceback)
    return root


# ----------------------------------------------------------------------------- comparisons


def results_core(path: Path) -> dict:
    """results.json / experiment.json without what measures time or provenance."""
    d = json.loads(path.read_text())
    return {k: v for k, v in d.items() if k not in VOLATILE}


def tensors_digest(path: Path) -> str:
    """A digest of a saved state dict's keys and tensor bytes: the values compared, not the
    .pt archive around them."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k]
        h.update(k.encode() + (v.numpy().tobytes() if isinstance(v, torch.Tensor) else repr(v).encode()))
    return h.hexdigest()


def run_digest(run: Path) -> dict:
    """What a run computed: results (timing left out) and its files' contents."""
    out: dict = {"results": results_core(run / "results.json")}
    for name in ("history.csv", "predictions.csv", "changes.json", "program.pl", "config.json"):
        out[name] = (run / name).read_text() if (run / name).exists() else None
    for name in ("logic.pt", "scene_net.pt"):
        out[name] = tensors_digest(run / name) if (run / name).exists() else None
    cfg = json.loads(out.pop("config.json") or "{}")
    out["config"] = {k: v for k, v in cfg.items() if k != "provenance"}
    return out


def experiment_digest(exp: Path) -> dict:
    """What an experiment computed: its tables and experiment.json (timing left out)."""
    out = {
        name: (exp / name).read_text()
        for name in ("comparison.csv", "comparison.tex", "bootstrap.csv", "memorisation.csv")
    }
    out["experiment.json"] = results_core(exp / "experiment.json")
    out["baselines"] = {p.name: p.read_text() for p in sorted((exp / "baselines").glob("*.csv"))}
    return out


def analysis_digest(out_dir: Path) -> dict:
    """What ``emolog analyse`` computed: its tables (the figures are drawn from them)."""
    return {p.name: p.read_text() for p in sorted(out_dir.glob("*.csv"))}


def predictions_digest(out_dir: Path) -> str:
    return pd.read_csv(out_dir / "predictions.csv", dtype={"image_id": str}).to_csv(index=False)
