"""The setting groups of a run's config (``RunConfig.train``, ``.logic``, ``.nets``, ...).

Each group is a frozen dataclass of plain JSON values; the constraints on them are checked in
one place, ``emolog.config.rules``. In a config file a group is a table (JSON object) of its
keys, and ``--set group.key=value`` sets one of them (docs/training.md, "Configuration").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainSettings:
    """The fit loop. A step is one batch of ``batch_size`` images; the loss is the batch *mean*
    NLL (nats per image)."""

    epochs: int = 12  # gradient regimes (the original's budget)
    # problog-em: EM iterations. EM on mixture weights converges slowly (measured on 5000
    # simulated images: 12 iterations leave face3 0.05 off the truth, 100 reach 0.01) and one
    # iteration costs ~30 ms, so the default is generous.
    em_iterations: int = 100
    # 64, not the original's 4 (``--set train.batch_size=4``)
    batch_size: int = 64
    n_train: int | None = None  # first N of split.json's train list; None = all
    # early stopping on validation NLL: stop after `patience` epochs without improvement and
    # restore the best epoch's parameters; None = run all epochs (and keep the last)
    patience: int | None = 3
    imbalance: str = "none"  # none | class-weighted | balanced-sampling | logit-adjust
    logit_adjust_tau: float = 1.0


@dataclass(frozen=True)
class LogicSettings:
    """The program's parameters t() (and a gate's / rules' weights: the logic group)."""

    # DeepProbLog's projected probabilities (SGD on the probabilities, clipped to [0, 1],
    # renormalised: what the original's "SGD lr 3e-3" meant) or softmax logits (any torch
    # optimiser, e.g. Adam)
    param: str = "projected"
    optimizer: str = "sgd"
    # 3e-2, not the original's 3e-3: the original took 4-image batches (1250 steps per epoch);
    # at batch 64 (78 steps) 3e-3 leaves the weights near uniform after 12 epochs, 3e-2 reaches
    # the truth within 0.03 on simulated data (docs/training.md, "learning rate").
    lr: float = 3e-2
    weight_decay: float = 0.0
    init_weights: dict[str, float] | None = None  # initial t(); None = uniform
    fixed_weights: dict[str, float] | None = None  # nets-only: t() held at these; None = uniform


@dataclass(frozen=True)
class NetSettings:
    """Scene2EmotionNet and the spec's trainable heads."""

    optimizer: str = "adam"
    lr: float = 3e-3
    weight_decay: float = 1e-5
    hidden: int = 64
    dropout: float = 0.5


@dataclass(frozen=True)
class BackboneSettings:
    """The scene backbone's last block (joint-unfreeze only)."""

    optimizer: str = "adam"
    lr: float = 1e-5
    weight_decay: float = 1e-5
    # a weights file to rebuild the block from when the path recorded with the cache
    # (manifest info.weights_paths) moved; None = the recorded path
    weights: str | None = None


@dataclass(frozen=True)
class PretrainSettings:
    """Scene-only pretraining of Scene2EmotionNet (logic-only, problog-em), cached on disk."""

    scene_init: str = "auto"  # auto (per regime) | pretrained | random
    epochs: int = 30
    batch_size: int = 64  # own key: a logic batch-size sweep keeps one scene net
    patience: int = 3
    # K-fold cross-fitting: the logic sees each training image's scene distribution from a net
    # that did not train on it; 1 = in-sample (the memorising net: shows the collapse)
    folds: int = 5
    # EM rounds refitting the scene net to its responsibility-weighted labels (the scene's own
    # emotion rather than the image label); 0 = plain scene-only pretraining
    refit: int = 3
    cache: str | None = None  # folder for pretrained nets; None = <data>/pretrained


@dataclass(frozen=True)
class PerceptionSettings:
    """The cache's recogniser, where a run needs it again (the original semantics' grey face)."""

    # a weights file when the path recorded with the cache moved; None = the recorded path
    recogniser_weights: str | None = None
    grey_face_logits: list[float] | None = None  # 7 logits; None = the recogniser's, from the cache


@dataclass(frozen=True)
class GateSettings:
    """A gated program's GateNet (docs/context-trust.md)."""

    hidden: int = 32  # 0 = a linear gate
    scene_features: bool = False  # the scene net's probabilities among the gate's inputs
    init: str = "global"  # global (the global program fitted by EM) | uniform


# the groups by their key in a config file, in the order config.json lists them
GROUPS: dict[str, type] = {
    "train": TrainSettings,
    "logic": LogicSettings,
    "nets": NetSettings,
    "backbone": BackboneSettings,
    "pretrain": PretrainSettings,
    "perception": PerceptionSettings,
    "gate": GateSettings,
}
