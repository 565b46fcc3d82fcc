"""One training run: ``train_run(config, out_dir) -> results`` (docs/architecture.md sections 4-5).

Why it is fast: every frozen network's output is read from the feature cache once, and the
logic is a batched circuit, so an epoch is a few hundred tensor operations on index tensors
(no DataLoader, no per-sample Python). A frozen Scene2EmotionNet is even run once per run, not
once per epoch. The original ran every frozen network on every sample of every epoch
(~2600 s per epoch).

The run directory receives config.json, results.json, history.csv, predictions.csv,
changes.json, scene_net.pt and checkpoint.pt (one atomic checkpoint per epoch; ``resume=True``
continues from it and gives the same result as an uninterrupted run).
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from emolog.data.atomic import atomic_write_bytes, atomic_write_text
from emolog.labels import BASIC7
from emolog import runtime
from emolog.perception.scene2emotion import Scene2EmotionNet
from emolog.training import changes, em
from emolog.training.config import SOURCES, ConfigError, RunConfig
from emolog.training.data import SplitData, all_rows, load_data
from emolog.training.losses import (Loss, TrainingError, check_finite, epoch_order, make_optimizer,
                                    new_scene_net, nll)
from emolog.training.pretrain import pretrained_scene_net
from emolog.training.regimes import Regime, get_regime

__all__ = ["CHECKPOINT", "Loss", "TrainingError", "epoch_order", "train_run"]


CHECKPOINT = "checkpoint.pt"
RESUMABLE_KEYS = ("epochs", "em_iterations", "device")  # may differ between a run and its resume
EVAL_CHUNK = 2048  # rows per forward pass when evaluating a whole split


# ----------------------------------------------------------------------------- model


class Model(nn.Module):
    """The logic program plus the trainable or frozen networks feeding it.

    ``scene_net`` maps scene features [B, D] to 7 logits; ``last_block`` (joint-unfreeze only)
    maps pre-last activations [B, C, H, W] to features [B, D]. When the scene net is frozen its
    probabilities are computed once per split (``freeze_scene``) and only indexed afterwards.
    """

    def __init__(self, lm: nn.Module, scene_net: Scene2EmotionNet, last_block: nn.Module | None,
                 semantics: str, grey_logits: torch.Tensor | None) -> None:
        super().__init__()
        self.lm, self.scene_net, self.last_block = lm, scene_net, last_block
        self.semantics, self.grey_logits = semantics, grey_logits
        self.frozen_scene: dict[int, torch.Tensor] = {}

    def freeze_scene(self, splits: dict[str, SplitData], train_probs: torch.Tensor | None = None) -> None:
        """Compute the frozen scene net's probabilities once per split; ``train_probs`` [N_train, 7]
        (out-of-fold predictions) replace the net's own on the training split."""
        for name, s in splits.items():
            self.frozen_scene[id(s)] = (train_probs if name == "train" and train_probs is not None
                                        else self._scene_probs_all(s))

    def _scene_probs_all(self, s: SplitData) -> torch.Tensor:
        was = self.training
        self.eval()
        with torch.no_grad():
            out = torch.cat([self._scene_probs_live(s, torch.arange(i, min(i + EVAL_CHUNK, len(s)),
                                                                       device=s.labels.device))
                             for i in range(0, len(s), EVAL_CHUNK)])
        self.train(was)
        return out

    def _scene_probs_live(self, s: SplitData, idx: torch.Tensor) -> torch.Tensor:
        feats = self.last_block(s.prelast[idx].float()) if self.last_block is not None else s.scene[idx]
        return torch.softmax(self.scene_net(feats), dim=1)

    def scene_probs(self, s: SplitData, idx: torch.Tensor) -> torch.Tensor:
        """[B, 7] scene distribution for rows ``idx`` of split ``s``.

        Raises TrainingError naming the image ids whose distribution is not finite (diverged
        weights, or extreme cached features), before the logic sees a NaN."""
        frozen = self.frozen_scene.get(id(s))
        probs = frozen[idx] if frozen is not None else self._scene_probs_live(s, idx)
        bad = ~torch.isfinite(probs).all(dim=1)
        if bad.any():
            ids = [s.ids[i] for i in idx[bad].tolist()]
            raise TrainingError(f"Scene2EmotionNet output is not finite for {len(ids)} image(s): {ids[:20]}; "
                                "check their cached scene features or lower the learning rates")
        return probs

    def _original_kw(self, s: SplitData, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.semantics != "original":
            return {}
        return {"face_logits": s.face_logits[idx], "grey_logits": self.grey_logits}

    def forward(self, s: SplitData, idx: torch.Tensor) -> torch.Tensor:
        """P(emotion | evidence) [B, 7] for rows ``idx`` of split ``s``."""
        return self.lm.emotion_probs(self.scene_probs(s, idx), s.face_probs[idx], s.face_mask[idx],
                                     **self._original_kw(s, idx))

    def posterior(self, s: SplitData, idx: torch.Tensor) -> torch.Tensor:
        """P(source | label, evidence) [B, 4] for rows ``idx``."""
        return self.lm.source_posterior(self.scene_probs(s, idx), s.face_probs[idx], s.face_mask[idx],
                                        s.labels[idx], **self._original_kw(s, idx))

    def train(self, mode: bool = True) -> "Model":
        super().train(mode)
        if self.last_block is not None:
            # BatchNorm in the unfrozen block keeps its ImageNet running statistics: batches of
            # 4-64 scene images are too small and too correlated to re-estimate them.
            self.last_block.eval()
        return self


def build_logic(cfg: RunConfig, semantics: str) -> nn.Module:
    """Compile the program with the configured parameterisation and initial weights."""
    from emolog.logic import compile_program
    lm = compile_program(cfg.program, semantics=semantics, param=cfg.logic_param)
    if cfg.init_weights is not None:
        em.set_source_weights(lm, dict(cfg.init_weights))
    return lm


def grey_face_logits(cfg: RunConfig, manifest: dict) -> tuple[torch.Tensor, str]:
    """Recogniser logits [7] (BASIC7 order) for a grey face, the original's padding, needed by the
    'original' semantics; returns (logits, where they came from).

    Order of preference: the config key, the cache manifest's ``grey_face_logits`` (a simulator
    may store its documented constant there), the recogniser named in the cache fingerprint,
    else emolog's default recogniser (simulated caches name none: their faces come from no real
    network, so the real default recogniser's reading of a grey face is the stand-in).
    """
    if cfg.grey_face_logits is not None:
        return torch.tensor(cfg.grey_face_logits, dtype=torch.float32), "config"
    if manifest.get("grey_face_logits") is not None:
        return torch.tensor(manifest["grey_face_logits"], dtype=torch.float32), "cache manifest"
    from PIL import Image
    from emolog.perception.expression import DEFAULT_RECOGNISER, build_recogniser
    from emolog.perception.pipeline import GREY_FACE_SIZE, GREY_FACE_VALUE
    name = manifest.get("fingerprint", {}).get("recogniser", {}).get("name") or DEFAULT_RECOGNISER
    grey = Image.new("RGB", (GREY_FACE_SIZE, GREY_FACE_SIZE), (GREY_FACE_VALUE,) * 3)
    with torch.no_grad():
        logits = build_recogniser(name, device="cpu").logits([grey])[0].float()
    return logits, f"recogniser {name}"


def build_last_block(manifest: dict) -> nn.Module:
    """The cache backbone's last block, trainable (joint-unfreeze). Refuses a parameter-free slice."""
    from emolog.perception.scene import build_backbone
    name = manifest.get("fingerprint", {}).get("backbone", {}).get("name")
    if not name:
        raise ConfigError("regime 'joint-unfreeze': the cache manifest names no scene backbone "
                          "(fingerprint.backbone.name), so its last block cannot be rebuilt")
    block = build_backbone(name, device="cpu").last_block
    for p in block.parameters():
        p.requires_grad_(True)
    n = sum(p.numel() for p in block.parameters() if p.requires_grad)
    if n == 0:
        # The original unfroze backbone[-1] of children()[:-1]: the parameter-free pooling
        # layer, so "fine-tuning the last block" trained nothing. Never again silently.
        raise TrainingError(f"regime 'joint-unfreeze': the last block of {name} has no trainable "
                            "parameters; unfreezing it would train nothing")
    return block


# ----------------------------------------------------------------------------- the run


def resolve_device(name: str) -> torch.device:
    """``emolog.runtime.resolve_device`` with its error named as the config key."""
    try:
        return runtime.resolve_device(name)
    except ValueError as e:
        raise ConfigError(f"config key 'device': {e}") from None


def train_run(config: RunConfig | dict, out_dir: str | Path, resume: bool = False,
              progress: bool = True) -> dict:
    """Run one regime and write the run directory; returns the results dict (results.json).

    Raises ConfigError for a bad config or data directory, CacheError when the cache fails
    verification (naming ids and reasons), TrainingError for a non-finite loss (naming the
    batch's image ids) or a resume against a different config.
    """
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    cfg.validate()
    from emolog.training import gate  # imported here: gate builds on this module
    if gate.per_image_program(cfg.program):  # gated.pl, context_rules.pl: the source is chosen per image
        return gate.train_gated(cfg, out_dir, progress=progress, resume=resume)
    with runtime.torch_threads(cfg.threads):
        return _train_run(cfg, Path(out_dir), resume, progress)


def _train_run(cfg: RunConfig, out: Path, resume: bool, progress: bool) -> dict:
    regime = get_regime(cfg.regime)
    semantics = regime.semantics or cfg.semantics
    if regime.learner == "em" and semantics not in ("condition", "fail"):
        raise ConfigError(f"config key 'semantics': problog-em is defined for 'condition' or 'fail', "
                          f"not {semantics!r}")
    out.mkdir(parents=True, exist_ok=True)
    if (out / CHECKPOINT).exists() and not resume:
        raise TrainingError(f"{out} already holds a run ({CHECKPOINT}); pass resume=True (--resume) "
                            "to continue it, or choose another output directory")
    device = resolve_device(cfg.device)
    t0 = time.perf_counter()
    splits, manifest, data_info = load_data(cfg, device, prelast=regime.trains_backbone)
    provenance = _provenance(manifest, data_info)
    atomic_write_text(out / "config.json", json.dumps({**cfg.to_dict(), "provenance": provenance}, indent=1))

    lm = build_logic(cfg, semantics).to(device)
    if not regime.trains_logic:
        em.set_source_weights(lm, cfg.fixed_weights or {s: 1 / len(lm.sources) for s in lm.sources})
    pretrain_info, oof = None, None
    if (regime.scene_init if cfg.scene_init == "auto" else cfg.scene_init) == "pretrained":
        pre = pretrained_scene_net(cfg, splits, manifest, device, lm, semantics, progress)
        scene_net, pretrain_info, oof = pre.net, pre.info, pre.oof
    else:
        scene_net = new_scene_net(cfg, splits["train"].scene.shape[1]).to(device)
    last_block = build_last_block(manifest).to(device) if regime.trains_backbone else None
    grey, grey_source = grey_face_logits(cfg, manifest) if semantics == "original" else (None, None)
    model = Model(lm, scene_net, last_block, semantics, grey.to(device) if grey is not None else None)

    nets: dict[str, nn.Module] = {"logic": lm, "scene_net": scene_net}
    trainable = {"logic": regime.trains_logic, "scene_net": regime.trains_scene_net}
    if last_block is not None:
        nets["backbone_last_block"], trainable["backbone_last_block"] = last_block, True
    for name, net in nets.items():
        for p in net.parameters():
            p.requires_grad_(trainable[name] and regime.learner == "gradient")
    if not regime.trains_scene_net:
        model.freeze_scene(splits, oof)
    init = {name: changes.snapshot(net) for name, net in nets.items()}
    tracker = changes.GradTracker(nets)
    optims = _optimizers(cfg, regime, nets)

    before = _predict(model, splits["test"])
    history: list[dict] = []
    state = {"epoch": 0, "best_val": math.inf, "best_epoch": 0, "bad": 0, "elapsed": 0.0,
             "best_states": None}
    if resume and (out / CHECKPOINT).exists():
        state, history, before = _load_checkpoint(out / CHECKPOINT, cfg, nets, optims, tracker, device)
    else:
        row = _history_row(0, _split_nll(model, splits["train"]), model, splits["val"],
                           {n: 0.0 for n in nets})
        history.append(row)
        state["best_val"] = row["val_loss"]
        state["best_states"] = _states(nets)

    loss_fn = Loss(cfg.imbalance, splits["train"].labels, cfg.logit_adjust_tau)
    t_start = time.perf_counter() - state["elapsed"]
    n_epochs = cfg.em_iterations if regime.learner == "em" else cfg.epochs
    for epoch in range(state["epoch"] + 1, n_epochs + 1):
        if state["bad"] >= (cfg.patience or math.inf):
            break
        if regime.learner == "em":
            step = em.em_step(lm, em.weights_tensor(lm), model.scene_probs(splits["train"], all_rows(splits["train"])),
                              splits["train"].face_probs, splits["train"].face_mask, splits["train"].labels,
                              semantics)
            em.set_source_weights(lm, step.weights)
            train_loss = -step.log_likelihood  # NLL before this iteration's update
        else:
            train_loss = _gradient_epoch(model, splits["train"], loss_fn, optims, tracker, cfg, epoch,
                                         progress)
        row = _history_row(epoch, train_loss, model, splits["val"], tracker.end_epoch())
        history.append(row)
        state["epoch"] = epoch
        if row["val_loss"] < state["best_val"] - 1e-7:
            state.update(best_val=row["val_loss"], best_epoch=epoch, bad=0, best_states=_states(nets))
        else:
            state["bad"] += 1
        state["elapsed"] = time.perf_counter() - t_start
        _save_checkpoint(out / CHECKPOINT, cfg, state, history, before, nets, optims, tracker)
    stopped_early = state["epoch"] < n_epochs
    train_time = time.perf_counter() - t_start
    if cfg.patience is not None:
        _restore(nets, state["best_states"])
    results = _finish(out, cfg, regime, semantics, model, nets, init, trainable, tracker, splits,
                      before, history, state, train_time, data_info, pretrain_info, stopped_early)
    results["wall_time_s"] = time.perf_counter() - t0
    if grey is not None:
        results["grey_face_logits"] = {"values": grey.tolist(), "source": grey_source}
    atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    return results


def _optimizers(cfg: RunConfig, regime: Regime, nets: dict[str, nn.Module]) -> dict[str, Any]:
    """One optimiser per trainable parameter group (its own optimiser, lr and weight decay)."""
    if regime.learner == "em":
        return {}
    out: dict[str, Any] = {}
    if regime.trains_logic:
        if cfg.logic_param == "projected":
            from emolog.logic import ProjectedSGD
            out["logic"] = ProjectedSGD(nets["logic"].tparams, lr=cfg.logic_lr)
        else:
            out["logic"] = make_optimizer(cfg.logic_optimizer, nets["logic"].parameters(), cfg.logic_lr,
                                      cfg.logic_weight_decay)
    if regime.trains_scene_net:
        out["scene_net"] = make_optimizer(cfg.net_optimizer, nets["scene_net"].parameters(), cfg.net_lr,
                                      cfg.net_weight_decay)
    if regime.trains_backbone:
        out["backbone_last_block"] = make_optimizer(cfg.backbone_optimizer, nets["backbone_last_block"].parameters(),
                                                cfg.backbone_lr, cfg.backbone_weight_decay)
    return out


def _gradient_epoch(model: Model, tr: SplitData, loss_fn: Loss, optims: dict, tracker: changes.GradTracker,
                    cfg: RunConfig, epoch: int, progress: bool) -> float:
    """One pass over the training rows in batches of index tensors; returns the mean batch loss."""
    model.train()
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout: same masks on a resumed run
    order = epoch_order(tr.labels, cfg.imbalance, cfg.seed, epoch).to(tr.labels.device)
    starts = range(0, len(order), cfg.batch_size)
    total, n = 0.0, 0
    for b in tqdm(starts, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, disable=not progress):
        idx = order[b:b + cfg.batch_size]
        loss = loss_fn(model(tr, idx), tr.labels[idx])
        check_finite(loss, tr, idx, "training", epoch)
        for opt in optims.values():
            opt.zero_grad()
        loss.backward()
        tracker.record()
        for opt in optims.values():
            opt.step()
        total += float(loss.detach()) * len(idx)
        n += len(idx)
    model.eval()
    return total / n


@torch.no_grad()
def _predict(model: Model, s: SplitData, posterior: bool = True) -> dict[str, torch.Tensor]:
    """Probabilities [N, 7] (and source posteriors [N, 4]) of a whole split (eval mode).

    Under the "fail" and "original" semantics the program's output P(q and evidence) does not
    sum to 1 (mass is lost); for evaluation it is renormalised over the 7 emotions, which keeps
    the argmax and makes NLL/ECE comparable. Training uses the unnormalised output, as those
    semantics define the loss."""
    model.eval()
    probs, post = [], []
    for i in range(0, len(s), EVAL_CHUNK):
        idx = torch.arange(i, min(i + EVAL_CHUNK, len(s)), device=s.labels.device)
        p = model(s, idx)
        probs.append(p if model.semantics == "condition" else p / p.sum(1, keepdim=True).clamp_min(1e-30))
        if posterior:
            post.append(model.posterior(s, idx))
    return {"probs": torch.cat(probs), **({"post": torch.cat(post)} if posterior else {})}


def _split_nll(model: Model, s: SplitData) -> float:
    return nll(_predict(model, s, posterior=False)["probs"], s.labels)


def _history_row(epoch: int, train_loss: float, model: Model, va: SplitData,
                 grad_norms: dict[str, float]) -> dict:
    from emolog.training.metrics import evaluate
    probs = _predict(model, va, posterior=False)["probs"]
    m = evaluate(probs.cpu().double().numpy(), va.labels.cpu().numpy(), BASIC7)
    w = model.lm.source_weights()
    row = {"epoch": epoch, "train_loss": train_loss, "val_loss": nll(probs, va.labels),
           "val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"]}
    row.update({f"w_{s}": float(w[s]) for s in SOURCES})
    row.update({f"grad_norm_{g}": v for g, v in grad_norms.items()})
    return row


def _states(nets: dict[str, nn.Module]) -> dict[str, dict]:
    return {n: {k: v.detach().clone() for k, v in m.state_dict().items()} for n, m in nets.items()}


def _restore(nets: dict[str, nn.Module], states: dict[str, dict]) -> None:
    for n, m in nets.items():
        m.load_state_dict(states[n])


def _save_checkpoint(path: Path, cfg: RunConfig, state: dict, history: list[dict], before: dict,
                     nets: dict[str, nn.Module], optims: dict, tracker: changes.GradTracker) -> None:
    blob = {"config": cfg.to_dict(), "state": state, "history": history,
            "before": {k: v.cpu() for k, v in before.items()},
            "nets": _states(nets), "optims": {k: o.state_dict() for k, o in optims.items()},
            "tracker": tracker.state_dict()}
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path, cfg: RunConfig, nets: dict[str, nn.Module], optims: dict,
                     tracker: changes.GradTracker, device: torch.device) -> tuple[dict, list, dict]:
    blob = torch.load(path, map_location=device, weights_only=True)  # plain data + tensors only
    saved = {k: v for k, v in blob["config"].items() if k not in RESUMABLE_KEYS}
    now = {k: v for k, v in cfg.to_dict().items() if k not in RESUMABLE_KEYS}
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if diff:
        raise TrainingError(f"cannot resume {path}: the config differs in {diff} "
                            f"(only {', '.join(RESUMABLE_KEYS)} may change on resume)")
    _restore(nets, blob["nets"])
    for k, o in optims.items():
        o.load_state_dict(blob["optims"][k])
    tracker.load_state_dict(blob["tracker"])
    return blob["state"], blob["history"], {k: v.to(device) for k, v in blob["before"].items()}


# ----------------------------------------------------------------------------- outputs


def _finish(out: Path, cfg: RunConfig, regime: Regime, semantics: str, model: Model,
            nets: dict[str, nn.Module], init: dict, trainable: dict, tracker: changes.GradTracker,
            splits: dict[str, SplitData], before: dict, history: list[dict], state: dict,
            train_time: float, data_info: dict, pretrain_info: dict | None, stopped_early: bool) -> dict:
    from emolog.training.metrics import evaluate, sanity_check
    te, va = splits["test"], splits["val"]
    after = _predict(model, te)
    y = te.labels.cpu().numpy()
    p_after = after["probs"].cpu().double().numpy()
    p_before = before["probs"].cpu().double().numpy()
    metrics = {"val": evaluate(_predict(model, va, posterior=False)["probs"].cpu().double().numpy(), va.labels.cpu().numpy(), BASIC7),
               "test": evaluate(p_after, y, BASIC7)}
    weights = {s: float(v) for s, v in model.lm.source_weights().items()}
    majority = int(torch.bincount(splits["train"].labels, minlength=len(BASIC7)).argmax())
    warning = sanity_check(metrics["test"]["accuracy"], len(y), float((y == majority).mean()))

    pd.DataFrame(history).to_csv(buf := io.StringIO(), index=False)
    atomic_write_text(out / "history.csv", buf.getvalue())
    _write_predictions(out / "predictions.csv", te, p_after, p_before, after["post"].cpu().numpy(), weights)
    change = {"layers": changes.layer_changes(nets, init, trainable, tracker),
              "flips": changes.flips(y, p_before.argmax(1), p_after.argmax(1), BASIC7)}
    atomic_write_text(out / "changes.json", json.dumps(change, indent=1))
    sbuf = io.BytesIO()
    torch.save({k: v.cpu() for k, v in model.scene_net.state_dict().items()}, sbuf)
    atomic_write_bytes(out / "scene_net.pt", sbuf.getvalue())
    if model.last_block is not None:
        bbuf = io.BytesIO()
        torch.save({k: v.cpu() for k, v in model.last_block.state_dict().items()}, bbuf)
        atomic_write_bytes(out / "backbone_last_block.pt", bbuf.getvalue())

    return {
        "regime": cfg.regime, "seed": cfg.seed, "program": cfg.program, "semantics": semantics,
        "metrics": metrics, "metrics_before": {"test": evaluate(p_before, y, BASIC7)},
        "source_weights": weights, "true_source_weights": _true_weights(Path(cfg.data)),
        "train_time_s": train_time, "epochs_run": int(state["epoch"]),
        "best_epoch": int(state["best_epoch"]) if cfg.patience is not None else int(state["epoch"]),
        "stopped_early": bool(stopped_early), "n_train": len(splits["train"]),
        "train_accuracy": _accuracy(model, splits["train"]),
        "pretrain": pretrain_info, "sanity_warning": warning, "data": data_info,
    }


def _accuracy(model: Model, s: SplitData) -> float:
    probs = _predict(model, s, posterior=False)["probs"]
    return float((probs.argmax(1) == s.labels).float().mean())


def _true_weights(root: Path) -> dict[str, float] | None:
    p = root / "truth.json"
    if not p.exists():
        return None
    truth = json.loads(p.read_text())
    w = truth.get("source_weights")
    if isinstance(w, dict):
        return {s: float(w[s]) for s in SOURCES}
    if isinstance(w, list):
        return {s: float(v) for s, v in zip(SOURCES, w)}
    return None


def _write_predictions(path: Path, te: SplitData, p_after: np.ndarray, p_before: np.ndarray,
                       post: np.ndarray, weights: dict[str, float]) -> None:
    y = te.labels.cpu().numpy()
    area = (te.face_area * te.face_mask.float()).amax(dim=1) if te.face_area.shape[1] else torch.zeros(len(te))
    df = pd.DataFrame({"image_id": te.ids, "label": [BASIC7[i] for i in y],
                       "pred": [BASIC7[i] for i in p_after.argmax(1)],
                       "pred_before": [BASIC7[i] for i in p_before.argmax(1)],
                       "n_faces": te.n_faces.cpu().numpy()})
    for k, c in enumerate(BASIC7):
        df[f"p_{c}"] = p_after[:, k]
    for k, s in enumerate(SOURCES):
        df[f"post_{s}"] = post[:, k]
    for s in SOURCES:
        df[f"w_{s}"] = weights[s]
    df["max_face_area"] = area.cpu().numpy()
    atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))


def _provenance(manifest: dict, data_info: dict) -> dict:
    return {"git_commit": _git_commit(), "packages": _packages(),
            "cache_fingerprint_hash": manifest.get("fingerprint_hash"), "data": data_info}


def _git_commit() -> str | None:
    """HEAD of the emolog checkout (+ '-dirty' with uncommitted changes); None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _packages() -> dict[str, str]:
    out = {}
    for name in ("emolog", "torch", "numpy", "problog", "pysdd", "deepproblog", "klaycircuits",
                 "safetensors", "scikit-learn"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
