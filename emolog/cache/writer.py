"""``CacheWriter``: a feature cache written shard by shard (the format: ``emolog.cache.store``).

Writes are atomic (temp file + ``os.replace``) and a writer resumes an interrupted cache:
shards that reached disk are kept, half-written temp files are discarded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes

from emolog.cache.store import (
    FORMAT,
    MANIFEST,
    OPTIONAL_SPEC,
    TENSOR_SPEC,
    CacheError,
    _shard_ids,
    check_shapes,
    fingerprint_hash,
    read_manifest,
)
from emolog.data.artefacts import sha256_file
from emolog.data.atomic import atomic_write_bytes, atomic_write_text
from emolog.labels import BASIC7


def _to_tensor(name: str, value: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(value)) if not isinstance(value, torch.Tensor) else value
    dtype = TENSOR_SPEC[name][1] if name in TENSOR_SPEC else OPTIONAL_SPEC[name]
    return t.detach().to("cpu", dtype).contiguous()


class CacheWriter:
    """Appends shards to a cache directory; resumes one whose fingerprint matches.

    Args:
        cache_dir: the directory (created if absent).
        fingerprint: everything that determines the tensors (weights hashes, preprocessing,
            thresholds, K, version, or a simulator's config and seed).
        K: face slots per image.
        scene_dim: length D of the scene feature vector.
        face_feature_dim: F when every shard holds ``face_features`` [n, K, F], else None.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        fingerprint: Mapping[str, Any],
        K: int,
        scene_dim: int,
        classes: tuple[str, ...] = BASIC7,
        face_feature_dim: int | None = None,
    ) -> None:
        self.dir = Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        fp_hash = fingerprint_hash(fingerprint)
        if (self.dir / MANIFEST).exists():
            self.manifest = read_manifest(self.dir)
            if self.manifest["fingerprint_hash"] != fp_hash:
                raise CacheError(
                    f"{self.dir} holds a cache built with another configuration "
                    f"(fingerprint {self.manifest['fingerprint_hash']} != {fp_hash}); "
                    "use a new directory rather than mixing the two"
                )
            have = self.manifest.get("face_feature_dim")
            if have != face_feature_dim:

                def what(F: int | None) -> str:
                    return "no face_features" if F is None else f"face_features of dim {F}"

                raise CacheError(
                    f"{self.dir} holds a cache with {what(have)}, this build writes "
                    f"{what(face_feature_dim)}; use a new directory rather than mixing the two"
                )
        else:
            self.manifest = {
                "format": FORMAT,
                "fingerprint": dict(fingerprint),
                "fingerprint_hash": fp_hash,
                "K": K,
                "scene_dim": scene_dim,
                "face_feature_dim": face_feature_dim,
                "classes": list(classes),
                "shards": [],
                "rejects": [],
            }
            self._save_manifest()
        self._recover()

    # -- resume ---------------------------------------------------------------------------
    def _recover(self) -> None:
        """Drop temp files of a killed run; adopt complete shards the manifest missed."""
        # temporary files of atomic writes (.NAME.*.part, data.atomic) and an older emolog's *.tmp
        for tmp in [*self.dir.glob("*.tmp"), *self.dir.glob(".*.part")]:
            tmp.unlink()
        known = {s["file"] for s in self.manifest["shards"]}
        missing = sorted(f for f in known if not (self.dir / f).exists())
        if missing:
            raise CacheError(
                f"{self.dir}: shards listed in the manifest are missing: {missing[:5]}; "
                "the cache was damaged after it was written: rebuild it in a new directory"
            )
        self._done: set[str] = set()
        for s in self.manifest["shards"]:
            self._done.update(_shard_ids(self.dir / s["file"]))
        for path in sorted(self.dir.glob("shard-*.safetensors")):
            if path.name in known:
                continue
            try:  # renamed into place but killed before the manifest update: complete, keep it
                ids = _shard_ids(path)
            except Exception:  # noqa: BLE001 - any unreadable orphan is discarded, never used
                path.unlink()
                continue
            if self._done.intersection(ids):
                path.unlink()
                continue
            self.manifest["shards"].append({"file": path.name, "n": len(ids), "sha256": sha256_file(path)})
            self._done.update(ids)
        self._save_manifest()

    def done_ids(self) -> set[str]:
        """Ids already stored (in shards the manifest lists)."""
        return set(self._done)

    def rejected_ids(self) -> set[str]:
        """Ids recorded as rejects (an id of ``""`` stands for a path that had none)."""
        return {r["image_id"] for r in self.manifest["rejects"]}

    def set_info(self, **info: Any) -> None:
        """Record JSON-able facts about how the cache was built under the manifest's ``info``
        (e.g. which slice of the ids a part holds); they do not enter the fingerprint."""
        self.manifest.setdefault("info", {}).update(info)
        self._save_manifest()

    # -- writing --------------------------------------------------------------------------
    def write_shard(self, ids: list[str], tensors: Mapping[str, Any]) -> Path:
        """Store one shard atomically; row i of every tensor belongs to ``ids[i]``."""
        if len(set(ids)) != len(ids):
            raise CacheError("duplicate ids within one shard")
        clash = self._done.intersection(ids)
        if clash:
            raise CacheError(f"ids already in the cache: {sorted(clash)[:5]}{'...' if len(clash) > 5 else ''}")
        ts = {k: _to_tensor(k, v) for k, v in tensors.items()}
        check_shapes(
            len(ids), ts, self.manifest["K"], self.manifest["scene_dim"], self.manifest.get("face_feature_dim")
        )
        index = max([int(s["file"].split("-")[1].split(".")[0]) for s in self.manifest["shards"]] + [-1]) + 1
        name = f"shard-{index:05d}.safetensors"
        path = self.dir / name
        atomic_write_bytes(path, safetensors_bytes(ts, metadata={"ids": json.dumps(list(ids))}))
        self._done.update(ids)  # before the manifest: an interrupted caller must not rewrite them
        self.manifest["shards"].append({"file": name, "n": len(ids), "sha256": sha256_file(path)})
        self._save_manifest()
        return path

    def add_rejects(self, rejects: Iterable[Mapping[str, str]]) -> None:
        """Record images that could not be processed (never replaced by a dummy).

        Each reject has ``image_id``, ``rel_path`` and ``reason`` (extra keys, e.g. ``stage``,
        are kept); one already recorded with the same id and path is not added again.
        """
        seen = {(r["image_id"], r.get("rel_path", "")) for r in self.manifest["rejects"]}
        for r in rejects:
            key = (r["image_id"], r.get("rel_path", ""))
            if key not in seen:
                self.manifest["rejects"].append(dict(r))
                seen.add(key)
        self._save_manifest()

    def drop_rejects(self, retry: Callable[[Mapping[str, str]], bool]) -> int:
        """Forget the rejects for which ``retry(record)`` is True (so their ids are processed
        again); returns how many were dropped."""
        keep = [r for r in self.manifest["rejects"] if not retry(r)]
        dropped = len(self.manifest["rejects"]) - len(keep)
        if dropped:
            self.manifest["rejects"] = keep
            self._save_manifest()
        return dropped

    def close(self) -> None:
        """Flush the manifest (every write already did; kept for a with-block and symmetry)."""
        self._save_manifest()

    def __enter__(self) -> "CacheWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _save_manifest(self) -> None:
        atomic_write_text(self.dir / MANIFEST, json.dumps(self.manifest, indent=1))
