"""The networks a run builds around its program, in the order ``build`` calls them: the scene net
(pretrained per regime, or from scratch), the original semantics' grey-face logits, the gate of
a gated program and the spec's trainable heads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from emolog.config.regimes import Regime
from emolog.config.run import ConfigError, RunConfig
from emolog.data.index import ImageIndex
from emolog.labels import BASIC7
from emolog.learn.losses import new_scene_net
from emolog.learn.pretrain import build_gate, pretrained_scene_net, shared_pretrained
from emolog.model.bindings.program import scene_domain
from emolog.model.data import SplitData
from emolog.model.kinds import ProgramKind
from emolog.model.model import HeadMLP
from emolog.model.perception import grey_face_logits
from emolog.model.spec import Spec


@dataclass(frozen=True)
class Setting:
    """What the steps building the networks read: the config, its regime and semantics, the
    device and whether to show progress bars."""

    cfg: RunConfig
    regime: Regime
    semantics: str
    device: torch.device
    progress: bool


def build_scene_net(
    st: Setting,
    splits: dict[str, SplitData],
    manifest: dict,
    lm: nn.Module,
    kind: ProgramKind,
    classes: tuple[str, ...],
) -> tuple[nn.Module, dict | None, torch.Tensor | None]:
    """(scene net, pretraining info, out-of-fold training probabilities or None)."""
    cfg, regime, semantics, device, progress = st.cfg, st.regime, st.semantics, st.device, st.progress
    domain = scene_domain(lm)
    if (
        regime.scene_init if cfg.pretrain.scene_init == "auto" else cfg.pretrain.scene_init
    ) != "pretrained" or domain is None:
        # (a program without a scene net keeps this untrained one out of every parameter group)
        return (
            new_scene_net(cfg, splits["train"].scene.shape[1], n_classes=len(domain or BASIC7)).to(device),
            None,
            None,
        )
    if domain != list(classes):  # pretraining fits the scene net's outputs to the labels
        raise ConfigError(
            f"{lm.program.path}: the scene head's network ranges over {domain}, the labels over "
            f"{list(classes)}: "
            "a pretrained scene net is fitted to the labels, so it needs the same classes in the "
            "same order; set pretrain.scene_init=random (the net then trains from scratch, e.g. joint)"
        )
    if kind.global_weights:
        pre = pretrained_scene_net(cfg, splits, manifest, device, lm, semantics, progress, classes)
    elif classes == BASIC7:
        # no global weights to pretrain against (a gate, rules, no source choice): the seed
        # program's net, the very net a global run of this config uses, so they compare on one
        # frozen scene net
        pre = shared_pretrained(cfg, splits, manifest, device, semantics, progress)
    else:  # other labels: the cross-fitted label fit (each refit is an EM step of a global choice)
        pre = pretrained_scene_net(
            cfg.updated({"pretrain.refit": 0}), splits, manifest, device, lm, semantics, progress, classes
        )
    return pre.net, pre.info, pre.oof


def build_emotion_scene_net(
    st: Setting, splits: dict[str, SplitData], manifest: dict
) -> tuple[nn.Module, dict | None, torch.Tensor | None]:
    """The scene net of a valence/arousal program that reads the scene's basic-7 emotion
    (va_valence.pl): pretrained, it is the seed program's net of this config, fitted to the
    index's basic-7 labels of the same images (so emotion and valence runs share one frozen
    scene net); trained from scratch (joint), it learns through the program."""
    cfg, regime, semantics, device, progress = st.cfg, st.regime, st.semantics, st.device, st.progress
    if (regime.scene_init if cfg.pretrain.scene_init == "auto" else cfg.pretrain.scene_init) != "pretrained":
        return new_scene_net(cfg, splits["train"].scene.shape[1]).to(device), None, None
    index = ImageIndex.load(Path(cfg.data) / "index.csv")
    emotions = {}
    for name, s in splits.items():
        labels = index.label_of(s.ids)
        bad = sorted(set(labels) - set(BASIC7))
        if bad:
            raise ConfigError(
                f"{cfg.data}/index.csv: a valence/arousal program whose scene net reads the scene's "
                f"basic-7 emotion pretrains it on the index's basic-7 labels, but the index has {bad}; "
                "set pretrain.scene_init=random (joint) or bind a scene net over the target's bins"
            )
        emotions[name] = replace(s, labels=torch.tensor([BASIC7.index(x) for x in labels], device=device))
    pre = shared_pretrained(cfg, emotions, manifest, device, semantics, progress)
    return pre.net, pre.info, pre.oof


def build_heads(
    cfg: RunConfig, spec: Spec | None, lm: nn.Module, splits: dict[str, SplitData], device: torch.device
) -> dict[str, nn.Module]:
    """The trainable heads (``HeadMLP``, seeded) of a program compiled in the seed's shape, each
    over whole-image features (a program through DeepProgram builds its own at its first batch)."""
    if spec is None:
        return {}
    if getattr(lm, "general", False):  # built at the first batches (_first_batches)
        return lm.heads()
    from emolog.model.bindings.fields import row_values

    heads: dict[str, nn.Module] = {}
    tr = splits["train"]
    for k, (name, b) in enumerate(sorted((n, b) for n, b in spec.nets.items() if b.bind == "head")):
        width = sum(
            row_values(tr, src, torch.arange(1, device=tr.labels.device)).flatten(1).shape[1] for src in b.inputs
        )
        torch.manual_seed(cfg.seed * 1009 + 500 + k)
        heads[name] = HeadMLP(
            width, b.hidden, lm.input_sizes[name], b.dropout if b.dropout is not None else cfg.nets.dropout
        ).to(device)
    return heads


def build_grey_logits(
    cfg: RunConfig, manifest: dict, perception: dict, semantics: str, device: torch.device, extra: dict
) -> torch.Tensor | None:
    """The 'original' semantics' grey-face logits (recorded in ``extra``); None otherwise."""
    if semantics != "original":
        return None
    grey, source = grey_face_logits(cfg, manifest, perception)
    grey = grey.to(device)
    extra["grey_face_logits"] = {"values": grey.tolist(), "source": source}
    return grey


def build_gate_net(
    cfg: RunConfig,
    regime: Regime,
    kind: ProgramKind,
    splits: dict[str, SplitData],
    oof: torch.Tensor | None,
    semantics: str,
    device: torch.device,
    extra: dict,
) -> nn.Module | None:
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
