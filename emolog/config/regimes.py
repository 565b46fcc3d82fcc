"""The training regimes: which parts of the model learn, how, and from where they start.

Every regime uses the same cached tensors and the same logic program; they differ only in
which parameter groups receive gradients (or EM updates):

=============== ======= ========== ======== ================ ========= =====================
regime          t()     scene net  backbone scene net starts  learner   semantics
=============== ======= ========== ======== ================ ========= =====================
logic-only      yes     frozen     frozen   pretrained       gradient  config
problog-em      yes     frozen     frozen   pretrained       EM (LFI)  config
nets-only       fixed   yes        frozen   random           gradient  config
joint           yes     yes        frozen   random           gradient  config
joint-unfreeze  yes     yes        last blk random           gradient  config
original        yes     yes        frozen   random           gradient  original
=============== ======= ========== ======== ================ ========= =====================

"pretrained" = Scene2EmotionNet first trained scene-only on the training split, then frozen
(never random: a frozen random scene net would make the scene look useless and push the
learned weights to the faces). "random" = trained from its seeded initialisation, as the
original thesis code did; ``scene_init=pretrained`` in the config starts these from the
pretrained net instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Regime:
    """What one regime trains."""

    name: str
    trains_logic: bool
    trains_scene_net: bool
    trains_backbone: bool
    scene_init: str  # "pretrained" | "random"
    learner: str  # "gradient" | "em"
    semantics: str | None  # forced semantics, or None = the config's
    question: str  # the user's research question it answers


REGIMES: dict[str, Regime] = {
    r.name: r
    for r in (
        Regime(
            "logic-only",
            True,
            False,
            False,
            "pretrained",
            "gradient",
            None,
            "networks fixed, only the logic's source weights t() learn: what changes?",
        ),
        Regime(
            "problog-em",
            True,
            False,
            False,
            "pretrained",
            "em",
            None,
            "plain ProbLog learning from interpretations (EM) of t() with the networks fixed",
        ),
        Regime(
            "nets-only",
            False,
            True,
            False,
            "random",
            "gradient",
            None,
            "source weights fixed; Scene2EmotionNet learns through the program",
        ),
        Regime(
            "joint",
            True,
            True,
            False,
            "random",
            "gradient",
            None,
            "Scene2EmotionNet and t() trained together (the original's setup)",
        ),
        Regime(
            "joint-unfreeze",
            True,
            True,
            True,
            "random",
            "gradient",
            None,
            "joint + the scene backbone's last block trained from cached pre-last activations",
        ),
        Regime(
            "original",
            True,
            True,
            False,
            "random",
            "gradient",
            "original",
            "joint training under the original program's semantics (grey faces, one 21-way softmax)",
        ),
    )
}


def get_regime(name: str) -> Regime:
    """The regime called ``name``; a clear error naming the valid ones."""
    try:
        return REGIMES[name]
    except KeyError:
        raise ValueError(f"unknown regime {name!r}; choose one of {sorted(REGIMES)}") from None
