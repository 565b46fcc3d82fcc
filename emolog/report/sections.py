"""The report's sections, as plain data for the Jinja2 templates (HTML and Markdown).

A section has a title, one paragraph on how to read it, figures (data URIs), tables and
notes. A section whose input is absent or unreadable carries a one-line note saying so,
never nothing. Numbers the browser test checks sit in cells with a stable ``id`` and the
exact value in ``data-value``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from emolog.analysis.trust import TrustError, trust_agreement
from emolog.report import plots
from emolog.report.inputs import SOURCES, ExperimentInputs, RunInputs, resolve
from emolog.report.stats import bootstrap_per_class_f1, class_indices, trust_by_face_count, trust_by_face_size

METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "uar", "nll", "ece", "n")


@dataclass
class Cell:
    text: str
    value: Any = None  # exact value for data-value (numbers the test compares)
    id: str | None = None
    numeric: bool = False  # right-aligned, also when the number is missing ("–")


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""

    @property
    def numeric_columns(self) -> list[bool]:
        """Per column: every cell is a number (its header is then right-aligned too)."""
        return [bool(self.rows) and all(r[k].numeric for r in self.rows) for k in range(len(self.columns))]


@dataclass
class Figure:
    uri: str
    alt: str
    wide: bool = False  # spans both columns
    caption: str = ""


@dataclass
class Section:
    id: str
    title: str
    how: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fmt(v: Any, digits: int = 3) -> str:
    """Numbers for humans: floats to ``digits`` decimals, ints as is, missing as a dash."""
    if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.{digits}f}"
    return str(v)


def num(v: Any, id_: str | None = None, digits: int = 3) -> Cell:
    """A cell holding a number: formatted text, the exact value kept for data-value."""
    exact = v.item() if isinstance(v, np.generic) else v
    is_num = isinstance(exact, (int, float)) and not isinstance(exact, bool)
    return Cell(fmt(v, digits), exact if is_num else None, id_, numeric=is_num or v is None)


def slug(s: str) -> str:
    """An id-safe name: runs of anything but letters, digits and ``_`` become one ``-``
    (``baseline: majority`` -> ``baseline-majority``, ``macro_f1`` stays)."""
    return re.sub(r"[^0-9A-Za-z_]+", "-", str(s)).strip("-").lower()


def df_table(df: pd.DataFrame, caption: str = "", id_prefix: str | None = None, key: str | None = None) -> Table:
    """A DataFrame as a Table; with ``id_prefix`` and ``key`` every numeric cell gets the id
    ``<prefix>-<slug(row key)>-<slug(column)>``."""
    rows = []
    for _, r in df.iterrows():
        row = []
        for c in df.columns:
            v = r[c]
            cid = f"{id_prefix}-{slug(r[key])}-{slug(c)}" if id_prefix and key else None
            row.append(num(v, cid) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                       else Cell(fmt(v)))
        rows.append(row)
    return Table([str(c) for c in df.columns], rows, caption)


def guard(section: Section, what: str, fn: Callable[[], None]) -> None:
    """Run one part of a section; a failure becomes a note naming the part, the rest renders."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - one bad input must not take down the whole report
        section.notes.append(f"{what} could not be shown: {type(e).__name__}: {e}")


# ----------------------------------------------------------------------------- provenance


def about_line(data: dict, fingerprint: str | None, n_test: int | None) -> str:
    """The report's first line: real or simulated, data set, split, cache fingerprint."""
    kind = data.get("kind") or "unknown kind of"
    dataset = data.get("dataset") or "unnamed data set"
    split = data.get("split") or "split file not recorded"
    n = f" ({n_test} images)" if n_test is not None else ""
    fp = fingerprint or "not recorded"
    return f"About: {kind} data · data set {dataset} · test split{n} of {split} · cache fingerprint {fp}"


def cache_fingerprint(data: dict, config: dict | None, run_dir: Path) -> str | None:
    """The cache's fingerprint hash: from config.json's provenance, else the cache manifest."""
    prov = (config or {}).get("provenance") or {}
    if prov.get("cache_fingerprint_hash"):
        return str(prov["cache_fingerprint_hash"])
    manifest = resolve(data.get("cache") or "", run_dir) / "manifest.json"
    if data.get("cache") and manifest.is_file():
        return str(json.loads(manifest.read_text()).get("fingerprint_hash"))
    return None


# ----------------------------------------------------------------------------- run parts


@dataclass
class Preds:
    """predictions.csv of one run with label / prediction indices."""

    df: pd.DataFrame
    y: np.ndarray
    p: np.ndarray
    p_before: np.ndarray | None


def read_preds(run: RunInputs) -> tuple[Preds | None, str | None]:
    df = run.get("predictions.csv")
    if df is None:
        return None, run.note("predictions.csv")
    try:
        cls = run.classes
        y = class_indices(df["label"], cls, f"{run.dir}/predictions.csv column label")
        p = class_indices(df["pred"], cls, f"{run.dir}/predictions.csv column pred")
        pb = class_indices(df["pred_before"], cls, f"{run.dir}/predictions.csv column pred_before") \
            if "pred_before" in df.columns else None
    except ValueError as e:
        return None, str(e)
    return Preds(df, y, p, pb), None


def summary_section(run: RunInputs) -> Section:
    sec = Section("summary", "Results",
                  "Test and validation metrics after training, and on the test set before training "
                  "(epoch 0). macro-F1 and UAR weigh every class equally; NLL and ECE measure "
                  "calibration (lower is better).")
    res = run.results
    if res is None:
        sec.notes.append(run.note("results.json"))
        return sec
    if res.get("sanity_warning"):
        sec.notes.append(str(res["sanity_warning"]))
    m = res.get("metrics") or {}
    before = (res.get("metrics_before") or {}).get("test") or {}
    cols = [("test", m.get("test") or {}, "m-test"), ("test before training", before, "m-before-test"),
            ("val", m.get("val") or {}, "m-val")]
    rows = [[Cell(k)] + [num(mm.get(k), f"{pre}-{k}") for _, mm, pre in cols] for k in METRICS]
    sec.tables.append(Table(["metric"] + [c for c, _, _ in cols], rows))
    facts = [("regime", res.get("regime")), ("seed", res.get("seed")), ("program", res.get("program")),
             ("semantics", res.get("semantics")), ("epochs run", res.get("epochs_run")),
             ("training time (s)", res.get("train_time_s"))]
    sec.tables.append(Table(["run", "value"], [[Cell(k), num(v, f"run-{slug(k)}", 1)] for k, v in facts]))
    w, true = res.get("source_weights") or {}, res.get("true_source_weights")
    wrows = [[Cell(s), num(w.get(s), f"w-{s}")] + ([num(true.get(s), f"wtrue-{s}")] if true else [])
             for s in SOURCES]
    sec.tables.append(Table(["source", "learned P(source)"] + (["true"] if true else []), wrows))
    return sec


def weights_section(run: RunInputs) -> Section:
    sec = Section("weights", "Source weights and training curves",
                  "The logic's annotated disjunction picks one source per image; the first plot shows "
                  "the learned probability of each source per epoch (dashed: the true weights of "
                  "simulated data). A weight that drifts to the scene on a small training set can be "
                  "memorisation (see the memorisation curve). The loss and validation curves show "
                  "overfitting as a falling training loss with a rising validation loss.")
    res, hist = run.results or {}, run.get("history.csv")
    true = res.get("true_source_weights")
    if hist is None:
        sec.notes.append(run.note("history.csv"))
    else:
        guard(sec, "the weight trajectories", lambda: sec.figures.append(
            Figure(plots.weight_trajectories(hist, true), "source weights per epoch")))
        guard(sec, "the training curves", lambda: sec.figures.append(
            Figure(plots.training_curves(hist), "loss and validation metrics")))
    if run.results is None:
        sec.notes.append(run.note("results.json"))
    elif true:
        guard(sec, "learned vs true weights", lambda: sec.figures.append(
            Figure(plots.learned_vs_true(res.get("source_weights") or {}, true), "learned vs true source weights")))
    else:
        sec.notes.append("results.json has no true_source_weights (real data): no learned-vs-true comparison.")
    return sec


def confusion_section(run: RunInputs) -> Section:
    sec = Section("confusion", "Confusion matrices",
                  "Rows are the true class, columns the predicted class; colour is the row share "
                  "(recall), numbers are image counts. Left: before training, right: after.")
    res = run.results
    if res is None:
        sec.notes.append(run.note("results.json"))
        return sec
    cls = run.classes
    before = ((res.get("metrics_before") or {}).get("test") or {}).get("confusion")
    after = (((res.get("metrics") or {}).get("test")) or {}).get("confusion")
    for cm, title in ((before, "test, before training"), (after, "test, after training")):
        if cm is None:
            sec.notes.append(f"results.json holds no confusion matrix for {title}.")
        else:
            guard(sec, f"the confusion matrix ({title})",
                   lambda cm=cm, title=title: sec.figures.append(Figure(plots.confusion(cm, cls, title), title)))
    return sec


def f1_table(per: dict[str, dict[str, np.ndarray]], classes: list[str]) -> Table:
    rows = [[Cell(c)] + [Cell(f"{fmt(r['f1'][k])} [{fmt(r['lo'][k])}, {fmt(r['hi'][k])}]", float(r["f1"][k]),
                              f"f1-{slug(name)}-{slug(c)}", numeric=True) for name, r in per.items()]
            for k, c in enumerate(classes)]
    return Table(["class"] + [f"{n}: F1 [95% CI]" for n in per], rows)


def f1_section(runs_by_regime: dict[str, list[RunInputs]], preds: dict[str, Preds | None],
               classes: list[str], with_before: bool) -> Section:
    sec = Section("f1", "Per-class F1 with confidence intervals",
                  "F1 per emotion on the test set. The interval is a 95% percentile bootstrap over "
                  "test images (1000 resamples); with several seeds, F1 is their mean and every "
                  "resample draws the same images for each seed. Overlapping intervals mean the "
                  "data cannot tell the two apart.")
    per: dict[str, dict[str, np.ndarray]] = {}
    for regime, runs in runs_by_regime.items():
        got = [(r, preds.get(r.name)) for r in runs]
        missing = [r.name for r, pr in got if pr is None]
        if missing:
            sec.notes.append(f"{regime}: no usable predictions.csv in {', '.join(missing)}")
        usable = [pr for _, pr in got if pr is not None and len(pr.y)]
        if not usable:
            continue

        def add(usable: list[Preds] = usable, regime: str = regime) -> None:
            if with_before and all(u.p_before is not None for u in usable):
                per["before training"] = bootstrap_per_class_f1(
                    [(u.df["image_id"].to_numpy(), u.y, u.p_before) for u in usable], len(classes))
            per[regime if not with_before else "after training"] = bootstrap_per_class_f1(
                [(u.df["image_id"].to_numpy(), u.y, u.p) for u in usable], len(classes))

        guard(sec, f"{regime}'s F1", add)
    if per:
        guard(sec, "the F1 plot", lambda: sec.figures.append(
            Figure(plots.f1_with_ci(per, classes), "per-class F1 with CI", wide=True)))
        sec.tables.append(f1_table(per, classes))
    return sec


def changes_section(run: RunInputs) -> Section:
    sec = Section("changes", "Which parameters really train",
                  "Per layer (blue: trained network layers, orange: logic parameters, grey: layers the "
                  "regime keeps frozen): how far the weights moved from their initial values, relative "
                  "to their size, and the mean gradient norm. A frozen layer still receives a gradient "
                  "but does not move; a trained layer with a large gradient and little change is held "
                  "back by its learning rate.")
    ch, hist = run.get("changes.json"), run.get("history.csv")
    if ch is None:
        sec.notes.append(run.note("changes.json"))
    elif not ch.get("layers"):
        sec.notes.append("changes.json lists no layers.")
    else:
        layers = ch["layers"]
        guard(sec, "the per-layer bars", lambda: sec.figures.append(Figure(plots.layer_bars(layers), "per-layer change", wide=True)))
        # optional keys beyond the contract: frozen layers still get gradients ("trainable"), and a
        # layer initialised to 0 has no relative change, only an absolute one ("abs_change")
        trainable = any("trainable" in l for l in layers)
        absolute = any("abs_change" in l for l in layers)
        sec.tables.append(Table(["net", "layer", "parameters"] + (["trainable"] if trainable else [])
                                + ["relative change"] + (["absolute change"] if absolute else [])
                                + ["cosine to init", "gradient norm"],
                                [[Cell(str(l.get("net"))), Cell(str(l.get("name"))), num(l.get("n_params"))]
                                 + ([Cell(fmt(l.get("trainable")))] if trainable else [])
                                 + [num(l.get("rel_change"), digits=4)]
                                 + ([num(l.get("abs_change"), digits=4)] if absolute else [])
                                 + [num(l.get("cosine_to_init"), digits=4), num(l.get("grad_norm"), digits=4)]
                                 for l in layers]))
    if hist is not None and any(c.startswith("grad_norm_") for c in hist.columns):
        guard(sec, "the gradient-norm history", lambda: sec.figures.append(Figure(plots.grad_norm_history(hist), "gradient norm per epoch")))
    elif hist is None:
        sec.notes.append(run.note("history.csv"))
    return sec


def flips_section(run: RunInputs, classes: list[str]) -> Section:
    sec = Section("flips", "Flipped predictions",
                  "Test images whose predicted class changed between before and after training, per "
                  "true class: green became correct, red became wrong, grey changed from one wrong "
                  "class to another.")
    ch = run.get("changes.json")
    flips = (ch or {}).get("flips")
    if ch is None:
        sec.notes.append(run.note("changes.json"))
    elif not flips:
        sec.notes.append("changes.json has no flips entry.")
    else:
        pc = flips.get("per_class") or {}
        if flips.get("n_flipped"):
            sec.figures.append(Figure(plots.flips(pc, classes), "flipped predictions per class"))
        else:
            sec.notes.append(f"No test prediction changed during training (0 of {flips.get('n')}).")
        rows = [[Cell(c)] + [num((pc.get(c) or {}).get(k)) for k in ("to_correct", "to_wrong", "other")] for c in classes]
        rows.append([Cell("all")] + [num(sum(int((pc.get(c) or {}).get(k, 0)) for c in classes))
                                     for k in ("to_correct", "to_wrong", "other")])
        sec.tables.append(Table(["true class", "to correct", "to wrong", "other"], rows,
                                f"{flips.get('n_flipped')} of {flips.get('n')} test predictions flipped"))
    return sec


def annotator_agreement(pr: Preds, index_path: str | None, run_dir: Path) -> tuple[Table | None, str]:
    """The run's per-image face trust against FindingEmo's ``dec_factors`` (analysis.trust):
    (the agreement table or None, a note saying what was compared or why nothing was)."""
    if not index_path:
        return None, "no index recorded in the run, so no dec_factors to compare with"
    path = resolve(index_path, run_dir)
    if not path.is_file():
        return None, f"the run's index {path} is not here: no dec_factors to compare with"
    index = pd.read_csv(path, dtype={"image_id": str, "dec_factors": str})
    if "dec_factors" not in index.columns or not index["dec_factors"].fillna("").str.strip().any():
        return None, (f"{path.name} has no dec_factors (simulated data has none): the comparison of "
                      "per-image trust with FindingEmo's annotators needs an index made by "
                      "`emolog index findingemo`")
    try:
        table, counts = trust_agreement(pr.df, index)
    except TrustError as e:
        return None, f"dec_factors comparison not possible: {e}"
    note = (f"{counts['n_joined']} of {counts['n_predictions']} test images have dec_factors "
            f"({len(counts['no_annotation'])} without, {len(counts['not_in_index'])} not in the index)")
    return df_table(table, "face trust (1 - w_scene) against the annotators' deciding factors"), note


def trust_section(preds: dict[str, Preds | None], notes: list[str],
                  runs: dict[str, RunInputs] | None = None) -> Section:
    sec = Section("trust", "Trust: faces vs scene",
                  "How much the model relies on the faces versus the scene, per number of detected "
                  "faces and per size of the largest face (share of the image area). Posterior: "
                  "mean P(source | label, evidence), i.e. which source explained the true label; "
                  "weight: mean per-image source probability (constant unless the program is gated). "
                  "Faces = sum over the face slots. On FindingEmo, the face trust 1 - w_scene is also "
                  "compared with what the annotators named as deciding (dec_factors: facial "
                  "expression vs context): agreement at 0.5, Cohen's kappa and AUC, overall, per "
                  "label and per face count.")
    sec.notes.extend(notes)
    by_n_all, by_size_all = [], []
    agreement_notes: dict[str, list[str]] = {}   # note -> runs (runs sharing one index say it once)
    for name, pr in preds.items():
        if pr is None:
            continue
        label = f" ({name})" if len(preds) > 1 else ""
        missing = [c for c in ("n_faces", "max_face_area") if c not in pr.df.columns]
        if missing:
            sec.notes.append(f"{name}: predictions.csv lacks {missing}")
            continue

        def add(pr: Preds = pr, name: str = name, label: str = label) -> None:
            by_n = trust_by_face_count(pr.df, pr.y, pr.p)
            by_size = trust_by_face_size(pr.df, pr.y, pr.p)
            sec.figures.append(Figure(plots.trust_bars(by_n, "Per face count" + label, "detected faces"), "trust per face count"))
            sec.figures.append(Figure(plots.trust_bars(by_size, "Per largest-face size" + label, "largest face / image area"),
                                      "trust per face size"))
            by_n_all.append(by_n.rename(columns={"group": "faces"}).assign(run=name))
            by_size_all.append(by_size.rename(columns={"group": "largest face"}).assign(run=name))

        guard(sec, f"the trust tables{label}", add)
        run = (runs or {}).get(name)
        if run is not None:
            def agree(pr: Preds = pr, run: RunInputs = run, name: str = name) -> None:
                table, note = annotator_agreement(pr, run.data.get("index"), run.dir)
                agreement_notes.setdefault(note, []).append(name)
                if table is not None:
                    sec.tables.append(table)
            guard(sec, f"the dec_factors comparison{label}", agree)
    for note, names in agreement_notes.items():
        sec.notes.append(f"dec_factors ({', '.join(names)}): {note}" if len(preds) > 1 else f"dec_factors: {note}")
    for parts, caption in ((by_n_all, "per face count"), (by_size_all, "per largest-face size")):
        if parts:  # one table per grouping; with several runs a leading run column tells them apart
            df = pd.concat(parts, ignore_index=True)
            cols = (["run"] if len(parts) > 1 else []) + [c for c in df.columns if c != "run"]
            sec.tables.append(df_table(df[cols], caption))
    return sec


def memorisation_section(df: pd.DataFrame | None, note: str) -> Section:
    sec = Section("memorisation", "Memorisation curve",
                  "Learned scene weight and train / validation accuracy versus the number of training "
                  "images. When the trainable scene net can memorise a small training set, the scene "
                  "explains every training label, its weight rises and train accuracy far exceeds "
                  "validation accuracy; the gap should close as the training set grows.")
    if df is None:
        sec.notes.append(note)
    else:
        guard(sec, "the memorisation curve", lambda: sec.figures.append(Figure(plots.memorisation(df), "memorisation curve", wide=True)))
        agg = df.groupby(["regime", "n_train"], sort=True).mean(numeric_only=True).reset_index().drop(columns=["seed"], errors="ignore")
        sec.tables.append(df_table(agg, "mean over seeds"))
    return sec


def _key_column(df: pd.DataFrame) -> str:
    """The column naming each row: ``system`` (regimes and baselines) or ``regime``."""
    return "system" if "system" in df.columns else "regime"


def comparison_table(df: pd.DataFrame) -> Table:
    """comparison.csv with each ``<m>_mean`` / ``<m>_std`` pair merged into one "mean ± std" cell
    (id ``cmp-<system>-<m>``, data-value the mean); bookkeeping columns and the source weights
    (the weights section shows them) are left out."""
    key = _key_column(df)
    metrics = [c[: -len("_mean")] for c in df.columns if c.endswith("_mean") and not c.startswith("w_")]
    if key not in df.columns or not metrics:
        return df_table(df, "comparison.csv", "cmp", key if key in df.columns else None)
    skip = {key, "kind", "regime"} | {c for c in df.columns if c.endswith(("_mean", "_std"))}
    extra = [c for c in df.columns if c not in skip and df[c].notna().any()]
    rows = []
    for _, r in df.iterrows():
        row = [Cell(str(r[key]))] + [num(r[c]) if isinstance(r[c], (int, float, np.number)) else Cell(fmt(r[c]))
                                     for c in extra]
        for m in metrics:
            mean, std = r[f"{m}_mean"], r.get(f"{m}_std", np.nan)
            text = fmt(mean) if pd.isna(std) else f"{fmt(mean)} ± {fmt(std)}"
            row.append(Cell(text, None if pd.isna(mean) else float(mean), f"cmp-{slug(r[key])}-{slug(m)}", numeric=True))
        rows.append(row)
    return Table([key] + extra + metrics, rows, "comparison.csv: test metrics, mean ± std over seeds")


def bootstrap_table(df: pd.DataFrame) -> Table:
    """bootstrap.csv (one row per system and metric) as systems x metrics, each cell
    "diff [lo, hi]" with a * when the interval excludes 0 (id ``boot-<system>-<metric>``)."""
    key = _key_column(df)
    if not {key, "metric", "diff", "lo", "hi"} <= set(df.columns):
        return df_table(df, "bootstrap.csv", "boot", key if key in df.columns else None)
    metrics = list(dict.fromkeys(df["metric"]))
    rows = []
    for system, g in df.groupby(key, sort=False):
        by = g.set_index("metric")
        row = [Cell(str(system))]
        for m in metrics:
            if m not in by.index:
                row.append(Cell("–", numeric=True))
                continue
            d, lo, hi = (float(by.at[m, c]) for c in ("diff", "lo", "hi"))
            star = " *" if lo > 0 or hi < 0 else ""
            row.append(Cell(f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]{star}", d, f"boot-{slug(system)}-{slug(m)}", numeric=True))
        rows.append(row)
    ref = f" to {df['reference'].iloc[0]}" if "reference" in df.columns and len(df) else ""
    return Table([key] + [f"Δ {m} [95% CI]" for m in metrics], rows,
                 f"bootstrap.csv: paired difference{ref}; * = the interval excludes 0")


def comparison_section(inp: ExperimentInputs | None) -> Section:
    sec = Section("comparison", "Comparison of regimes",
                  "Per regime and baseline, mean ± standard deviation over seeds of the test metrics "
                  "and learned source weights (comparison.csv), and the paired bootstrap 95% CI of each "
                  "one's difference to the reference regime, logic-only (bootstrap.csv). An interval "
                  "that contains 0 (no *) is no evidence of a difference. For NLL, lower is better.")
    if inp is None:
        sec.notes.append("comparison.csv is absent: a single run has nothing to compare with "
                         "(run `emolog experiment` for a comparison of regimes).")
        return sec
    for name, make in (("comparison.csv", comparison_table), ("bootstrap.csv", bootstrap_table)):
        df = inp.get(name)
        if df is None:
            sec.notes.append(inp.note(name))
        else:
            guard(sec, name, lambda df=df, make=make: sec.tables.append(make(df)))
    return sec


def gallery_section(run: RunInputs | None, pr: Preds | None, classes: list[str], images: str | None) -> Section:
    sec = Section("gallery", "Example images",
                  "Test images with their detected face boxes (largest first, at most 3), each "
                  "source's emotion distribution (rows) and the final prediction; the caption gives "
                  "the source posterior, i.e. which source explained the true label.")
    if run is None or pr is None:
        sec.notes.append("no run with a usable predictions.csv: no examples")
        return sec
    if run.data.get("kind") != "real":
        sec.notes.append(f"Data is {run.data.get('kind') or 'of unknown kind'}: there are no photos to show "
                         "(simulated images exist only as cached feature tensors).")
        return sec
    from emolog.report.gallery import gallery  # imports torch and the cache: only for real photos
    items, notes = gallery(run, pr.y, pr.p, classes, images=images)
    sec.notes.extend(notes)
    sec.figures.extend(Figure(it["uri"], f"example {it['image_id']}", caption=it["caption"]) for it in items)
    return sec
