"""Scene-only pretraining of the frozen Scene2EmotionNet: cross-fitted and responsibility-refitted.

See ``pretrained_scene_net`` and docs/training.md ("Pretrained scene net").
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from emolog.data.artefacts import ArtefactError, load_torch
from emolog.data.atomic import atomic_write_bytes
from emolog.labels import BASIC7
from emolog.perception.scene2emotion import Scene2EmotionNet
from emolog.learn import em
from emolog.config.run import RunConfig
from emolog.model.data import SplitData, all_rows, ids_hash
from emolog.model.gate import GateNet, gate_settings
from emolog.model.model import query_columns
from emolog.learn.losses import Loss, check_finite, epoch_order, make_optimizer, new_scene_net, nll
from emolog.learn.small import fit_small, optimiser_step


@dataclass
class Pretrained:
    """A scene-only pretrained Scene2EmotionNet and its honest training-set predictions.

    ``net`` is trained on the whole training split (used on val/test, and as the init of
    ``pretrain.scene_init=pretrained``). ``oof`` [N_train, 7] are out-of-fold probabilities: each training
    image's scene distribution from a net that never saw it (K-fold cross-fitting). Without
    them the frozen scene net would have memorised the training labels and the learned source
    weights would collapse onto the scene (0.96 measured on the simulator, truth 0.53).
    """

    net: Scene2EmotionNet
    oof: torch.Tensor | None
    info: dict


def pretrained_scene_net(
    cfg: RunConfig,
    splits: dict[str, SplitData],
    manifest: dict,
    device: torch.device,
    lm: nn.Module,
    semantics: str,
    progress: bool = True,
    classes: tuple[str, ...] = BASIC7,
) -> Pretrained:
    """Scene2EmotionNet trained scene-only on the training split, cross-fitted, then refitted.

    Round 0 fits the label from the scene features alone: that estimates P(label | scene),
    which also absorbs the labels the faces decided, and so biases the source weights (on the
    simulator the scene weight came out +0.06 too high at snr 1 and too low at weaker scenes).
    Each of ``pretrain.refit`` further rounds is one EM step for the scene network as an
    expert of the program: the source weights are learned by EM on the out-of-fold
    predictions, and the nets are refitted with each image weighted by its responsibility
    P(source = scene | label, evidence), i.e. they estimate the *scene's own* emotion.
    The logic's weights are reset afterwards: the run itself learns them from scratch.

    Cached on disk under a key of the cache fingerprint, the exact train/val ids, the program
    and every setting that affects it, so logic-only and problog-em runs share it.
    """
    # named by the previous emolog's flat keys: the key, and so every cached net, stays the same
    settings = {
        k: cfg.get(k)
        for k in (
            "seed",
            "pretrain_batch_size",
            "net_optimizer",
            "net_lr",
            "net_weight_decay",
            "net_hidden",
            "net_dropout",
            "pretrain_epochs",
            "pretrain_patience",
            "pretrain_folds",
            "pretrain_refit",
            "imbalance",
            "logit_adjust_tau",
        )
    }
    # the program itself (a spec's, not cfg.program's name) and the label set it is fitted to
    settings["program"] = hashlib.sha256(lm.program.source.encode()).hexdigest()[:16]
    settings["classes"] = list(classes)
    # The key covers the tensors' content (shard hashes), not only the fingerprint, and the
    # labels, not only the ids: a relabelled index or a regenerated cache never reuses a net.
    labels = {n: ids_hash([str(v) for v in splits[n].labels.tolist()]) for n in ("train", "val")}
    key_src = {
        "fingerprint": manifest.get("fingerprint_hash"),
        "settings": settings,
        "semantics": semantics,
        "shards": [s["sha256"] for s in manifest.get("shards", [])],
        "labels": labels,
        "train": ids_hash(splits["train"].ids),
        "val": ids_hash(splits["val"].ids),
        "scene_dim": splits["train"].scene.shape[1],
        "version": 4,
    }
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(cfg.pretrain.cache) if cfg.pretrain.cache else Path(cfg.data) / "pretrained"
    from emolog.model.bindings.program import scene_domain

    n_out = len(scene_domain(lm))  # the scene head's domain in the program
    path = folder / f"scene_net-{key}.pt"
    net = new_scene_net(cfg, splits["train"].scene.shape[1], n_classes=n_out).to(device)
    if path.exists():
        try:
            blob = load_torch(path, "a pretrained scene net")
            net.load_state_dict(blob["state"])
            oof = blob["oof"].to(device) if blob["oof"].numel() else None
            return Pretrained(net.eval(), oof, {**json.loads(blob["info"]), "cached": True, "path": str(path)})
        except (ArtefactError, KeyError, TypeError, AttributeError, RuntimeError, ValueError) as e:
            # a derived file: recomputed below (and rewritten) rather than trusted or fatal
            print(f"{path}: unusable ({str(e).splitlines()[0][:200]}); recomputing it", file=sys.stderr)

    tr, va = splits["train"], splits["val"]
    r_tr = torch.ones(len(tr), device=device)
    r_va = torch.ones(len(va), device=device)
    t_init = copy.deepcopy(lm.tparams.state_dict())
    info: dict[str, Any] = {"rounds": []}
    oof = None
    for rnd in tqdm(range(cfg.pretrain.refit + 1), desc="pretrain scene net", leave=False, disable=not progress):
        net = new_scene_net(cfg, tr.scene.shape[1], n_classes=n_out).to(device)
        rinfo = _fit_scene_only(cfg, net, tr, all_rows(tr), va, r_tr, r_va)
        if cfg.pretrain.folds > 1:
            oof = torch.empty(len(tr), n_out, device=device)
            fold = torch.arange(len(tr), device=device) % cfg.pretrain.folds  # train is seeded-shuffled
            for k in range(cfg.pretrain.folds):
                fnet = new_scene_net(cfg, tr.scene.shape[1], seed_offset=k + 1, n_classes=n_out).to(device)
                _fit_scene_only(cfg, fnet, tr, (fold != k).nonzero()[:, 0], va, r_tr, r_va)
                with torch.no_grad():
                    oof[fold == k] = torch.softmax(fnet(tr.scene[fold == k]), 1)
            rinfo["oof_nll"] = nll(oof, tr.labels)
        if rnd < cfg.pretrain.refit:
            with torch.no_grad():
                tr_probs = oof if oof is not None else torch.softmax(net(tr.scene), 1)
                va_probs = torch.softmax(net(va.scene), 1)
            w = em_weights(lm, tr, tr_probs, semantics, classes)
            rinfo["em_source_weights"] = dict(zip(lm.sources, w.tolist()))
            with torch.no_grad():
                r_tr = scene_responsibility(lm, tr, tr_probs, classes)
                r_va = scene_responsibility(lm, va, va_probs, classes)
        info["rounds"].append(rinfo)
    lm.tparams.load_state_dict(t_init)
    info.update({k: info["rounds"][-1][k] for k in ("val_nll", "val_accuracy", "epochs_run")}, key=key)
    buf = io.BytesIO()
    torch.save(
        {
            "state": {k: v.cpu() for k, v in net.state_dict().items()},
            "oof": oof.cpu() if oof is not None else torch.zeros(0),
            "info": json.dumps(info),
        },
        buf,
    )
    atomic_write_bytes(path, buf.getvalue())
    return Pretrained(net, oof, {**info, "cached": False, "path": str(path)})


def em_weights(
    lm: nn.Module,
    tr: SplitData,
    scene_probs: torch.Tensor,
    semantics: str,
    classes: tuple[str, ...] = BASIC7,
    max_iter: int = 200,
    tol: float = 1e-5,
) -> torch.Tensor:
    """Every t() by EM to convergence (max change < ``tol``) from the program's start (uniform
    for ``t(_)``), with the scene's distribution ``scene_probs`` fixed; leaves them in ``lm``
    and returns the global source weights [S] (``lm.sources`` order)."""
    if em.seed_like(lm):
        w = torch.full((len(lm.sources),), 1 / len(lm.sources), dtype=torch.float64)
        coef = em.source_coefficients(
            lm,
            lambda idx: lm.seed_inputs(scene_probs[idx], tr.face_probs[idx], tr.face_mask[idx]),
            len(tr),
            query_columns(lm, classes),
        )
        for _ in range(max_iter):
            new = em.linear_em_step(coef, tr.labels, w, semantics).weights
            done = float((new - w).abs().max()) < tol
            w = new
            if done:
                break
        em.set_source_weights(lm, w)
        return w
    lm.tparams.set_probs(torch.tensor(lm.program.initial_probs(), dtype=torch.float64))
    cols = query_columns(lm, classes)

    def io(idx: torch.Tensor) -> tuple[dict, dict]:
        return lm.seed_inputs(scene_probs[idx], tr.face_probs[idx], tr.face_mask[idx])

    w = lm.tparams.probs().detach().double()
    for _ in range(max_iter):
        new = em.lfi_step(lm, io, tr.labels, cols, semantics).weights
        done = float((new - w).abs().max()) < tol
        w = new
        if done:
            break
    return em.weights_tensor(lm)


def scene_responsibility(
    lm: nn.Module, s: SplitData, scene_probs: torch.Tensor, classes: tuple[str, ...] = BASIC7
) -> torch.Tensor:
    """P(source = scene | label, evidence) [N] per image of split ``s``."""
    inputs, facts = lm.seed_inputs(scene_probs, s.face_probs, s.face_mask)
    cols = torch.tensor(query_columns(lm, classes), device=s.labels.device)
    return lm.source_posterior_generic(inputs, facts, cols[s.labels])[:, lm.sources.index("scene")].float()


def _fit_scene_only(
    cfg: RunConfig,
    net: Scene2EmotionNet,
    tr: SplitData,
    rows: torch.Tensor,
    va: SplitData,
    r_tr: torch.Tensor,
    r_va: torch.Tensor,
) -> dict:
    """Train ``net`` on training rows ``rows`` (scene features only; image i weighted by
    ``r_tr[i]``), early stopping on the ``r_va``-weighted val NLL; leaves the best epoch's
    parameters in ``net`` (eval mode). Returns {val_nll, val_accuracy, epochs_run}."""
    opt = make_optimizer(cfg.nets.optimizer, net.parameters(), cfg.nets.lr, cfg.nets.weight_decay)
    loss_fn = Loss(cfg.train.imbalance, tr.labels[rows], cfg.train.logit_adjust_tau)

    def train_epoch(epoch: int) -> None:
        torch.manual_seed(cfg.seed * 100_003 + epoch)
        order = rows[epoch_order(tr.labels[rows], cfg.train.imbalance, cfg.seed + 7, epoch).to(rows.device)]
        for b in range(0, len(order), cfg.pretrain.batch_size):
            idx = order[b : b + cfg.pretrain.batch_size]
            loss = loss_fn(torch.softmax(net(tr.scene[idx]), 1), tr.labels[idx], r_tr[idx])
            check_finite(loss, tr, idx, "scene-only pretraining", epoch)
            optimiser_step(opt, loss)

    done = fit_small(
        net,
        train_epoch,
        lambda: loss_fn(torch.softmax(net(va.scene), 1), va.labels, r_va),
        cfg.pretrain.epochs,
        cfg.pretrain.patience,
    )
    with torch.no_grad():
        acc = float((net(va.scene).argmax(1) == va.labels).float().mean())
    return {"val_nll": done.stopper.best, "val_accuracy": acc, "epochs_run": done.epochs_run}


def global_start(
    tr: SplitData, scene_probs: torch.Tensor, semantics: str, param: str, device: torch.device
) -> dict[str, float]:
    """The global disjunction's source weights fitted by EM (to convergence) on the training
    split, with the frozen scene net's out-of-fold probabilities ``scene_probs`` [N, 7]: the
    gate's start (``extra.gate.init: global``, the default).

    Why: with zero head weights and these biases the gate *is* the fitted global program, so
    validation NLL at epoch 0 is the global model's and early stopping keeps a per-image gate
    only where it beats one global weight on held-out images. Started at uniform instead, a
    gate can stop at an epoch that is level with global on 500 validation images yet worse
    on the test set (measured, docs/context-trust.md)."""
    from emolog.logic import compile_program

    lm = compile_program("seed", semantics=semantics, param=param).to(device)
    w = em_weights(lm, tr, scene_probs, semantics)
    return {s: float(v) for s, v in zip(lm.sources, w.tolist())}


def shared_pretrained(
    cfg: RunConfig,
    splits: dict[str, SplitData],
    manifest: dict,
    device: torch.device,
    semantics: str,
    progress: bool = True,
) -> Pretrained:
    """train_run's pretrained scene net (and out-of-fold training probabilities) for the global
    program seed.pl under this config: its pretraining fits the scene net as an expert of a
    program with global source weights, which a gate does not have; and keyed on seed.pl, it is
    the very net a global run of the same config uses, so gated and global runs compare on one
    frozen scene net (the disk cache makes the second call free)."""
    from emolog.logic import compile_program

    base = cfg.updated({"program": "seed"})
    lm = compile_program("seed", semantics=semantics, param=cfg.logic.param).to(device)
    return pretrained_scene_net(base, splits, manifest, device, lm, semantics, progress)


def build_gate(
    cfg: RunConfig, trains_logic: bool, tr: SplitData, oof: torch.Tensor | None, semantics: str, device: torch.device
) -> tuple[GateNet, dict[str, Any]]:
    """The GateNet of a gated run and its settings (``gate_settings`` + how it started).

    The start: the config's weights (``logic.fixed_weights`` when the logic is fixed, else
    ``logic.init_weights``), else with ``init: global`` the global program fitted by EM on the
    frozen scene net's out-of-fold probabilities (``global_start``); a scene net trained from
    scratch (joint) has none yet, so such runs start uniform, as a global run does."""
    settings = gate_settings(cfg)
    start = cfg.logic.fixed_weights if not trains_logic else cfg.logic.init_weights
    how = "config" if start is not None else "uniform"
    if start is None and trains_logic and settings["init"] == "global" and oof is not None:
        start = global_start(tr, oof, semantics, cfg.logic.param, device)
        how = "global (EM, out-of-fold scene probabilities)"
    settings = {**settings, "start": how, "start_weights": start}
    torch.manual_seed(cfg.seed)
    gate = GateNet(
        hidden=settings["hidden"], scene_dim=tr.scene.shape[1] if settings["scene_features"] else 0, init=start
    ).to(device)
    return gate, settings
