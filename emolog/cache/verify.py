"""Check a feature cache before anything trains on it.

``verify_cache(cache_dir, ids)`` reads every shard and reports, per image id or per file,
what is wrong; ``require_verified`` raises ``CacheError`` with that list. Checks:

* the manifest is readable, its format, K, classes and fingerprint hash are consistent, and
  (when ``expected_fingerprint`` is given) the fingerprint equals the current configuration's;
* every shard the manifest lists exists, has the sha256 the manifest recorded, opens, holds
  as many ids as recorded and every tensor with the right shape and dtype;
* every requested id is stored exactly once; ids recorded as rejects are listed separately
  (``report.rejected``) and never count as present;
* per row: all values finite; the scene vector neither all zero nor constant; where
  ``face_mask`` is True the face distribution sums to 1, the box lies inside the image and
  has a positive area; where it is False every face value is 0; ``face_mask`` has exactly
  ``min(n_faces, K)`` leading Trues; the image size is positive;
* ``face_features`` [n, K, F] is in every shard exactly when the manifest records
  ``face_feature_dim`` F (a cache built before the field existed has neither); where present
  it is 0 in empty slots and not constant for a detected face.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from safetensors import safe_open

from emolog.cache.store import MANIFEST, OPTIONAL_SPEC, TENSOR_SPEC, CacheError, fingerprint_hash, read_manifest
from emolog.data.artefacts import sha256_file
from emolog.labels import BASIC7

# A distribution stored as float32 sums to 1 within a few ulps per term; 1e-3 also accepts
# softmaxes computed in half precision on a GPU, and still rejects any real defect.
PROB_SUM_ATOL = 1e-3
# Boxes are clipped to the image by the detector; half a pixel absorbs float rounding.
BOX_TOL_PX = 0.5


@dataclass
class VerifyReport:
    """What ``verify_cache`` found.

    ``problems``: (image id or file name, reason) pairs; ``rejected``: (image id, reason) of
    requested ids that the cache records as rejects; ``notes``: facts that are not errors
    (e.g. shard files of an interrupted run that a resume will adopt).
    """

    cache_dir: str
    n_requested: int
    n_present: int = 0
    n_rows: int = 0
    allow_rejects: bool = False
    problems: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (rejected ids count as wrong unless ``allow_rejects``)."""
        return not self.problems

    def summary(self, max_items: int = 20) -> str:
        """A human-readable report; lists the first ``max_items`` problems and rejects."""
        head = (
            f"cache {self.cache_dir}: {'OK' if self.ok else 'FAILED'}; "
            f"{self.n_present}/{self.n_requested} requested ids present, "
            f"{len(self.rejected)} rejected, {self.n_rows} rows stored, "
            f"{len(self.problems)} problem(s)"
        )
        lines = [head]
        for what, items in (("problems", self.problems), ("rejected", self.rejected)):
            if items:
                lines.append(f"{what}:")
                lines.extend(f"  {key}: {reason}" for key, reason in items[:max_items])
                if len(items) > max_items:
                    lines.append(f"  ... and {len(items) - max_items} more")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def verify_cache(
    cache_dir: str | Path,
    ids: Iterable[str],
    expected_fingerprint: Mapping[str, Any] | None = None,
    allow_rejects: bool = False,
) -> VerifyReport:
    """Check the cache at ``cache_dir`` for the image ``ids`` (see the module docstring).

    Args:
        cache_dir: the cache directory (with ``manifest.json``).
        ids: image ids that must be present (e.g. all ids of a split); order does not matter.
        expected_fingerprint: the current configuration's fingerprint
            (``Perception.fingerprint()``); None skips that check.
        allow_rejects: when True, requested ids that the cache records as rejects are only
            listed in ``report.rejected``; by default they are also problems.
    """
    cache_dir = Path(cache_dir)
    wanted = list(dict.fromkeys(ids))
    report = VerifyReport(str(cache_dir), len(wanted), allow_rejects=allow_rejects)
    try:
        manifest = read_manifest(cache_dir)
    except CacheError as e:
        report.problems.append((MANIFEST, str(e)))
        return report
    _check_manifest(manifest, expected_fingerprint, report)
    K, D = int(manifest.get("K", 0)), int(manifest.get("scene_dim", 0))
    F = manifest.get("face_feature_dim")

    where: dict[str, list[str]] = defaultdict(list)  # id -> shard files holding it
    bad_ids: set[str] = set()  # ids with a row-level problem or in a damaged shard
    for s in manifest.get("shards", []):
        ids_in, bad = _check_shard(cache_dir, s, (K, D, F), report)
        for i in ids_in:
            where[i].append(s["file"])
        bad_ids |= bad
    report.n_rows = sum(len(v) for v in where.values())
    for i, files in where.items():
        if len(files) > 1:
            report.problems.append((i, f"stored {len(files)} times (in {', '.join(files)})"))
            bad_ids.add(i)

    rejects = {r["image_id"]: r.get("reason", "") for r in manifest.get("rejects", [])}
    listed = {f.name for f in cache_dir.glob("shard-*.safetensors")} - {s["file"] for s in manifest.get("shards", [])}
    if listed:
        report.notes.append(
            f"{len(listed)} shard file(s) not in the manifest (an interrupted run; "
            f"resuming adopts them): {sorted(listed)[:5]}"
        )
    for i in wanted:
        if i in where:
            report.n_present += i not in bad_ids
        elif i in rejects:
            report.rejected.append((i, rejects[i]))
            if not allow_rejects:
                report.problems.append((i, f"rejected, not cached: {rejects[i]}"))
        else:
            report.problems.append((i, "missing: not in the cache"))
    return report


def require_verified(
    cache_dir: str | Path,
    ids: Iterable[str],
    expected_fingerprint: Mapping[str, Any] | None = None,
    allow_rejects: bool = False,
) -> VerifyReport:
    """``verify_cache``, raising ``CacheError`` (with the report as ``.report``) unless it is OK.

    The message names every problem (image id or file, and why) up to 200 lines, then counts.
    """
    report = verify_cache(cache_dir, ids, expected_fingerprint, allow_rejects)
    if not report.ok:
        err = CacheError(report.summary(max_items=200))
        err.report = report  # type: ignore[attr-defined]
        raise err
    return report


# ----------------------------------------------------------------------------- manifest


def _check_manifest(manifest: dict, expected: Mapping[str, Any] | None, report: VerifyReport) -> None:
    for key in ("fingerprint", "fingerprint_hash", "K", "scene_dim", "classes", "shards", "rejects"):
        if key not in manifest:
            report.problems.append((MANIFEST, f"lacks key {key!r}"))
    if manifest.get("classes") not in (None, list(BASIC7)):
        report.problems.append((MANIFEST, f"classes {manifest['classes']} are not BASIC7 {list(BASIC7)}"))
    fp = manifest.get("fingerprint", {})
    if "fingerprint_hash" in manifest and fingerprint_hash(fp) != manifest["fingerprint_hash"]:
        report.problems.append(
            (MANIFEST, "fingerprint_hash does not match the recorded fingerprint (manifest edited by hand?)")
        )
    if isinstance(fp, dict) and "K" in fp and fp["K"] != manifest.get("K"):
        report.problems.append((MANIFEST, f"K {manifest.get('K')} differs from the fingerprint's K {fp['K']}"))
    F, recorded = manifest.get("face_feature_dim"), _recorded_face_feature_dim(fp)
    if F is not None and (not isinstance(F, int) or F < 1):
        report.problems.append((MANIFEST, f"face_feature_dim {F!r} is not a positive integer"))
    elif recorded is not None and recorded != F:
        report.problems.append(
            (MANIFEST, f"face_feature_dim {F!r} differs from the fingerprint's recogniser.face_features.dim {recorded}")
        )
    if expected is not None and fingerprint_hash(expected) != fingerprint_hash(fp):
        diff = fingerprint_diff(fp, expected)
        report.problems.append(
            (
                MANIFEST,
                "fingerprint differs from the current configuration "
                f"({'; '.join(diff[:10])}): build a new cache for it",
            )
        )


def _recorded_face_feature_dim(fp: Any) -> int | None:
    """The embedding length a perception fingerprint records (``recogniser.face_features.dim``)."""
    rec = fp.get("recogniser") if isinstance(fp, Mapping) else None
    feats = rec.get("face_features") if isinstance(rec, Mapping) else None
    return feats.get("dim") if isinstance(feats, Mapping) else None


def fingerprint_diff(cached: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two fingerprints, as ``key.path: cached -> current``."""
    a, b = _flatten(cached), _flatten(current)
    return [
        f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k, "<absent>") != b.get(k, "<absent>")
    ]


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, Mapping):
        return {prefix or "<root>": json.dumps(d, sort_keys=True, default=str)}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


# ----------------------------------------------------------------------------- shards


def _check_shard(
    cache_dir: Path, entry: dict, dims: tuple[int, int, int | None], report: VerifyReport
) -> tuple[list[str], set[str]]:
    """(ids the shard holds, ids with a problem); appends problems to ``report``.
    ``dims`` = (K, D, F), F None when the cache has no face_features."""
    name = entry.get("file", "?")
    path = cache_dir / name
    if not path.is_file():
        report.problems.append((name, "listed in the manifest but missing"))
        return [], set()
    damaged = sha256_file(path) != entry.get("sha256")
    if damaged:
        report.problems.append((name, "sha256 differs from the manifest: the file changed or is corrupted"))
    try:
        with safe_open(str(path), framework="pt") as f:
            ids = json.loads(f.metadata()["ids"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - whatever is broken, name the file
        report.problems.append((name, f"unreadable shard ({type(e).__name__}: {e})"))
        return [], set()
    if damaged:
        # Its rows cannot be trusted even where they look plausible: name every id.
        for i in ids:
            report.problems.append((i, f"stored in corrupted shard {name}"))
        return ids, set(ids)
    if len(ids) != entry.get("n"):
        report.problems.append((name, f"holds {len(ids)} ids, the manifest says {entry.get('n')}"))
    if not _check_layout(name, len(ids), tensors, dims, report):
        for i in ids:
            report.problems.append((i, f"in malformed shard {name}"))
        return ids, set(ids)
    bad: dict[int, list[str]] = defaultdict(list)
    for row, reason in _row_problems(tensors, dims[0]):
        bad[row].append(reason)
    for row in sorted(bad):
        report.problems.append((ids[row], "; ".join(bad[row])))
    return ids, {ids[r] for r in bad}


def _check_layout(
    name: str, n: int, tensors: dict[str, torch.Tensor], dims: tuple[int, int, int | None], report: VerifyReport
) -> bool:
    ok = True
    K, D, F = dims
    sym = {"D": D, "K": K}
    for key, (shape, dtype) in TENSOR_SPEC.items():
        if key not in tensors:
            report.problems.append((name, f"lacks tensor {key!r}"))
            ok = False
            continue
        want = (n, *[sym.get(s, s) for s in shape])
        t = tensors[key]
        if tuple(t.shape) != want or t.dtype != dtype:
            report.problems.append((name, f"tensor {key!r} is {t.dtype} {tuple(t.shape)}, expected {dtype} {want}"))
            ok = False
    prelast = tensors.get("scene_prelast")
    dtype = OPTIONAL_SPEC["scene_prelast"]
    if prelast is not None and (prelast.dtype != dtype or prelast.ndim != 4 or len(prelast) != n):
        report.problems.append(
            (name, f"tensor 'scene_prelast' is {prelast.dtype} {tuple(prelast.shape)}, expected {dtype} [n, C, H, W]")
        )
        ok = False
    feats, dtype = tensors.get("face_features"), OPTIONAL_SPEC["face_features"]
    if F is None and feats is not None:
        report.problems.append((name, "holds tensor 'face_features' but the manifest records no face_feature_dim"))
        ok = False
    elif F is not None and feats is None:
        report.problems.append((name, f"lacks tensor 'face_features' (the manifest records face_feature_dim {F})"))
        ok = False
    elif feats is not None and (feats.dtype != dtype or tuple(feats.shape) != (n, K, F)):
        report.problems.append(
            (name, f"tensor 'face_features' is {feats.dtype} {tuple(feats.shape)}, expected {dtype} {(n, K, F)}")
        )
        ok = False
    unknown = sorted(set(tensors) - set(TENSOR_SPEC) - set(OPTIONAL_SPEC))
    if unknown:
        report.problems.append((name, f"unknown tensors {unknown}"))
        ok = False
    return ok


def _row_problems(t: dict[str, torch.Tensor], K: int) -> list[tuple[int, str]]:
    """(row, reason) for every row-level defect, computed vectorised over the shard."""
    out: list[tuple[int, str]] = []

    def flag(mask: torch.Tensor, reason: str) -> None:
        out.extend((int(r), reason) for r in torch.nonzero(mask).flatten())

    for key, x in t.items():
        if x.is_floating_point():
            flag(~torch.isfinite(x.float()).reshape(len(x), -1).all(1), f"non-finite values in {key}")
    scene = t["scene"].double()
    flag((scene == 0).all(1), "scene features all zero")
    flag((scene.max(1).values == scene.min(1).values) & (scene != 0).any(1), "scene features constant")

    mask, n_faces = t["face_mask"], t["n_faces"]
    flag(n_faces < 0, "negative n_faces")
    want_mask = torch.arange(K)[None, :] < n_faces.clamp(min=0, max=K)[:, None]
    flag((mask != want_mask).any(1), "face_mask inconsistent with n_faces (needs min(n_faces, K) leading Trues)")

    sums = t["face_probs"].double().sum(2)
    flag((mask & ((sums - 1).abs() > PROB_SUM_ATOL)).any(1), "face distribution does not sum to 1")
    flag((mask[..., None] & (t["face_probs"] < 0)).any(2).any(1), "negative face probability")
    empty_nonzero = torch.zeros_like(mask)
    for key in ("face_probs", "face_logits", "face_boxes", "face_area", "face_conf"):
        x = t[key].reshape(len(mask), K, -1)
        empty_nonzero |= ~mask & (x != 0).any(2)
    flag(empty_nonzero.any(1), "empty face slot holds non-zero values")
    if "face_features" in t:
        feats = t["face_features"].double()
        flag((~mask & (feats != 0).any(2)).any(1), "empty face slot holds non-zero face_features")
        flag((mask & (feats.amax(2) == feats.amin(2))).any(1), "face_features constant for a detected face")

    size = t["image_size"]
    flag((size <= 0).any(1), "image size not positive")
    b = t["face_boxes"].double()
    w, h = size[:, 0, None].double(), size[:, 1, None].double()
    outside = (
        (b[..., 0] < -BOX_TOL_PX)
        | (b[..., 1] < -BOX_TOL_PX)
        | (b[..., 2] > w + BOX_TOL_PX)
        | (b[..., 3] > h + BOX_TOL_PX)
        | (b[..., 2] <= b[..., 0])
        | (b[..., 3] <= b[..., 1])
    )
    flag((mask & outside).any(1), "face box empty or outside the image")
    area = t["face_area"]
    flag((mask & ((area <= 0) | (area > 1 + 1e-6))).any(1), "face area not in (0, 1]")
    return out
