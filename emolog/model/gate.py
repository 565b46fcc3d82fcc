"""Context trust: the source choice as a function of per-image evidence (docs/context-trust.md).

Two programs make the choice of source (scene, face1..3) depend on the image:

* ``gated`` (``programs/gated.pl``): the choice is a neural predicate, ``source(X, S)`` with
  ``S ~ gate_net(X)``; ``GateNet`` reads the evidence vector of ``evidence_features``;
* ``context_rules`` (``programs/context_rules.pl``): readable rules over discretised per-image
  facts (``large_face``, ``confident``, from ``rule_facts``) with trainable ``t()`` weights.

Both train through ``train_run`` like any program (``emolog.model.model`` picks the kind);
in the logic parameter group the gate / rule weights use ``logic.optimizer``, ``logic.lr``,
``logic.weight_decay`` (EM does not apply to a gate net). Gate settings are the config's
``gate`` group (``emolog.config.groups.GateSettings``).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from emolog.data.artefacts import ArtefactError, check_fields, load_torch
from emolog.labels import SOURCES
from emolog.model.bindings.fields import CONFIDENT_PROB, LARGE_FACE_AREA
from emolog.config.run import ConfigError, RunConfig
from emolog.model.data import SplitData
from emolog.model.kinds import GATE, GLOBAL, NONE, RULES, ProgramKind

K = 3
AREA_FLOOR = 1e-4  # log10 of smaller areas would only add noise
SLOT_FEATURES = ("present", "log_area", "dx", "dy", "centrality", "det_conf", "entropy", "max_prob")
EVIDENCE_FEATURES: tuple[str, ...] = tuple(f"face{k + 1}_{f}" for k in range(K) for f in SLOT_FEATURES) + (
    "n_faces",
    "scene_entropy",
    "scene_max_prob",
)
N_STATIC = len(EVIDENCE_FEATURES) - 2  # all but the scene's two (they move with the scene net)


# ----------------------------------------------------------------------------- evidence


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy of distributions [..., C] in units of log C (0 = certain, 1 = uniform)."""
    return -(p * p.clamp_min(1e-12).log()).sum(-1) / math.log(p.shape[-1])


def static_evidence(
    face_mask: torch.Tensor,
    face_area: torch.Tensor,
    face_boxes: torch.Tensor,
    face_conf: torch.Tensor,
    image_size: torch.Tensor,
    face_probs: torch.Tensor,
    n_faces: torch.Tensor,
) -> torch.Tensor:
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
    centrality = 1 - torch.sqrt(dx**2 + dy**2) / math.sqrt(2)
    log_area = torch.log10(face_area.float().clamp_min(AREA_FLOOR)) + 2
    det = -torch.log10((1 - face_conf.float()).clamp_min(1e-4)) / 4
    slots = (
        torch.stack(
            [
                torch.ones_like(m),
                log_area,
                dx,
                dy,
                centrality,
                det,
                _entropy(face_probs.float()),
                face_probs.float().amax(-1),
            ],
            -1,
        )
        * m[..., None]
    )
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


def rule_facts(face_mask: torch.Tensor, face_area: torch.Tensor, face_probs: torch.Tensor) -> dict[str, torch.Tensor]:
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

    def __init__(
        self,
        n_features: int = len(EVIDENCE_FEATURES),
        hidden: int = 32,
        scene_dim: int = 0,
        init: dict[str, float] | None = None,
    ) -> None:
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

    def forward(
        self, evidence: torch.Tensor, available: torch.Tensor, scene: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[B, F] evidence, [B, 4] availability (scene first) -> [B, 4] probabilities."""
        x = evidence
        if self.scene_proj is not None:
            if scene is None:
                raise ValueError("this gate was built with scene_features: pass scene [B, D]")
            x = torch.cat([x, torch.relu(self.scene_proj(scene.float()))], 1)
        logits = self.head(self.body(x)).masked_fill(~available.bool(), float("-inf"))
        return torch.softmax(logits, 1)


def program_kind(lm: nn.Module) -> ProgramKind:
    """``GATE`` when the program's source is the neural predicate ``gate_net``, ``RULES`` when it
    queries ``source(X, S)`` itself, ``GLOBAL`` for a ``t(_)::source(S)`` disjunction over the
    seed's sources (seed.pl), ``NONE`` without a source choice. The source reports (weights,
    posteriors, explanations) are over scene, face1..3: a disjunction over other sources is
    trained like any other t() (``NONE``), its values reported by name. A program compiled
    through DeepProgram (``bindings.program.ProgramLogic``) has no source views: ``NONE``."""
    if getattr(lm, "general", False):
        return NONE
    if "gate_net" in lm.input_sizes:
        if lm.input_sizes["gate_net"] != len(SOURCES):
            raise ConfigError(f"{lm.program.path}: gate_net must range over {list(SOURCES)}")
        return GATE
    if all(f"source({s})" in lm.query_names for s in SOURCES):
        return RULES
    if any(p.head.functor == "source" and p.head.arity == 1 for p in lm.program.params):
        return GLOBAL if sorted(getattr(lm, "sources", None) or []) == sorted(SOURCES) else NONE
    return NONE


# ----------------------------------------------------------------------------- training


def gate_settings(cfg: RunConfig) -> dict[str, Any]:
    """The config's gate settings (``cfg.gate``: hidden, scene_features, init) as a dict, the
    form the run records them in (results.json ``gate``)."""
    return asdict(cfg.gate)


def split_static_evidence(s: SplitData) -> torch.Tensor:
    """``static_evidence`` of every row of split ``s`` [N, N_STATIC]."""
    return static_evidence(s.face_mask, s.face_area, s.face_boxes, s.face_conf, s.image_size, s.face_probs, s.n_faces)


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
    blob = load_torch(path, "a gate net")
    if not isinstance(blob, dict):
        raise ArtefactError(f"{path}: holds a {type(blob).__name__}, not a gate net")
    check_fields(blob, {"state": dict, "n_features": int, "hidden": int, "scene_dim": int}, path)
    if blob.get("features") != list(EVIDENCE_FEATURES):
        raise ArtefactError(
            f"{path}: gate trained on features {blob.get('features')}, this emolog computes {list(EVIDENCE_FEATURES)}"
        )
    gate = GateNet(blob["n_features"], blob["hidden"], blob["scene_dim"])
    try:
        gate.load_state_dict(blob["state"])
    except RuntimeError as e:
        raise ArtefactError(f"{path}: does not fit a gate net ({str(e).splitlines()[0][:160]})") from None
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
    t = {
        k: torch.as_tensor(np.asarray(perceived[k]))
        for k in ("face_mask", "face_area", "face_boxes", "face_conf", "image_size", "face_probs", "n_faces")
    }
    static = static_evidence(
        t["face_mask"], t["face_area"], t["face_boxes"], t["face_conf"], t["image_size"], t["face_probs"], t["n_faces"]
    )
    ev = evidence_features(static, torch.as_tensor(np.asarray(scene_probs), dtype=torch.float32).reshape(1, -1))
    avail = torch.cat([torch.ones(1, 1, dtype=torch.bool), t["face_mask"].bool().reshape(1, -1)], 1)
    scene = torch.as_tensor(np.asarray(perceived["scene"]), dtype=torch.float32) if gate.scene_dim else None
    w = gate(ev, avail, scene)[0]
    return {s: float(w[j]) for j, s in enumerate(SOURCES)}
