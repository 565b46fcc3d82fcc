"""Join the parts of a sharded cache build (``OUT/part-i-of-N/``) into one cache in ``OUT``.

Each part is a complete cache of its own (built with ``--shard i/N`` or one torchrun rank).
Merging refuses, naming the culprit, when a part is absent or unfinished, when fingerprints
(or K, scene_dim, face_feature_dim) differ, when an id is stored twice, or when a shard's bytes
no longer match its part's manifest. Shard files are hard-linked into ``OUT`` (copied across file systems);
the manifest is written last and atomically, so an interrupted merge simply runs again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from emolog.cache.store import FORMAT, MANIFEST, CacheError, _shard_ids, read_manifest
from emolog.data.atomic import atomic_write_text
from emolog.data.artefacts import sha256_file
from emolog.data.lock import output_lock

PART_RE = re.compile(r"^part-(\d+)-of-(\d+)$")


def part_dir(out_dir: str | Path, index: int, count: int) -> Path:
    """Where slice ``index`` of ``count`` is built: ``out_dir`` itself when ``count`` is 1."""
    out_dir = Path(out_dir)
    return out_dir if count == 1 else out_dir / f"part-{index}-of-{count}"


def find_parts(out_dir: str | Path) -> tuple[int, list[Path]]:
    """(N, the part directories in order); CacheError when parts are absent or disagree on N."""
    out_dir = Path(out_dir)
    found: dict[int, dict[int, Path]] = {}
    for p in sorted(out_dir.iterdir()) if out_dir.is_dir() else []:
        m = PART_RE.match(p.name)
        if m and p.is_dir():
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = p
    if not found:
        raise CacheError(f"{out_dir}: no part-i-of-N directories to merge")
    if len(found) > 1:
        raise CacheError(
            f"{out_dir}: parts of different splittings {sorted(found)} (part-i-of-N with "
            "different N); remove the stale ones"
        )
    ((n, parts),) = found.items()
    absent = [i for i in range(n) if i not in parts]
    if absent:
        raise CacheError(
            f"{out_dir}: parts {absent} of {n} are absent; run `emolog cache build --shard i/{n}` for them"
        )
    return n, [parts[i] for i in range(n)]


def part_complete(manifest: dict) -> tuple[bool, str]:
    """Whether a part holds (or rejected) every id of its slice, and a sentence saying so."""
    info = manifest.get("info", {}).get("part")
    if info is None:
        return False, "manifest has no info.part (not built by `emolog cache build --shard`)"
    stored = sum(s["n"] for s in manifest["shards"])
    rejected = sum(1 for r in manifest["rejects"] if r.get("stage") != "index")
    if stored + rejected != info["n_expected"]:
        return False, (
            f"unfinished: {stored} stored + {rejected} rejected of {info['n_expected']} ids "
            "(resume it by running the same command again)"
        )
    return True, f"{stored} stored, {rejected} rejected"


def merge_parts(out_dir: str | Path, replace: bool = False) -> Path:
    """Merge ``out_dir/part-*-of-N`` into a cache at ``out_dir``; returns ``out_dir``.

    With ``replace``, an earlier merge there is replaced (its manifest goes first, so an
    interruption leaves no merged cache rather than a stale one)."""
    out_dir = Path(out_dir)
    with output_lock(out_dir, "emolog cache merge"):
        return _merge_parts(out_dir, replace)


def _merge_parts(out_dir: Path, replace: bool) -> Path:
    if (out_dir / MANIFEST).exists():
        if not replace:
            raise CacheError(f"{out_dir} already holds a merged cache ({MANIFEST} exists); delete it to merge again")
        (out_dir / MANIFEST).unlink()
        for old in out_dir.glob("shard-*.safetensors"):
            old.unlink()
    n, parts = find_parts(out_dir)
    manifests = [read_manifest(p) for p in parts]
    first = manifests[0]
    for p, m in zip(parts, manifests):
        for key in ("fingerprint_hash", "K", "scene_dim", "classes", "face_feature_dim"):
            if m.get(key) != first.get(key):
                raise CacheError(
                    f"{p.name}: {key} {m.get(key)!r} differs from {parts[0].name}'s {first.get(key)!r}; "
                    "parts built with different configurations cannot be merged"
                )
        done, why = part_complete(m)
        if not done:
            raise CacheError(f"{p.name}: {why}")

    shards, seen, k = [], {}, 0
    for p, m in zip(parts, manifests):
        for s in m["shards"]:
            src = p / s["file"]
            if sha256_file(src) != s["sha256"]:
                raise CacheError(f"{src}: sha256 differs from its part's manifest (corrupted)")
            for i in _shard_ids(src):
                if i in seen:
                    raise CacheError(f"id {i} is stored in both {seen[i]} and {src}")
                seen[i] = str(src)
            name = f"shard-{k:05d}.safetensors"
            _link_or_copy(src, out_dir / name)
            shards.append({"file": name, "n": s["n"], "sha256": s["sha256"]})
            k += 1

    rejects, keys = [], set()
    for m in manifests:
        for r in m["rejects"]:  # index rejects are recorded by every part: keep one of each
            key = (r["image_id"], r.get("rel_path", ""))
            if key not in keys:
                keys.add(key)
                rejects.append(r)
    manifest = {
        "format": FORMAT,
        "fingerprint": first["fingerprint"],
        "fingerprint_hash": first["fingerprint_hash"],
        "K": first["K"],
        "scene_dim": first["scene_dim"],
        "face_feature_dim": first.get("face_feature_dim"),
        "classes": first["classes"],
        "shards": shards,
        "rejects": rejects,
        "info": {"merged_from": [p.name for p in parts], "n_parts": n},
    }
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1))
    return out_dir


def _link_or_copy(src: Path, dst: Path) -> None:
    """Put ``src``'s bytes at ``dst`` atomically; a hard link costs no disk space."""
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:  # another file system, or links not supported
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
