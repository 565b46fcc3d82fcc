"""Baselines on the same cached inputs as the logic program, evaluated the same way.

* ``majority``: the training label distribution for every image (argmax = majority class);
* ``scene-only``: a Scene2EmotionNet trained on the cached scene features of the train split;
* ``largest-face``: the recogniser's distribution for face 1 (the training label
  distribution where an image has no face);
* ``uniform-average``: the plain mean of the available sources' distributions (scene-only
  net + every real face), i.e. the logic program with equal, untrained weights;
* ``fusion-mlp``: the user's "MoE" idea as a plain neural fusion: an MLP on
  [scene features, 3 x 7 face probabilities, 3-slot mask] -> C classes;
* ``fusion-mlp-meta``: the same MLP with the meta-information appended (``meta_features``:
  face count, and per face slot its area, centrality, detector confidence, the recogniser's top
  probability and entropy): the pair answers "does extra information help?";
* ``face-only``: an MLP on the faces alone [3 x 7 face probabilities, 3-slot mask] (for any
  label set, e.g. a valence/arousal target's bins);
* ``tree``: a scikit-learn decision tree over the two sources' outputs (the scene-only net's
  distribution, face 1's recogniser distribution, the face count), fitted on the validation
  split, which the scene-only net did not train on (its training-set outputs are memorised);
  a leaf's class frequencies are its distribution. For a valence/arousal target it is a
  regression tree (squared error on the values), its leaves' bin frequencies the distribution.

Generic over the label set: ``run_baselines(classes=...)`` returns probabilities [N, C] in
``classes`` order (``emolog.labels.BASIC7`` by default). ``largest-face`` and
``uniform-average`` read the recogniser's basic-7 distributions as predictions, so they apply
only when the classes are basic-7 (``inapplicable`` says why not otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emolog.cache.store import FeatureCache, load_cache
from emolog.data.index import ImageIndex
from emolog.data.split import load_split
from emolog.labels import BASIC7, class_index
from emolog.perception.scene2emotion import Scene2EmotionNet
from emolog.runtime import resolve_device
from emolog.config.run import BASELINES
from emolog.learn.small import fit_small, optimiser_step
from emolog.model.target import Target, index_values

FACE_SPACE = ("largest-face", "uniform-average")  # predict in the recogniser's basic-7 classes


def inapplicable(names: tuple[str, ...] | list[str], classes: tuple[str, ...]) -> dict[str, str]:
    """Baselines of ``names`` that cannot predict ``classes``: name -> why."""
    if tuple(classes) == BASIC7:
        return {}
    return {
        n: f"it predicts the face recogniser's basic-7 classes, not the runs' {len(classes)} classes"
        for n in names
        if n in FACE_SPACE
    }


def class_prior(train_labels: np.ndarray, n_classes: int = len(BASIC7)) -> np.ndarray:
    """Relative class frequencies [C] of the training labels (each class at least 1e-6)."""
    counts = np.bincount(np.asarray(train_labels), minlength=n_classes).astype(np.float64)
    if counts.sum() == 0:
        raise ValueError("class_prior: no training labels")
    p = np.maximum(counts / counts.sum(), 1e-6)
    return p / p.sum()


def majority_probs(train_labels: np.ndarray, n: int, n_classes: int = len(BASIC7)) -> np.ndarray:
    """[n, C]: the training label distribution for every image (top-1 = the majority class)."""
    return np.tile(class_prior(train_labels, n_classes), (n, 1))


def largest_face_probs(face_probs: np.ndarray, face_mask: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Face 1's recogniser distribution [N, 7]; ``fallback`` [7] for images without a face."""
    face_probs, face_mask = np.asarray(face_probs, dtype=np.float64), np.asarray(face_mask, dtype=bool)
    return np.where(face_mask[:, :1], face_probs[:, 0], np.asarray(fallback, dtype=np.float64)[None])


def uniform_average_probs(scene_probs: np.ndarray, face_probs: np.ndarray, face_mask: np.ndarray) -> np.ndarray:
    """Mean of the scene distribution [N, 7] and each real face's distribution [N, K, 7]."""
    m = np.asarray(face_mask, dtype=np.float64)[..., None]
    total = np.asarray(scene_probs, dtype=np.float64) + (np.asarray(face_probs, dtype=np.float64) * m).sum(1)
    return total / (1.0 + m.sum(1))


class FusionNet(nn.Module):
    """Plain neural fusion: [scene D, K*7 face probs, K mask] -> hidden (ReLU, dropout) -> n_classes
    logits (the faces' probabilities have ``face_classes`` entries, the recogniser's basic-7)."""

    def __init__(
        self,
        scene_dim: int,
        K: int = 3,
        n_classes: int = len(BASIC7),
        hidden: int = 64,
        dropout: float = 0.5,
        face_classes: int = len(BASIC7),
    ) -> None:
        super().__init__()
        self.in_dim = scene_dim + K * face_classes + K
        self.net = nn.Sequential(
            nn.Linear(self.in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_dim] -> logits [B, n_classes]."""
        return self.net(x)


def fusion_inputs(cache: FeatureCache, scene: bool = True, meta: bool = False) -> torch.Tensor:
    """The fusion net's input [N, D + K*7 + K (+ meta)] from a cache (absent faces are zeros,
    masked); ``scene=False``: the faces alone; ``meta``: ``meta_features`` appended."""
    parts = ([cache.scene] if scene else []) + [cache.face_probs.flatten(1), cache.face_mask.float()]
    if meta:
        parts.append(torch.as_tensor(np.stack(list(meta_features(cache).values()), 1), dtype=torch.float32))
    return torch.cat(parts, dim=1)


def meta_features(cache: FeatureCache) -> dict[str, np.ndarray]:
    """Per-image meta-information from the cache, each [N]: ``n_faces`` (detected, log1p), and
    per face slot k (0 where absent) ``face<k>_area`` (box / image), ``face<k>_centrality`` (1 at
    the image centre, 0 in a corner), ``face<k>_conf`` (detector), ``face<k>_max_prob`` and
    ``face<k>_entropy`` (the recogniser's top probability and entropy in nats)."""
    mask = cache.face_mask.numpy().astype(np.float64)
    boxes, size = cache.face_boxes.double().numpy(), cache.image_size.double().numpy()
    cx = (boxes[..., 0] + boxes[..., 2]) / 2 / size[:, :1]
    cy = (boxes[..., 1] + boxes[..., 3]) / 2 / size[:, 1:]
    centrality = (1 - np.sqrt(((cx - 0.5) ** 2 + (cy - 0.5) ** 2) / 0.5)) * mask
    p = cache.face_probs.double().numpy()
    entropy = -(p * np.log(np.clip(p, 1e-12, 1))).sum(-1) * mask
    out = {"n_faces": np.log1p(cache.n_faces.double().numpy())}
    for k in range(mask.shape[1]):
        out.update(
            {
                f"face{k + 1}_area": cache.face_area[:, k].double().numpy() * mask[:, k],
                f"face{k + 1}_centrality": centrality[:, k],
                f"face{k + 1}_conf": cache.face_conf[:, k].double().numpy(),
                f"face{k + 1}_max_prob": p[:, k].max(-1) * mask[:, k],
                f"face{k + 1}_entropy": entropy[:, k],
            }
        )
    return out


def tree_probs(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_eval: np.ndarray,
    n_classes: int,
    seed: int,
    values: np.ndarray | None = None,
) -> np.ndarray:
    """[N_eval, C]: the class frequencies of each evaluated row's leaf in a decision tree fitted
    on (``x_fit``, ``y_fit``) (depth <= 4, leaves of >= 2% of the rows; one pseudo-image per
    leaf spread by the class frequencies, so no class gets probability 0); with ``values``
    [N_fit, V] (a valence/arousal target) the tree is a regression tree on them."""
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    kw = {"max_depth": 4, "min_samples_leaf": max(5, len(y_fit) // 50), "random_state": seed}
    tree = (
        DecisionTreeRegressor(**kw).fit(x_fit, values)
        if values is not None
        else DecisionTreeClassifier(**kw).fit(x_fit, y_fit)
    )
    leaf_fit, leaf_eval = tree.apply(x_fit), tree.apply(x_eval)
    # one pseudo-image spread by the fitted rows' class frequencies: no class gets probability 0
    counts = np.tile(np.bincount(y_fit, minlength=n_classes) / len(y_fit), (leaf_fit.max() + 1, 1))
    np.add.at(counts, (leaf_fit, y_fit), 1.0)
    return counts[leaf_eval] / counts[leaf_eval].sum(1, keepdims=True)


@dataclass(frozen=True)
class ClassifierFit:
    """How ``fit_classifier`` trains: Adam (``lr``, ``weight_decay``) on mini-batches of
    ``batch_size`` for ``epochs`` epochs, shuffled by ``seed``, on ``device`` (None: the
    default device), with a progress bar labelled ``desc``."""

    epochs: int = 30
    lr: float = 3e-3
    weight_decay: float = 1e-5
    batch_size: int = 64
    seed: int = 0
    device: torch.device | None = None
    desc: str = "baseline"


def fit_classifier(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: np.ndarray,
    x_val: torch.Tensor | None = None,
    y_val: np.ndarray | None = None,
    how: ClassifierFit = ClassifierFit(),
) -> nn.Module:
    """Train ``model`` (returning logits) with cross-entropy and Adam; keep the best-val-NLL epoch.

    x_* are [N, d] float tensors, y_* [N] class indices. Without validation data the last
    epoch is kept. Seeded (init order is the caller's; shuffling uses ``how.seed``).
    """
    device = how.device or resolve_device()
    model = model.to(device)
    x_train, yt = x_train.to(device), torch.as_tensor(np.asarray(y_train), dtype=torch.long, device=device)
    val_loss = None
    if x_val is not None and y_val is not None and len(y_val) > 0:
        x_val, yv = x_val.to(device), torch.as_tensor(np.asarray(y_val), dtype=torch.long, device=device)

        def val_loss() -> float:
            return F.cross_entropy(model(x_val), yv).item()

    opt = torch.optim.Adam(model.parameters(), lr=how.lr, weight_decay=how.weight_decay)
    gen = torch.Generator().manual_seed(how.seed)

    def train_epoch(epoch: int) -> None:
        for idx in torch.randperm(len(yt), generator=gen).split(how.batch_size):
            idx = idx.to(device)
            optimiser_step(opt, F.cross_entropy(model(x_train[idx]), yt[idx]))

    fit_small(model, train_epoch, val_loss, how.epochs, patience=None, desc=how.desc)  # the best of all epochs
    return model


@torch.no_grad()
def predict_probs(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """softmax(model(x)) as float64 numpy [N, C] (eval mode)."""
    model.eval()
    device = next(model.parameters()).device
    return torch.softmax(model(x.to(device)).double(), dim=1).cpu().numpy()


@dataclass
class BaselineResults:
    """Baseline probabilities on ``ids`` (rows aligned), labels as indices into ``classes``."""

    ids: list[str]
    labels: np.ndarray
    probs: dict[str, np.ndarray] = field(default_factory=dict)
    classes: tuple[str, ...] = BASIC7


def split_labels(data_dir: str | Path, ids: list[str], classes: tuple[str, ...] = BASIC7) -> np.ndarray:
    """Indices into ``classes`` [N] of ``ids``' labels in ``data_dir/index.csv``."""
    index = ImageIndex.load(Path(data_dir) / "index.csv")
    return np.array([class_index(lab, tuple(classes)) for lab in index.label_of(ids)], dtype=np.int64)


def run_baselines(
    data_dir: str | Path,
    names: tuple[str, ...] = BASELINES,
    how: ClassifierFit = ClassifierFit(),
    eval_split: str = "test",
    n_train: int | None = None,
    classes: tuple[str, ...] = BASIC7,
    target: Target | None = None,
) -> BaselineResults:
    """Fit the baselines on the train split of a data directory; probabilities on ``eval_split``.

    The nets train as ``how`` says (its ``seed`` also seeds their initialisation) and pick
    their best epoch on the val split. ``n_train`` uses the first n training
    ids (the split's seeded order), like a run with that ``n_train``. With a valence/arousal
    ``target`` the labels are its bins of the index's values (``classes`` = its classes). Raises
    ValueError for a baseline that cannot predict ``classes`` (``inapplicable``).
    """
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINES)}")
    classes = tuple(classes)
    bad = inapplicable(names, classes)
    if bad:
        raise ValueError(f"baselines {sorted(bad)} do not apply: {next(iter(bad.values()))}")
    data_dir = Path(data_dir)
    split = load_split(data_dir / "split.json")
    train_ids = split["train"][:n_train] if n_train else split["train"]
    eval_ids = split[eval_split]
    index = ImageIndex.load(data_dir / "index.csv") if target is not None else None
    vals = (
        {
            k: index_values(index, ids, target)
            for k, ids in (("train", train_ids), ("val", split["val"]), ("eval", eval_ids))
        }
        if target is not None
        else {}
    )
    y_train, y_val, y_eval = (
        (target.class_of(vals[k]) for k in ("train", "val", "eval"))
        if target is not None
        else (split_labels(data_dir, ids, classes) for ids in (train_ids, split["val"], eval_ids))
    )
    cache = load_cache(data_dir / "cache")
    tr, va, ev = cache.select(train_ids), cache.select(split["val"]), cache.select(eval_ids)
    prior = class_prior(y_train, len(classes))
    out = BaselineResults(ids=list(eval_ids), labels=y_eval, classes=classes)
    scene: dict[str, np.ndarray] = {}
    if {"scene-only", "uniform-average", "tree"} & set(names):
        torch.manual_seed(how.seed)
        net = fit_classifier(
            Scene2EmotionNet(in_dim=tr.scene.shape[1], n_classes=len(classes)),
            tr.scene,
            y_train,
            va.scene,
            y_val,
            replace(how, desc="scene-only"),
        )
        scene = {"val": predict_probs(net, va.scene), "eval": predict_probs(net, ev.scene)}

    def mlp(x: Callable[[FeatureCache], torch.Tensor], desc: str) -> np.ndarray:
        torch.manual_seed(how.seed)
        net = FusionNet(x(tr).shape[1], K=0, n_classes=len(classes), face_classes=0)  # in_dim = the features'
        return predict_probs(fit_classifier(net, x(tr), y_train, x(va), y_val, replace(how, desc=desc)), x(ev))

    for name in names:
        if name == "majority":
            out.probs[name] = majority_probs(y_train, len(eval_ids), len(classes))
        elif name == "scene-only":
            out.probs[name] = scene["eval"]
        elif name == "largest-face":
            out.probs[name] = largest_face_probs(ev.face_probs.numpy(), ev.face_mask.numpy(), prior)
        elif name == "uniform-average":
            out.probs[name] = uniform_average_probs(scene["eval"], ev.face_probs.numpy(), ev.face_mask.numpy())
        elif name in ("fusion-mlp", "fusion-mlp-meta", "face-only"):
            out.probs[name] = mlp(
                lambda c: fusion_inputs(c, scene=name != "face-only", meta=name == "fusion-mlp-meta"), name
            )
        elif name == "tree":

            def sources(c: FeatureCache, part: str) -> np.ndarray:
                return np.concatenate([scene[part], c.face_probs[:, 0].numpy(), c.n_faces.numpy()[:, None]], 1)

            out.probs[name] = tree_probs(
                sources(va, "val"), y_val, sources(ev, "eval"), len(classes), how.seed, vals.get("val")
            )
    return out
