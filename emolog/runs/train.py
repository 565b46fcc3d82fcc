"""One training run: ``train_run(config, out_dir) -> results`` (docs/architecture.md sections 4-5).

Every program and every regime goes through the same steps: read the data directory, build
the model (``emolog.model.model``: the program, its scene net, a gate when the program's
source is a neural predicate, the backbone's last block for joint-unfreeze), mark the named
parameter groups the regime trains, run the one fit loop (``emolog.learn.fit``: early
stopping, checkpoints, resume, the NaN stop) and write the run directory
(``emolog.runs.writer``). ``emolog.runs.reader.load_run`` reads it back as a model.

The run directory receives config.json, results.json, history.csv, predictions.csv,
changes.json, scene_net.pt, logic.pt, program.pl (the program with its learned t() values),
gate_net.pt / backbone_last_block.pt when present, and checkpoint.pt.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from emolog import runtime
from emolog.data.artefacts import FORMATS, record
from emolog.data.atomic import atomic_write_text
from emolog.data.index import ImageIndex
from emolog.data.lock import output_lock
from emolog.labels import BASIC7
from emolog.learn import em
from emolog.model.bindings.program import BuildContext, build_logic, open_program, own_names, scene_domain
from emolog.model.bindings.fields import add_scene_classes
from emolog.model.bindings.schema import SpecError, check_data
from emolog.config.run import ConfigError, RunConfig
from emolog.model.data import SplitData, load_data
from emolog.learn.fit import CHECKPOINT, Group, fit, read_checkpoint
from emolog.model.gate import program_kind, split_static_evidence
from emolog.model.kinds import NONE, ProgramKind
from emolog.learn.losses import Loss, TrainingError, epoch_order, new_scene_net
from emolog.model.model import HeadMLP, Model
from emolog.runs.writer import provenance, run_files, write_run
from emolog.model.perception import build_last_block, grey_face_logits, perception_record, scene_classifier
from emolog.learn.pretrain import build_gate, pretrained_scene_net, shared_pretrained
from emolog.config.regimes import Regime, get_regime
from emolog.model.spec import Spec, load_spec

__all__ = ["CHECKPOINT", "Loss", "TrainingError", "epoch_order", "train_run"]


def prepare_spec(cfg: RunConfig, splits: dict[str, SplitData], perception: dict, spec: Spec, prog
                 ) -> BuildContext:
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
    maps = check_data(spec.where, spec.nets, prog.nets, tr.face_mask.shape[1], lambda f: has.get(f, True),
                      lambda: names)
    return BuildContext(tr.face_mask.shape[1], cfg.seed, cfg.nets.dropout, maps)


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
    with output_lock(out_dir, "emolog train"), runtime.torch_threads(cfg.threads):
        return _train_run(cfg, Path(out_dir), resume, progress)


def _check_em(cfg: RunConfig, regime: Regime, lm: nn.Module, gated: bool, name: str) -> None:
    """problog-em learns the program's t(): refused for a program with none (or a gate net)."""
    if regime.learner == "em" and (gated or not len(lm.tparams)):
        raise ConfigError(f"config key 'regime': {cfg.regime!r} learns the program's t() by EM; {name!r} has "
                          f"{'a gate net (no t())' if gated else 'no t()'}: use a gradient regime")


def _start_weights(cfg: RunConfig, regime: Regime, lm: nn.Module, kind: ProgramKind) -> None:
    """Global source weights at the start: ``logic.init_weights`` (trained) / ``logic.fixed_weights`` (held,
    default uniform) of a global program; refused for a program without global weights."""
    if kind.global_weights:
        start = cfg.logic.init_weights if regime.trains_logic else (cfg.logic.fixed_weights or {s: 1 / len(lm.sources)
                                                                                   for s in lm.sources})
        if start is not None and lm.semantics == "condition" and start.get("scene", 1) == 0:
            raise ConfigError("config key 'logic.fixed_weights': a scene weight of 0 leaves an image without a "
                              "detected face no source at all under the 'condition' semantics (its evidence "
                              "has probability 0); give the scene a weight > 0 or use semantics 'fail'")
        if start is not None:
            em.set_source_weights(lm, dict(start))
    elif not kind.gate_net and (cfg.logic.init_weights is not None or cfg.logic.fixed_weights is not None):
        raise ConfigError("config keys 'logic.init_weights' / 'logic.fixed_weights' set global source weights; "
                          f"{Path(lm.program.path).name!r} has none (its t() are not a source disjunction)")


def _scene_net(cfg: RunConfig, regime: Regime, splits: dict[str, SplitData], manifest: dict, lm: nn.Module,
               kind: ProgramKind, semantics: str, device: torch.device, progress: bool, classes: tuple[str, ...]
               ) -> tuple[nn.Module, dict | None, torch.Tensor | None]:
    """(scene net, pretraining info, out-of-fold training probabilities or None)."""
    domain = scene_domain(lm)
    if (regime.scene_init if cfg.pretrain.scene_init == "auto" else cfg.pretrain.scene_init) != "pretrained" or domain is None:
        # (a program without a scene net keeps this untrained one out of every parameter group)
        return new_scene_net(cfg, splits["train"].scene.shape[1], n_classes=len(domain or BASIC7)).to(device), \
            None, None
    if domain != list(classes):   # pretraining fits the scene net's outputs to the labels
        raise ConfigError(f"{lm.program.path}: the scene head's network ranges over {domain}, the labels over "
                          f"{list(classes)}: "
                          "a pretrained scene net is fitted to the labels, so it needs the same classes in the "
                          "same order; set pretrain.scene_init=random (the net then trains from scratch, e.g. joint)")
    if kind.global_weights:
        pre = pretrained_scene_net(cfg, splits, manifest, device, lm, semantics, progress, classes)
    elif classes == BASIC7:
        # no global weights to pretrain against (a gate, rules, no source choice): the seed
        # program's net, the very net a global run of this config uses, so they compare on one
        # frozen scene net
        pre = shared_pretrained(cfg, splits, manifest, device, semantics, progress)
    else:   # other labels: the cross-fitted label fit (each refit is an EM step of a global choice)
        pre = pretrained_scene_net(cfg.updated({"pretrain.refit": 0}), splits, manifest,
                                   device, lm, semantics, progress, classes)
    return pre.net, pre.info, pre.oof


def _emotion_scene_net(cfg: RunConfig, regime: Regime, splits: dict[str, SplitData], manifest: dict, semantics: str,
                       device: torch.device, progress: bool) -> tuple[nn.Module, dict | None, torch.Tensor | None]:
    """The scene net of a valence/arousal program that reads the scene's basic-7 emotion
    (va_valence.pl): pretrained, it is the seed program's net of this config, fitted to the
    index's basic-7 labels of the same images (so emotion and valence runs share one frozen
    scene net); trained from scratch (joint), it learns through the program."""
    if (regime.scene_init if cfg.pretrain.scene_init == "auto" else cfg.pretrain.scene_init) != "pretrained":
        return new_scene_net(cfg, splits["train"].scene.shape[1]).to(device), None, None
    index = ImageIndex.load(Path(cfg.data) / "index.csv")
    emotions = {}
    for name, s in splits.items():
        labels = index.label_of(s.ids)
        bad = sorted(set(labels) - set(BASIC7))
        if bad:
            raise ConfigError(f"{cfg.data}/index.csv: a valence/arousal program whose scene net reads the scene's "
                              f"basic-7 emotion pretrains it on the index's basic-7 labels, but the index has {bad}; "
                              "set pretrain.scene_init=random (joint) or bind a scene net over the target's bins")
        emotions[name] = replace(s, labels=torch.tensor([BASIC7.index(x) for x in labels], device=device))
    pre = shared_pretrained(cfg, emotions, manifest, device, semantics, progress)
    return pre.net, pre.info, pre.oof


def build_heads(cfg: RunConfig, spec: Spec | None, lm: nn.Module, splits: dict[str, SplitData],
                device: torch.device) -> dict[str, nn.Module]:
    """The trainable heads (``HeadMLP``, seeded) of a program compiled in the seed's shape, each
    over whole-image features (a program through DeepProgram builds its own at its first batch)."""
    if spec is None:
        return {}
    if getattr(lm, "general", False):   # built at the first batches (_first_batches)
        return lm.heads()
    from emolog.model.bindings.fields import row_values
    heads: dict[str, nn.Module] = {}
    tr = splits["train"]
    for k, (name, b) in enumerate(sorted((n, b) for n, b in spec.nets.items() if b.bind == "head")):
        width = sum(row_values(tr, src, torch.arange(1, device=tr.labels.device)).flatten(1).shape[1]
                    for src in b.inputs)
        torch.manual_seed(cfg.seed * 1009 + 500 + k)
        heads[name] = HeadMLP(width, b.hidden, lm.input_sizes[name],
                              b.dropout if b.dropout is not None else cfg.nets.dropout).to(device)
    return heads


def _first_batches(cfg: RunConfig, spec: Spec, lm: nn.Module, splits: dict[str, SplitData], semantics: str,
                   device: torch.device, per_count: int = 2) -> list[str]:
    """A program compiled through DeepProgram evaluates a few training images of each face count
    before any training or pretraining: its structures compile, its heads are built (their
    input width is what the program's inputs hold) and its answers are checked against the
    labels, so a mistake is refused now. Returns the check's notes."""
    tr = splits["train"]
    scene = new_scene_net(cfg, tr.scene.shape[1], n_classes=len(scene_domain(lm) or BASIC7)).to(device)
    probe = Model(lm, scene, None, semantics, None, kind=NONE, classes=spec.classes)
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
        raise SpecError(f"{spec.where}: " + " | ".join(f.message() for f in findings) +
                        " (config key 'strict'; without it this is a warning)")
    for f in findings:
        print(f"emolog train: warning: {f.message()}", file=sys.stderr)
    return [f"answer mass: {f.message()}" for f in findings]


def _check_start(cfg: RunConfig, regime: Regime, semantics: str, out: Path, resume: bool) -> None:
    """Refusals that need nothing loaded (a semantics EM cannot learn, a finished or foreign
    run in ``out``), and the resume announcement, before the run touches its directory."""
    if regime.learner == "em" and semantics not in ("condition", "fail"):
        raise ConfigError(f"config key 'semantics': problog-em is defined for 'condition' or 'fail', "
                          f"not {semantics!r}")
    if (out / CHECKPOINT).exists() and not resume:
        raise TrainingError(f"{out} already holds a run ({CHECKPOINT}); pass resume=True (--resume) "
                            "to continue it, or choose another output directory")
    if resume:
        if (out / CHECKPOINT).exists():
            read_checkpoint(out / CHECKPOINT, cfg)   # a damaged or foreign checkpoint: refused before any change
        announce_resume(out)


def _open_spec(cfg: RunConfig, regime: Regime) -> tuple[RunConfig, Spec | None, object]:
    """(config with the spec recorded as JSON, spec or None, its parsed program or None): the
    program parsed and its networks checked against the spec before any data or compiling."""
    spec = load_spec(cfg.spec) if cfg.spec else None
    if spec is not None and isinstance(cfg.spec, dict):   # recorded as JSON (config.json, checkpoints)
        cfg = replace(cfg, spec=spec.record())
    prog = open_program(spec, cfg.logic.param) if spec else None
    if prog is not None:
        _check_em(cfg, regime, prog, any(b.bind == "gate" for b in spec.nets.values()), Path(prog.path).name)
    untrained = sorted(n for n, b in spec.nets.items() if b.bind == "head") \
        if spec and not regime.trains_scene_net else []
    if untrained:   # a head nobody trains is its random start: its "predictions" would mean nothing
        raise ConfigError(f"config key 'regime': {cfg.regime!r} trains no network, but spec {spec.name!r} feeds "
                          f"{untrained} from trainable head(s), which would stay at their random start; "
                          "use nets-only or joint")
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
        raise ConfigError(f"config key 'regime': {cfg.regime!r} trains only the program's t() and "
                          f"{Path(lm.program.path).name!r} has none: nothing would train; use nets-only or joint")


def _run_extra(cfg: RunConfig, spec: Spec | None, ctx: BuildContext, pretrain_info: dict | None, notes: list[str],
               target) -> dict:
    """The run's record beyond the fit: pretraining, spec (with its class maps), program source,
    notes and the fitted target."""
    extra: dict = {"pretrain": pretrain_info, "spec": spec.record() if spec else None,
                   "program_source": spec.program if spec else cfg.program,
                   "notes": (list(spec.notes) if spec else []) + notes,
                   "target": target.to_dict() if target else None}
    if spec is not None:
        extra["spec"]["class_maps"] = {n: m[2] for n, m in ctx.maps.items()}
    return extra


def _grey_logits(cfg: RunConfig, manifest: dict, perception: dict, semantics: str, device: torch.device,
                 extra: dict) -> torch.Tensor | None:
    """The 'original' semantics' grey-face logits (recorded in ``extra``); None otherwise."""
    if semantics != "original":
        return None
    grey, source = grey_face_logits(cfg, manifest, perception)
    grey = grey.to(device)
    extra["grey_face_logits"] = {"values": grey.tolist(), "source": source}
    return grey


def _gate_net(cfg: RunConfig, regime: Regime, kind: ProgramKind, splits: dict[str, SplitData],
              oof: torch.Tensor | None, semantics: str, device: torch.device, extra: dict) -> nn.Module | None:
    """The gate net of a gated program (its settings recorded in ``extra``, as are a rules
    program's); None for a program without one."""
    gate = None
    if kind.gate_net:
        gate, settings = build_gate(cfg, regime.trains_logic, splits["train"], oof, semantics, device)
        extra["gate"] = {"kind": kind.name, **settings, "t_probs": None}
    elif kind.rules:
        from emolog.model.gate import gate_settings
        extra["gate"] = {"kind": kind.name, **gate_settings(cfg), "features": None, "t_probs": None}
    return gate


def _groups(regime: Regime, spec: Spec | None, model: Model, lm: nn.Module, scene_net: nn.Module,
            gate: nn.Module | None, last_block: nn.Module | None) -> list[Group]:
    """The named parameter groups, each marked trained or held by the regime."""
    names = own_names(spec)
    groups = [Group("logic", lm, regime.trains_logic),
              Group(names.get("scene_net", "scene_net"), scene_net, regime.trains_scene_net and model.has_scene_head,
                    role="scene_net")]
    groups += [Group(name, head, regime.trains_scene_net) for name, head in model.heads.items()]
    if gate is not None:
        groups.append(Group(names.get("gate_net", "gate_net"), gate, regime.trains_logic, role="gate_net"))
    if last_block is not None:
        groups.append(Group("backbone_last_block", last_block, True))
    return groups


def _finish_gate_record(extra: dict, kind: ProgramKind, lm: nn.Module) -> None:
    """After the fit: the gate's evidence features and a rules program's learned t() probabilities."""
    if "gate" in extra:
        from emolog.model.gate import EVIDENCE_FEATURES
        extra["gate"].update(features=list(EVIDENCE_FEATURES) if kind.gate_net else None,
                             t_probs=lm.t_probs() if kind.rules else None)


def _train_run(cfg: RunConfig, out: Path, resume: bool, progress: bool) -> dict:
    regime = get_regime(cfg.regime)
    semantics = regime.semantics or cfg.semantics
    _check_start(cfg, regime, semantics, out, resume)
    device = resolve_device(cfg.device)
    t0 = time.perf_counter()
    cfg, spec, prog = _open_spec(cfg, regime)
    classes = spec.classes if spec else BASIC7
    lm = _compile_early(cfg, regime, spec, prog, semantics)
    splits, manifest, data_info = load_data(cfg, device, prelast=regime.trains_backbone, classes=classes,
                                            target=spec.target if spec else None)
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
    atomic_write_text(out / "config.json", json.dumps(
        {**cfg.to_dict(), "perception": perception, "provenance": provenance(manifest, data_info)}, indent=1))

    # the networks are built in a fixed order (scene net, backbone block, grey logits, gate,
    # heads): each seeds or draws from torch's generator, and training must stay bit-identical
    _start_weights(cfg, regime, lm, kind)
    if target is not None and scene_domain(lm) == list(BASIC7):
        scene_net, pretrain_info, oof = _emotion_scene_net(cfg, regime, splits, manifest, semantics, device, progress)
    else:
        scene_net, pretrain_info, oof = _scene_net(cfg, regime, splits, manifest, lm, kind, semantics, device,
                                                   progress, classes)
    last_block = build_last_block(cfg, perception).to(device) if regime.trains_backbone else None
    extra = _run_extra(cfg, spec, ctx, pretrain_info, notes, target)
    grey = _grey_logits(cfg, manifest, perception, semantics, device, extra)
    gate = _gate_net(cfg, regime, kind, splits, oof, semantics, device, extra)
    heads = build_heads(cfg, spec, lm, splits, device)
    model = Model(lm, scene_net, last_block, semantics, grey, gate, kind, classes, heads,
                  {n: b.inputs for n, b in spec.nets.items() if n in heads} if spec else None)
    model.target = target
    if gate is not None:
        model.static = {id(s): split_static_evidence(s) for s in splits.values()}

    groups = _groups(regime, spec, model, lm, scene_net, gate, last_block)
    if not regime.trains_scene_net:
        # out-of-fold scene probabilities on the training split (pretrain_folds): the logic (or
        # a gate reading the scene's confidence) would otherwise trust a memorised scene
        model.freeze_scene(splits, oof)
    fitted = fit(model, groups, splits, cfg, regime, out, resume, progress)
    _finish_gate_record(extra, kind, lm)
    results = write_run(out, cfg, regime, semantics, model, groups, splits, fitted, data_info, perception, extra)
    results["wall_time_s"] = time.perf_counter() - t0
    # written last: it marks the run finished and vouches for every other file by sha256
    results.update(format=FORMATS["run"], files=record(out, run_files(out)))
    atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    return results


def announce_resume(out: Path) -> None:
    """Before a resumed run writes anything: results.json (the mark of a finished run) goes
    first, so that until the run finishes again no reader takes a mix of old and new files
    for a finished run; say what the run resumes from."""
    (out / "results.json").unlink(missing_ok=True)
    start = f"from {out / CHECKPOINT}" if (out / CHECKPOINT).is_file() else f"from the start (no {CHECKPOINT})"
    print(f"resuming {out} {start}; its other files are recomputed", file=sys.stderr)

