"""The work behind ``emolog cache build|verify|merge`` (imports torch; ``commands`` does not).

``build`` runs in one of three ways: one process (build, then verify the cache); one slice
(``--shard i/N``: build OUT/part-i-of-N only); or one torchrun rank (WORLD_SIZE > 1: build
slice RANK, then ``emolog.cache.distributed.run_ranks`` merges and verifies on rank 0).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from emolog.cache.distributed import DEFAULT_TIMEOUT_S, Outcome, merge_fresh, run_ranks
from emolog.data.split import SPLIT_NAMES
from emolog.errors import EXIT_INTERRUPTED, EXIT_VERIFY, EmologError, MissingError, UsageError


def perception(args: argparse.Namespace, device: str | None):
    from emolog.perception.pipeline import Perception, PerceptionOptions

    kw = {
        k: v
        for k, v in {"backbone": args.backbone, "detector": args.detector, "recogniser": args.recogniser}.items()
        if v is not None
    }
    options = PerceptionOptions(
        backbone_weights=args.backbone_weights,
        places365_names=args.places365_names,
        recogniser_weights=args.recogniser_weights,
        min_face_size=args.min_face_size,
        face_threshold=args.face_threshold,
        detect_max_side=args.detect_max_side,
    )
    return Perception(
        **kw, K=args.K, device=device, prelast=args.prelast, face_features=args.face_features, options=options
    )


def build(args: argparse.Namespace) -> int:
    import torch

    from emolog.cache.build import index_rejects, slice_from_env
    from emolog.cache.merge import part_dir
    from emolog.data.index import ImageIndex
    from emolog.data.lock import output_lock
    from emolog.data.split import parse_shard

    index_csv, rejects_csv, split_path = index_paths(args)
    root = data_root(args, index_csv)
    index = ImageIndex.load(index_csv)
    ids = split_ids(args, split_path, index.ids)
    try:
        rank, world, local = slice_from_env()
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.shard is not None:
        if world > 1:
            raise UsageError("--shard cannot be used under torchrun (each rank takes slice RANK)")
        shard = parse_shard(args.shard)
    else:
        shard = (rank, world)
    device = args.device
    if local is not None and torch.cuda.is_available() and device in (None, "cuda"):
        device = f"cuda:{local}"  # one GPU per torchrun process
    if device is not None and str(device).startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    prior = index_rejects(rejects_csv) if rejects_csv else ()
    # one writer per part directory (two parts of one --out may be built at once), taken
    # before the networks load: a second writer is refused at once
    with output_lock(part_dir(args.out, *shard), "emolog cache build"):
        return _build(args, _Job(device, prior, index, ids, root, shard, world, rank))


@dataclass
class _Job:
    """What ``build`` worked out from the command line for this process's slice."""

    device: str | None
    prior: Sequence[dict]
    index: object
    ids: list[str]
    root: Path
    shard: tuple[int, int]
    world: int
    rank: int


def _build(args: argparse.Namespace, job: _Job) -> int:
    from emolog.cache.build import BuildOptions, build_cache
    from emolog.cache.verify import verify_cache
    from emolog.runtime import torch_threads

    device, prior, index, ids, root, shard, world, rank = (
        job.device,
        job.prior,
        job.index,
        job.ids,
        job.root,
        job.shard,
        job.world,
        job.rank,
    )
    with torch_threads(args.threads or None):  # restored after: in-process callers must not inherit it
        p = perception(args, device)

        def build_part() -> Outcome:
            rep = build_cache(
                p,
                index,
                ids,
                root,
                args.out,
                shard=shard,
                prior_rejects=prior,
                options=BuildOptions(
                    batch_size=args.batch_size,
                    workers=args.workers,
                    rows_per_file=args.rows_per_file,
                    progress=not args.quiet,
                ),
            )
            print(rep.summary(), flush=True)
            return Outcome(0, rep.summary(), changed=rep.n_written + rep.n_rejected > 0)

        def finish(stale: bool) -> Outcome:
            if shard[1] > 1:
                merge_fresh(args.out, stale)
            report = verify_cache(args.out, ids, p.fingerprint(), allow_rejects=True)
            return Outcome(exit_for(report.ok), report.summary())

        if world > 1 and args.shard is None:
            result = run_ranks(build_part, finish, args.timeout or DEFAULT_TIMEOUT_S, cuda=p.device.type == "cuda")
            if rank != 0:  # rank 0 speaks for the job
                return result.code
        else:
            build_part()
            if shard[1] > 1:
                print(f"when all {shard[1]} parts are done: emolog cache merge {args.out}")
                return 0
            result = finish(False)
    print(result.message, file=sys.stdout if result.code == 0 else sys.stderr)
    return result.code


def rank_entry(args: argparse.Namespace) -> int:
    """One rank of ``--nproc N`` (a fresh spawned process): errors become their exit code and
    one line, as on the command line."""
    try:
        return build(args)
    except EmologError as e:
        print(f"emolog: error: rank {os.environ.get('RANK')}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def verify(args: argparse.Namespace) -> int:
    from emolog.cache.verify import verify_cache
    from emolog.data.index import ImageIndex

    index_csv, _, split_path = index_paths(args)
    known = ImageIndex.load(index_csv).ids if index_csv is not None else None
    ids = split_ids(args, split_path, known)
    expected = perception(args, args.device).fingerprint() if args.check_config else None
    report = verify_cache(args.cache, ids, expected, allow_rejects=args.allow_rejects)
    print(report.summary())
    return exit_for(report.ok)


def merge(args: argparse.Namespace) -> int:
    from emolog.cache.merge import merge_parts
    from emolog.cache.store import read_manifest
    from emolog.cache.verify import verify_cache

    out = merge_parts(args.out)
    m = read_manifest(out)
    print(
        f"merged {len(m['info']['merged_from'])} parts into {out}: "
        f"{sum(s['n'] for s in m['shards'])} rows in {len(m['shards'])} shards, {len(m['rejects'])} rejects"
    )
    if args.index is None and args.split is None:
        return 0
    index_csv, _, split_path = index_paths(args)
    from emolog.data.index import ImageIndex

    known = ImageIndex.load(index_csv).ids if index_csv is not None else None
    report = verify_cache(out, split_ids(args, split_path, known), allow_rejects=True)
    print(report.summary())
    return exit_for(report.ok)


def index_paths(args: argparse.Namespace) -> tuple[Path | None, Path | None, Path | None]:
    """(index.csv, rejects.csv or None, split.json) from --index / --split; MissingError when
    the index named is not there."""
    from emolog.data.index import rejects_path

    index_csv = rejects = None
    if args.index is not None:
        index_csv = args.index / "index.csv" if args.index.is_dir() else args.index
        if not index_csv.is_file():
            raise MissingError(
                f"--index {args.index}: no such index (expected index.csv or the directory `emolog index --out` wrote)"
            )
        rejects = rejects_path(index_csv.parent)
    split = args.split
    if split is None and index_csv is not None:
        split = index_csv.parent / "split.json"
    return index_csv, rejects, split


def data_root(args: argparse.Namespace, index_csv: Path) -> Path:
    """The absolute data root: ``--root`` (relative to the current directory), else the root
    recorded in index_summary.json next to the index (a relative one, from an older emolog
    index, also relative to the current directory)."""
    from emolog.data.index import recorded_root

    root = args.root
    if root is None:
        recorded = recorded_root(index_csv.parent)
        if not recorded:
            raise UsageError(
                f"{index_csv.parent} records no data root (no index_summary.json with a root): pass --root IMAGES"
            )
        root = Path(recorded)
    return root.expanduser().resolve()


def split_ids(args: argparse.Namespace, split_path: Path | None, known: list[str] | None) -> list[str]:
    """The ids of the requested split lists, in split order."""
    from emolog.data.split import load_split

    if split_path is None:
        raise UsageError("--split split.json is required (or --index DIR holding split.json)")
    names = [s.strip() for s in args.splits.split(",") if s.strip()]
    bad = [s for s in names if s not in SPLIT_NAMES]
    if bad or not names:
        raise UsageError(f"--splits {args.splits!r}: choose from {','.join(SPLIT_NAMES)}")
    if not split_path.is_file():
        raise MissingError(f"{split_path}: no such split file")
    split = load_split(split_path, known_ids=known)
    return [i for s in names for i in split[s]]


def exit_for(ok: bool) -> int:
    """The exit code of a verification verdict."""
    return 0 if ok else EXIT_VERIFY
