"""Cache checks and edits shared by several test modules."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from emolog.cache.store import MANIFEST, load_cache
from emolog.data.artefacts import sha256_file

TENSORS = (
    "scene",
    "face_probs",
    "face_logits",
    "face_boxes",
    "face_area",
    "face_conf",
    "face_mask",
    "n_faces",
    "image_size",
)


def assert_same_cache(a: Path, b: Path) -> None:
    """Caches ``a`` and ``b`` hold the same ids (no duplicates), the same tensors (1e-4) and fingerprint."""
    ca, cb = load_cache(a), load_cache(b)
    assert sorted(ca.ids) == sorted(cb.ids) and len(set(cb.ids)) == len(cb.ids)
    cb = cb.select(ca.ids)
    for k in TENSORS:
        x, y = getattr(ca, k), getattr(cb, k)
        assert torch.allclose(x.double(), y.double(), atol=1e-4, rtol=1e-4), k
    assert ca.fingerprint == cb.fingerprint


def rewrite_shard(cache: Path, file: str, edit) -> None:
    """Apply ``edit(ids, tensors) -> (ids, tensors)`` to a shard and re-record its sha256, so
    that only the row-level checks can notice the change."""
    path = cache / file
    with safe_open(str(path), framework="pt") as f:
        ids = json.loads(f.metadata()["ids"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    ids, tensors = edit(ids, tensors)
    save_file(tensors, str(path), metadata={"ids": json.dumps(ids)})
    manifest = json.loads((cache / MANIFEST).read_text())
    for s in manifest["shards"]:
        if s["file"] == file:
            s["sha256"], s["n"] = sha256_file(path), len(ids)
    (cache / MANIFEST).write_text(json.dumps(manifest))
