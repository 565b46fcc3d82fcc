"""The figures of ``emolog analyse`` (matplotlib, Agg; PIL for the photo thumbnails): each
function returns PNG bytes, which ``emolog analyse`` writes as files and embeds in its page,
and the report embeds as data URIs."""

from __future__ import annotations

import io
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # no display: runs on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 100
THUMB_PX = 320  # longest side of a gallery thumbnail
BOX_COLOUR = (246, 224, 94)


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _style(ax: plt.Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(alpha=0.3, linewidth=0.6)


def scatter(x: np.ndarray, y: np.ndarray, stats: dict, xlabel: str, ylabel: str, title: str) -> bytes:
    """The scene's error against the face-scene disagreement: one dot per image (jittered a
    little where values repeat), the least-squares line, the mean error in 10 quantile bins of
    the disagreement, and the two thresholds (``error_stats.thresholds``) as dashed lines."""
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    rng = np.random.default_rng(0)
    jit = 0.01 * (np.nanmax(y) - np.nanmin(y) or 1.0)
    ax.scatter(x, y + rng.normal(0, jit, len(y)), s=6, alpha=0.35, color="#2b6cb0", linewidths=0)
    xs = np.linspace(np.min(x), np.max(x), 50)
    ax.plot(
        xs,
        stats["intercept"] + stats["slope"] * xs,
        color="#c53030",
        lw=2,
        label=f"trend: r = {stats['pearson']:.3f} [{stats['pearson_lo']:.3f}, {stats['pearson_hi']:.3f}]",
    )
    edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)))
    if len(edges) > 2:
        b = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        means = [(x[b == k].mean(), y[b == k].mean()) for k in range(len(edges) - 1) if (b == k).any()]
        ax.plot(*zip(*means), "o-", color="#2d3748", ms=4, lw=1, label="mean per decile of disagreement")
    for t, name in ((stats["t1"], "small | medium"), (stats["t2"], "medium | big")):
        if np.isfinite(t):
            ax.axvline(t, color="#718096", ls="--", lw=1)
            ax.text(t, ax.get_ylim()[1], name, fontsize=7, rotation=90, va="top", ha="right", color="#4a5568")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7, loc="upper left")
    _style(ax)
    return _png(fig)


def overlap(table: pd.DataFrame, k_table: pd.DataFrame, names: Sequence[str]) -> bytes:
    """Left: images both runs of each pair got wrong (count and Jaccard index); right: how many
    images exactly k of the runs got wrong."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10.0, 3.8), gridspec_kw={"width_ratios": [1.2, 1]})
    n = len(names)
    both, jac = np.full((n, n), np.nan), np.full((n, n), np.nan)
    pos = {m: i for i, m in enumerate(names)}
    for _, r in table.iterrows():
        i, j = pos[r["run_a"]], pos[r["run_b"]]
        both[i, j] = both[j, i] = r["both"]
        jac[i, j] = jac[j, i] = r["jaccard"]
    a.imshow(jac, cmap="Oranges", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if i != j:
                a.text(
                    j,
                    i,
                    f"{int(both[i, j])}\n{jac[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if jac[i, j] > 0.6 else "black",
                )
    a.set_xticks(range(n), names, rotation=30, ha="right", fontsize=7)
    a.set_yticks(range(n), names, fontsize=7)
    a.set_title("wrong in both (count, Jaccard)", fontsize=9)
    b.bar(k_table["k_runs_wrong"], k_table["n_images"], color="#dd6b20")
    for k, v in zip(k_table["k_runs_wrong"], k_table["n_images"]):
        b.text(k, v, str(int(v)), ha="center", va="bottom", fontsize=7)
    b.set(
        xlabel=f"number of runs (of {n}) wrong on the image",
        ylabel="test images",
        title="images wrong in exactly k runs",
    )
    b.set_xticks(k_table["k_runs_wrong"])
    _style(b)
    fig.tight_layout()
    return _png(fig)


def confusion(cm: np.ndarray, classes: Sequence[str], title: str) -> bytes:
    """Counts, coloured by the row share (recall)."""
    cm = np.asarray(cm)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(cm)):
        for j in range(len(cm)):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _png(fig)


def predicted_vs_true(true: np.ndarray, pred: np.ndarray, variable: str, title: str) -> bytes:
    """A valence/arousal run's expected values against the annotated values: per true value,
    the distribution of predictions (box) and the identity line."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    levels = np.unique(true)
    ax.boxplot([pred[true == v] for v in levels], positions=levels, widths=0.5, showfliers=False)
    ax.plot(
        [levels.min(), levels.max()],
        [levels.min(), levels.max()],
        color="#c53030",
        lw=1,
        ls="--",
        label="prediction = truth",
    )
    ax.set(xlabel=f"annotated {variable}", ylabel=f"predicted {variable} (expected value)", title=title)
    ax.legend(fontsize=7)
    _style(ax)
    return _png(fig)


def thumbnail(photo, boxes: Sequence[Sequence[float]], size: tuple[int, int]) -> bytes:
    """The photo (a PIL image) scaled to at most THUMB_PX, with its face boxes (pixels of the
    image the cache was built from, ``size`` = its width, height) drawn and numbered."""
    from PIL import ImageDraw

    img = photo.convert("RGB")
    img.thumbnail((THUMB_PX, THUMB_PX))
    sx, sy = img.width / size[0], img.height / size[1]
    draw = ImageDraw.Draw(img)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        draw.rectangle([x1 * sx, y1 * sy, x2 * sx, y2 * sy], outline=BOX_COLOUR, width=2)
        draw.text((x1 * sx + 2, y1 * sy + 1), f"face{k + 1}", fill=BOX_COLOUR)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
