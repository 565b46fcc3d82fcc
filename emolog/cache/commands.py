"""``emolog cache build|verify|merge``: build a feature cache, check one, join sharded parts.

    emolog cache build --index D [--root IMAGES] --out D/cache [perception options] [--nproc N]
    emolog cache verify CACHE --index D [--splits train,val] [--allow-rejects] [--check-config ...]
    emolog cache merge OUT [--index D]
    torchrun --nproc-per-node N [--nnodes M ...] -m emolog cache build --index D --out D/cache ...

``build`` ends by verifying what it built (exit 5 when that fails). Several processes
(``--nproc N``, or torchrun) each build a slice into OUT/part-i-of-N, then rank 0 merges and
verifies; see docs/scale-out.md. A relative ``--root`` is relative to the current directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emolog.data.split import SPLIT_NAMES
from emolog.errors import UsageError


class _SubcommandParser(argparse.ArgumentParser):
    """Reports unknown arguments itself, so the message names the sub-command
    (``emolog cache build: error: unrecognized arguments: --detect-max-size 640``);
    plain argparse hands them to the parent, which names only ``emolog cache``."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        ns, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return ns, extra


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1]
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_SubcommandParser)
    b = sub.add_parser(
        "build",
        help="run the perception networks once per image into a cache",
        description="Build (or resume) a feature cache, then verify it.",
    )
    _data_args(b, build=True)
    b.add_argument("--out", type=Path, required=True, help="cache directory to build (resumable)")
    _perception_args(b)
    r = b.add_argument_group("running")
    r.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16; 64+ on a GPU)")
    r.add_argument(
        "--workers",
        type=int,
        default=2,
        help="DataLoader workers per process that read, decode and preprocess images (default 2)",
    )
    r.add_argument(
        "--rows-per-file",
        type=int,
        default=256,
        help="rows per shard file: the most work an interruption can lose (default 256)",
    )
    r.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per process (default 1: several threads per process collapse "
        "when the CPU is shared; use --nproc for more cores); 0 = torch's default",
    )
    r.add_argument(
        "--nproc", type=int, default=1, help="processes on this machine (a torchrun job started for you; default 1)"
    )
    r.add_argument(
        "--max-restarts",
        type=int,
        default=0,
        help="with --nproc: restart the ranks this often after one dies (they resume)",
    )
    r.add_argument(
        "--shard",
        default=None,
        help="i/N: build only slice i of N (sorted ids, every N-th) into OUT/part-i-of-N, "
        "no merge (for schedulers that start the N jobs themselves)",
    )
    r.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long ranks wait for the slowest one (default 48 h)",
    )
    r.add_argument("--quiet", action="store_true", help="no progress bar")

    v = sub.add_parser(
        "verify",
        help="check a cache before training on it",
        description="Check every requested id is stored once and every row is sane (exit 5 when not).",
    )
    v.add_argument("cache", type=Path, help="the cache directory")
    _data_args(v, build=False)
    v.add_argument(
        "--allow-rejects",
        action="store_true",
        help="requested ids recorded as rejects are listed but do not fail verification",
    )
    v.add_argument(
        "--check-config",
        action="store_true",
        help="also require the cache's fingerprint to equal the perception options given",
    )
    _perception_args(v)

    m = sub.add_parser(
        "merge",
        help="join OUT/part-i-of-N folders of `build --shard` into OUT",
        description="Join the parts of a sharded build into one cache.",
    )
    m.add_argument("out", type=Path, help="the --out of the sharded builds")
    _data_args(m, build=False)


def _data_args(p: argparse.ArgumentParser, build: bool) -> None:
    p.add_argument(
        "--index",
        type=Path,
        required=build,
        default=None,
        help="index.csv or the directory holding it (and rejects.csv, split.json)"
        + ("" if build else "; with merge: verify the merged cache against it"),
    )
    p.add_argument("--split", type=Path, default=None, help="split.json (default: next to the index)")
    p.add_argument(
        "--splits", default=",".join(SPLIT_NAMES), help="which split lists to cache / verify (default train,val,test)"
    )
    if build:
        p.add_argument(
            "--root",
            type=Path,
            default=None,
            help="data root the index's rel_paths are relative to; relative to the current "
            "directory (default: the root `emolog index` recorded in index_summary.json)",
        )


def _perception_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("perception (the defaults run offline)")
    g.add_argument("--backbone", default=None, help="scene backbone (default efficientnet-lite0-imagenet)")
    g.add_argument("--backbone-weights", default=None, help="weights file for the backbone")
    g.add_argument("--places365-names", default=None, help="categories_places365.txt (resnet18-places365)")
    g.add_argument("--detector", default=None, help="face detector (default mtcnn)")
    g.add_argument("--recogniser", default=None, help="expression recogniser (default fer2013-minixception)")
    g.add_argument("--recogniser-weights", default=None, help="weights file / folder for the recogniser")
    g.add_argument("-K", "--max-faces", dest="K", type=int, default=3, help="face slots per image (default 3)")
    g.add_argument(
        "--prelast",
        action="store_true",
        help="also store the activations before the backbone's last block (float16; for unfreezing it)",
    )
    g.add_argument(
        "--face-features",
        action="store_true",
        help="also store each face's recogniser embedding, face_features (float32, K x F x 4 bytes per "
        "image: F = 128 for fer2013-minixception, 768 for trpakov's ViT); for specs that feed "
        "cache.face_features",
    )
    g.add_argument(
        "--detect-max-side",
        type=int,
        default=None,
        help="downscale images to this long side (px) before face detection (default: never)",
    )
    g.add_argument("--min-face-size", type=int, default=20, help="smallest face in px (default 20)")
    g.add_argument("--face-threshold", type=float, default=0.9, help="detector probability threshold (default 0.9)")
    g.add_argument(
        "--device",
        default=None,
        help="cpu, cuda, cuda:1, ... (default: CUDA when present; cuda:LOCAL_RANK under torchrun)",
    )


def run(args: argparse.Namespace) -> int:
    from emolog.cache import build_command

    if args.action == "merge":
        return build_command.merge(args)
    if args.action == "verify":
        return build_command.verify(args)
    if args.nproc < 1:
        raise UsageError(f"--nproc {args.nproc}: need at least 1")
    if args.nproc > 1:
        if args.shard is not None:
            raise UsageError("--nproc and --shard exclude each other (--nproc does the slicing)")
        from emolog.cache.distributed import launch

        child = argparse.Namespace(**{**vars(args), "nproc": 1})
        return launch(args.nproc, build_command.rank_entry, child, max_restarts=args.max_restarts)
    return build_command.build(args)
