"""The report's charts (matplotlib, Agg): each function returns a ``data:image/png`` URI. The
gallery's photos with face boxes are drawn in ``gallery`` (``gallery.example``), with ``to_uri``.

Figures are sized for a two-column page at ~1280 px (about 600 px wide each), so plots sit
side by side; the page itself needs nothing but this string (no files, no network).
"""

from __future__ import annotations

import base64
import io
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display, ever: the report runs on servers and in tests
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from emolog.labels import SOURCES  # noqa: E402

SOURCE_COLOURS: dict[str, str] = {"scene": "#2b6cb0", "face1": "#dd6b20", "face2": "#d69e2e", "face3": "#c05621"}
_MORE = ("#38a169", "#805ad5", "#d53f8c", "#319795", "#718096")


def colour(source: str, k: int = 0) -> str:
    """A source's colour: the seed program's own, else one of a few more by position."""
    return SOURCE_COLOURS.get(source) or _MORE[k % len(_MORE)]


DPI = 100
MEMO_T_LINES = 4  # t() curves in a memorisation plot of a program without a scene weight
HALF = (6.0, 3.6)  # inches: 600 x 360 px, half of a 1280 px page


def to_uri(fig: plt.Figure) -> str:
    """Render and close ``fig``; return it as a base64 PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _style(ax: plt.Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    if ax.get_xlabel().startswith("epoch"):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3, linewidth=0.6)


def _mark_chosen(ax: plt.Axes, chosen_epoch: int | None) -> None:
    """A vertical line at the epoch whose weights the run kept (early stopping's choice)."""
    if chosen_epoch is not None:
        ax.axvline(chosen_epoch, color="#718096", ls=":", lw=1.5, label=f"kept: epoch {chosen_epoch}")


def weight_trajectories(
    history: pd.DataFrame,
    true: Mapping[str, float] | None = None,
    chosen_epoch: int | None = None,
    sources: Sequence[str] = SOURCES,
) -> str:
    """Source probabilities (w_<source> columns) per epoch; dashed lines: true weights; a dotted
    line at ``chosen_epoch``, the epoch whose weights early stopping kept."""
    fig, ax = plt.subplots(figsize=HALF)
    for k, s in enumerate(sources):
        if f"w_{s}" in history.columns:
            ax.plot(history["epoch"], history[f"w_{s}"], marker="o", ms=3, label=s, color=colour(s, k))
            if true and true.get(s) is not None:
                ax.axhline(true[s], ls="--", lw=1, color=colour(s, k), alpha=0.8)
    _mark_chosen(ax, chosen_epoch)
    ax.set(
        xlabel="epoch (0 = before training)",
        ylabel="P(source)",
        ylim=(0, 1),
        title="Source weights per epoch" + (" (dashed: true)" if true else ""),
    )
    ax.legend(ncol=2, fontsize=8, loc="best")
    _style(ax)
    return to_uri(fig)


def learned_vs_true(learned: Mapping[str, float], true: Mapping[str, float], sources: Sequence[str] = SOURCES) -> str:
    """Grouped bars: learned and true probability of each source."""
    fig, ax = plt.subplots(figsize=HALF)
    x = np.arange(len(sources))
    ax.bar(x - 0.2, [learned.get(s, np.nan) for s in sources], 0.4, label="learned", color="#2b6cb0")
    ax.bar(x + 0.2, [true.get(s, np.nan) for s in sources], 0.4, label="true", color="#a0aec0")
    ax.set_xticks(x, list(sources))
    ax.set(ylabel="P(source)", title="Learned vs true source weights")
    ax.legend(fontsize=8)
    _style(ax)
    return to_uri(fig)


def training_curves(history: pd.DataFrame, chosen_epoch: int | None = None) -> str:
    """Left: train/val loss per epoch; right: validation accuracy and macro-F1; a dotted line at
    ``chosen_epoch`` in both."""
    fig, (a, b) = plt.subplots(1, 2, figsize=HALF)
    for col, style in (("train_loss", "-"), ("val_loss", "--")):
        if col in history.columns:
            a.plot(history["epoch"], history[col], style, marker="o", ms=3, label=col.replace("_", " "))
    a.set(xlabel="epoch", title="Loss (train, validation)")
    for col in ("val_accuracy", "val_macro_f1"):
        if col in history.columns:
            b.plot(history["epoch"], history[col], marker="o", ms=3, label=col.replace("_", " "))
    for ax in (a, b):
        _mark_chosen(ax, chosen_epoch)
    a.legend(fontsize=8)
    b.set(xlabel="epoch", title="Validation")
    b.legend(fontsize=8)
    for ax in (a, b):
        _style(ax)
    fig.tight_layout()
    return to_uri(fig)


def confusion(cm: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> str:
    """Row-normalised confusion matrix (rows = true class) with the raw counts written in."""
    cm = np.asarray(cm, dtype=float)
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if norm[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return to_uri(fig)


def f1_with_ci(per_regime: Mapping[str, Mapping[str, np.ndarray]], classes: Sequence[str]) -> str:
    """Grouped bars of per-class F1 per regime, with 95% CI error bars."""
    fig, ax = plt.subplots(figsize=(12.0, 3.6))
    n = len(per_regime)
    width = 0.8 / max(n, 1)
    x = np.arange(len(classes))
    cmap = plt.get_cmap("tab10")
    for k, (name, r) in enumerate(per_regime.items()):
        err = np.vstack([r["f1"] - r["lo"], r["hi"] - r["f1"]]).clip(min=0)
        ax.bar(x + (k - (n - 1) / 2) * width, r["f1"], width, yerr=err, capsize=2, label=name, color=cmap(k % 10))
    ax.set_xticks(x, classes)
    ax.set(ylabel="F1 (test)", ylim=(0, 1), title="Per-class F1 with 95% bootstrap CI")
    ax.legend(fontsize=8, ncol=min(n, 6))
    _style(ax)
    return to_uri(fig)


def layer_name(layer: Mapping) -> str:
    """``net.name`` of a changes.json layer, or its readable ``label`` (a logic parameter's
    t() atoms) when the run recorded one."""
    return str(layer.get("label") or f"{layer.get('net', '')}.{layer.get('name', '')}".strip("."))


def _short(name: str, limit: int = 60) -> str:
    """A long axis label (a block of many t() atoms) cut to its start and the count of atoms."""
    n = name.count("t(")
    return name if len(name) <= limit else f"{name[: limit - 12].rsplit(', ', 1)[0]}, ... ({n} t())"


def layer_bars(layers: Sequence[Mapping], title: str | None = None) -> str:
    """Per layer: relative parameter change and gradient norm (log scale when they span orders
    of magnitude), side by side; ``title`` above both (e.g. the regime)."""
    names = [_short(layer_name(layer)) for layer in layers]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12.0, 0.8 + 0.32 * max(len(names), 3)), sharey=True)
    y = np.arange(len(names))
    # logic orange, network blue; layers the run kept frozen in grey
    colours = [
        "#a0aec0" if layer.get("trainable") is False else "#c05621" if layer.get("net") == "logic" else "#2b6cb0"
        for layer in layers
    ]
    for ax, key, label, zero, undefined in (
        (
            a,
            "rel_change",
            "relative change ||w - w0|| / ||w0||",
            " 0 (did not move)",
            " undefined (initial weights are 0)",
        ),
        (b, "grad_norm", "gradient norm (mean over training)", " 0 (no gradient)", " not recorded"),
    ):
        # None = undefined (a relative change of weights initialised to 0): said, not drawn as 0
        vals = np.array([np.nan if layer.get(key) is None else float(layer[key]) for layer in layers])
        ax.barh(y, np.where(vals > 0, vals, np.nan), color=colours)
        if not (vals > 0).any():
            ax.set_xlim(0, 1)  # nothing moved: an axis around 0 would suggest otherwise
        elif vals[vals > 0].max() / vals[vals > 0].min() > 100:
            ax.set_xscale("log")  # changes span orders of magnitude: frozen vs trained layers
        for yi, v in zip(y, vals):
            if v == 0 or np.isnan(v):
                ax.text(
                    0,
                    yi,
                    zero if v == 0 else undefined,
                    va="center",
                    fontsize=8,
                    color="#718096",
                    transform=ax.get_yaxis_transform(),
                )
        ax.set_title(label, fontsize=10)
        _style(ax)
    a.set_yticks(y, names, fontsize=8)
    a.invert_yaxis()
    if title:
        fig.suptitle(title, fontsize=11, fontweight="bold")
    fig.tight_layout()
    return to_uri(fig)


def grad_norm_history(history: pd.DataFrame) -> str:
    """grad_norm_<group> columns of history.csv per epoch (log scale)."""
    fig, ax = plt.subplots(figsize=HALF)
    for col in [c for c in history.columns if c.startswith("grad_norm_")]:
        ax.plot(
            history["epoch"],
            history[col].where(history[col] > 0),
            marker="o",
            ms=3,
            label=col.removeprefix("grad_norm_"),
        )
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labelled minor ticks clutter
    ax.set(xlabel="epoch", ylabel="gradient norm", title="Gradient norm per parameter group")
    ax.legend(fontsize=8)
    _style(ax)
    return to_uri(fig)


def flips(
    per_class: Mapping[str, Mapping[str, int]],
    classes: Sequence[str],
    title: str = "Predictions that flipped during training, per true class",
) -> str:
    """Stacked bars per true class: predictions that became correct / wrong / changed otherwise."""
    fig, ax = plt.subplots(figsize=HALF)
    bottom = np.zeros(len(classes))
    for key, colour in (("to_correct", "#38a169"), ("to_wrong", "#e53e3e"), ("other", "#a0aec0")):
        vals = np.array([float((per_class.get(c) or {}).get(key, 0)) for c in classes])
        ax.bar(classes, vals, bottom=bottom, label=key.replace("_", " "), color=colour)
        bottom += vals
    ax.set(ylabel="test images", title=title)
    ax.set_ylim(0, max(bottom.max() * 1.12, 1))  # headroom so the tallest bar does not touch the frame
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8)
    _style(ax)
    return to_uri(fig)


def memorisation(df: pd.DataFrame) -> str:
    """Left: the learned scene weight (a program without one: its t() values, the MEMO_T_LINES
    that move most over the sizes) vs training-set size; right: train vs val accuracy."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(12.0, 3.6))
    cmap = plt.get_cmap("tab10")
    if "w_scene" in df.columns and df["w_scene"].notna().any():
        params, ylabel, title = ["w_scene"], "learned P(scene)", "Scene weight vs training-set size"
    else:
        t_cols = [c for c in df.columns if c.startswith("t(") and df[c].notna().any()]
        spread = df.groupby("n_train")[t_cols].mean().agg(lambda v: v.max() - v.min()).sort_values(ascending=False)
        params, ylabel = list(spread.index[:MEMO_T_LINES]), "learned t() value"
        title = f"t() values vs training-set size ({len(params)} of {len(t_cols)} that move most)"
    styles = ("-", "--", ":", "-.")
    for k, (regime, g) in enumerate(df.groupby("regime", sort=True)):
        m = g.groupby("n_train").mean(numeric_only=True).reset_index()
        c = cmap(k % 10)
        for j, col in enumerate(params):
            label = regime if len(params) == 1 else f"{regime} {col}"
            a.scatter(g["n_train"], g[col], color=c, s=10, alpha=0.5)
            a.plot(
                m["n_train"],
                m[col],
                styles[j % len(styles)],
                marker="o",
                color=cmap((k + j) % 10) if len(params) > 1 else c,
                label=label,
            )
        for col, ls in (("train_accuracy", "-"), ("val_accuracy", "--")):
            if col in m.columns:
                b.plot(m["n_train"], m[col], ls, marker="o", color=c, label=f"{regime} {col.split('_')[0]}")
    a.set(xscale="log", xlabel="training images", ylabel=ylabel, ylim=(0, 1), title=title)
    b.set(
        xscale="log",
        xlabel="training images",
        ylabel="accuracy",
        ylim=(0, 1),
        title="Train (solid) vs validation (dashed) accuracy",
    )
    sizes = sorted(df["n_train"].unique())
    for ax in (a, b):  # label the sizes actually run, not powers of ten
        ax.set_xticks(sizes, [str(int(n)) for n in sizes])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    a.legend(fontsize=7 if len(params) > 1 else 8)
    b.legend(fontsize=7, ncol=2)
    for ax in (a, b):
        _style(ax)
    fig.tight_layout()
    return to_uri(fig)


def trust_bars(table: pd.DataFrame, title: str, xlabel: str) -> str:
    """Per group: mean scene vs faces posterior (solid) and weight (hatched), with image counts."""
    fig, ax = plt.subplots(figsize=HALF)
    x = np.arange(len(table))
    series = [
        (c, col)
        for c, col in (
            ("scene posterior", SOURCE_COLOURS["scene"]),
            ("faces posterior", SOURCE_COLOURS["face1"]),
            ("scene weight", SOURCE_COLOURS["scene"]),
            ("faces weight", SOURCE_COLOURS["face1"]),
        )
        if c in table.columns
    ]
    width = 0.8 / max(len(series), 1)
    for k, (col, colour) in enumerate(series):
        ax.bar(
            x + (k - (len(series) - 1) / 2) * width,
            table[col],
            width,
            color=colour,
            label=col,
            hatch="//" if "weight" in col else None,
            alpha=0.55 if "weight" in col else 1.0,
        )
    ax.set_xticks(x, [f"{g}\n(n={n})" for g, n in zip(table["group"], table["images"])])
    ax.set(xlabel=xlabel, ylabel="mean probability", ylim=(0, 1.2), yticks=np.linspace(0, 1, 6), title=title)
    ax.legend(fontsize=7, ncol=4, loc="upper center")  # in the headroom above 1, clear of the bars
    _style(ax)
    return to_uri(fig)


def final_weights(
    per_regime: Mapping[str, Mapping[str, Sequence[float]]],
    true: Mapping[str, float] | None = None,
    sources: Sequence[str] = SOURCES,
) -> str:
    """Learned source weights per regime: mean over seeds, seeds as dots; the true weights of
    simulated data as a hatched first group."""
    groups = ({"truth": {s: [true.get(s, np.nan)] for s in sources}} if true else {}) | dict(per_regime)
    fig, ax = plt.subplots(figsize=HALF)
    names = list(groups)
    x = np.arange(len(names))
    width = 0.8 / len(sources)
    for k, s in enumerate(sources):
        vals = [np.asarray(groups[r].get(s, []), dtype=float) for r in names]
        pos = x + (k - (len(sources) - 1) / 2) * width
        means = [v.mean() if v.size else np.nan for v in vals]
        bars = ax.bar(pos, means, width, label=s, color=colour(s, k))
        if true:
            bars[0].set_hatch("//")
            bars[0].set_alpha(0.55)
        for p, v, name in zip(pos, vals, names):
            if name != "truth":
                ax.scatter(np.full(v.size, p), v, s=8, color="black", zorder=3)
    ax.set_xticks(x, names, rotation=20 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    ax.set(ylabel="P(source)", ylim=(0, 1), title="Learned source weights per regime (dots: seeds)")
    # plain patches: the bars' own handles would show the truth group's hatching
    ax.legend(
        handles=[matplotlib.patches.Patch(color=colour(s, k), label=s) for k, s in enumerate(sources)],
        fontsize=8,
        ncol=4,
    )
    _style(ax)
    return to_uri(fig)


def scene_weight_trajectories(histories: Mapping[str, tuple[str, pd.DataFrame]]) -> str:
    """w_scene per epoch for every run of an experiment: run name -> (group, history), one
    line per run, one colour per group."""
    fig, ax = plt.subplots(figsize=HALF)
    cmap = plt.get_cmap("tab10")
    groups = sorted({g for g, _ in histories.values()})
    for g, h in histories.values():
        ax.plot(h["epoch"], h["w_scene"], color=cmap(groups.index(g) % 10), alpha=0.8, label=g)
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8)
    ax.set(xlabel="epoch", ylabel="P(scene)", ylim=(0, 1), title="Scene weight per epoch, every run")
    _style(ax)
    return to_uri(fig)
