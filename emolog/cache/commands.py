"""``emolog cache``: build a feature cache, or verify / merge one.

    emolog cache --index DIR_OR_index.csv --split split.json --root IMAGES --out CACHE [options]
    emolog cache verify CACHE --split split.json [--index DIR] [--splits train,val] [--check-config]
    emolog cache merge OUT

Under ``torchrun`` without ``--shard``, each rank builds slice RANK/WORLD_SIZE on
``cuda:LOCAL_RANK`` (when CUDA is present); run ``emolog cache merge OUT`` afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emolog.cache.store import CacheError
from emolog.data.split import SPLIT_NAMES
from emolog.perception.common import WeightsError
from emolog.runtime import torch_threads

ACTIONS = ("build", "verify", "merge")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1]
    parser.add_argument("action", nargs="?", choices=ACTIONS, default="build",
                        help="build (default), verify CACHE, or merge OUT")
    parser.add_argument("target", nargs="?", type=Path, default=None,
                        help="the cache directory (verify) or the output with part-i-of-N folders (merge)")
    parser.add_argument("--index", type=Path, default=None,
                        help="index.csv or the directory holding it (and rejects.csv, split.json)")
    parser.add_argument("--split", type=Path, default=None,
                        help="split.json (default: next to the index)")
    parser.add_argument("--splits", default=",".join(SPLIT_NAMES),
                        help="which split lists to cache / verify (default train,val,test)")
    parser.add_argument("--root", type=Path, default=None,
                        help="data root the index's rel_paths are relative to (default: the root "
                             "recorded in index_summary.json by `emolog index`)")
    parser.add_argument("--out", type=Path, default=None, help="cache directory to build")
    g = parser.add_argument_group("perception (the defaults run offline)")
    g.add_argument("--backbone", default=None, help="scene backbone (default efficientnet-lite0-imagenet)")
    g.add_argument("--backbone-weights", default=None, help="weights file for the backbone")
    g.add_argument("--places365-names", default=None, help="categories_places365.txt (resnet18-places365)")
    g.add_argument("--detector", default=None, help="face detector (default mtcnn)")
    g.add_argument("--recogniser", default=None, help="expression recogniser (default fer2013-minixception)")
    g.add_argument("--recogniser-weights", default=None, help="weights file / folder for the recogniser")
    g.add_argument("--K", type=int, default=3, help="face slots per image (default 3)")
    g.add_argument("--prelast", action="store_true",
                   help="also store the activations before the backbone's last block (float16; for unfreezing it)")
    g.add_argument("--detect-max-side", type=int, default=None,
                   help="downscale images to this long side (px) before face detection (default: never)")
    g.add_argument("--min-face-size", type=int, default=20, help="smallest face in px (default 20)")
    g.add_argument("--face-threshold", type=float, default=0.9, help="detector probability threshold (default 0.9)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA when present)")
    r = parser.add_argument_group("running")
    r.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    r.add_argument("--workers", type=int, default=2, help="DataLoader workers decoding images (default 2)")
    r.add_argument("--rows-per-file", type=int, default=256,
                   help="rows per shard file: the most work an interruption can lose (default 256)")
    r.add_argument("--shard", default=None,
                   help="i/N: cache only slice i of N (sorted ids, every N-th) into OUT/part-i-of-N; "
                        "default under torchrun: RANK/WORLD_SIZE")
    r.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice); 1 is fastest when several "
                        "builds share a CPU")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    v = parser.add_argument_group("verify")
    v.add_argument("--allow-rejects", action="store_true",
                   help="requested ids recorded as rejects are listed but do not fail verification")
    v.add_argument("--check-config", action="store_true",
                   help="also require the cache's fingerprint to equal the perception options given")


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "merge":
            return _merge(args)
        if args.action == "verify":
            return _verify(args)
        return _build(args)
    except (CacheError, WeightsError, ValueError, FileNotFoundError) as e:
        print(f"emolog cache {args.action}: error: {e}", file=sys.stderr)
        return 2


def _index_paths(args: argparse.Namespace) -> tuple[Path | None, Path | None, Path | None]:
    """(index.csv, rejects.csv or None, split.json) from --index / --split."""
    index_csv = rejects = None
    if args.index is not None:
        index_csv = args.index / "index.csv" if args.index.is_dir() else args.index
        rejects = index_csv.parent / "rejects.csv"
        rejects = rejects if rejects.is_file() else None
    split = args.split
    if split is None and index_csv is not None:
        split = index_csv.parent / "split.json"
    return index_csv, rejects, split


def _indexed_root(index_csv: Path | None) -> Path | None:
    """The data root ``emolog index`` recorded in index_summary.json next to the index, if any."""
    summary = index_csv.parent / "index_summary.json" if index_csv is not None else None
    if summary is None or not summary.is_file():
        return None
    root = json.loads(summary.read_text()).get("root")
    return Path(root) if root else None


def _split_ids(args: argparse.Namespace, split_path: Path | None, known: list[str] | None) -> list[str]:
    from emolog.data.split import load_split
    if split_path is None:
        raise ValueError("--split split.json is required (or --index DIR holding split.json)")
    names = [s.strip() for s in args.splits.split(",") if s.strip()]
    bad = [s for s in names if s not in SPLIT_NAMES]
    if bad or not names:
        raise ValueError(f"--splits {args.splits!r}: choose from {','.join(SPLIT_NAMES)}")
    split = load_split(split_path, known_ids=known)
    return [i for s in names for i in split[s]]


def _perception(args: argparse.Namespace, device: str | None):
    from emolog.perception.pipeline import Perception
    kw = {k: v for k, v in {"backbone": args.backbone, "detector": args.detector,
                            "recogniser": args.recogniser}.items() if v is not None}
    return Perception(**kw, K=args.K, device=device, prelast=args.prelast,
                      backbone_weights=args.backbone_weights, places365_names=args.places365_names,
                      recogniser_weights=args.recogniser_weights, min_face_size=args.min_face_size,
                      face_threshold=args.face_threshold, detect_max_side=args.detect_max_side)


def _build(args: argparse.Namespace) -> int:
    import torch

    from emolog.cache.build import build_cache, index_rejects, parse_shard, slice_from_env
    from emolog.data.index import ImageIndex
    if args.target is not None:
        raise ValueError(f"unexpected argument {args.target} (did you mean --out {args.target}?)")
    index_csv, rejects_csv, split_path = _index_paths(args)
    root = args.root if args.root is not None else _indexed_root(index_csv)
    missing = [f"--{k}" for k, v in (("index", args.index), ("root", root), ("out", args.out)) if v is None]
    if missing:
        raise ValueError(f"building a cache needs {', '.join(missing)}")
    index = ImageIndex.load(index_csv)
    ids = _split_ids(args, split_path, index.ids)
    device = args.device
    if args.shard is not None:
        shard = parse_shard(args.shard)
    else:
        rank, world, local = slice_from_env()
        shard = (rank, world)
        if device is None and local is not None and torch.cuda.is_available():
            device = f"cuda:{local}"  # one GPU per torchrun process
    with torch_threads(args.threads):  # restored after: in-process callers must not inherit it
        perception = _perception(args, device)
        report = build_cache(perception, index, ids, root, args.out, shard=shard,
                             batch_size=args.batch_size, workers=args.workers,
                             rows_per_file=args.rows_per_file,
                             prior_rejects=index_rejects(rejects_csv) if rejects_csv else (),
                             progress=not args.quiet)
    print(report.summary())
    if shard[1] > 1:
        print(f"when all {shard[1]} parts are done: emolog cache merge {args.out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from emolog.cache.verify import verify_cache
    from emolog.data.index import ImageIndex
    if args.target is None:
        raise ValueError("usage: emolog cache verify CACHE --split split.json")
    index_csv, _, split_path = _index_paths(args)
    known = ImageIndex.load(index_csv).ids if index_csv is not None else None
    ids = _split_ids(args, split_path, known)
    expected = _perception(args, args.device).fingerprint() if args.check_config else None
    report = verify_cache(args.target, ids, expected, allow_rejects=args.allow_rejects)
    print(report.summary())
    return 0 if report.ok else 1


def _merge(args: argparse.Namespace) -> int:
    from emolog.cache.merge import merge_parts
    from emolog.cache.store import read_manifest
    if args.target is None:
        raise ValueError("usage: emolog cache merge OUT (the --out of the sharded builds)")
    out = merge_parts(args.target)
    m = read_manifest(out)
    print(f"merged {len(m['info']['merged_from'])} parts into {out}: "
          f"{sum(s['n'] for s in m['shards'])} rows in {len(m['shards'])} shards, {len(m['rejects'])} rejects")
    return 0
