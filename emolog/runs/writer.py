"""A finished run's directory: history, predictions, what changed, weights, the learned program, results.

``write_run`` writes every file but config.json (written when the run starts) and returns the
results dict of results.json (docs/training.md, "Run directory"; its keys are what the report
and the CLI read, so keys are added, never renamed).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from emolog.data.artefacts import check_fields, read_json
from emolog.data.atomic import atomic_write_bytes, atomic_write_text
from emolog.labels import SOURCES
from emolog.learn import changes
from emolog.model.data import SplitData
from emolog.learn.fit import FitResult, Group
from emolog.runs.build import Built
from emolog.model.model import Network, predict_split
from emolog.model.va_metrics import va_metrics, va_sanity

# t(0.5)::  t(_)::  t(_, a, b)::  -- the probability argument of a learnable annotation
T_ANNOTATION = re.compile(r"\bt\(\s*([^(),]*?)\s*([,)])")


# every file of a run directory but results.json (which records their sha256) and checkpoint.pt
RUN_FILES = (
    "config.json",
    "history.csv",
    "predictions.csv",
    "changes.json",
    "scene_net.pt",
    "logic.pt",
    "program.pl",
    "gate_net.pt",
    "backbone_last_block.pt",
)


def run_files(out: Path) -> list[str]:
    """The files of ``RUN_FILES`` (and the spec's heads, ``head_<net>.pt``) present in ``out``."""
    return [n for n in RUN_FILES if (out / n).is_file()] + sorted(p.name for p in out.glob("head_*.pt"))


def save_state(path: Path, obj: Any) -> None:
    """torch.save of a state dict (or a dict holding one under ``state``) on CPU, atomically."""

    def cpu(d: dict) -> dict:
        return {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in d.items()}

    if isinstance(obj, dict) and isinstance(obj.get("state"), dict):
        obj = {**obj, "state": cpu(obj["state"])}
    elif isinstance(obj, dict):
        obj = cpu(obj)
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def learned_program(source: str, probs: list[float]) -> str | None:
    """The program text with every ``t(...)`` annotation's probability replaced by its learned
    value (in order of appearance, DeepProbLog's parameter order), as ``problog lfi`` writes its
    output; comments are left alone. None when the annotations cannot be matched one to one."""
    out, k = [], 0
    for line in source.splitlines(keepends=True):
        code, sep, comment = line.partition("%")

        def sub(m: re.Match) -> str:
            nonlocal k
            k += 1
            return f"t({probs[k - 1]:.6g}{m.group(2)}" if k <= len(probs) else m.group(0)

        out.append(T_ANNOTATION.sub(sub, code) + sep + comment)
    return "".join(out) if k == len(probs) else None


def t_values(lm: nn.Module) -> dict[str, float]:
    """Every t() parameter by readable name, e.g. ``t(source(scene))``."""
    return {f"t({name})": float(p) for name, p in lm.t_probs().items()}


def write_run(out: Path, b: Built, fitted: FitResult) -> dict:
    """Write history.csv, predictions.csv, changes.json, the nets' state dicts, logic.pt and
    program.pl of the built model ``b`` after its fit; return the results dict (the caller
    writes results.json)."""
    cfg, semantics, model, groups, splits, extra = b.cfg, b.semantics, b.network, b.groups, b.splits, b.extra
    classes = model.classes
    te, va, tr = splits["test"], splits["val"], splits["train"]
    after = predict_split(model, te)
    y = te.labels.cpu().numpy()
    p_after = after["probs"].cpu().double().numpy()
    p_before = fitted.before["probs"].cpu().double().numpy()
    val = predict_split(model, va, sources=False)
    p_val = val["probs"].cpu().double().numpy()
    metrics, metrics_before, va_cols = _metrics(model, te, va, p_val, p_after, p_before)
    train_pred = predict_split(model, tr, sources=False)
    unscorable = {
        name: [s.ids[i] for i in pred["unscorable"].tolist()]
        for name, s, pred in (("train", tr, train_pred), ("val", va, val), ("test", te, after))
        if "unscorable" in pred
    }
    pd.DataFrame(fitted.history).to_csv(buf := io.StringIO(), index=False)
    atomic_write_text(out / "history.csv", buf.getvalue())
    weights, w_cols = _source_weights(model, after)
    write_predictions(
        out / "predictions.csv",
        te,
        classes,
        p_after,
        p_before,
        after["post"].cpu().numpy() if "post" in after else None,
        w_cols,
        va_cols,
    )
    _write_changes(out, groups, fitted, classes, y, p_before, p_after)
    text = _write_learned(out, model)
    train_acc = float((train_pred["probs"].argmax(1) == tr.labels).float().mean())
    res = {
        # a spec names its own program (cfg.program then keeps its default)
        "regime": cfg.regime,
        "seed": cfg.seed,
        "program": extra.get("program_source") or cfg.program,
        "semantics": semantics,
        "classes": list(classes),
        "kind": model.kind.name,
        "metrics": metrics,
        "metrics_before": metrics_before,
        "source_weights": weights,
        "true_source_weights": true_weights(Path(cfg.data), model.target is not None),
        "t_values": t_values(model.lm),
        "true_t_values": true_t_values(Path(cfg.data), t_values(model.lm), model.target is not None),
        "program_file": "program.pl" if text is not None else None,
        "train_time_s": fitted.train_time_s,
        "epochs_run": fitted.epochs_run,
        "best_epoch": fitted.stopper.best_epoch if cfg.train.patience is not None else fitted.epochs_run,
        "stopped_early": fitted.stopped_early,
        "n_train": len(tr),
        "train_accuracy": train_acc,
        "sanity_warning": _sanity_warning(model, metrics, tr, te, y),
        "data": b.data_info,
        "perception": b.perception,
        # images the final model cannot score (evidence of probability 0): uniform prediction
        "unscorable": {"n": sum(map(len, unscorable.values())), **unscorable},
        **extra,
    }
    if model.kind.per_image_sources:
        from emolog.model.gate import trust_truth

        res["source_weights_kind"] = "mean per-image source probability (test)"
        res["trust_vs_truth"] = trust_truth(Path(cfg.data), te.ids, after["w"].cpu().numpy())
    return res


def _metrics(
    model: Network, te: SplitData, va: SplitData, p_val: np.ndarray, p_after: np.ndarray, p_before: np.ndarray
) -> tuple[dict, dict, dict[str, np.ndarray] | None]:
    """(metrics on val and test, test metrics before training, a valence/arousal target's
    predictions.csv columns or None)."""
    from emolog.metrics.classification import evaluate

    classes, y = model.classes, te.labels.cpu().numpy()
    metrics = {"val": evaluate(p_val, va.labels.cpu().numpy(), classes), "test": evaluate(p_after, y, classes)}
    metrics_before = {"test": evaluate(p_before, y, classes)}
    target, va_cols = model.target, None
    if target is not None:  # valence/arousal: the expected values' errors and correlations (CIs on test)
        metrics["val"]["va"] = va_metrics(target, p_val, va.values.cpu().numpy(), n_boot=0)
        metrics["test"]["va"] = va_metrics(target, p_after, te.values.cpu().numpy())
        metrics_before["test"]["va"] = va_metrics(target, p_before, te.values.cpu().numpy(), n_boot=0)
        pred_va = target.expected(p_after)
        va_cols = {
            **{v: te.values[:, j].cpu().numpy() for j, v in enumerate(target.variables)},
            **{f"pred_{v}": pred_va[:, j] for j, v in enumerate(target.variables)},
        }
    return metrics, metrics_before, va_cols


def _source_weights(model: Network, after: dict) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the source weights results.json reports, predictions.csv's w_<source> columns): a
    global program's learned weights, else the mean of the per-image ones; (None, None) for a
    program without source weights."""
    g = model.global_weights()
    if g is not None:
        return g, {s: g[s] for s in SOURCES}
    if "w" in after:
        w = after["w"].cpu().numpy()
        return {s: float(w[:, j].mean()) for j, s in enumerate(SOURCES)}, {s: w[:, j] for j, s in enumerate(SOURCES)}
    return None, None


def _write_changes(
    out: Path,
    groups: list[Group],
    fitted: FitResult,
    classes: tuple[str, ...],
    y: np.ndarray,
    p_before: np.ndarray,
    p_after: np.ndarray,
) -> None:
    """changes.json: how far each layer moved and which test predictions flipped."""
    nets = {gr.name: gr.net for gr in groups}
    trainable = {gr.name: gr.trainable for gr in groups}
    change = {
        "layers": changes.layer_changes(nets, fitted.init, trainable, fitted.tracker),
        "flips": changes.flips(y, p_before.argmax(1), p_after.argmax(1), classes),
    }
    atomic_write_text(out / "changes.json", json.dumps(change, indent=1))


def _write_learned(out: Path, model: Network) -> str | None:
    """The nets' state dicts, logic.pt and program.pl (the program with its learned t());
    returns program.pl's text, None when it was not written."""
    save_state(out / "scene_net.pt", model.scene_net.state_dict())
    save_state(out / "logic.pt", model.lm.tparams.state_dict())
    if model.gate is not None:
        from emolog.model.gate import EVIDENCE_FEATURES

        gt = model.gate
        save_state(
            out / "gate_net.pt",
            {
                "state": gt.state_dict(),
                "n_features": gt.n_features,
                "hidden": gt.hidden,
                "scene_dim": gt.scene_dim,
                "features": list(EVIDENCE_FEATURES),
            },
        )
    if model.last_block is not None:
        save_state(out / "backbone_last_block.pt", model.last_block.state_dict())
    for name, head in model.heads.items():
        save_state(out / f"head_{name}.pt", head.state_dict())
    probs = model.lm.tparams.probs().detach().tolist()
    text = learned_program(model.lm.program.source, probs) if probs else None
    if text is not None:
        atomic_write_text(out / "program.pl", text)
    return text


def _sanity_warning(model: Network, metrics: dict, tr: SplitData, te: SplitData, y: np.ndarray) -> str | None:
    """A warning when the test results look wrong: accuracy against the majority class, or a
    valence/arousal target's errors against predicting the training mean."""
    from emolog.metrics.classification import sanity_check

    if model.target is not None:
        return va_sanity(
            metrics["test"]["va"], tr.values.cpu().numpy(), te.values.cpu().numpy(), model.target.variables
        )
    majority = int(torch.bincount(tr.labels, minlength=len(model.classes)).argmax())
    return sanity_check(metrics["test"]["accuracy"], len(y), float((y == majority).mean()))


def _truth(root: Path, va: bool) -> dict | None:
    """truth.json of simulated data (its ``va`` entry for a valence/arousal target), else None."""
    p = root / "truth.json"
    if not p.exists():
        return None
    truth = read_json(p)
    return truth.get("va") if va else truth


def true_t_values(root: Path, learned: dict[str, float], va: bool = False) -> dict[str, float] | None:
    """The simulator's true value of each learned t() (``truth.json`` t_values, matched by
    name; those of its ``va`` entry for a valence/arousal target); None on real data or when
    no name matches."""
    truth = (_truth(root, va) or {}).get("t_values") or {}
    out = {k: float(truth[k]) for k in learned if k in truth}
    return out or None


def true_weights(root: Path, va: bool = False) -> dict[str, float] | None:
    """The simulator's true source weights (``truth.json``; of its ``va`` entry for a
    valence/arousal target), None on real data; a truth.json without them is refused."""
    truth = _truth(root, va)
    if truth is None:
        return None
    check_fields(truth, {"source_weights": (dict, list)}, root / "truth.json")
    w = truth["source_weights"]
    if isinstance(w, dict):
        return {s: float(w[s]) for s in SOURCES}
    if isinstance(w, list):
        return {s: float(v) for s, v in zip(SOURCES, w)}
    return None


def write_predictions(
    path: Path,
    te: SplitData,
    classes: tuple[str, ...],
    p_after: np.ndarray,
    p_before: np.ndarray,
    post: np.ndarray | None,
    weights: dict[str, Any] | None,
    va_cols: dict[str, np.ndarray] | None = None,
) -> None:
    """predictions.csv: one row per test image (docs/architecture.md section 4); ``va_cols``: a
    valence/arousal target's true values and expected values (``<variable>``, ``pred_<variable>``)."""
    y = te.labels.cpu().numpy()
    area = (te.face_area * te.face_mask.float()).amax(dim=1) if te.face_area.shape[1] else torch.zeros(len(te))
    df = pd.DataFrame(
        {
            "image_id": te.ids,
            "label": [classes[i] for i in y],
            "pred": [classes[i] for i in p_after.argmax(1)],
            "pred_before": [classes[i] for i in p_before.argmax(1)],
            "n_faces": te.n_faces.cpu().numpy(),
        }
    )
    for k, c in enumerate(classes):
        df[f"p_{c}"] = p_after[:, k]
    if post is not None:
        for k, s in enumerate(SOURCES):
            df[f"post_{s}"] = post[:, k]
    if weights is not None:
        for s in SOURCES:
            df[f"w_{s}"] = weights[s]
    df["max_face_area"] = area.cpu().numpy()
    for k, v in (va_cols or {}).items():
        df[k] = v
    atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))


def provenance(manifest: dict, data_info: dict) -> dict:
    return {
        "git_commit": _git_commit(),
        "packages": _packages(),
        "cache_fingerprint_hash": manifest.get("fingerprint_hash"),
        "data": data_info,
    }


def _git_commit() -> str | None:
    """HEAD of the emolog checkout (+ '-dirty' with uncommitted changes); None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _packages() -> dict[str, str]:
    out = {}
    for name in (
        "emolog",
        "torch",
        "numpy",
        "problog",
        "pysdd",
        "deepproblog",
        "klaycircuits",
        "safetensors",
        "scikit-learn",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
