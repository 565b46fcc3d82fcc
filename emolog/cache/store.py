"""The feature-cache format: safetensors shards plus a JSON manifest, keyed by image id.

Why this shape: the original cached tensors by the *row index* of a shuffled DataFrame and
fell back to grey dummy images when a file was missing, so labels and tensors could silently
mismatch. Here every row carries its image id (in the shard's metadata), the manifest
records a fingerprint of everything that determined the tensors, and loading asks for ids
and fails loudly on any id it cannot find. See docs/architecture.md section 2.

Writing a cache (atomic shards, resuming an interrupted one) is ``emolog.cache.writer``; this
module checks and loads one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import safe_open

from emolog.data.artefacts import FORMATS, ArtefactError, ArtefactMissing, read_json
from emolog.errors import EXIT_INPUT, InputError, MissingError, VerificationError

FORMAT = FORMATS["cache"]
MANIFEST = "manifest.json"

# name -> (shape after the leading row axis, with "D"/"K"/"C" symbolic, dtype)
TENSOR_SPEC: dict[str, tuple[tuple[str | int, ...], torch.dtype]] = {
    "scene": (("D",), torch.float32),
    "face_probs": (("K", 7), torch.float32),
    "face_logits": (("K", 7), torch.float32),
    "face_boxes": (("K", 4), torch.float32),
    "face_area": (("K",), torch.float32),
    "face_conf": (("K",), torch.float32),
    "face_mask": (("K",), torch.bool),
    "n_faces": ((), torch.int64),
    "image_size": ((2,), torch.int64),
}
# Optional tensors: scene_prelast [n, C, H, W]; face_features [n, K, F], F = the manifest's
# face_feature_dim (each face's recogniser embedding; 0 where no face).
OPTIONAL_SPEC: dict[str, torch.dtype] = {"scene_prelast": torch.float16, "face_features": torch.float32}
# The `emolog cache build` flag that adds each optional tensor (named by CacheFieldError).
BUILD_FLAGS: dict[str, str] = {"scene_prelast": "--prelast", "face_features": "--face-features"}


class CacheError(VerificationError, RuntimeError):
    """The cache is incomplete, inconsistent, damaged or from another configuration: it fails
    verification (exit 5)."""


class CacheMissingError(MissingError, CacheError):
    """There is no cache where one is needed (exit 4)."""


class CacheFieldError(CacheError, InputError):
    """The cache lacks an optional tensor that what is asked of it needs (exit 3)."""

    exit_code = EXIT_INPUT


def fingerprint_hash(fingerprint: Mapping[str, Any]) -> str:
    """A stable hash of a fingerprint dict (key order does not matter)."""
    blob = json.dumps(fingerprint, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_manifest(cache_dir: str | Path) -> dict:
    path = Path(cache_dir) / MANIFEST
    try:
        manifest = read_json(
            path,
            "cache",
            {"format": str, "fingerprint_hash": str, "K": int, "scene_dim": int, "shards": list, "rejects": list},
        )
    except ArtefactMissing:
        raise CacheMissingError(
            f"{cache_dir}: no {MANIFEST}; this is not an emolog cache "
            "(build one with `emolog cache build` or `emolog simulate`)"
        ) from None
    except ArtefactError as e:
        raise CacheError(str(e)) from None
    return manifest


def check_shapes(
    n: int, tensors: Mapping[str, torch.Tensor], K: int, scene_dim: int, face_feature_dim: int | None = None
) -> None:
    """Raise CacheError unless ``tensors`` has every required tensor with the right shape, and
    ``face_features`` [n, K, face_feature_dim] exactly when ``face_feature_dim`` is given."""
    sym: dict[str | int, int] = {"D": scene_dim, "K": K}
    missing = sorted(set(TENSOR_SPEC) - set(tensors))
    if missing:
        raise CacheError(f"shard lacks tensors {missing}")
    unknown = sorted(set(tensors) - set(TENSOR_SPEC) - set(OPTIONAL_SPEC))
    if unknown:
        raise CacheError(f"unknown cache tensors {unknown}")
    for name, (shape, _) in TENSOR_SPEC.items():
        want = (n, *[sym.get(s, s) for s in shape])
        if tuple(tensors[name].shape) != want:
            raise CacheError(f"tensor {name!r} has shape {tuple(tensors[name].shape)}, expected {want}")
    if "scene_prelast" in tensors and (tensors["scene_prelast"].ndim != 4 or len(tensors["scene_prelast"]) != n):
        raise CacheError(f"scene_prelast must be [n, C, H, W], got {tuple(tensors['scene_prelast'].shape)}")
    if face_feature_dim is None and "face_features" in tensors:
        raise CacheError("face_features given, but the cache records none (open its writer with face_feature_dim)")
    if face_feature_dim is not None:
        want = (n, K, face_feature_dim)
        got = tuple(tensors["face_features"].shape) if "face_features" in tensors else None
        if got != want:
            raise CacheError(f"tensor 'face_features' has shape {got}, expected {want}")


def _shard_ids(path: Path) -> list[str]:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["ids"])


@dataclass
class FeatureCache:
    """Cached per-image tensors, rows aligned with ``ids`` (see TENSOR_SPEC for shapes);
    the optional ones (``scene_prelast``, ``face_features``) are None when absent.
    ``cache_dir`` is where it was loaded from (None for rows perceived in memory)."""

    ids: list[str]
    scene: torch.Tensor
    face_probs: torch.Tensor
    face_logits: torch.Tensor
    face_boxes: torch.Tensor
    face_area: torch.Tensor
    face_conf: torch.Tensor
    face_mask: torch.Tensor
    n_faces: torch.Tensor
    image_size: torch.Tensor
    scene_prelast: torch.Tensor | None = None
    face_features: torch.Tensor | None = None
    manifest: dict = field(default_factory=dict)
    cache_dir: Path | None = None

    @property
    def fingerprint(self) -> dict:
        return self.manifest.get("fingerprint", {})

    def __len__(self) -> int:
        return len(self.ids)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("ids", "manifest", "cache_dir") and getattr(self, f.name) is not None
        }

    def require(self, name: str, why: str = "") -> torch.Tensor:
        """The cache tensor ``name`` (any of TENSOR_SPEC and OPTIONAL_SPEC). For an optional one
        the cache lacks, raises CacheFieldError (exit 3) naming this cache, ``why`` it is needed
        (e.g. which network of which spec reads it) and the ``emolog cache build`` flag that adds it."""
        if name not in TENSOR_SPEC and name not in OPTIONAL_SPEC:
            raise ValueError(
                f"require({name!r}): not a cache tensor; choose from {sorted([*TENSOR_SPEC, *OPTIONAL_SPEC])}"
            )
        value = getattr(self, name)
        if value is not None:
            return value
        where = f"the cache at {self.cache_dir}" if self.cache_dir is not None else "the cache (perceived in memory)"
        # scene_prelast is read only when asked for: a cache that has it may have been loaded without
        how = " (or it was loaded without load_cache(..., prelast=True))" if name == "scene_prelast" else ""
        raise CacheFieldError(
            f"{where} has no {name}{f' ({why})' if why else ''}: it was built without them{how}; rebuild it with "
            f"`emolog cache build --index D --out NEW_CACHE {BUILD_FLAGS[name]}` and the perception options it "
            "was built with (into a new directory: a cache holds one configuration)"
        )

    def select(self, ids: list[str]) -> "FeatureCache":
        """The rows of ``ids``, in that order; CacheError names any id not cached."""
        pos = {i: r for r, i in enumerate(self.ids)}
        missing = [i for i in ids if i not in pos]
        if missing:
            raise CacheError(
                f"{len(missing)} ids are not in the cache, e.g. {missing[:5]}; "
                "rebuild or extend the cache rather than training without them"
            )
        rows = torch.tensor([pos[i] for i in ids], dtype=torch.long)
        return FeatureCache(
            ids=list(ids),
            manifest=self.manifest,
            cache_dir=self.cache_dir,
            **{k: v.index_select(0, rows) for k, v in self.tensors().items()},
        )


def load_cache(cache_dir: str | Path, ids: list[str] | None = None, prelast: bool = False) -> FeatureCache:
    """Load the cache (all rows, or exactly ``ids`` in that order). ``face_features`` is read
    whenever the cache has it (None when not); ``scene_prelast`` only with ``prelast``.

    Raises CacheError for a missing shard, an id stored twice or any requested id that is
    absent: training never runs on rows that are not there.
    """
    cache_dir = Path(cache_dir)
    manifest = read_manifest(cache_dir)
    parts: dict[str, list[torch.Tensor]] = {}
    all_ids: list[str] = []
    for s in manifest["shards"]:
        path = cache_dir / s["file"]
        if not path.exists():
            raise CacheError(f"{path}: shard listed in the manifest is missing")
        try:
            with safe_open(str(path), framework="pt") as f:
                all_ids.extend(json.loads(f.metadata()["ids"]))
                for k in f.keys():
                    if k == "scene_prelast" and not prelast:
                        continue
                    parts.setdefault(k, []).append(f.get_tensor(k))
        except CacheError:
            raise
        except Exception as e:  # noqa: BLE001 - report which file is broken, whatever broke
            raise CacheError(f"{path}: unreadable shard ({e})") from e
    if len(set(all_ids)) != len(all_ids):
        dup = sorted({i for i in all_ids if all_ids.count(i) > 1})
        raise CacheError(f"ids stored more than once: {dup[:5]}")
    K, D, F = manifest["K"], manifest["scene_dim"], manifest.get("face_feature_dim")
    tensors = {k: torch.cat(v) for k, v in parts.items()}
    if not all_ids:
        sizes = {"D": D, "K": K}
        tensors = {
            k: torch.zeros((0, *[sizes[s] if isinstance(s, str) else s for s in shape]), dtype=dt)
            for k, (shape, dt) in TENSOR_SPEC.items()
        }
        if F is not None:
            tensors["face_features"] = torch.zeros((0, K, F))
    if prelast and "scene_prelast" not in tensors:
        raise CacheError(f"{cache_dir}: built without scene_prelast (rebuild with --prelast)")
    check_shapes(len(all_ids), tensors, K, D, F)
    cache = FeatureCache(ids=all_ids, manifest=manifest, cache_dir=cache_dir, **tensors)
    return cache if ids is None else cache.select(list(ids))
