"""Gallery of example test images: the photo with its face boxes, every source's emotion
distribution, and the source posteriors, chosen, loaded and drawn here (``example``: one item's
figure, rendered with ``plots.to_uri``). Real data only: simulated images do not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.patches
import numpy as np
import pandas as pd
import torch

from emolog.cache.store import load_cache
from emolog.errors import EmologError
from emolog.data.images import load_image
from emolog.data.index import ImageIndex, recorded_root
from emolog.data.paths import resolve_under
from emolog.report.plots import plt, to_uri  # from plots: it sets the Agg backend before pyplot loads
from emolog.data.paths import resolve_recorded as resolve
from emolog.runs.record import RunFiles

THUMB_PX = 480  # longest side of the photo before plotting: keeps the page a few MB at most


def choose_examples(pred: pd.DataFrame, y: np.ndarray, p: np.ndarray, n: int = 6) -> list[int]:
    """Row positions of ``n`` instructive test images, deterministically: the correct ones the
    faces explain best, the correct ones the scene explains best, and the most confident errors."""
    correct = y == p
    faces_post = pred[[c for c in pred.columns if c.startswith("post_") and c != "post_scene"]].sum(axis=1).to_numpy()
    scene_post = pred["post_scene"].to_numpy() if "post_scene" in pred else np.zeros(len(pred))
    conf = (
        pred[[c for c in pred.columns if c.startswith("p_")]].max(axis=1).to_numpy()
        if any(c.startswith("p_") for c in pred.columns)
        else np.zeros(len(pred))
    )
    order = np.arange(len(pred))
    ids = pred["image_id"].astype(str).to_numpy()
    picks: list[int] = []
    for mask, key in ((correct, -faces_post), (correct, -scene_post), (~correct, -conf)):
        cand = order[mask][np.lexsort((ids[mask], key[mask]))]  # best first, ties by id
        picks += [int(c) for c in cand if int(c) not in picks][: max(1, n // 3)]
    rest = [int(i) for i in np.argsort(ids, kind="stable") if int(i) not in picks]
    return (picks + rest)[:n]


def image_root(run: RunFiles, index_path: Path, fingerprint: dict, override: str | Path | None) -> Path:
    """Where index.csv's rel_paths point: --images, else a root recorded in the data
    provenance, the cache fingerprint or `emolog index`'s index_summary.json beside the
    index, else the data directory holding index.csv."""
    if override:
        return Path(override)
    recorded = {"root": recorded_root(index_path.parent)}
    for where in (run.data, fingerprint, recorded):
        for key in ("root", "image_root", "data_root", "images"):
            if isinstance(where.get(key), str) and where[key]:
                return resolve(where[key], index_path.parent)
    return index_path.parent


def _scene_probs(run: RunFiles, scene: torch.Tensor) -> tuple[np.ndarray | None, str | None]:
    """Scene2EmotionNet's distribution from the run's scene_net.pt and the cached features,
    or (None, why not)."""
    if not run.get("has_scene_net"):
        return None, "the run has no scene_net.pt, so the scene's distribution is not shown"
    if "unfreeze" in run.regime:
        return None, (
            "the run fine-tuned the backbone, so cached features no longer match its "
            "scene net; the scene's distribution is not shown"
        )
    from emolog.perception.scene2emotion import Scene2EmotionNet

    try:
        sd = torch.load(run.dir / "scene_net.pt", map_location="cpu", weights_only=True)
        hidden, in_dim = sd["fc1.weight"].shape
        net = Scene2EmotionNet(in_dim=in_dim, hidden=hidden, n_classes=sd["fc2.weight"].shape[0])
        net.load_state_dict(sd)
        net.eval()
        with torch.no_grad():
            return torch.softmax(net(scene.float()), dim=-1).numpy(), None
    except (
        OSError,
        KeyError,
        RuntimeError,
        ValueError,
    ) as e:  # an unreadable or mismatched scene_net.pt: said, the rest renders
        return None, f"scene_net.pt could not be applied to the cached features ({e})"


def gallery(
    run: RunFiles, y: np.ndarray, p: np.ndarray, classes: list[str], n: int = 6, images: str | Path | None = None
) -> tuple[list[dict], list[str]]:
    """Gallery items ``{"uri", "caption", "image_id"}`` and notes (missing photos and the like).

    For real data (data provenance kind "real"); returns no items and one note when the index
    or cache is missing.
    """
    data = run.data
    pred = run.get("predictions.csv")
    index_path = resolve(data.get("index") or "", run.dir)
    cache_dir = resolve(data.get("cache") or "", run.dir)
    if not data.get("index") or not index_path.is_file():
        return [], [f"index.csv not found at '{data.get('index')}': no thumbnails"]
    rows = choose_examples(pred, y, p, n)
    ids = [str(pred["image_id"].iat[r]) for r in rows]
    try:
        index = ImageIndex.load(index_path)
        rel = index.rel_path_of(ids)
        cache = load_cache(cache_dir, ids=ids)
    except (EmologError, OSError, KeyError, ValueError) as e:  # index or cache unusable: say why the gallery is empty
        return [], [f"gallery skipped: {e}"]
    notes: list[str] = []
    scene, why = _scene_probs(run, cache.scene)
    if why:
        notes.append(why)
    root = image_root(run, index_path, cache.fingerprint, images)
    items = []
    for k, (r, iid) in enumerate(zip(rows, ids)):
        mask = cache.face_mask[k].numpy()
        boxes = cache.face_boxes[k].numpy()[mask]  # pixels of the image the cache was built from
        try:
            img = load_image(resolve_under(root, rel[k]))
            img.thumbnail((THUMB_PX, THUMB_PX))
            arr = np.asarray(img)
            w0, h0 = cache.image_size[k].tolist()
            boxes = boxes * np.array([img.width / w0, img.height / h0] * 2)
        except (
            EmologError,
            OSError,
        ) as e:  # ImageRejected, PathRejected, a missing file: noted, its numbers still shown
            notes.append(f"{iid} ({rel[k]}): photo not shown: {e}")
            arr = None
        dists: dict[str, np.ndarray] = {}
        if scene is not None:
            dists["scene"] = scene[k]
        for j in np.flatnonzero(mask):
            dists[f"face{j + 1}"] = cache.face_probs[k, j].numpy()
        if all(f"p_{c}" in pred for c in classes):
            dists["final"] = pred[[f"p_{c}" for c in classes]].iloc[r].to_numpy(dtype=float)
        post = (
            ", ".join(
                f"{c.removeprefix('post_')} {float(pred[c].iat[r]):.2f}" for c in pred.columns if c.startswith("post_")
            )
            or "none (the program has no source choice)"
        )
        title = f"true {classes[y[r]]}, predicted {classes[p[r]]}"
        caption = f"{title} · {iid} · {rel[k]} · {int(cache.n_faces[k])} face(s) detected · source posterior: {post}"
        items.append({"uri": example(arr, boxes.tolist(), dists, classes, title), "caption": caption, "image_id": iid})
    return items, notes


def example(
    image: np.ndarray | None,
    boxes: Sequence[Sequence[float]],
    dists: Mapping[str, np.ndarray],
    classes: Sequence[str],
    title: str,
) -> str:
    """One gallery item: the photo with numbered face boxes, and a heat map of the
    per-source emotion distributions (rows: sources and the final prediction)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(6.0, 2.6), gridspec_kw={"width_ratios": [1, 1.3]})
    if image is not None:
        a.imshow(image)
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            a.add_patch(
                matplotlib.patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="#f6e05e", linewidth=2)
            )
            a.text(
                x1,
                y1,
                f"face{k + 1}",
                color="black",
                fontsize=7,
                va="bottom",
                bbox={"facecolor": "#f6e05e", "pad": 1, "edgecolor": "none"},
            )
    a.set_axis_off()
    a.set_title(title, fontsize=8)
    rows = list(dists)
    mat = np.vstack([dists[r] for r in rows]) if rows else np.zeros((0, len(classes)))
    b.imshow(mat, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            b.text(
                j,
                i,
                f"{mat[i, j]:.2f}".lstrip("0"),
                ha="center",
                va="center",
                fontsize=6.5,
                color="white" if mat[i, j] > 0.6 else "black",
            )
    b.set_xticks(range(len(classes)), [c[:4] for c in classes], fontsize=7)
    b.set_yticks(range(len(rows)), rows, fontsize=7)
    b.tick_params(length=0)
    fig.tight_layout()
    return to_uri(fig)
