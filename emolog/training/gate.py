"""Context trust: the source choice as a function of per-image evidence (docs/context-trust.md).

Two programs make the choice of source (scene, face1..3) depend on the image:

* ``gated`` (``programs/gated.pl``): the choice is a neural predicate, ``source(X, S)`` with
  ``S ~ gate_net(X)``; ``GateNet`` reads the evidence vector of ``evidence_features``;
* ``context_rules`` (``programs/context_rules.pl``): readable rules over discretised per-image
  facts (``large_face``, ``confident``, from ``rule_facts``) with trainable ``t()`` weights.

``train_gated(config, out_dir)`` trains either in every gradient-based regime of
``emolog.training.regimes`` (the gate / rule weights are the "logic" parameter group: they use
``logic_optimizer``, ``logic_lr``, ``logic_weight_decay``; EM does not apply to a gate net) and
writes the same run directory as ``train_run``, with per-image source probabilities in
``predictions.csv``'s ``w_<source>`` columns. Gate settings live in ``config.extra["gate"]``
(``GATE_DEFAULTS``), so config.json round-trips through ``RunConfig``.
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from emolog.cache.store import load_cache
from emolog.data.atomic import atomic_write_bytes, atomic_write_text
from emolog.labels import BASIC7
from emolog.runtime import torch_threads
from emolog.training import changes
from emolog.training import train as T
from emolog.training.config import SOURCES, ConfigError, RunConfig
from emolog.training.data import SplitData, load_data
from emolog.training.losses import Loss, make_optimizer, new_scene_net, nll
from emolog.training.pretrain import Pretrained, pretrained_scene_net
from emolog.training.regimes import get_regime

K = 3
LARGE_FACE_AREA = 0.02   # box area / image area; the simulator's small/large boundary
CONFIDENT_PROB = 0.5     # recogniser top probability for the rules' confident(F)
AREA_FLOOR = 1e-4        # log10 of smaller areas would only add noise
SLOT_FEATURES = ("present", "log_area", "dx", "dy", "centrality", "det_conf", "entropy", "max_prob")
EVIDENCE_FEATURES: tuple[str, ...] = tuple(
    f"face{k + 1}_{f}" for k in range(K) for f in SLOT_FEATURES) + (
    "n_faces", "scene_entropy", "scene_max_prob")
N_STATIC = len(EVIDENCE_FEATURES) - 2   # all but the scene's two (they move with the scene net)
GATE_DEFAULTS: dict[str, Any] = {"hidden": 32, "scene_features": False, "init": "global"}
GATE_INITS = ("global", "uniform")


# ----------------------------------------------------------------------------- evidence


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy of distributions [..., C] in units of log C (0 = certain, 1 = uniform)."""
    return -(p * p.clamp_min(1e-12).log()).sum(-1) / math.log(p.shape[-1])


def static_evidence(face_mask: torch.Tensor, face_area: torch.Tensor, face_boxes: torch.Tensor,
                    face_conf: torch.Tensor, image_size: torch.Tensor, face_probs: torch.Tensor,
                    n_faces: torch.Tensor) -> torch.Tensor:
    """The evidence that does not depend on trainable nets: Tensor[N, N_STATIC] float32.

    Inputs are the cache's tensors: face_mask [N,K] bool, face_area [N,K] (fraction of the
    image), face_boxes [N,K,4] (x1, y1, x2, y2 pixels), face_conf [N,K] in [0,1], image_size
    [N,2] (width, height pixels), face_probs [N,K,7], n_faces [N]. Per slot (order
    SLOT_FEATURES): present; log10(area) + 2 (0 at 1% of the image); the box centre's offset
    from the image centre dx, dy in [-1, 1]; centrality 1 - |(dx, dy)| / sqrt 2; detector
    confidence as -log10(1 - conf) / 4 in [0, 1] (MTCNN's 0.99 vs 0.9999 matter); the
    recogniser's entropy (units of log 7) and top probability. Absent slots are all 0. Then
    log(1 + n_faces) / log 9 (n_faces counts faces beyond K too).
    """
    m = face_mask.float()
    if face_area.shape[1] != K:
        raise ValueError(f"evidence expects K={K} face slots, got face_area {tuple(face_area.shape)}")
    size = image_size.float().clamp_min(1)
    w, h = size[:, :1], size[:, 1:2]
    cx = (face_boxes[..., 0] + face_boxes[..., 2]) / 2
    cy = (face_boxes[..., 1] + face_boxes[..., 3]) / 2
    dx = (2 * cx / w - 1).clamp(-1, 1)
    dy = (2 * cy / h - 1).clamp(-1, 1)
    centrality = 1 - torch.sqrt(dx ** 2 + dy ** 2) / math.sqrt(2)
    log_area = torch.log10(face_area.float().clamp_min(AREA_FLOOR)) + 2
    det = -torch.log10((1 - face_conf.float()).clamp_min(1e-4)) / 4
    slots = torch.stack([torch.ones_like(m), log_area, dx, dy, centrality, det,
                         _entropy(face_probs.float()), face_probs.float().amax(-1)], -1) * m[..., None]
    n = torch.log1p(n_faces.float().clamp_min(0)) / math.log(9)
    return torch.cat([slots.flatten(1), n[:, None]], 1)


def evidence_features(static: torch.Tensor, scene_probs: torch.Tensor) -> torch.Tensor:
    """The gate's input [N, len(EVIDENCE_FEATURES)]: static evidence [N, N_STATIC] plus the
    scene distribution's [N, 7] entropy and top probability.

    The scene part is detached: the gate reads the scene net's confidence as evidence, and
    letting the gate's loss reshape that confidence would let it tune its own input.
    """
    p = scene_probs.detach().float()
    return torch.cat([static, _entropy(p)[:, None], p.amax(1, keepdim=True)], 1)


def rule_facts(face_mask: torch.Tensor, face_area: torch.Tensor, face_probs: torch.Tensor
               ) -> dict[str, torch.Tensor]:
    """The discretised facts of context_rules.pl, each Tensor[N] of 0/1: ``large(face<k>)`` =
    area >= LARGE_FACE_AREA, ``confident(face<k>)`` = recogniser top probability >=
    CONFIDENT_PROB (both 0 for an empty slot). Shapes: mask/area [N,K], face_probs [N,K,7]."""
    m = face_mask.bool()
    large = m & (face_area >= LARGE_FACE_AREA)
    conf = m & (face_probs.amax(-1) >= CONFIDENT_PROB)
    out = {}
    for k in range(face_mask.shape[1]):
        out[f"large(face{k + 1})"] = large[:, k].float()
        out[f"confident(face{k + 1})"] = conf[:, k].float()
    return out


# ----------------------------------------------------------------------------- the gate


class GateNet(nn.Module):
    """Evidence [B, F] (+ optional scene features [B, D]) -> source distribution [B, 4].

    MLP F -> hidden (ReLU) -> 4 logits over (scene, face1, face2, face3) (``hidden`` 0: one
    linear layer F -> 4); absent faces get
    probability exactly 0 (``available`` [B, 4] bool), so the output is directly the per-image
    source distribution the program conditions on. The last layer starts at zero weights and
    bias log(init), so every image starts at the global weights ``init`` (uniform by default)
    renormalised over its sources: the same start as the global disjunction.
    """

    def __init__(self, n_features: int = len(EVIDENCE_FEATURES), hidden: int = 32, scene_dim: int = 0,
                 init: dict[str, float] | None = None) -> None:
        super().__init__()
        self.n_features, self.hidden, self.scene_dim = n_features, hidden, scene_dim
        # A scene vector is high-dimensional: squeeze it to 8 numbers so it cannot drown the evidence.
        self.scene_proj = nn.Linear(scene_dim, 8) if scene_dim else None
        width = n_features + (8 if scene_dim else 0)
        # hidden = 0: a linear (multinomial logistic) gate
        self.body = nn.Sequential(nn.Linear(width, hidden), nn.ReLU()) if hidden else nn.Identity()
        self.head = nn.Linear(hidden or width, len(SOURCES))
        w = init or {s: 1 / len(SOURCES) for s in SOURCES}
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.copy_(torch.log(torch.tensor([max(w[s], 1e-6) for s in SOURCES])))

    def forward(self, evidence: torch.Tensor, available: torch.Tensor,
                scene: torch.Tensor | None = None) -> torch.Tensor:
        """[B, F] evidence, [B, 4] availability (scene first) -> [B, 4] probabilities."""
        x = evidence
        if self.scene_proj is not None:
            if scene is None:
                raise ValueError("this gate was built with scene_features: pass scene [B, D]")
            x = torch.cat([x, torch.relu(self.scene_proj(scene.float()))], 1)
        logits = self.head(self.body(x)).masked_fill(~available.bool(), float("-inf"))
        return torch.softmax(logits, 1)


def per_image_program(program: str | Path) -> bool:
    """True when ``program`` (a shipped name or a .pl path) chooses its source per image (a
    ``gate_net`` neural predicate or ``query(source(X, S))``): such programs train with
    ``train_gated``. Parses only (no compilation), so it is cheap enough for a dispatch."""
    from emolog.logic.program import parse_program, resolve_program
    prog = parse_program(*resolve_program(program))
    return "gate_net" in prog.neural or any(q.functor == "source" and q.arity == 2 for q in prog.queries)


def program_kind(lm: nn.Module) -> str:
    """"gate" when the program's source is the neural predicate ``gate_net``, "rules" when it
    queries ``source(X, S)`` itself, "global" for a ``t(_)::source(S)`` disjunction (seed.pl;
    trained here only so that it can be compared with the others under identical training)."""
    if "gate_net" in lm.input_sizes:
        if lm.input_sizes["gate_net"] != len(SOURCES):
            raise ConfigError(f"{lm.program.path}: gate_net must range over {list(SOURCES)}")
        return "gate"
    if all(f"source({s})" in lm.query_names for s in SOURCES):
        return "rules"
    if any(p.head.functor == "source" and p.head.arity == 1 for p in lm.program.params):
        return "global"
    raise ConfigError(f"config key 'program': {lm.program.path} has no source choice over "
                      f"{list(SOURCES)} (nn(gate_net, ...), query(source(X, S)) or t(_)::source(S))")


class GatedModel(T.Model):
    """``train.Model`` whose source choice comes from per-image evidence.

    ``static`` maps ``id(split)`` to that split's static evidence [N, N_STATIC]; ``gate`` is the
    GateNet (None for a rules program, whose t() weights live in ``lm``).
    """

    def __init__(self, lm: nn.Module, scene_net: nn.Module, last_block: nn.Module | None, semantics: str,
                 grey_logits: torch.Tensor | None, gate: GateNet | None, kind: str) -> None:
        super().__init__(lm, scene_net, last_block, semantics, grey_logits)
        self.gate, self.kind = gate, kind
        self.static: dict[int, torch.Tensor] = {}
        self._cols = [lm.query_names.index(f"emotion({e})") for e in BASIC7]
        self._src_cols = ([lm.query_names.index(f"source({s})") for s in SOURCES]
                          if kind == "rules" else [])
        self._src_order = [lm.sources.index(s) for s in SOURCES]

    def _available(self, s: SplitData, idx: torch.Tensor) -> torch.Tensor:
        if self.semantics == "original":  # the original reads grey faces: every slot "exists"
            return torch.ones(len(idx), len(SOURCES), dtype=torch.bool, device=idx.device)
        scene = torch.ones(len(idx), 1, dtype=torch.bool, device=idx.device)
        return torch.cat([scene, s.face_mask[idx].bool()], 1)

    def gate_probs(self, s: SplitData, idx: torch.Tensor, scene_probs: torch.Tensor) -> torch.Tensor:
        """[B, 4] gate output for rows ``idx`` of split ``s``."""
        ev = evidence_features(self.static[id(s)][idx], scene_probs)
        return self.gate(ev, self._available(s, idx), s.scene[idx] if self.gate.scene_proj is not None else None)

    def _program_io(self, s: SplitData, idx: torch.Tensor) -> tuple[dict, dict]:
        scene = self.scene_probs(s, idx)
        gate = self.gate_probs(s, idx, scene) if self.kind == "gate" else None
        inputs, facts = self.lm.seed_inputs(scene, s.face_probs[idx], s.face_mask[idx], gate_probs=gate,
                                            **self._original_kw(s, idx))
        if self.kind == "rules":
            facts.update(rule_facts(s.face_mask[idx], s.face_area[idx], s.face_probs[idx]))
        return inputs, facts

    def forward(self, s: SplitData, idx: torch.Tensor) -> torch.Tensor:
        """P(emotion | evidence) [B, 7]."""
        inputs, facts = self._program_io(s, idx)
        return self.lm(inputs, facts)[:, self._cols]

    def posterior(self, s: SplitData, idx: torch.Tensor) -> torch.Tensor:
        """P(source | label, evidence) [B, 4] in SOURCES order."""
        inputs, facts = self._program_io(s, idx)
        cols = torch.tensor(self._cols, device=idx.device)
        post = self.lm.source_posterior_generic(inputs, facts, cols[s.labels[idx]])
        return post[:, self._src_order]

    def source_probs(self, s: SplitData, idx: torch.Tensor) -> torch.Tensor:
        """Per-image source distribution [B, 4] (SOURCES order) before seeing the label."""
        if self.kind == "gate":
            return self.gate_probs(s, idx, self.scene_probs(s, idx))
        if self.kind == "global":  # the global weights, conditioned on the sources present
            g = self.lm.source_weights()
            w = torch.tensor([g[x] for x in SOURCES], device=idx.device) * self._available(s, idx)
            return w / w.sum(1, keepdim=True)
        inputs, facts = self._program_io(s, idx)
        return self.lm(inputs, facts)[:, self._src_cols]


# ----------------------------------------------------------------------------- training


def gate_settings(cfg: RunConfig) -> dict[str, Any]:
    """GATE_DEFAULTS updated with ``cfg.extra["gate"]``; unknown keys are refused by name."""
    given = cfg.extra.get("gate", {}) or {}
    unknown = sorted(set(given) - set(GATE_DEFAULTS))
    if unknown:
        raise ConfigError(f"config key 'extra.gate': unknown key(s) {unknown}; known: {sorted(GATE_DEFAULTS)}")
    out = {**GATE_DEFAULTS, **given}
    if not (isinstance(out["hidden"], int) and not isinstance(out["hidden"], bool) and out["hidden"] >= 0):
        raise ConfigError(f"config key 'extra.gate.hidden' must be an integer >= 0 (0 = linear gate), "
                          f"got {out['hidden']!r}")
    if out["init"] not in GATE_INITS:
        raise ConfigError(f"config key 'extra.gate.init' must be one of {list(GATE_INITS)}, got {out['init']!r}")
    if not isinstance(out["scene_features"], bool):
        raise ConfigError(f"config key 'extra.gate.scene_features' must be true or false, "
                          f"got {out['scene_features']!r}")
    return out


def global_start(tr: SplitData, scene_probs: torch.Tensor, semantics: str, param: str,
                 device: torch.device) -> dict[str, float]:
    """The global disjunction's source weights fitted by EM (to convergence) on the training
    split, with the frozen scene net's out-of-fold probabilities ``scene_probs`` [N, 7]: the
    gate's start (``extra.gate.init: global``, the default).

    Why: with zero head weights and these biases the gate *is* the fitted global program, so
    validation NLL at epoch 0 is the global model's and early stopping keeps a per-image gate
    only where it beats one global weight on held-out images. Started at uniform instead, a
    gate can stop at an epoch that is level with global on 500 validation images yet worse
    on the test set (measured, docs/context-trust.md)."""
    from emolog.logic import compile_program
    from emolog.training.pretrain import em_weights
    lm = compile_program("seed", semantics=semantics, param=param).to(device)
    w = em_weights(lm, tr, scene_probs, semantics)
    return {s: float(v) for s, v in zip(lm.sources, w.tolist())}


def load_static(data_dir: str | Path, splits: dict[str, SplitData], device: torch.device
                ) -> dict[str, torch.Tensor]:
    """Static evidence [N, N_STATIC] per split, from the cache rows of exactly the split's ids."""
    out = {}
    for name, s in splits.items():
        c = load_cache(Path(data_dir) / "cache", ids=s.ids)
        out[name] = static_evidence(c.face_mask, c.face_area, c.face_boxes, c.face_conf, c.image_size,
                                    c.face_probs, c.n_faces).to(device)
    return out


def shared_pretrained(cfg: RunConfig, splits: dict[str, SplitData], manifest: dict, device: torch.device,
                      semantics: str) -> Pretrained:
    """train_run's pretrained scene net (and out-of-fold training probabilities) for the global
    program seed.pl under this config: its pretraining fits the scene net as an expert of a
    program with global source weights, which a gate does not have; and keyed on seed.pl, it is
    the very net a global run of the same config uses, so gated and global runs compare on one
    frozen scene net (the disk cache makes the second call free)."""
    from emolog.logic import compile_program
    base = RunConfig.from_dict({**cfg.to_dict(), "program": "seed"})
    lm = compile_program("seed", semantics=semantics, param=cfg.logic_param).to(device)
    return pretrained_scene_net(base, splits, manifest, device, lm, semantics)


def train_gated(config: RunConfig | dict, out_dir: str | Path, progress: bool = True,
                resume: bool = False) -> dict:
    """Train a gated or rules program in one regime; write a run directory; return results.json.

    Same data checks, pretrained scene net, losses, batching, early stopping on validation NLL
    and output files as ``train_run`` (plus ``gate_net.pt``); ``w_<source>`` in predictions.csv
    and history.csv are per-image source probabilities (history: their validation mean), and
    results' ``source_weights`` is their test mean. No checkpoint/resume: a run takes seconds.
    """
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    cfg.validate()
    if resume:
        raise ConfigError(f"program {cfg.program!r}: gated runs keep no checkpoint (they take seconds); "
                          "rerun into a new directory instead of resuming")
    with torch_threads(cfg.threads):   # as train_run: the config pins torch's CPU threads
        return _train_gated(cfg, Path(out_dir), progress)


def _train_gated(cfg: RunConfig, out: Path, progress: bool) -> dict:
    regime = get_regime(cfg.regime)
    if regime.learner != "gradient":
        raise ConfigError(f"config key 'regime': {cfg.regime!r} learns by EM, which does not apply to a "
                          "gate net or to rules over per-image facts; use a gradient regime")
    settings = gate_settings(cfg)
    semantics = regime.semantics or cfg.semantics
    out.mkdir(parents=True, exist_ok=True)
    device = T.resolve_device(cfg.device)
    t0 = time.perf_counter()
    splits, manifest, data_info = load_data(cfg, device, prelast=regime.trains_backbone)
    atomic_write_text(out / "config.json", json.dumps(
        {**cfg.to_dict(), "provenance": T._provenance(manifest, data_info)}, indent=1))

    from emolog.logic import compile_program
    lm = compile_program(cfg.program, semantics=semantics, param=cfg.logic_param).to(device)
    kind = program_kind(lm)
    pretrain_info, oof = None, None
    if (regime.scene_init if cfg.scene_init == "auto" else cfg.scene_init) == "pretrained":
        pre = shared_pretrained(cfg, splits, manifest, device, semantics)
        scene_net, pretrain_info, oof = pre.net, pre.info, pre.oof
    else:
        scene_net = new_scene_net(cfg, splits["train"].scene.shape[1]).to(device)
    last_block = T.build_last_block(manifest).to(device) if regime.trains_backbone else None
    grey = T.grey_face_logits(cfg, manifest)[0].to(device) if semantics == "original" else None
    gate = None
    if kind == "gate":
        start = cfg.fixed_weights if not regime.trains_logic else cfg.init_weights
        how = "config" if start is not None else "uniform"
        if start is None and regime.trains_logic and settings["init"] == "global" and oof is not None:
            # needs the frozen scene net's out-of-fold probabilities; a scene net trained from
            # scratch (joint) has none yet, so such runs start uniform, as a global run does;
            # a regime that keeps the logic fixed keeps a global run's fixed (uniform) weights
            start = global_start(splits["train"], oof, semantics, cfg.logic_param, device)
            how = "global (EM, out-of-fold scene probabilities)"
        settings = {**settings, "start": how, "start_weights": start}
        torch.manual_seed(cfg.seed)
        gate = GateNet(hidden=settings["hidden"],
                       scene_dim=splits["train"].scene.shape[1] if settings["scene_features"] else 0,
                       init=start).to(device)
    elif kind == "global":  # as train_run does
        from emolog.training import em
        start = cfg.init_weights if regime.trains_logic else cfg.fixed_weights
        if start is not None or not regime.trains_logic:
            em.set_source_weights(lm, start or {s: 1 / len(SOURCES) for s in SOURCES})
    elif cfg.init_weights is not None or cfg.fixed_weights is not None:
        raise ConfigError("config keys 'init_weights' / 'fixed_weights' set global source weights; "
                          f"{cfg.program!r} has none (its t() weights are per face kind)")
    model = GatedModel(lm, scene_net, last_block, semantics, grey, gate, kind)
    static = load_static(cfg.data, splits, device)
    model.static = {id(splits[n]): static[n] for n in splits}

    nets: dict[str, nn.Module] = {"logic": lm, "scene_net": scene_net}
    trainable = {"logic": regime.trains_logic, "scene_net": regime.trains_scene_net}
    if gate is not None:
        nets["gate_net"], trainable["gate_net"] = gate, regime.trains_logic
    if last_block is not None:
        nets["backbone_last_block"], trainable["backbone_last_block"] = last_block, True
    for name, net in nets.items():
        for p in net.parameters():
            p.requires_grad_(trainable[name])
    if not regime.trains_scene_net:
        # out-of-fold scene probabilities on the training split (pretrain_folds): a gate that
        # reads the memorised scene's confidence would otherwise collapse onto the scene
        model.freeze_scene(splits, oof)
    init = {name: changes.snapshot(net) for name, net in nets.items()}
    tracker = changes.GradTracker(nets)
    optims = _optimizers(cfg, nets, trainable)

    before = _predict(model, splits["test"])
    history = [_history_row(0, nll(_predict(model, splits["train"])["probs"], splits["train"].labels),
                            model, splits["val"], {n: 0.0 for n in nets})]
    best = {"val": history[0]["val_loss"], "epoch": 0, "states": T._states(nets)}
    bad, epoch_run = 0, 0
    loss_fn = Loss(cfg.imbalance, splits["train"].labels, cfg.logit_adjust_tau)
    t_start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        if bad >= (cfg.patience or math.inf):
            break
        train_loss = T._gradient_epoch(model, splits["train"], loss_fn, optims, tracker, cfg, epoch, progress)
        row = _history_row(epoch, train_loss, model, splits["val"], tracker.end_epoch())
        history.append(row)
        epoch_run = epoch
        if row["val_loss"] < best["val"] - 1e-7:
            best, bad = {"val": row["val_loss"], "epoch": epoch, "states": T._states(nets)}, 0
        else:
            bad += 1
    train_time = time.perf_counter() - t_start
    if cfg.patience is not None:
        T._restore(nets, best["states"])
    results = _finish(out, cfg, semantics, model, nets, init, trainable, tracker, splits, before, history,
                      train_time, epoch_run, best["epoch"], data_info, pretrain_info, kind, settings)
    results["wall_time_s"] = time.perf_counter() - t0
    atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    return results


def _optimizers(cfg: RunConfig, nets: dict[str, nn.Module], trainable: dict[str, bool]) -> dict:
    """The gate / rule weights use the logic settings; the nets use theirs (as in train_run)."""
    out: dict[str, Any] = {}
    if trainable["logic"] and len(list(nets["logic"].parameters())):
        if cfg.logic_param == "projected":
            from emolog.logic import ProjectedSGD
            out["logic"] = ProjectedSGD(nets["logic"].tparams, lr=cfg.logic_lr)
        else:
            out["logic"] = make_optimizer(cfg.logic_optimizer, nets["logic"].parameters(), cfg.logic_lr,
                                        cfg.logic_weight_decay)
    if trainable.get("gate_net"):
        # a gate is an ordinary net: the projected (DeepProbLog) update is for t() only, so
        # logic_param=projected (which forces logic_optimizer=sgd) trains the gate with SGD
        out["gate_net"] = make_optimizer(cfg.logic_optimizer, nets["gate_net"].parameters(), cfg.logic_lr,
                                       cfg.logic_weight_decay)
    if trainable["scene_net"]:
        out["scene_net"] = make_optimizer(cfg.net_optimizer, nets["scene_net"].parameters(), cfg.net_lr,
                                        cfg.net_weight_decay)
    if trainable.get("backbone_last_block"):
        out["backbone_last_block"] = make_optimizer(cfg.backbone_optimizer, nets["backbone_last_block"].parameters(),
                                                  cfg.backbone_lr, cfg.backbone_weight_decay)
    return out


@torch.no_grad()
def _predict(model: GatedModel, s: SplitData) -> dict[str, torch.Tensor]:
    """probs [N, 7], post [N, 4] (P(source | label, evidence)), w [N, 4] (per-image source probs)."""
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {"probs": [], "post": [], "w": []}
    for i in range(0, len(s), T.EVAL_CHUNK):
        idx = torch.arange(i, min(i + T.EVAL_CHUNK, len(s)), device=s.labels.device)
        parts["probs"].append(model(s, idx))
        parts["post"].append(model.posterior(s, idx))
        parts["w"].append(model.source_probs(s, idx))
    return {k: torch.cat(v) for k, v in parts.items()}


def _history_row(epoch: int, train_loss: float, model: GatedModel, va: SplitData,
                 grad_norms: dict[str, float]) -> dict:
    from emolog.training.metrics import evaluate
    pred = _predict(model, va)
    m = evaluate(pred["probs"].cpu().double().numpy(), va.labels.cpu().numpy(), BASIC7)
    row = {"epoch": epoch, "train_loss": train_loss, "val_loss": nll(pred["probs"], va.labels),
           "val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"]}
    row.update({f"w_{s}": float(pred["w"][:, j].mean()) for j, s in enumerate(SOURCES)})
    row.update({f"grad_norm_{g}": v for g, v in grad_norms.items()})
    return row


def _finish(out: Path, cfg: RunConfig, semantics: str, model: GatedModel, nets: dict, init: dict,
            trainable: dict, tracker: changes.GradTracker, splits: dict, before: dict, history: list[dict],
            train_time: float, epochs_run: int, best_epoch: int, data_info: dict, pretrain_info: dict | None,
            kind: str, settings: dict) -> dict:
    from emolog.training.metrics import evaluate, sanity_check
    te, va = splits["test"], splits["val"]
    after = _predict(model, te)
    y = te.labels.cpu().numpy()
    p_after, p_before = after["probs"].cpu().double().numpy(), before["probs"].cpu().double().numpy()
    w = after["w"].cpu().numpy()
    metrics = {"val": evaluate(_predict(model, va)["probs"].cpu().double().numpy(), va.labels.cpu().numpy(), BASIC7),
               "test": evaluate(p_after, y, BASIC7)}
    majority = int(torch.bincount(splits["train"].labels, minlength=len(BASIC7)).argmax())
    pd.DataFrame(history).to_csv(buf := io.StringIO(), index=False)
    atomic_write_text(out / "history.csv", buf.getvalue())
    T._write_predictions(out / "predictions.csv", te, p_after, p_before, after["post"].cpu().numpy(),
                         {s: w[:, j] for j, s in enumerate(SOURCES)})
    change = {"layers": changes.layer_changes(nets, init, trainable, tracker),
              "flips": changes.flips(y, p_before.argmax(1), p_after.argmax(1), BASIC7)}
    atomic_write_text(out / "changes.json", json.dumps(change, indent=1))
    _save(out / "scene_net.pt", model.scene_net.state_dict())
    if model.gate is not None:
        g = model.gate
        _save(out / "gate_net.pt", {"state": g.state_dict(), "n_features": g.n_features,
                                    "hidden": g.hidden, "scene_dim": g.scene_dim,
                                    "features": list(EVIDENCE_FEATURES)})
    if model.last_block is not None:
        _save(out / "backbone_last_block.pt", model.last_block.state_dict())
    truth = trust_truth(Path(cfg.data), te.ids, w)
    return {
        "regime": cfg.regime, "seed": cfg.seed, "program": cfg.program, "semantics": semantics,
        "metrics": metrics, "metrics_before": {"test": evaluate(p_before, y, BASIC7)},
        # per-image in a gated program: this is their mean over the test images
        "source_weights": {s: float(w[:, j].mean()) for j, s in enumerate(SOURCES)},
        "source_weights_kind": "mean per-image source probability (test)",
        "true_source_weights": T._true_weights(Path(cfg.data)),
        "train_time_s": train_time, "epochs_run": epochs_run,
        "best_epoch": best_epoch if cfg.patience is not None else epochs_run,
        "stopped_early": epochs_run < cfg.epochs, "n_train": len(splits["train"]),
        "train_accuracy": float((_predict(model, splits["train"])["probs"].argmax(1)
                                 == splits["train"].labels).float().mean()),
        "pretrain": pretrain_info, "data": data_info,
        "sanity_warning": sanity_check(metrics["test"]["accuracy"], len(y), float((y == majority).mean())),
        "gate": {"kind": kind, **settings, "features": list(EVIDENCE_FEATURES) if kind == "gate" else None,
                 "t_probs": model.lm.t_probs() if kind == "rules" else None},
        "trust_vs_truth": truth,
    }


def _save(path: Path, obj: Any) -> None:
    buf = io.BytesIO()
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        obj = {k: v.detach().cpu() for k, v in obj.items()}
    elif isinstance(obj, dict) and "state" in obj:
        obj = {**obj, "state": {k: v.detach().cpu() for k, v in obj["state"].items()}}
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def trust_truth(data_dir: Path, ids: list[str], w: np.ndarray) -> dict | None:
    """Pearson r of per-image source probabilities ``w`` [N, 4] with truth.csv's ``p_<source>``.

    ``r_available``: over every (image, source) pair whose source exists in the image (an
    absent face is 0 in both, which would inflate r); ``r_scene``: of the scene's probability
    alone (the trust in the scene vs all faces). None on real data (no truth.csv).
    """
    path = data_dir / "truth.csv"
    if not path.exists():
        return None
    truth = pd.read_csv(path, dtype={"image_id": str}).set_index("image_id")
    missing = [i for i in ids if i not in truth.index]
    if missing:
        raise ConfigError(f"{path} lacks {len(missing)} test ids, e.g. {missing[:5]}")
    p = truth.loc[ids, [f"p_{s}" for s in SOURCES]].to_numpy(np.float64)
    return source_correlation(w, p)


def source_correlation(w: np.ndarray, p_true: np.ndarray) -> dict[str, float]:
    """{"r_available", "r_scene", "n_pairs"}: see ``trust_truth``; w, p_true [N, 4]."""
    w, p_true = np.asarray(w, np.float64), np.asarray(p_true, np.float64)
    avail = p_true > 0
    avail[:, 0] = True
    a, b = w[avail], p_true[avail]

    def r(x: np.ndarray, y: np.ndarray) -> float:
        # a constant (e.g. the scene's weight in a global run on images that all have faces) has no r
        return float(np.corrcoef(x, y)[0, 1]) if x.std() > 1e-9 and y.std() > 1e-9 else float("nan")
    return {"r_available": r(a, b), "r_scene": r(w[:, 0], p_true[:, 0]), "n_pairs": int(avail.sum())}


# ----------------------------------------------------------------------------- explain


def load_gate(run_dir: str | Path) -> GateNet | None:
    """The trained GateNet of a gated run (``gate_net.pt``), or None when the run has none."""
    path = Path(run_dir) / "gate_net.pt"
    if not path.is_file():
        return None
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if blob.get("features") != list(EVIDENCE_FEATURES):
        raise ValueError(f"{path}: gate trained on features {blob.get('features')}, this emolog computes "
                         f"{list(EVIDENCE_FEATURES)}")
    gate = GateNet(blob["n_features"], blob["hidden"], blob["scene_dim"])
    gate.load_state_dict(blob["state"])
    return gate.eval()


@torch.no_grad()
def explain_sources(run_dir: str | Path, perceived: dict, scene_probs) -> dict[str, float] | None:
    """Per-image source probabilities {"scene", "face1", ...} of a gated run for one image.

    ``perceived``: ``Perception.perceive_batch``'s arrays for a batch of one (face_mask,
    face_area, face_boxes, face_conf, image_size, face_probs, n_faces, scene);
    ``scene_probs``: the run's Scene2EmotionNet distribution [7] for it. None for a run
    without a gate (its source weights are global: results.json).
    """
    gate = load_gate(run_dir)
    if gate is None:
        return None
    t = {k: torch.as_tensor(np.asarray(perceived[k])) for k in
         ("face_mask", "face_area", "face_boxes", "face_conf", "image_size", "face_probs", "n_faces")}
    static = static_evidence(t["face_mask"], t["face_area"], t["face_boxes"], t["face_conf"], t["image_size"],
                             t["face_probs"], t["n_faces"])
    ev = evidence_features(static, torch.as_tensor(np.asarray(scene_probs), dtype=torch.float32).reshape(1, -1))
    avail = torch.cat([torch.ones(1, 1, dtype=torch.bool), t["face_mask"].bool().reshape(1, -1)], 1)
    scene = torch.as_tensor(np.asarray(perceived["scene"]), dtype=torch.float32) if gate.scene_dim else None
    w = gate(ev, avail, scene)[0]
    return {s: float(w[j]) for j, s in enumerate(SOURCES)}
