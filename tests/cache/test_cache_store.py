"""The cache format without the networks: writer/loader, resume recovery, verify, merge, slicing.

Rows are synthetic but valid (distributions sum to 1, masks match n_faces, boxes inside the
image), so each test breaks exactly one thing and checks that verify names it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emolog.cache.build import select_ids, slice_from_env
from emolog.data.split import parse_shard
from emolog.errors import UsageError
from emolog.cache.merge import merge_parts, part_dir
from emolog.cache.store import MANIFEST, CacheError, load_cache
from emolog.cache.writer import CacheWriter
from emolog.data.artefacts import sha256_file
from emolog.cache.verify import require_verified, verify_cache
from helpers.cache import rewrite_shard

K, D = 3, 16
FP = {"backbone": {"name": "test", "weights_sha256": "ab" * 32}, "K": K, "emolog_version": "0.1.0"}


def fake_rows(ids: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    """Valid cache rows for ``ids`` (random, deterministic)."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    size = rng.integers(100, 400, size=(n, 2))
    n_faces = rng.integers(0, 5, size=n)
    mask = np.arange(K)[None, :] < np.minimum(n_faces, K)[:, None]
    logits = rng.normal(size=(n, K, 7)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    x1 = rng.uniform(0, 0.4, (n, K)) * size[:, :1]
    y1 = rng.uniform(0, 0.4, (n, K)) * size[:, 1:]
    x2 = x1 + rng.uniform(0.1, 0.5, (n, K)) * size[:, :1]
    y2 = y1 + rng.uniform(0.1, 0.5, (n, K)) * size[:, 1:]
    boxes = np.stack([x1, y1, x2, y2], -1)
    area = (x2 - x1) * (y2 - y1) / (size[:, :1] * size[:, 1:])
    m3 = mask[..., None]
    return {
        "scene": rng.normal(size=(n, D)).astype(np.float32),
        "face_probs": np.where(m3, probs, 0).astype(np.float32),
        "face_logits": np.where(m3, logits, 0).astype(np.float32),
        "face_boxes": np.where(m3, boxes, 0).astype(np.float32),
        "face_area": np.where(mask, area, 0).astype(np.float32),
        "face_conf": np.where(mask, rng.uniform(0.9, 1, (n, K)), 0).astype(np.float32),
        "face_mask": mask,
        "n_faces": n_faces.astype(np.int64),
        "image_size": size.astype(np.int64),
    }


def make_cache(path: Path, ids: list[str], per_shard: int = 4, fp: dict = FP) -> Path:
    w = CacheWriter(path, fp, K=K, scene_dim=D)
    for s in range(0, len(ids), per_shard):
        chunk = ids[s : s + per_shard]
        w.write_shard(chunk, fake_rows(chunk, seed=s))
    w.close()
    return path


IDS = [f"{i:016x}" for i in range(10)]


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    return make_cache(tmp_path / "c", IDS)


def reasons_for(report, key: str) -> list[str]:
    return [r for k, r in report.problems if k == key]


# ----------------------------------------------------------------------------- store


def test_load_by_ids_returns_rows_in_the_order_asked(cache: Path) -> None:
    full = load_cache(cache)
    assert sorted(full.ids) == IDS and full.scene.shape == (10, D)
    order = [IDS[7], IDS[2], IDS[9]]
    sub = load_cache(cache, ids=order)
    assert sub.ids == order
    for r, i in enumerate(order):
        assert torch.equal(sub.scene[r], full.scene[full.ids.index(i)])
    with pytest.raises(CacheError, match="ffff"):
        load_cache(cache, ids=[IDS[0], "ffffffffffffffff"])


def test_writer_resume_adopts_renamed_shard_and_drops_temp_files(cache: Path) -> None:
    # A kill after os.replace but before the manifest update leaves a complete shard that the
    # manifest does not list; a kill during save_file leaves a .tmp file.
    manifest = json.loads((cache / MANIFEST).read_text())
    last = manifest["shards"].pop()
    (cache / MANIFEST).write_text(json.dumps(manifest))
    (cache / "shard-00009.safetensors.tmp").write_bytes(b"half a shard")
    w = CacheWriter(cache, FP, K=K, scene_dim=D)
    assert w.done_ids() == set(IDS)
    assert not list(cache.glob("*.tmp"))
    assert [s["file"] for s in w.manifest["shards"]][-1] == last["file"]
    with pytest.raises(CacheError, match="already in the cache"):
        w.write_shard(IDS[:1], fake_rows(IDS[:1]))
    assert verify_cache(cache, IDS).ok


def test_writer_refuses_another_fingerprint(cache: Path) -> None:
    with pytest.raises(CacheError, match="another configuration"):
        CacheWriter(cache, {**FP, "K": 4}, K=K, scene_dim=D)


# ----------------------------------------------------------------------------- verify


def test_verify_accepts_a_good_cache(cache: Path) -> None:
    report = verify_cache(cache, IDS, expected_fingerprint=FP)
    assert report.ok, report.summary()
    assert report.n_present == 10 and report.n_rows == 10
    assert require_verified(cache, IDS[:3]).ok


def test_verify_catches_a_deleted_entry(cache: Path) -> None:
    victim = IDS[5]

    def drop(ids, t):
        keep = [r for r, i in enumerate(ids) if i != victim]
        return [ids[r] for r in keep], {k: v[keep].contiguous() for k, v in t.items()}

    rewrite_shard(cache, "shard-00001.safetensors", drop)
    report = verify_cache(cache, IDS)
    assert not report.ok
    assert report.problems == [(victim, "missing: not in the cache")]
    with pytest.raises(CacheError, match=victim):
        require_verified(cache, IDS)


def test_verify_catches_a_corrupted_shard(cache: Path) -> None:
    path = cache / "shard-00000.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-40:-20] = bytes(b ^ 0xFF for b in raw[-40:-20])  # flip bytes in the tensor data
    path.write_bytes(bytes(raw))
    report = verify_cache(cache, IDS)
    assert any("sha256 differs" in r for r in reasons_for(report, "shard-00000.safetensors"))
    for i in IDS[:4]:  # every row of that shard is named, none of the others
        assert reasons_for(report, i) == ["stored in corrupted shard shard-00000.safetensors"]
    assert not any(reasons_for(report, i) for i in IDS[4:])
    assert report.n_present == 6


def test_verify_catches_a_zeroed_and_a_constant_row(tmp_path: Path) -> None:
    cache = make_cache(tmp_path / "c", IDS, per_shard=10)

    def damage(ids, t):
        t["scene"][1] = 0
        t["scene"][2] = 0.5
        return ids, t

    rewrite_shard(cache, "shard-00000.safetensors", damage)
    report = verify_cache(cache, IDS)
    assert reasons_for(report, IDS[1]) == ["scene features all zero"]
    assert reasons_for(report, IDS[2]) == ["scene features constant"]
    assert len(report.problems) == 2 and report.n_present == 8


def test_verify_catches_a_fingerprint_change(cache: Path) -> None:
    changed = {**FP, "backbone": {**FP["backbone"], "weights_sha256": "cd" * 32}}
    report = verify_cache(cache, IDS, expected_fingerprint=changed)
    [(key, reason)] = report.problems
    assert key == MANIFEST and "backbone.weights_sha256" in reason
    assert verify_cache(cache, IDS, expected_fingerprint=dict(reversed(FP.items()))).ok


def test_verify_catches_face_defects_and_nonfinite_values(tmp_path: Path) -> None:
    cache = make_cache(tmp_path / "c", IDS, per_shard=10)
    rows = fake_rows(IDS, seed=0)
    with_face = [r for r in range(10) if rows["n_faces"][r] >= 1]
    without = [r for r in range(10) if rows["n_faces"][r] == 0]
    a, b, c, d = with_face[:4]

    def damage(ids, t):
        t["face_probs"][a, 0] *= 0.5  # not a distribution
        t["face_mask"][b, 0] = False  # mask disagrees with n_faces
        t["face_logits"][without[0], K - 1, 3] = 1.0  # an empty slot that is not empty
        t["scene"][c, 3] = float("nan")
        t["face_boxes"][d, 0, 2] = t["image_size"][d, 0] + 10.0  # box leaves the image
        return ids, t

    rewrite_shard(cache, "shard-00000.safetensors", damage)
    report = verify_cache(cache, IDS)
    assert "face distribution does not sum to 1" in reasons_for(report, IDS[a])[0]
    assert "face_mask inconsistent with n_faces" in reasons_for(report, IDS[b])[0]
    assert "empty face slot holds non-zero values" in reasons_for(report, IDS[without[0]])[0]
    assert "non-finite values in scene" in reasons_for(report, IDS[c])[0]
    assert "face box empty or outside the image" in reasons_for(report, IDS[d])[0]
    assert report.n_present == 10 - len({a, b, c, d, without[0]})


def test_verify_lists_rejects_separately_and_finds_duplicates(cache: Path) -> None:
    w = CacheWriter(cache, FP, K=K, scene_dim=D)
    w.add_rejects([{"image_id": "bad0000000000000", "rel_path": "x.jpg", "reason": "corrupt image: eof"}])
    report = verify_cache(cache, IDS + ["bad0000000000000"])
    assert report.rejected == [("bad0000000000000", "corrupt image: eof")]
    assert reasons_for(report, "bad0000000000000") == ["rejected, not cached: corrupt image: eof"]
    assert report.n_present == 10
    assert verify_cache(cache, IDS + ["bad0000000000000"], allow_rejects=True).ok
    # The same id in two shards (e.g. a hand-made mix of two caches) is named.
    manifest = json.loads((cache / MANIFEST).read_text())
    src = cache / "shard-00000.safetensors"
    (cache / "shard-00099.safetensors").write_bytes(src.read_bytes())
    manifest["shards"].append({"file": "shard-00099.safetensors", "n": 4, "sha256": sha256_file(src)})
    (cache / MANIFEST).write_text(json.dumps(manifest))
    report = verify_cache(cache, IDS)
    assert reasons_for(report, IDS[0]) == ["stored 2 times (in shard-00000.safetensors, shard-00099.safetensors)"]
    with pytest.raises(CacheError, match="more than once"):
        load_cache(cache)


# ----------------------------------------------------------------------------- slicing and merge


def test_slices_are_disjoint_cover_everything_and_ignore_input_order() -> None:
    ids = [f"{i:016x}" for i in range(23)]
    slices = [select_ids(ids, i, 4) for i in range(4)]
    assert sorted(sum(slices, [])) == sorted(ids)
    assert select_ids(list(reversed(ids)) + ids[:3], 1, 4) == slices[1]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0", "-1/3"):
        with pytest.raises(UsageError, match="--shard"):
            parse_shard(bad)
    assert slice_from_env({}) == (0, 1, None)
    assert slice_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == (3, 4, 1)
    with pytest.raises(ValueError, match="RANK"):
        slice_from_env({"RANK": "4", "WORLD_SIZE": "4"})


def make_part(out: Path, i: int, n: int, ids: list[str], fp: dict = FP, complete: bool = True) -> Path:
    mine = select_ids(ids, i, n)
    w = CacheWriter(part_dir(out, i, n), fp, K=K, scene_dim=D)
    w.set_info(part={"index": i, "count": n, "n_expected": len(mine)})
    w.write_shard(mine if complete else mine[:-1], fake_rows(mine if complete else mine[:-1], seed=i))
    return part_dir(out, i, n)


def test_merge_joins_parts_into_one_verified_cache(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for i in range(3):
        make_part(out, i, 3, IDS)
    merge_parts(out)
    report = verify_cache(out, IDS, expected_fingerprint=FP)
    assert report.ok, report.summary()
    merged = load_cache(out, ids=IDS)
    for i in range(3):
        part = load_cache(part_dir(out, i, 3))
        assert torch.equal(merged.select(part.ids).scene, part.scene)
    with pytest.raises(CacheError, match="already holds"):
        merge_parts(out)


@pytest.mark.parametrize(
    "defect, message",
    [
        ("missing", r"parts \[1\] of 3 are absent"),
        ("fingerprint", "fingerprint_hash"),
        ("unfinished", "part-0-of-3: unfinished: 3 stored"),
        ("duplicate", "is stored in both"),
    ],
)
def test_merge_refuses_bad_parts(tmp_path: Path, defect: str, message: str) -> None:
    out = tmp_path / "out"
    for i in range(3):
        if defect == "missing" and i == 1:
            continue
        fp = {**FP, "K": 99} if defect == "fingerprint" and i == 2 else FP
        make_part(out, i, 3, IDS, fp=fp, complete=not (defect == "unfinished" and i == 0))
    if defect == "duplicate":  # slice 2 also stored one id of slice 0
        w = CacheWriter(part_dir(out, 2, 3), FP, K=K, scene_dim=D)
        w.write_shard(IDS[:1], fake_rows(IDS[:1]))
        w.set_info(part={"index": 2, "count": 3, "n_expected": len(select_ids(IDS, 2, 3)) + 1})
    with pytest.raises(CacheError, match=message):
        merge_parts(out)
    assert not (out / MANIFEST).exists()


def test_prelast_activations_round_trip_and_are_checked(tmp_path: Path) -> None:
    rows = fake_rows(IDS[:4])
    rows["scene_prelast"] = np.random.default_rng(1).normal(size=(4, 8, 3, 3)).astype(np.float16)
    w = CacheWriter(tmp_path / "c", FP, K=K, scene_dim=D)
    w.write_shard(IDS[:4], rows)
    c = load_cache(tmp_path / "c", prelast=True)
    assert c.scene_prelast.dtype == torch.float16 and c.scene_prelast.shape == (4, 8, 3, 3)
    assert load_cache(tmp_path / "c").scene_prelast is None  # not read unless asked for
    assert verify_cache(tmp_path / "c", IDS[:4]).ok

    def damage(ids, t):
        t["scene_prelast"][2, 0, 0, 0] = float("inf")
        return ids, t

    rewrite_shard(tmp_path / "c", "shard-00000.safetensors", damage)
    assert verify_cache(tmp_path / "c", IDS[:4]).problems == [(IDS[2], "non-finite values in scene_prelast")]
