"""Face-weighting baselines: weighted averages of the faces' distributions (docs/context-trust.md).

The group-emotion literature often pools faces instead of choosing one; the user's notes ask
for size and confidence. Every baseline returns probabilities [N, 7] in BASIC7 order:

* ``size-weighted``: faces weighted by box area; an image without a face gets the scene's
  distribution;
* ``confidence-weighted``: faces weighted by the recogniser's confidence 1 - H(p) / log 7
  (entropy-based; a flat, unsure reading counts little); no face: the scene;
* ``learned-weighting``: importance logit per face a * log10(area) + b * centrality +
  c * (1 - H / log 7) + d, and one learned logit for the scene, softmaxed over the sources
  present; the five numbers are fitted by NLL on the training split (Adam, early stopping on
  validation NLL). The scene is a candidate so that it can be compared with the gate, which
  also chooses between the scene and the faces.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from emolog.learn.small import fit_small, optimiser_step

FACE_WEIGHTINGS: tuple[str, ...] = ("size-weighted", "confidence-weighted", "learned-weighting")
AREA_FLOOR = 1e-4


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _pool(
    scene_probs: torch.Tensor, face_probs: torch.Tensor, face_mask: torch.Tensor, face_weight: torch.Tensor
) -> np.ndarray:
    """Faces averaged with non-negative weights [N, K]; rows without a face take the scene."""
    w = face_weight * face_mask
    total = w.sum(1, keepdim=True)
    pooled = (w[..., None] * face_probs).sum(1) / total.clamp_min(1e-12)
    return torch.where(total > 0, pooled, scene_probs).numpy()


def recogniser_confidence(face_probs) -> torch.Tensor:
    """1 - entropy / log C of each face's distribution: [N, K, C] -> [N, K] in [0, 1]."""
    p = _t(face_probs)
    return 1 + (p * p.clamp_min(1e-12).log()).sum(-1) / math.log(p.shape[-1])


def size_weighted_probs(scene_probs, face_probs, face_mask, face_area) -> np.ndarray:
    """Area-weighted average of the faces [N, 7]; the scene [N, 7] where there is no face.

    face_probs [N, K, 7], face_mask [N, K] bool, face_area [N, K] (fraction of the image).
    """
    return _pool(_t(scene_probs), _t(face_probs), _t(face_mask), _t(face_area).clamp_min(0))


def confidence_weighted_probs(scene_probs, face_probs, face_mask) -> np.ndarray:
    """Faces weighted by recogniser confidence (1 - H / log 7) [N, 7]; the scene without faces.

    A small floor (1e-6) keeps a face whose reading is exactly uniform from dividing by 0
    when it is the only face.
    """
    return _pool(_t(scene_probs), _t(face_probs), _t(face_mask), recogniser_confidence(face_probs) + 1e-6)


def centrality(face_boxes, image_size) -> torch.Tensor:
    """1 - distance of the box centre from the image centre / its maximum: [N,K,4], [N,2] -> [N,K]."""
    b, size = _t(face_boxes), _t(image_size).clamp_min(1)
    dx = (b[..., 0] + b[..., 2]) / size[:, :1] - 1
    dy = (b[..., 1] + b[..., 3]) / size[:, 1:2] - 1
    return 1 - torch.sqrt(dx.clamp(-1, 1) ** 2 + dy.clamp(-1, 1) ** 2) / math.sqrt(2)


class LearnedWeighting(nn.Module):
    """Importance weights of the scene and each face: 5 parameters.

    forward(scene_probs [N,7], face_probs [N,K,7], face_mask [N,K], face_feats [N,K,3]) ->
    [N, 7]; face_feats are (log10 area + 2, centrality, recogniser confidence).
    """

    def __init__(self) -> None:
        super().__init__()
        self.coef = nn.Parameter(torch.zeros(3, dtype=torch.float64))  # size, centrality, confidence
        self.face_bias = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.scene_logit = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def weights(self, face_mask: torch.Tensor, face_feats: torch.Tensor) -> torch.Tensor:
        """[N, 1 + K] source weights (scene first), 0 for absent faces."""
        face = (face_feats @ self.coef + self.face_bias).masked_fill(~face_mask.bool(), float("-inf"))
        scene = self.scene_logit.expand(len(face), 1)
        return torch.softmax(torch.cat([scene, face], 1), 1)

    def forward(
        self, scene_probs: torch.Tensor, face_probs: torch.Tensor, face_mask: torch.Tensor, face_feats: torch.Tensor
    ) -> torch.Tensor:
        w = self.weights(face_mask, face_feats)
        return w[:, :1] * scene_probs + (w[:, 1:, None] * face_probs).sum(1)


def face_features(face_area, face_boxes, image_size, face_probs) -> torch.Tensor:
    """[N, K, 3]: log10(area) + 2, centrality, recogniser confidence (inputs as in the cache)."""
    area = torch.log10(_t(face_area).clamp_min(AREA_FLOOR)) + 2
    return torch.stack([area, centrality(face_boxes, image_size), recogniser_confidence(face_probs)], -1)


def fit_learned_weighting(
    train: dict, val: dict, epochs: int = 200, lr: float = 0.05, patience: int = 10, seed: int = 0
) -> LearnedWeighting:
    """Fit LearnedWeighting by full-batch Adam on training NLL, keeping the best validation NLL.

    ``train`` / ``val``: dicts of numpy arrays ``scene_probs`` [N,7], ``face_probs`` [N,K,7],
    ``face_mask`` [N,K], ``face_area`` [N,K], ``face_boxes`` [N,K,4], ``image_size`` [N,2],
    ``labels`` [N] (BASIC7 indices). Full batch: five parameters need no mini-batches.
    """
    torch.manual_seed(seed)
    model = LearnedWeighting()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    tr, va = _tensors(train), _tensors(val)

    def loss(d: dict) -> torch.Tensor:
        p = model(d["scene_probs"], d["face_probs"], d["face_mask"], d["feats"])
        return -p.gather(1, d["labels"][:, None]).clamp_min(1e-12).log().mean()

    fit_small(model, lambda epoch: optimiser_step(opt, loss(tr)), lambda: loss(va), epochs, patience)
    return model


def _tensors(d: dict) -> dict:
    missing = [
        k
        for k in ("scene_probs", "face_probs", "face_mask", "face_area", "face_boxes", "image_size", "labels")
        if k not in d
    ]
    if missing:
        raise ValueError(f"face weighting needs arrays {missing}")
    return {
        "scene_probs": _t(d["scene_probs"]),
        "face_probs": _t(d["face_probs"]),
        "face_mask": _t(d["face_mask"]).bool(),
        "labels": torch.as_tensor(np.asarray(d["labels"])).long(),
        "feats": face_features(d["face_area"], d["face_boxes"], d["image_size"], d["face_probs"]),
    }


def face_weighting_probs(
    name: str, test: dict, train: dict | None = None, val: dict | None = None, seed: int = 0
) -> np.ndarray:
    """Test probabilities [N, 7] of baseline ``name`` (FACE_WEIGHTINGS); arrays as in
    ``fit_learned_weighting`` (``train``/``val`` needed only by learned-weighting)."""
    if name == "size-weighted":
        return size_weighted_probs(test["scene_probs"], test["face_probs"], test["face_mask"], test["face_area"])
    if name == "confidence-weighted":
        return confidence_weighted_probs(test["scene_probs"], test["face_probs"], test["face_mask"])
    if name == "learned-weighting":
        if train is None or val is None:
            raise ValueError("learned-weighting is fitted: pass train and val arrays")
        model = fit_learned_weighting(train, val, seed=seed)
        t = _tensors({**test, "labels": np.zeros(len(test["scene_probs"]), dtype=np.int64)})
        with torch.no_grad():
            return model(t["scene_probs"], t["face_probs"], t["face_mask"], t["feats"]).numpy()
    raise ValueError(f"unknown face weighting {name!r}; choose one of {list(FACE_WEIGHTINGS)}")
