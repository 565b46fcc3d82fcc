"""Build a feature cache: run the frozen perception networks once per image id.

Images are read and decoded by DataLoader workers; a file that is missing, unreadable,
changed since indexing (content hash) or refused by the perception pipeline becomes a reject
record with its reason, never a dummy row. Rows are written in shards of ``rows_per_file``
through ``CacheWriter``, so a run killed at any moment (SIGKILL included) resumes where the
last complete shard ended, without losing or duplicating an id.

A reject for a file that could not be *read* (missing, unreadable, a directory) is not
permanent: the next run retries it, because the usual cause is a disk that was not mounted or
a copy still in progress. A run that finds none of its images at all stops with an error
before recording anything. Ctrl-C writes the rows already computed, then stops.

Workers also run the backbone's preprocessing (``Perception.preparer()``), so the networks
get whole batches and the main process does no per-pixel work.

Scale-out: ``shard=(i, N)`` processes every N-th id of the sorted id list, starting at i,
into ``OUT/part-i-of-N/`` (``emolog.cache.merge`` joins the parts; ``emolog.cache.distributed``
runs the whole job under torchrun).
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from emolog.cache.image_loader import ImageFiles, image_loader
from emolog.cache.merge import part_dir
from emolog.cache.store import CacheError
from emolog.cache.writer import CacheWriter
from emolog.data.index import ImageIndex, load_rejects
from emolog.data.paths import PathRejected, image_id, resolve_under
from emolog.errors import MissingError
from emolog.perception.common import PerceptionError

# Fault injection for the resume tests: after this many shards written by this process, the
# builder kills itself with SIGKILL (no cleanup, no flush), like a pre-empted job. With
# KILL_RANK_ENV set, only that torchrun rank does, and only in torchrun's first attempt
# (TORCHELASTIC_RESTART_COUNT 0), so that `--max-restarts` can show the restart.
KILL_ENV = "EMOLOG_CACHE_KILL_AFTER_SHARDS"
KILL_RANK_ENV = "EMOLOG_CACHE_KILL_RANK"

# Load-stage reject reasons that describe the file system, not the image: retried by every run.
RETRY_REASONS = ("missing file", "unreadable file", "not a file")


class ImagesMissingError(MissingError, CacheError):
    """The data root is absent, or not one image of the build is found under it."""


def retryable(reject: dict[str, str]) -> bool:
    """Whether a recorded reject is retried by the next build (see RETRY_REASONS)."""
    return reject.get("stage") == "load" and reject.get("reason", "").startswith(RETRY_REASONS)


@dataclass
class BuildReport:
    """What one ``build_cache`` call did. Counts are image ids of this slice."""

    cache_dir: Path
    n_slice: int
    n_already: int
    n_written: int
    n_rejected: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        done = self.n_written + self.n_rejected
        return done / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        return (
            f"{self.cache_dir}: {self.n_slice} ids in this slice; {self.n_already} were done before, "
            f"{self.n_written} written, {self.n_rejected} rejected now, in {self.seconds:.1f} s "
            f"({self.images_per_s:.2f} images/s)"
        )


def slice_from_env(env: dict[str, str] | None = None) -> tuple[int, int, int | None]:
    """(rank, world size, local rank) from torchrun's variables; (0, 1, None) outside torchrun."""
    env = dict(os.environ if env is None else env)
    if "WORLD_SIZE" not in env:
        return 0, 1, None
    try:
        rank, world = int(env.get("RANK", "0")), int(env["WORLD_SIZE"])
        local = int(env["LOCAL_RANK"]) if "LOCAL_RANK" in env else None
    except ValueError:
        raise ValueError(
            f"RANK/WORLD_SIZE/LOCAL_RANK are not integers: {env.get('RANK')!r}, "
            f"{env.get('WORLD_SIZE')!r}, {env.get('LOCAL_RANK')!r}"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} WORLD_SIZE={world}: need 0 <= RANK < WORLD_SIZE")
    return rank, world, local


def select_ids(ids: Iterable[str], index: int, count: int) -> list[str]:
    """Slice ``index`` of ``count``: every ``count``-th id of the sorted, de-duplicated ids.

    Depends only on the set of ids, so every rank or node computes the same slices.
    """
    return sorted(set(ids))[index::count]


def ids_digest(ids: Sequence[str]) -> str:
    """A short hash of an id list (recorded so a part says which ids it was built for)."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def index_rejects(rejects_csv: str | Path) -> list[dict[str, str]]:
    """The index's ``rejects.csv`` as manifest reject records (``stage`` = ``"index"``).

    A path that is itself malformed has no image id; it is recorded with ``image_id`` "".
    """
    df = load_rejects(rejects_csv)
    out = []
    for rel, reason in zip(df["rel_path"], df["reason"]):
        try:
            iid = image_id(rel)
        except PathRejected:
            iid = ""
        out.append({"image_id": iid, "rel_path": rel, "reason": reason, "stage": "index"})
    return out


@dataclass(frozen=True)
class BuildOptions:
    """How ``build_cache`` works, not what it builds (none of these is in the fingerprint)."""

    batch_size: int = 16  # images per ``perceive_batch`` call
    workers: int = 0  # DataLoader worker processes that read and decode images (0 = in this process)
    rows_per_file: int = 256  # rows per shard file: the most work a kill can lose
    progress: bool = True  # show a tqdm bar with ETA


def build_cache(
    perception,
    index: ImageIndex,
    ids: Iterable[str],
    root: str | Path,
    out_dir: str | Path,
    *,
    shard: tuple[int, int] = (0, 1),
    prior_rejects: Sequence[dict[str, str]] = (),
    options: BuildOptions = BuildOptions(),
) -> BuildReport:
    """Cache the perception tensors of ``ids`` (this call's slice of them) under ``out_dir``.

    Args:
        perception: an ``emolog.perception.pipeline.Perception`` (anything with ``K``,
            ``scene_dim``, ``fingerprint()`` and ``perceive_batch(images)``; with a
            ``face_feature_dim`` other than None its rows hold ``face_features``).
        index: the image index; gives each id's ``rel_path`` and ``content_hash``.
        ids: image ids to cache (e.g. the union of the split's lists); all must be in ``index``.
        root: the data root that ``rel_path`` is relative to.
        out_dir: the cache directory; with ``shard=(i, N)``, N > 1, the part goes to
            ``out_dir/part-i-of-N``.
        shard: (i, N): process ``select_ids(ids, i, N)``.
        prior_rejects: reject records to copy into the manifest (e.g. ``index_rejects``).
        options: batch size, DataLoader workers, rows per shard file, progress bar.

    Returns:
        a BuildReport. Raises CacheError if ``out_dir`` holds a cache with another fingerprint
        or another slicing, or if an id is not in the index.
    """
    i, n = shard
    root = Path(root)
    slice_ids = select_ids(ids, i, n)
    _require_inputs(root, index, slice_ids)
    cache_dir = part_dir(out_dir, i, n)
    writer = _open_writer(perception, cache_dir, shard, slice_ids)
    # rejects.csv lists rejected *rows*: a duplicate or typo row of an image whose good row was
    # indexed is no reject of the image itself
    known = set(index.ids)
    writer.add_rejects([r for r in prior_rejects if r["image_id"] not in known])
    writer.drop_rejects(retryable)

    items = _todo(index, writer, slice_ids)
    _require_some_present(root, items)
    prepare = perception.preparer() if hasattr(perception, "perceive_prepared") else None
    loader = image_loader(ImageFiles(items, root, prepare=prepare), options.batch_size, options.workers)
    t0 = time.perf_counter()
    sink = _ShardSink(writer, options.rows_per_file)
    bar = tqdm(
        total=len(slice_ids),
        initial=len(slice_ids) - len(items),
        unit="img",
        desc=f"cache {i}/{n}" if n > 1 else "cache",
        disable=not options.progress,
        dynamic_ncols=True,
    )
    try:
        for batch in loader:
            sink.add(*_perceive_loaded(perception, batch, prepared=prepare is not None))
            bar.update(len(batch))
    except KeyboardInterrupt:
        bar.close()
        sink.save_interrupted()
        raise
    sink.finish()
    bar.close()
    writer.close()
    return BuildReport(
        cache_dir,
        len(slice_ids),
        len(slice_ids) - len(items),
        sink.n_written,
        sink.n_rejected,
        time.perf_counter() - t0,
    )


def _require_inputs(root: Path, index: ImageIndex, slice_ids: list[str]) -> None:
    """The data root is a directory and every id to cache is in the index."""
    if not root.is_dir():
        raise ImagesMissingError(f"data root {root} is not a directory (not mounted? wrong --root?)")
    known = set(index.ids)
    unknown = [x for x in slice_ids if x not in known]
    if unknown:
        raise CacheError(f"{len(unknown)} ids to cache are not in the index, e.g. {unknown[:5]}")


def _open_writer(perception, cache_dir: Path, shard: tuple[int, int], slice_ids: list[str]) -> CacheWriter:
    """The writer of ``cache_dir`` (new, or resumed when its fingerprint and slicing match),
    with the slice and the networks' weights paths recorded."""
    i, n = shard
    writer = CacheWriter(
        cache_dir,
        perception.fingerprint(),
        K=perception.K,
        scene_dim=perception.scene_dim,
        face_feature_dim=getattr(perception, "face_feature_dim", None),
    )
    old = writer.manifest.get("info", {}).get("part")
    if old is not None and (old["index"], old["count"]) != (i, n):
        raise CacheError(f"{cache_dir} holds slice {old['index']}/{old['count']}, not {i}/{n}")
    writer.set_info(part={"index": i, "count": n, "n_expected": len(slice_ids), "ids_sha256": ids_digest(slice_ids)})
    # Where the weights were read from: not part of the fingerprint (a moved file is the same
    # model), but a training run records it so that joint-unfreeze, explain and predict can
    # rebuild the networks without guessing (emolog.model.perception).
    writer.set_info(
        weights_paths={
            part: str(path)
            for part in ("backbone", "recogniser")
            if (path := getattr(getattr(perception, part, None), "weights_path", None))
        }
    )
    return writer


def _todo(index: ImageIndex, writer: CacheWriter, slice_ids: list[str]) -> list[tuple[str, str, str]]:
    """[(image_id, rel_path, content_hash)] of the slice's ids neither written nor rejected yet."""
    skip = writer.done_ids() | writer.rejected_ids()
    todo = [x for x in slice_ids if x not in skip]
    if not todo:
        return []
    rows = index.df.set_index("image_id").loc[todo, ["rel_path", "content_hash"]]
    return list(zip(todo, rows["rel_path"], rows["content_hash"]))


def _perceive_loaded(
    perception, batch: list, prepared: bool
) -> tuple[list[tuple[str, dict[str, np.ndarray]]], list[dict[str, str]]]:
    """(rows, rejects) of one loader batch: the files that failed to load, then the images the
    pipeline refuses, are rejects."""
    rejects = [
        {"image_id": iid, "rel_path": rel, "reason": why, "stage": stage}
        for iid, rel, _, why, stage in batch
        if why is not None
    ]
    good = [(iid, rel, x) for iid, rel, x, why, _ in batch if why is None]
    rows, failed = _perceive(perception, good, prepared=prepared)
    return rows, rejects + failed


class _ShardSink:
    """Rows on their way into shard files of ``rows_per_file`` rows; rejects straight to the
    manifest. Counts what it wrote; SIGKILLs this process after KILL_ENV shards (tests)."""

    def __init__(self, writer: CacheWriter, rows_per_file: int) -> None:
        self.writer, self.rows_per_file = writer, rows_per_file
        self.buffer: list[tuple[str, dict[str, np.ndarray]]] = []
        self.n_written = self.n_rejected = self.n_shards = 0
        self.kill_after = _kill_after()

    def add(self, rows: list[tuple[str, dict[str, np.ndarray]]], rejects: list[dict[str, str]]) -> None:
        if rejects:
            self.writer.add_rejects(rejects)
            self.n_rejected += len(rejects)
        self.buffer.extend(rows)
        while len(self.buffer) >= self.rows_per_file:
            _flush(self.writer, self.buffer[: self.rows_per_file])
            self.n_written += self.rows_per_file
            del self.buffer[: self.rows_per_file]
            self.n_shards += 1
            if self.kill_after and self.n_shards >= self.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    def finish(self) -> None:
        """The last, short shard."""
        if self.buffer:
            _flush(self.writer, self.buffer)
            self.n_written += len(self.buffer)

    def save_interrupted(self) -> None:
        """After Ctrl-C: keep the rows already computed, as one more (atomic) shard written
        with Ctrl-C ignored, so that stopping as asked loses no work."""
        buffer = [r for r in self.buffer if r[0] not in self.writer.done_ids()]  # interrupted mid-write
        if buffer:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                _flush(self.writer, buffer)
            finally:
                signal.signal(signal.SIGINT, previous)


def _kill_after() -> int:
    """Shards after which this process SIGKILLs itself (0: never); see KILL_ENV."""
    rank = os.environ.get(KILL_RANK_ENV)
    if rank is not None and (
        os.environ.get("RANK") != rank or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0"
    ):
        return 0
    return int(os.environ.get(KILL_ENV, "0"))


def _require_some_present(root: Path, items: Sequence[tuple[str, str, str]]) -> None:
    """ImagesMissingError when not one of ``items`` exists under ``root``: an unmounted disk or
    a wrong root would otherwise turn every image into a reject and "succeed"."""
    if not items:
        return
    for _, rel, _ in items:
        try:
            if resolve_under(root, rel).exists():
                return
        except PathRejected:
            continue
    raise ImagesMissingError(
        f"none of the {len(items)} images to cache exists under the data root {root} "
        f"(e.g. {items[0][1]!r}); is the disk mounted and the "
        "root right? (--root, or the root `emolog index` recorded); nothing was recorded"
    )


def _perceive(
    perception, good: list[tuple[str, str, object]], prepared: bool
) -> tuple[list[tuple[str, dict[str, np.ndarray]]], list[dict[str, str]]]:
    """Per-image tensor rows for ``good``; images the pipeline refuses become rejects."""
    if not good:
        return [], []
    run = perception.perceive_prepared if prepared else perception.perceive_batch
    try:
        out = run([x for _, _, x in good])
        return [(iid, {k: v[r] for k, v in out.items()}) for r, (iid, _, _) in enumerate(good)], []
    except PerceptionError:
        pass
    # One bad image must not cost its batch-mates: retry one by one to find exactly which.
    rows, rejects = [], []
    for iid, rel, x in good:
        try:
            out = run([x])
        except PerceptionError as e:
            rejects.append({"image_id": iid, "rel_path": rel, "reason": f"perception: {e}", "stage": "perception"})
            continue
        rows.append((iid, {k: v[0] for k, v in out.items()}))
    return rows, rejects


def _flush(writer: CacheWriter, rows: list[tuple[str, dict[str, np.ndarray]]]) -> None:
    keys = rows[0][1].keys()
    writer.write_shard([iid for iid, _ in rows], {k: torch.from_numpy(np.stack([r[k] for _, r in rows])) for k in keys})
