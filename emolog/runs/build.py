"""A model built from its config: ``build(cfg) -> Built`` (docs/architecture.md sections 4-5).

Every program and every regime is built by the same steps: the spec opened and its program
checked, the data directory read, the program compiled (and, through DeepProgram, evaluated on
a few training images so a mistake is refused before any training), then the networks in a
fixed order (scene net, pretrained per regime; the backbone's last block for joint-unfreeze;
the original semantics' grey-face logits; a gate when the program's source is a neural
predicate; the spec's heads) and the named parameter groups the regime trains.
``emolog.runs.train`` runs the fit loop on the result and writes the run directory.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from emolog import runtime
from emolog.config.regimes import Regime, get_regime
from emolog.config.run import ConfigError, RunConfig
from emolog.labels import BASIC7
from emolog.learn import em
from emolog.learn.fit import Group
from emolog.learn.losses import new_scene_net
from emolog.model.bindings.fields import add_scene_classes
from emolog.model.bindings.program import BuildContext, build_logic, open_program, own_names, scene_domain
from emolog.model.bindings.schema import SpecError, check_data
from emolog.model.data import SplitData, load_data
from emolog.model.gate import program_kind
from emolog.model.kinds import NONE, ProgramKind
from emolog.model.model import Network, Parts
from emolog.model.perception import build_last_block, perception_record, scene_classifier
from emolog.model.spec import Spec, load_spec
from emolog.runs.networks import (
    Setting,
    build_emotion_scene_net,
    build_gate_net,
    build_grey_logits,
    build_heads,
    build_scene_net,
)

__all__ = ["Built", "build", "prepare_spec", "resolve_device"]


def prepare_spec(cfg: RunConfig, splits: dict[str, SplitData], perception: dict, spec: Spec, prog) -> BuildContext:
    """The spec's bindings checked against the data (fields the cache holds, face slots, the
    scene backbone's classes), the scene classes computed per split where a binding reads
    them; returns what building the program's feeds needs."""
    tr = splits["train"]
    reads = {src for b in spec.nets.values() for src in (b.bind, *b.inputs)}
    names: list[str] = []
    if "cache.scene_classes" in reads and not perception.get("simulated"):
        classifier, names = scene_classifier(cfg, perception)
        for s in splits.values():
            add_scene_classes(s, classifier)
    has = {"face_features": tr.face_features is not None, "scene_classes": bool(names)}
    maps = check_data(
        spec.where, spec.nets, prog.nets, tr.face_mask.shape[1], lambda f: has.get(f, True), lambda: names
    )
    return BuildContext(tr.face_mask.shape[1], cfg.seed, cfg.nets.dropout, maps)


def resolve_device(name: str) -> torch.device:
    """``emolog.runtime.resolve_device`` with its error named as the config key."""
    try:
        return runtime.resolve_device(name)
    except ValueError as e:
        raise ConfigError(f"config key 'device': {e}") from None


def _check_em(cfg: RunConfig, regime: Regime, lm: nn.Module, gated: bool, name: str) -> None:
    """problog-em learns the program's t(): refused for a program with none (or a gate net)."""
    if regime.learner == "em" and (gated or not len(lm.tparams)):
        raise ConfigError(
            f"config key 'regime': {cfg.regime!r} learns the program's t() by EM; {name!r} has "
            f"{'a gate net (no t())' if gated else 'no t()'}: use a gradient regime"
        )


def _start_weights(cfg: RunConfig, regime: Regime, lm: nn.Module, kind: ProgramKind) -> None:
    """Global source weights at the start: ``logic.init_weights`` (trained) / ``logic.fixed_weights`` (held,
    default uniform) of a global program; refused for a program without global weights."""
    if kind.global_weights:
        start = (
            cfg.logic.init_weights
            if regime.trains_logic
            else (cfg.logic.fixed_weights or {s: 1 / len(lm.sources) for s in lm.sources})
        )
        if start is not None and lm.semantics == "condition" and start.get("scene", 1) == 0:
            raise ConfigError(
                "config key 'logic.fixed_weights': a scene weight of 0 leaves an image without a "
                "detected face no source at all under the 'condition' semantics (its evidence "
                "has probability 0); give the scene a weight > 0 or use semantics 'fail'"
            )
        if start is not None:
            em.set_source_weights(lm, dict(start))
    elif not kind.gate_net and (cfg.logic.init_weights is not None or cfg.logic.fixed_weights is not None):
        raise ConfigError(
            "config keys 'logic.init_weights' / 'logic.fixed_weights' set global source weights; "
            f"{Path(lm.program.path).name!r} has none (its t() are not a source disjunction)"
        )


def _first_batches(
    cfg: RunConfig,
    spec: Spec,
    lm: nn.Module,
    splits: dict[str, SplitData],
    semantics: str,
    device: torch.device,
    per_count: int = 2,
) -> list[str]:
    """A program compiled through DeepProgram evaluates a few training images of each face count
    before any training or pretraining: its structures compile, its heads are built (their
    input width is what the program's inputs hold) and its answers are checked against the
    labels, so a mistake is refused now. Returns the check's notes."""
    tr = splits["train"]
    scene = new_scene_net(cfg, tr.scene.shape[1], n_classes=len(scene_domain(lm) or BASIC7)).to(device)
    probe = Network(lm, scene, semantics, kind=NONE, classes=spec.classes)
    counts = tr.face_mask.sum(1)
    idx = torch.cat([(counts == c).nonzero()[:per_count, 0] for c in torch.unique(counts)])
    probe.eval()
    with torch.no_grad():
        probe(tr, idx)
    notes = lm.check_labels(explicit=spec.label_values is not None)
    return notes + _answer_mass(cfg, spec, lm)


def _answer_mass(cfg: RunConfig, spec: Spec, lm: nn.Module) -> list[str]:
    """The answer-mass check on the first batches (docs/logic.md): a finding per structure whose
    answers over the labels do not sum to 1, printed as a warning and returned as notes, or
    refused with ``strict``."""
    from emolog.logic.check.mass import check_answer_mass

    findings = check_answer_mass(lm.prog, lm._examples(lm.batch.rows), labels=list(lm._col))
    if findings and cfg.strict:
        raise SpecError(
            f"{spec.where}: "
            + " | ".join(f.message() for f in findings)
            + " (config key 'strict'; without it this is a warning)"
        )
    for f in findings:
        print(f"emolog train: warning: {f.message()}", file=sys.stderr)
    return [f"answer mass: {f.message()}" for f in findings]


def _open_spec(cfg: RunConfig, regime: Regime) -> tuple[RunConfig, Spec | None, object]:
    """(config with the spec recorded as JSON, spec or None, its parsed program or None): the
    program parsed and its networks checked against the spec before any data or compiling."""
    spec = load_spec(cfg.spec) if cfg.spec else None
    if spec is not None and isinstance(cfg.spec, dict):  # recorded as JSON (config.json, checkpoints)
        cfg = replace(cfg, spec=spec.record())
    prog = open_program(spec, cfg.logic.param) if spec else None
    if prog is not None:
        _check_em(cfg, regime, prog, any(b.bind == "gate" for b in spec.nets.values()), Path(prog.path).name)
    untrained = (
        sorted(n for n, b in spec.nets.items() if b.bind == "head") if spec and not regime.trains_scene_net else []
    )
    if untrained:  # a head nobody trains is its random start: its "predictions" would mean nothing
        raise ConfigError(
            f"config key 'regime': {cfg.regime!r} trains no network, but spec {spec.name!r} feeds "
            f"{untrained} from trainable head(s), which would stay at their random start; "
            "use nets-only or joint"
        )
    return cfg, spec, prog


def _compile_early(cfg: RunConfig, regime: Regime, spec: Spec | None, prog, semantics: str) -> nn.Module | None:
    """The logic module when it compiles before the data is read (a program in the seed's shape
    or a plain program: in seconds); None for a spec program that needs the data's build context."""
    if spec is not None:
        return build_logic(spec, prog, semantics, cfg.logic.param, None)
    from emolog.logic import compile_program

    lm = compile_program(cfg.program, semantics=semantics, param=cfg.logic.param)
    _check_em(cfg, regime, lm, program_kind(lm).gate_net, cfg.program)
    return lm


def _check_trains_something(cfg: RunConfig, regime: Regime, lm: nn.Module, kind: ProgramKind) -> None:
    """A regime that trains only t() on a program without t() (nor a gate) would train nothing."""
    if not len(lm.tparams) and not kind.gate_net and not regime.trains_scene_net:
        raise ConfigError(
            f"config key 'regime': {cfg.regime!r} trains only the program's t() and "
            f"{Path(lm.program.path).name!r} has none: nothing would train; use nets-only or joint"
        )


def _run_extra(
    cfg: RunConfig, spec: Spec | None, ctx: BuildContext, pretrain_info: dict | None, notes: list[str], target
) -> dict:
    """The run's record beyond the fit: pretraining, spec (with its class maps), program source,
    notes and the fitted target."""
    extra: dict = {
        "pretrain": pretrain_info,
        "spec": spec.record() if spec else None,
        "program_source": spec.program if spec else cfg.program,
        "notes": (list(spec.notes) if spec else []) + notes,
        "target": target.to_dict() if target else None,
    }
    if spec is not None:
        extra["spec"]["class_maps"] = {n: m[2] for n, m in ctx.maps.items()}
    return extra


def _groups(
    regime: Regime,
    spec: Spec | None,
    model: Network,
    lm: nn.Module,
    scene_net: nn.Module,
    gate: nn.Module | None,
    last_block: nn.Module | None,
) -> list[Group]:
    """The named parameter groups, each marked trained or held by the regime."""
    names = own_names(spec)
    groups = [
        Group("logic", lm, regime.trains_logic),
        Group(
            names.get("scene_net", "scene_net"),
            scene_net,
            regime.trains_scene_net and model.has_scene_head,
            role="scene_net",
        ),
    ]
    groups += [Group(name, head, regime.trains_scene_net) for name, head in model.heads.items()]
    if gate is not None:
        groups.append(Group(names.get("gate_net", "gate_net"), gate, regime.trains_logic, role="gate_net"))
    if last_block is not None:
        groups.append(Group("backbone_last_block", last_block, True))
    return groups


@dataclass
class Built:
    """A model built from its config, ready for the fit loop (``build``): the network, the
    data it trains on and what the run's record needs."""

    cfg: RunConfig
    regime: Regime
    semantics: str
    spec: Spec | None
    network: Network
    groups: list[Group]
    splits: dict[str, SplitData]
    oof: torch.Tensor | None
    manifest: dict
    data_info: dict
    perception: dict
    extra: dict
    t0: float


def build(cfg: RunConfig, progress: bool = True) -> Built:
    """The model a config describes: its spec's program compiled and checked against the data,
    its data read, its networks built (and the scene net pretrained, per regime); nothing is
    written to a run directory."""
    regime = get_regime(cfg.regime)
    semantics = regime.semantics or cfg.semantics
    device = resolve_device(cfg.device)
    t0 = time.perf_counter()
    cfg, spec, prog = _open_spec(cfg, regime)
    classes = spec.classes if spec else BASIC7
    lm = _compile_early(cfg, regime, spec, prog, semantics)
    splits, manifest, data_info = load_data(
        cfg, device, prelast=regime.trains_backbone, classes=classes, target=spec.target if spec else None
    )
    # a valence/arousal target's bin values are the training split's means (emolog.model.target)
    target = spec.target.fitted(splits["train"].values.cpu().numpy()) if spec and spec.target else None
    perception = perception_record(manifest)
    ctx = prepare_spec(cfg, splits, perception, spec, prog) if spec else BuildContext()
    if lm is None:
        lm = build_logic(spec, prog, semantics, cfg.logic.param, ctx)
    lm = lm.to(device)
    kind = program_kind(lm)
    _check_trains_something(cfg, regime, lm, kind)
    notes = _first_batches(cfg, spec, lm, splits, semantics, device) if getattr(lm, "general", False) else []

    # the networks are built in a fixed order (scene net, backbone block, grey logits, gate,
    # heads): each seeds or draws from torch's generator, and training must stay bit-identical
    _start_weights(cfg, regime, lm, kind)
    st = Setting(cfg, regime, semantics, device, progress)
    if target is not None and scene_domain(lm) == list(BASIC7):
        scene_net, pretrain_info, oof = build_emotion_scene_net(st, splits, manifest)
    else:
        scene_net, pretrain_info, oof = build_scene_net(st, splits, manifest, lm, kind, classes)
    last_block = build_last_block(cfg, perception).to(device) if regime.trains_backbone else None
    extra = _run_extra(cfg, spec, ctx, pretrain_info, notes, target)
    grey = build_grey_logits(cfg, manifest, perception, semantics, device, extra)
    gate = build_gate_net(cfg, regime, kind, splits, oof, semantics, device, extra)
    heads = build_heads(cfg, spec, lm, splits, device)
    network = Network(
        lm,
        scene_net,
        semantics,
        kind,
        classes,
        Parts(last_block, gate, grey, heads, {n: b.inputs for n, b in spec.nets.items() if n in heads} if spec else {}),
    )
    network.target = target
    groups = _groups(regime, spec, network, lm, scene_net, gate, last_block)
    return Built(cfg, regime, semantics, spec, network, groups, splits, oof, manifest, data_info, perception, extra, t0)
