"""``emolog predict RUN (IMAGES... | --index D) --out DIR``: a trained run's predictions.

For every image: the run's fused class distribution and predicted class, each source's own
distribution (the run's scene net; the recogniser on each face), the per-image source
probabilities and posterior where the program chooses a source, and the face boxes ->
``DIR/predictions.csv``, one row per image. Images that cannot be predicted are rows of
``DIR/rejects.csv`` (``rel_path, reason``, as ``emolog index`` writes it), never dummies.

With ``--index D`` the images are the index's; those in ``D/cache`` are read from it when the
cache holds the perception the run was trained on (the same fingerprint), the rest are
perceived from the image root ``emolog index`` recorded (``--root`` to override). Images given
by path are always perceived. Perception is rebuilt from the run's record (see
``emolog.runs.perception``); options given on the command line win. Both files are
written atomically, after every image is done.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from emolog.runs.perception import (
    PERCEPTION_OPTIONS,
    add_perception_arguments,
    build_perception,
    differences,
    note,
    perceived_cache,
    perception_settings,
    recorded_perception,
)
from emolog.data.atomic import atomic_write_text
from emolog.data.images import reason_category
from emolog.errors import InputError, MissingError, UsageError
from emolog.labels import BASIC7

if TYPE_CHECKING:  # torch-heavy: for annotations only
    from emolog.cache.store import FeatureCache
    from emolog.perception.pipeline import Perception
    from emolog.runs.reader import Predictions, Run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", type=Path, help="trained run directory (`emolog train --out`)")
    parser.add_argument("images", metavar="IMAGES", nargs="*", help="image files (or use --index)")
    parser.add_argument(
        "--index", type=Path, default=None, help="data directory (or its index.csv): predict every image of the index"
    )
    parser.add_argument(
        "--splits", default=None, help="with --index: only these lists of split.json (e.g. test); default every row"
    )
    parser.add_argument(
        "--root", type=Path, default=None, help="with --index: image root (default: the one `emolog index` recorded)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output directory: predictions.csv and rejects.csv are written there"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="images per perception pass (default 16)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_perception_arguments(parser)


@dataclass
class Item:
    """One image to predict: its id, how it is named in the output, its file and (index) label."""

    image_id: str
    name: str
    path: Path | None
    label: str = ""


@dataclass
class Batch:
    """Predicted rows: the items, their FeatureCache rows and the run's Predictions."""

    items: list[Item]
    cache: FeatureCache
    pred: Predictions
    source: str  # "cache" or "perceived"


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)  # (rel_path, reason)
    cache_dir: Path | None = None


def _items_from_index(args: argparse.Namespace) -> Plan:
    from emolog.data.index import ImageIndex, load_rejects, recorded_root, rejects_path
    from emolog.data.split import SPLIT_NAMES, load_split

    d = args.index if args.index.is_dir() else args.index.parent
    index_csv = d / "index.csv"
    if not index_csv.is_file():
        raise MissingError(f"{index_csv}: missing (--index {args.index}; write one with `emolog index`)")
    df = ImageIndex.load(index_csv).df
    if args.splits:
        names = [n.strip() for n in args.splits.split(",")]
        if not set(names) <= set(SPLIT_NAMES):
            raise UsageError(f"--splits {args.splits!r}: choose from {','.join(SPLIT_NAMES)}")
        split = load_split(d / "split.json", known_ids=df["image_id"].tolist())
        df = df.set_index("image_id").loc[[i for n in names for i in split[n]]].reset_index()
    root = args.root
    if root is None:
        recorded = recorded_root(d)
        root = Path(recorded) if recorded else None
    # a cache directory without its manifest is a damaged cache (refused), not no cache
    plan = Plan(cache_dir=d / "cache" if (d / "cache").is_dir() else None)
    plan.items = [
        Item(i, rel, None if root is None else Path(root) / rel, lab)
        for i, rel, lab in zip(df["image_id"], df["rel_path"], df["label"])
    ]
    rejects = rejects_path(d)
    if rejects is not None and not args.splits:
        # the index's rejected images stay listed; a rejected duplicate or typo *row* of an
        # image whose good row was indexed is predicted, not a reject
        old = load_rejects(rejects)
        indexed = set(df["rel_path"])
        plan.rejects += [(r, why) for r, why in zip(old["rel_path"], old["reason"]) if r not in indexed]
    return plan


def _items_from_paths(paths: list[str]) -> Plan:
    from emolog.data.paths import image_id

    plan = Plan()
    for p in paths:
        plan.items.append(Item(image_id(str(Path(p).resolve())), p, Path(p)))
    return plan


def _usable_cache(cache_dir: Path | None, recorded: dict | None, args: argparse.Namespace) -> bool:
    """The cache is read only when it holds the run's own perception and none was overridden."""
    from emolog.cache.store import read_manifest

    if cache_dir is None or any(getattr(args, k) is not None for k in PERCEPTION_OPTIONS):
        return False
    return bool(recorded) and read_manifest(cache_dir)["fingerprint_hash"] == recorded.get("fingerprint_hash")


def run(args: argparse.Namespace) -> int:
    from emolog.runs.reader import read_run

    if bool(args.images) == bool(args.index):
        raise UsageError("give either image files or --index D (not both, not neither)")
    trained = read_run(args.run_dir)
    recorded, where = (
        (trained.perception, f"{args.run_dir / 'config.json'} (perception)")
        if trained.perception
        else recorded_perception(args.run_dir)
    )
    plan = _items_from_index(args) if args.index else _items_from_paths(args.images)
    needs_prelast = (args.run_dir / "backbone_last_block.pt").is_file()
    device = _device(args.device)
    batches: list[Batch] = []
    todo = plan.items
    if _usable_cache(plan.cache_dir, recorded, args):
        todo = _predict_cached(trained, plan, needs_prelast, device, batches)
    if todo:
        note(f"perception of run {args.run_dir}: {where}")
        settings = perception_settings(args, recorded)
        settings["prelast"] = needs_prelast
        perception = build_perception(settings, recorded)
        if diffs := differences(recorded, perception.fingerprint()):
            note("this perception differs from the run's: " + "; ".join(diffs))
        _predict_perceived(trained, perception, todo, plan, device, args, batches)
    table = _table(batches, trained.classes, plan.items)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "predictions.csv", table.to_csv(index=False, float_format="%.6g"))
    rejects = pd.DataFrame(sorted(plan.rejects), columns=["rel_path", "reason"])
    atomic_write_text(args.out / "rejects.csv", rejects.to_csv(index=False))
    print(_summary(table, batches, rejects, args.out))
    return 0


def _device(name: str | None) -> str:
    from emolog.runtime import resolve_device

    return str(resolve_device(name))


def _predict_cached(trained: Run, plan: Plan, needs_prelast: bool, device: str, batches: list[Batch]) -> list[Item]:
    """Predict the items the cache holds; returns the others (to be perceived). Ids the cache
    recorded as rejects are rejects here too, with the cache's reason."""
    from emolog.cache.store import load_cache, read_manifest
    from emolog.cache.verify import require_verified

    manifest = read_manifest(plan.cache_dir)
    # the rows read must be the rows the cache recorded (every shard's sha256, layout, sane values)
    require_verified(plan.cache_dir, [])
    cache = load_cache(plan.cache_dir, prelast=needs_prelast)
    stored = set(cache.ids)
    rejected = {r["image_id"]: r.get("reason", "rejected by the cache") for r in manifest.get("rejects", [])}
    cached = [it for it in plan.items if it.image_id in stored]
    rest = []
    for it in plan.items:
        if it.image_id in stored:
            continue
        if it.image_id in rejected:
            plan.rejects.append((it.name, rejected[it.image_id]))
        else:
            rest.append(it)
    if cached:
        sub = cache.select([it.image_id for it in cached])
        batches.append(Batch(cached, sub, trained.predict(sub, device=device), "cache"))
    return rest


def _predict_perceived(
    trained: Run,
    perception: Perception,
    items: list[Item],
    plan: Plan,
    device: str,
    args: argparse.Namespace,
    batches: list[Batch],
) -> None:
    from tqdm import tqdm

    from emolog.data.images import ImageRejected, load_image

    with tqdm(total=len(items), desc="predicting", unit="img", disable=args.quiet) as bar:
        for start in range(0, len(items), max(1, args.batch_size)):
            chunk = items[start : start + args.batch_size]
            good, images = [], []
            for it in chunk:
                if it.path is None:
                    plan.rejects.append((it.name, "missing file: no image root (pass --root)"))
                    continue
                try:
                    images.append(load_image(it.path))
                    good.append(it)
                except ImageRejected as e:
                    plan.rejects.append((it.name, e.reason))
            if good:
                cache = perceived_cache(perception, perception.perceive_batch(images), [it.image_id for it in good])
                batches.append(Batch(good, cache, trained.predict(cache, device=device), "perceived"))
            bar.update(len(chunk))


def _table(batches: list[Batch], classes: list[str], order: list[Item]) -> pd.DataFrame:
    """One row per predicted image, in the order the images were given."""
    frames = [_batch_frame(b, classes) for b in batches]
    if not frames:
        return pd.DataFrame(columns=["image", "image_id", "label", "pred", "features", *(f"p_{k}" for k in classes)])
    table = pd.concat(frames, ignore_index=True)
    rank = {it.image_id: r for r, it in enumerate(order)}
    return table.sort_values("image_id", key=lambda s: s.map(rank), kind="stable").reset_index(drop=True)


def _batch_frame(b: Batch, classes: list[str]) -> pd.DataFrame:
    """One batch's rows: the image, its prediction, the scene head's, its faces' and the sources'."""
    pred = b.pred
    if list(pred.ids) != [it.image_id for it in b.items]:
        raise InputError("predict: the run returned rows for other ids than asked (a bug)")
    cols: dict[str, object] = {
        "image": [it.name for it in b.items],
        "image_id": pred.ids,
        "label": [it.label for it in b.items],
        "pred": [classes[i] for i in pred.probs.argmax(1)],
        "features": b.source,
    }
    cols.update({f"p_{k}": pred.probs[:, j] for j, k in enumerate(classes)})
    if pred.scene_probs is not None:  # over the scene head's own domain (not always the classes)
        cols.update({f"scene_{k}": pred.scene_probs[:, j] for j, k in enumerate(pred.scene_classes)})
    cols.update(_face_columns(b.cache))
    if pred.sources is not None:
        if pred.source_probs is not None:
            cols.update({f"w_{s}": pred.source_probs[:, j] for j, s in enumerate(pred.sources)})
        cols.update({f"post_{s}": pred.source_posterior[:, j] for j, s in enumerate(pred.sources)})
    return pd.DataFrame(cols)


def _face_columns(c: FeatureCache) -> dict[str, object]:
    """``n_faces`` and, per face slot, its box and expression probabilities (blank / NaN where empty)."""
    mask, probs, boxes = (c.face_mask.numpy().astype(bool), c.face_probs.numpy(), c.face_boxes.numpy())
    cols: dict[str, object] = {"n_faces": c.n_faces.numpy()}
    for k in range(mask.shape[1]):
        on = mask[:, k]
        cols[f"face{k + 1}_box"] = [" ".join(f"{v:.1f}" for v in boxes[i, k]) if on[i] else "" for i in range(len(on))]
        cols.update({f"face{k + 1}_{e}": np.where(on, probs[:, k, j], np.nan) for j, e in enumerate(BASIC7)})
    return cols


def _summary(table: pd.DataFrame, batches: list[Batch], rejects: pd.DataFrame, out: Path) -> str:
    n_cache = sum(len(b.items) for b in batches if b.source == "cache")
    lines = [
        f"predicted {len(table)} images ({n_cache} from the cache, {len(table) - n_cache} perceived); "
        f"rejected {len(rejects)}"
    ]
    if len(rejects):
        lines.append("rejected, per reason:")
        lines += [f"  {cat:<28} {n}" for cat, n in Counter(reason_category(r) for r in rejects["reason"]).most_common()]
    labelled = table[table["label"] != ""] if len(table) else table
    if len(labelled):
        acc = float((labelled["label"] == labelled["pred"]).mean())
        lines.append(f"accuracy on the {len(labelled)} labelled images: {acc:.3f}")
    lines.append(f"wrote {out / 'predictions.csv'} and {out / 'rejects.csv'}")
    return "\n".join(lines)
