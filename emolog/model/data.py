"""A data directory read into tensors for training: index + split + verified feature cache.

Rows are joined by image id (never by position); the cache is verified before anything is
loaded, so training never runs on missing, corrupt or misaligned rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from emolog.cache.store import FeatureCache, load_cache, read_manifest
from emolog.cache.verify import require_verified
from emolog.data.artefacts import read_json
from emolog.data.index import ImageIndex
from emolog.data.split import load_split
from emolog.errors import MissingError
from emolog.labels import BASIC7
from emolog.config.run import ConfigError, RunConfig
from emolog.model.target import Target, index_values


class DataMissingError(MissingError, ConfigError):
    """The data directory lacks its index, split or cache (exit 4)."""


@dataclass
class SplitData:
    """One split's cached tensors, rows aligned with ``ids`` (all on the run's device).

    scene [N, D] float32, face_probs / face_logits [N, K, 7], face_mask [N, K] bool,
    face_area [N, K] (fraction of the image), face_boxes [N, K, 4], face_conf [N, K],
    image_size [N, 2], n_faces [N], labels [N] long (index into the run's classes; -1 when
    unknown, e.g. images to predict), prelast [N, C, H, W] float16 or None, face_features
    [N, K, F] float32 or None (None when the cache was built without ``--face-features``);
    values [N, V] float64: a valence/arousal target's continuous values
    (``emolog.model.target``), else None; ``derived`` holds fields computed from these once
    per split (``scene_classes`` [N, C]: the backbone's own classes).

    What the network evaluating the split computes once travels with it too (a split belongs to
    one run): ``static`` [N, N_STATIC] the gate's per-image evidence (``emolog.model.gate``),
    ``frozen_scene`` [N, 7] a frozen scene net's distribution (``Network.freeze_scene``) and
    ``linear`` the program's precomputed coefficients on the training split
    (``emolog.model.linear.LinearProgram``, set by the fit loop).
    """

    ids: list[str]
    labels: torch.Tensor
    scene: torch.Tensor
    face_probs: torch.Tensor
    face_logits: torch.Tensor
    face_mask: torch.Tensor
    face_area: torch.Tensor
    face_boxes: torch.Tensor
    face_conf: torch.Tensor
    image_size: torch.Tensor
    n_faces: torch.Tensor
    prelast: torch.Tensor | None
    face_features: torch.Tensor | None = None
    values: torch.Tensor | None = None
    derived: dict[str, torch.Tensor] = field(default_factory=dict)
    static: torch.Tensor | None = None
    frozen_scene: torch.Tensor | None = None
    linear: Any = None

    def __len__(self) -> int:
        return len(self.ids)


def split_from_cache(
    cache: FeatureCache, rows: slice, ids: list[str], labels: torch.Tensor, device: torch.device, prelast: bool
) -> SplitData:
    """``SplitData`` of cache rows ``rows`` (which hold ``ids``), on ``device``."""

    def t(x: torch.Tensor) -> torch.Tensor:
        return x[rows].to(device)

    return SplitData(
        ids=ids,
        labels=labels.to(device),
        scene=t(cache.scene),
        face_probs=t(cache.face_probs),
        face_logits=t(cache.face_logits),
        face_mask=t(cache.face_mask),
        face_area=t(cache.face_area),
        face_boxes=t(cache.face_boxes),
        face_conf=t(cache.face_conf),
        image_size=t(cache.image_size),
        n_faces=t(cache.n_faces),
        prelast=t(cache.scene_prelast) if prelast else None,
        face_features=None if cache.face_features is None else t(cache.face_features),
    )


def load_data(
    cfg: RunConfig, device: torch.device, prelast: bool, classes: tuple[str, ...] = BASIC7, target: Target | None = None
) -> tuple[dict[str, SplitData], dict, dict]:
    """Read the data directory: index, split, verified cache. Returns (splits, manifest, data_info);
    labels are indices into ``classes`` (the run's label set), or with a valence/arousal
    ``target`` the class of each image's index values (kept as ``SplitData.values``)."""
    root = Path(cfg.data)
    paths = {"index": root / "index.csv", "split": root / "split.json", "cache": root / "cache"}
    for what, p in paths.items():
        if not p.exists():
            raise DataMissingError(
                f"config key 'data': {root} has no {p.name} ({what}); a data directory "
                "comes from `emolog simulate --out D` or `emolog index` + `emolog cache`"
            )
    read_manifest(paths["cache"])  # no cache at all is a missing file (exit 4), not a failed verification
    index = ImageIndex.load(paths["index"])
    split = load_split(paths["split"], known_ids=index.ids)
    if cfg.train.n_train is not None and cfg.train.n_train > len(split["train"]):
        raise ConfigError(
            f"config key 'train.n_train': {cfg.train.n_train} but the split has only "
            f"{len(split['train'])} training images"
        )
    split["train"] = split["train"][: cfg.train.n_train] if cfg.train.n_train is not None else split["train"]
    all_ids = split["train"] + split["val"] + split["test"]
    if target is not None:  # before the cache is read: a missing value is named at once
        values = index_values(index, all_ids, target)
    # Refuse to train on a cache that is incomplete, corrupt or misaligned: every id and why.
    require_verified(paths["cache"], all_ids)
    cache = load_cache(paths["cache"], ids=all_ids, prelast=prelast)
    out: dict[str, SplitData] = {}
    start = 0
    for name in ("train", "val", "test"):
        ids = split[name]
        rows = slice(start, start + len(ids))
        start += len(ids)
        if target is None:
            labels = torch.tensor([classes.index(lab) for lab in _labels(index, ids, classes)], dtype=torch.long)
            out[name] = split_from_cache(cache, rows, ids, labels, device, prelast)
        else:
            v = values[rows]
            out[name] = split_from_cache(
                cache, rows, ids, torch.as_tensor(target.class_of(v), dtype=torch.long), device, prelast
            )
            out[name].values = torch.tensor(v, device=device)
    if len(out["train"]) == 0 or len(out["val"]) == 0 or len(out["test"]) == 0:
        raise ConfigError(
            f"config key 'data': {root}/split.json needs non-empty train, val and test "
            f"(sizes {[len(out[n]) for n in ('train', 'val', 'test')]})"
        )
    manifest = cache.manifest
    # a simulated cache (its fingerprint names the simulator) needs its truth.json
    simulated = "simulator" in (manifest.get("fingerprint") or {}) or (root / "truth.json").exists()
    info = {
        "kind": "simulated" if simulated else "real",
        "dataset": _dataset_name(manifest, root, simulated),
        "cache": str(paths["cache"]),
        "index": str(paths["index"]),
        "split": str(paths["split"]),
    }
    return out, manifest, info


def _labels(index: ImageIndex, ids: list[str], classes: tuple[str, ...]) -> list[str]:
    labels = index.label_of(ids)
    bad = sorted({lab for lab in labels if lab not in classes})
    if bad:
        raise ConfigError(
            f"index labels {bad} are not in the program's label set {list(classes)}; "
            "train a program whose query covers the index's labels (docs/model.md)"
        )
    return labels


def _dataset_name(manifest: dict, root: Path, simulated: bool) -> str:
    if simulated:
        truth = read_json(root / "truth.json", what="the simulator's truth")
        return f"simulated-{truth.get('variant', 'standard')}"
    return str(manifest.get("fingerprint", {}).get("dataset", root.name))


def all_rows(s: SplitData) -> torch.Tensor:
    return torch.arange(len(s), device=s.labels.device)


def ids_hash(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
