"""``emolog index``: read a data set, reject bad rows/images, write index + split + rejects.

Outputs in ``--out``: ``index.csv``, ``split.json``, ``rejects.csv`` (rel_path, reason) and
``index_summary.json`` (the counts printed at the end), all written atomically.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from emolog.data.atomic import atomic_write_text
from emolog.data.images import DEFAULT_MAX_PIXELS
from emolog.data.index import BuildResult, build_index
from emolog.data.readers import DataFormatError, read_csv_auto, read_findingemo_csv, read_folder_tree, read_generic_csv
from emolog.data.split import make_split, write_split
from emolog.errors import MissingError
from emolog.labels import DEFAULT_MAPPING, get_mapping

FINDINGEMO_SOURCE = "findingemo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        help=f"a folder-per-class directory, an annotation CSV, or "
        f"'{FINDINGEMO_SOURCE}' for the annotations shipped in findingemo-light",
    )
    parser.add_argument("--out", "-o", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="data root the image paths are relative to (default: the source folder, "
        "or the CSV's folder; required for 'findingemo' unless --no-images)",
    )
    parser.add_argument(
        "--format",
        choices=["auto", "findingemo", "csv", "folder"],
        default="auto",
        help="input layout (auto: folder if SOURCE is a directory, else by CSV header)",
    )
    parser.add_argument(
        "--mapping", default=DEFAULT_MAPPING, help=f"label mapping name or JSON file (default {DEFAULT_MAPPING})"
    )
    parser.add_argument(
        "--unmapped", default="drop", help="labels the mapping lacks: 'drop' (default, counted) or 'map:<class>'"
    )
    parser.add_argument("--seed", type=int, default=42, help="split seed (default 42)")
    parser.add_argument(
        "--fractions",
        type=float,
        nargs=3,
        default=[0.7, 0.1, 0.2],
        metavar=("TRAIN", "VAL", "TEST"),
        help="split fractions (default 0.7 0.1 0.2)",
    )
    parser.add_argument(
        "--n-train",
        type=int,
        default=None,
        help="keep only the first N training images of the seeded shuffle (original: 5000)",
    )
    parser.add_argument(
        "--no-images",
        action="store_true",
        help="index the annotations only; do not read image files (content_hash empty)",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"reject images with more pixels (decompression bombs; default {DEFAULT_MAX_PIXELS})",
    )
    parser.add_argument("--workers", type=int, default=4, help="threads decoding images (default 4)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _read_records(args: argparse.Namespace):
    """(records, default root, notes) for the chosen source and format."""
    src = args.source
    if src == FINDINGEMO_SOURCE:
        from emolog.data.findingemo import annotation_records

        return annotation_records(), None, []
    path = Path(src)
    if not path.exists():
        raise MissingError(f"{src}: no such file or directory")
    fmt = args.format
    if fmt == "auto":
        fmt = "folder" if path.is_dir() else "auto-csv"
    if fmt == "folder":
        records, hidden = read_folder_tree(path)
        notes = [f"note: skipped {hidden} hidden files/folders"] if hidden else []
        return records, path, notes
    if path.is_dir():
        raise DataFormatError(f"{src}: is a directory but --format {fmt} expects a CSV file")
    reader = {"auto-csv": read_csv_auto, "findingemo": read_findingemo_csv, "csv": read_generic_csv}[fmt]
    return reader(path), path.parent, []


def run_index(args: argparse.Namespace) -> tuple[BuildResult, dict, dict]:
    """Do the work of ``emolog index`` and write its files: (result, split, summary)."""
    t0 = time.perf_counter()
    records, default_root, notes = _read_records(args)
    # Recorded in index_summary.json for `emolog cache`, which may run from another directory:
    # a relative root would point elsewhere there and reject every image as missing.
    root = args.root or default_root
    root = None if root is None else Path(root).resolve()
    if root is None and not args.no_images:
        raise DataFormatError(
            "the FindingEmo annotations need --root DIR (where the downloaded images are) or --no-images"
        )
    if root is not None and not args.no_images and not Path(root).is_dir():
        raise MissingError(f"--root {root}: not a directory (not mounted?)")
    mapping = get_mapping(args.mapping, unmapped=args.unmapped)
    result = build_index(
        records,
        mapping,
        root=root,
        check_images=not args.no_images,
        max_pixels=args.max_pixels,
        progress=not args.quiet,
        workers=args.workers,
    )
    result.notes.extend(notes)
    if len(result.index) == 0:
        # Nothing is written: a half-updated output folder would mix this run with an older one.
        raise DataFormatError("no usable images: every record was rejected; nothing written\n" + result.summary())
    split = make_split(
        result.index.ids,
        result.index.df["label"].tolist(),
        seed=args.seed,
        fractions=args.fractions,
        n_train=args.n_train,
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    result.index.save(out / "index.csv")
    atomic_write_text(out / "rejects.csv", result.rejects.to_csv(index=False))
    write_split(split, out / "split.json")
    summary = {
        "source": str(args.source),
        "root": None if root is None else str(root),
        "images_checked": not args.no_images,
        "mapping": mapping.name,
        "n_records": result.n_records,
        "n_indexed": len(result.index),
        "n_rejected": len(result.rejects),
        "per_class": result.index.class_counts(),
        "rejects_per_reason": result.reject_counts(),
        "labels_dropped": dict(result.mapping_report.dropped),
        "labels_unknown": dict(result.mapping_report.unknown),
        "split_sizes": {k: len(split[k]) for k in ("train", "val", "test")},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    atomic_write_text(out / "index_summary.json", json.dumps(summary, indent=1) + "\n")
    return result, split, summary


def run(args: argparse.Namespace) -> int:
    result, split, summary = run_index(args)  # errors: one line via emolog.cli
    print(result.summary())
    print(
        f"split (seed {split['seed']}): train {len(split['train'])}"
        + (f" (first {split['n_train']} of {split['n_train_pool']})" if split["n_train"] else "")
        + f", val {len(split['val'])}, test {len(split['test'])}"
    )
    print(f"wrote {args.out}/index.csv, split.json, rejects.csv, index_summary.json in {summary['seconds']:.1f} s")
    return 0
