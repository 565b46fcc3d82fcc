"""``emolog analyse RUN [RUN ...] --out DIR``: which images the runs get wrong, and why.

Each RUN is a run directory, or an experiment directory (its base runs of the first seed).
Writes into DIR (docs/analysis.md has a worked example on the demo's data):

* ``errors.csv``: the per-image error table of every run (``emolog.analysis.errors``; a ``run``
  column): label, prediction, each source's prediction, their disagreement, meta-information;
* ``overlap.csv``, ``wrong_in_k.csv``, ``overlap.png`` (two runs or more): per pair of runs the
  images both / only one / neither got wrong, and how many images exactly k runs got wrong;
* ``disagreement.csv`` and ``disagreement-<run>-<target>.png``: the scene's error against the
  face-scene disagreement (the label, and each valence/arousal variable), with its trend,
  correlation, 95% interval and suggested small / medium / big thresholds;
* ``meta.csv``: the error against each meta-information variable, ranked;
* ``confusion.csv``, ``confused_pairs.csv``, ``confusion-<run>.png``: per-class confusion and the
  most confused pairs;
* ``gallery.csv`` and ``gallery/<run>-<k>-<image id>.png``: the worst errors, with the photo
  (face boxes drawn) when the image root is reachable and every source's prediction;
* ``analysis.html``: all of it on one self-contained page; ``analysis.json``: what was written.

The report of a run or experiment shows DIR when it is the run's (experiment's) ``analysis/``
folder. Every file is written atomically.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from emolog.data.artefacts import ArtefactMissing, read_json
from emolog.data.atomic import atomic_write_bytes, atomic_write_text
from emolog.errors import UsageError

WORST = 12
ANALYSIS_DIR = "analysis"  # inside a run or experiment directory: the folder the report shows


def expand(paths: list[str | Path]) -> list[Path]:
    """Run directories: each path as given, or an experiment's base runs of its first seed."""
    out = []
    for p in map(Path, paths):
        exp = p / "experiment.json"
        if exp.is_file():
            cfg = read_json(exp, "experiment")
            seed = (cfg.get("config") or {}).get("seeds", [0])[0]
            runs = [p / r for r in cfg.get("runs", []) if Path(r).name.endswith(f"-s{seed}")]
            if not runs:
                raise UsageError(f"{p}: the experiment lists no finished run of seed {seed}")
            out += runs
        elif (p / "results.json").is_file():
            out.append(p)
        else:
            raise ArtefactMissing(
                f"{p} has no results.json and no experiment.json: it is not a finished run or experiment (missing)"
            )
    return out


def _csv(df: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6g")
    atomic_write_text(path, buf.getvalue())


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _photo(e, row: pd.Series, images: str | Path | None):
    """(thumbnail PNG bytes or None, why not) for one image of run ``e``."""
    from emolog.analysis import error_plots
    from emolog.analysis.errors import image_root
    from emolog.cache.store import load_cache
    from emolog.data.images import load_image
    from emolog.data.paths import resolve_recorded, resolve_under
    from emolog.errors import EmologError

    if e.data.get("kind") == "simulated":
        return None, "simulated data: no photo"
    index_path = resolve_recorded(e.data.get("index") or "", e.dir)
    cache = load_cache(resolve_recorded(e.data["cache"], e.dir), ids=[row["image_id"]])
    root = image_root(e.data, index_path, cache.fingerprint, images)
    try:
        photo = load_image(resolve_under(root, row["rel_path"]))
    except (EmologError, OSError) as err:  # a missing or unreadable photo: said, its numbers still shown
        return None, f"photo not shown: {err}"
    boxes = cache.face_boxes[0].numpy()[cache.face_mask[0].numpy()].tolist()
    return error_plots.thumbnail(photo, boxes, tuple(cache.image_size[0].tolist())), None


def gallery(errs: list, out: Path, n: int, images: str | Path | None) -> tuple[pd.DataFrame, list[dict]]:
    """The worst ``n`` images of each run: gallery.csv rows and the page's cards."""
    from emolog.analysis.error_stats import worst

    rows, cards = [], []
    (out / "gallery").mkdir(parents=True, exist_ok=True)
    for e in errs:
        for k, (_, r) in enumerate(worst(e, n).iterrows(), start=1):
            png, why = _photo(e, r, images)
            file = None
            if png is not None:
                file = f"gallery/{e.name}-{k:02d}-{r['image_id']}.png"
                atomic_write_bytes(out / file, png)
            cards.append(
                {
                    "run": e.name,
                    "rank": k,
                    "row": r,
                    "uri": _uri(png) if png else None,
                    "why": why,
                    "sources": list(e.sources),
                    "variables": e.variables,
                }
            )
            rows.append(
                {"run": e.name, "rank": k, "thumbnail": file or "", "note": why or "", **{c: r[c] for c in r.index}}
            )
    return pd.DataFrame(rows), cards


def statistics(errs: list, n_boot: int) -> tuple[dict[str, pd.DataFrame], dict[str, bytes]]:
    """The tables (disagreement, meta, confusion, confused pairs) and figures of the runs."""
    from emolog.analysis import error_plots as plots
    from emolog.analysis.error_stats import confused_pairs, confusion, disagreement_stats, meta_ranking

    figures: dict[str, bytes] = {}
    dis, meta, conf, pairs = [], [], [], []
    for e in errs:
        tag = e.name.replace("/", "_")
        for what in e.targets:
            st = disagreement_stats(e, what, n_boot=n_boot)
            if st is None:
                continue
            dis.append(st)
            if "slope" in st:
                d = e.table[[st["x"], st["y"]]].dropna()
                unit = "Jensen-Shannon divergence, nats" if what == "class" else "absolute difference"
                ylabel = "scene's loss (-ln P(label))" if what == "class" else f"scene's |error| on {what}"
                figures[f"disagreement-{tag}-{what}.png"] = plots.scatter(
                    d[st["x"]].to_numpy(float),
                    d[st["y"]].to_numpy(float),
                    st,
                    f"face 1 vs scene disagreement ({unit})",
                    ylabel,
                    f"{e.name}: {what}",
                )
            meta.append(meta_ranking(e, what, n_boot=n_boot))
        cm = confusion(e)
        conf += [
            {"run": e.name, "true": a, "pred": b, "count": int(cm[i, j])}
            for i, a in enumerate(e.classes)
            for j, b in enumerate(e.classes)
        ]
        pairs.append(confused_pairs(e))
        figures[f"confusion-{tag}.png"] = plots.confusion(cm, e.classes, e.name)
        for v in e.variables:
            figures[f"predicted-{tag}-{v}.png"] = plots.predicted_vs_true(
                e.table[v].to_numpy(float), e.table[f"pred_{v}"].to_numpy(float), v, e.name
            )
    tables = {
        "disagreement.csv": pd.DataFrame(dis),
        "meta.csv": pd.concat(meta, ignore_index=True) if meta else pd.DataFrame(),
        "confusion.csv": pd.DataFrame(conf),
        "confused_pairs.csv": pd.concat(pairs, ignore_index=True),
    }
    return tables, figures


def analyse(
    paths: list[str | Path], out: str | Path, images: str | Path | None = None, n_worst: int = WORST, n_boot: int = 1000
) -> dict:
    """Analyse the runs (``expand``) into ``out``; returns analysis.json's dict."""
    from emolog.analysis import error_plots as plots
    from emolog.analysis.error_stats import overlap_table, wrong_in_k
    from emolog.analysis.errors import run_errors

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = expand(paths)
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # two runs of one name (two experiments): their parent's name too
        names = [f"{r.parent.parent.name}/{r.name}" for r in runs]
    errs = [run_errors(r, n) for r, n in zip(runs, names)]
    _csv(pd.concat([e.table.assign(run=e.name) for e in errs], ignore_index=True), out / "errors.csv")
    summary: dict = {"runs": [str(r) for r in runs], "names": names, "files": ["errors.csv"]}
    tables, figures = statistics(errs, n_boot)
    if len(errs) > 1:
        ov, k = overlap_table(errs), wrong_in_k(errs)
        tables.update({"overlap.csv": ov, "wrong_in_k.csv": k})
        figures["overlap.png"] = plots.overlap(ov, k, [e.name for e in errs])
    for name, df in tables.items():
        _csv(df, out / name)
    gal, cards = gallery(errs, out, n_worst, images)
    _csv(gal, out / "gallery.csv")
    for name, png in figures.items():
        atomic_write_bytes(out / name, png)
    atomic_write_text(out / "analysis.html", page(errs, tables, figures, cards, len(errs) > 1))
    summary["files"] += [
        *tables,
        "gallery.csv",
        *figures,
        "analysis.html",
        *sorted(str(p.relative_to(out)) for p in (out / "gallery").glob("*.png")),
    ]
    summary["disagreement"] = [
        {k: v for k, v in r.items() if not (isinstance(v, float) and np.isnan(v))}
        for r in tables["disagreement.csv"].to_dict("records")
    ]
    atomic_write_text(out / "analysis.json", json.dumps(summary, indent=1, default=str))
    return summary


def _table(df: pd.DataFrame, cls: str = "") -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="–", classes=cls, border=0)


def _num(v: object) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{float(v):.2f}"


def _card(c: dict) -> str:
    """One gallery card: the photo (or why there is none), what the run and each source predicted."""
    r, vs = c["row"], c["variables"]
    lines = [("run", r["pred"], r["p_label"], [r[f"pred_{v}"] for v in vs])]
    lines += [
        (s, r[f"pred_{s}"], r[f"p_label_{s}"], [r.get(f"pred_{s}_{v}") for v in vs])
        for s in c["sources"]
        if r.get(f"pred_{s}", "") != ""
    ]
    head = "".join(f"<th>{h}</th>" for h in ["source", "predicted", "P(true)", *vs])
    body = "".join(
        f"<tr><td>{s}</td><td>{html.escape(str(p))}</td><td>{_num(q)}</td>"
        + "".join(f"<td>{_num(x)}</td>" for x in xs)
        + "</tr>"
        for s, p, q, xs in lines
    )
    img = (
        f'<img class="thumb" alt="worst {html.escape(c["run"])} {r["image_id"]}" src="{c["uri"]}">'
        if c["uri"]
        else f'<div class="nophoto">{html.escape(c["why"] or "no photo")}</div>'
    )
    truth = f"true {html.escape(str(r['label']))}" + "".join(f", {v} {r[v]:g}" for v in vs)
    return (
        f'<figure class="card">{img}<figcaption>#{c["rank"]} {html.escape(c["run"])} · {r["image_id"]} · '
        f"{html.escape(str(r['rel_path']))} · {truth} · {int(r['n_faces'])} face(s)</figcaption>"
        f'<table class="small"><tr>{head}</tr>{body}</table></figure>'
    )


def page(
    errs: list, tables: dict[str, pd.DataFrame], figures: dict[str, bytes], cards: list[dict], several: bool
) -> str:
    """analysis.html: every table and figure, the gallery's photos embedded."""

    def figs(prefix: str) -> str:
        return "".join(
            f'<img class="fig" alt="{html.escape(n)}" src="{_uri(p)}">'
            for n, p in figures.items()
            if n.startswith(prefix)
        )

    dis = tables["disagreement.csv"]
    cols = [
        c
        for c in (
            "run",
            "target",
            "n",
            "slope",
            "pearson",
            "pearson_lo",
            "pearson_hi",
            "spearman",
            "t1",
            "t2",
            "scene_error_small",
            "scene_error_medium",
            "scene_error_big",
            "faces_matter",
        )
        if c in dis
    ]
    parts = [
        f"<h1>emolog analyse: {len(errs)} run(s)</h1>",
        "<p>Runs: " + ", ".join(html.escape(e.name) for e in errs) + "</p>",
        "<h2>Errors and the face-scene disagreement</h2><p>Per image with a face: the scene's own error "
        "against how much face 1 and the scene disagree. A rising line (r &gt; 0, interval above 0) means the "
        "faces matter where they disagree; no trend means they do not. t1, t2: suggested thresholds between "
        "small, medium and big disagreement (where the scene's mean error changes most).</p>",
        _table(dis[cols]) if len(dis) else "<p>No run has both a scene and a face source.</p>",
        figs("disagreement-"),
        "<h2>Errors against meta-information</h2><p>Ranked by mutual information; Spearman's rho with a "
        "95% bootstrap interval.</p>",
        _table(tables["meta.csv"]),
        "<h2>Confusion</h2>",
        _table(tables["confused_pairs.csv"]),
        figs("confusion-"),
        figs("predicted-"),
    ]
    if several:
        parts += ["<h2>Do the runs err on the same images?</h2>", figs("overlap")]
    parts += ['<h2>Worst errors</h2><div class="gallery">', *map(_card, cards), "</div>"]
    style = (
        "body{font-family:sans-serif;max-width:1280px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
        "td,th{padding:2px 6px;border-bottom:1px solid #ddd}img.fig{max-width:620px;margin:4px}"
        ".gallery{display:flex;flex-wrap:wrap;gap:12px}.card{width:380px;margin:0;border:1px solid #ccc;"
        "padding:6px}.thumb{max-width:100%}.nophoto{height:80px;background:#eee;color:#555;padding:8px}"
        "figcaption{font-size:12px}.small{font-size:11px}"
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>emolog analyse</title><style>{style}</style>'
        "</head><body>" + "\n".join(parts) + "</body></html>\n"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run directories, or experiment directories (their base runs of the first seed)",
    )
    parser.add_argument("--out", required=True, help="output directory (RUN/analysis is what the report shows)")
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="image root of the gallery's photos, when index.csv's "
        "paths are not relative to the root `emolog index` recorded",
    )
    parser.add_argument("--worst", type=int, default=WORST, help=f"gallery images per run (default {WORST})")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of each interval")


def run(args: argparse.Namespace) -> int:
    if args.worst < 1 or args.n_boot < 1:
        raise UsageError("--worst and --n-boot must be at least 1")
    s = analyse(args.runs, args.out, args.images, args.worst, args.n_boot)
    for d in s["disagreement"]:
        if "pearson" in d:
            verdict = "faces matter" if d["faces_matter"] else "no evidence that faces matter"
            print(
                f"{d['run']} {d['target']}: scene error vs face-scene disagreement r = {d['pearson']:.3f} "
                f"[{d['pearson_lo']:.3f}, {d['pearson_hi']:.3f}] ({verdict}); thresholds {d['t1']:.3g}, "
                f"{d['t2']:.3g}"
            )
    print(f"wrote {len(s['files'])} files to {args.out} (open {Path(args.out) / 'analysis.html'})")
    return 0
