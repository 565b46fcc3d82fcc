"""The sections of one run's report: results, weights and curves, confusion, F1, what trains,
flips. The building blocks are in ``page``; trust, comparison, memorisation and the gallery
in ``trust_section`` and ``experiment_sections``.
"""

from __future__ import annotations

import numpy as np

from emolog.labels import EMO8
from emolog.report import plots
from emolog.runs.record import RunFiles
from emolog.report.page import Cell, Figure, Preds, Section, Table, fmt, num, read_preds, slug
from emolog.report.stats import bootstrap_per_class_f1
from emolog.metrics.classification import interval_covers

__all__ = ["METRICS", "read_preds", "slug", "summary_section", "weights_section", "confusion_section",
           "f1_section", "changes_section", "flips_section", "chosen_epoch", "t_table"]

METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "weighted_f1", "average_precision", "uar", "nll", "ece", "n")

# Quoted, not measured here: the original thesis code's results files (FindingEmo, Emo8 test set
# of 5,174 images), the published figures an Emo8 run compares with.
EMO8_REFERENCE = ("for comparison, quoted from the original thesis code's results files (FindingEmo, Emo8, "
                  "5,174 test images): DeepProbLog program accuracy 0.411, weighted F1 0.356, macro-F1 0.244; "
                  "the same MLP in plain torch 0.402 / 0.339 / 0.237; majority class 0.274 accuracy.")


def chosen_epoch(results: dict | None) -> int | None:
    """The epoch whose weights the run kept when early stopping chose one before the last
    epoch run (results.json ``best_epoch`` < ``epochs_run``), else None."""
    res = results or {}
    best, ran = res.get("best_epoch"), res.get("epochs_run")
    return int(best) if best is not None and ran is not None and int(best) < int(ran) else None


def summary_section(run: RunFiles) -> Section:
    sec = Section("summary", "Results",
                  "Test and validation metrics after training, and on the test set before training "
                  "(epoch 0). macro-F1 and UAR weigh every class equally, weighted F1 weighs each "
                  "class by its test images (FindingEmo's figure), average precision is the area "
                  "under each class's one-vs-rest precision-recall curve (macro: their mean); NLL "
                  "and ECE measure calibration (lower is better).")
    res = run.results
    if res is None:
        sec.notes.append(run.note("results.json"))
        return sec
    if res.get("sanity_warning"):
        sec.notes.append(str(res["sanity_warning"]))
    kept = chosen_epoch(res)
    if kept is not None:
        sec.notes.append(f"Early stopping chose epoch {kept} of {res.get('epochs_run')} run: the metrics and "
                         f"weights below are those of epoch {kept} (best validation loss); the curves "
                         "show every epoch run, with the kept one marked.")
    m = res.get("metrics") or {}
    before = (res.get("metrics_before") or {}).get("test") or {}
    cols = [("test", m.get("test") or {}, "m-test"), ("test before training", before, "m-before-test"),
            ("val", m.get("val") or {}, "m-val")]
    rows = [[Cell(k)] + [num(mm.get(k), f"{pre}-{k}") for _, mm, pre in cols] for k in METRICS]
    sec.tables.append(Table(["metric"] + [c for c, _, _ in cols], rows))
    facts = [("regime", res.get("regime")), ("seed", res.get("seed")), ("program", res.get("program")),
             ("semantics", res.get("semantics")), ("epochs run", res.get("epochs_run")),
             ("epoch kept", res.get("best_epoch")), ("training time (s)", res.get("train_time_s"))]
    sec.tables.append(Table(["run", "value"], [[Cell(k), num(v, f"run-{slug(k)}", 1)] for k, v in facts]))
    if run.sources:  # a program without a source choice (kind "none") has no source weights
        w, true = res.get("source_weights") or {}, res.get("true_source_weights")
        wrows = [[Cell(s), num(w.get(s), f"w-{s}")] + ([num(true.get(s), f"wtrue-{s}")] if true else [])
                 for s in run.sources]
        sec.tables.append(Table(["source", "learned P(source)"] + (["true"] if true else []), wrows))
    if run.t_values:
        sec.tables.append(t_table(run.t_values, res.get("true_t_values")))
    per = (m.get("test") or {}).get("per_class") or {}
    if tuple(per) == EMO8:
        sec.notes.append(EMO8_REFERENCE)
    if per:  # rows follow the run's own label set (7 for BASIC7, 8 for Emo8, ...)
        keys = ("precision", "recall", "f1", "average_precision", "support")
        sec.tables.append(Table(["class"] + [k.replace("_", " ") for k in keys],
                                [[Cell(c)] + [num(v.get(k), f"pc-{slug(c)}-{k}") for k in keys] for c, v in per.items()],
                                "test set, per class"))
    return sec


def t_table(learned: dict[str, float], true: dict[str, float] | None) -> Table:
    """The program's logic parameters, one row per ``t()`` by its readable name (results.json
    ``t_values``), with the simulated truth where it is known."""
    true = true or {}
    has_true = any(k in true for k in learned)
    rows = [[Cell(k), num(v, f"t-{slug(k)}", 4)]
            + ([num(true.get(k), f"ttrue-{slug(k)}", 4)] if has_true else []) for k, v in learned.items()]
    return Table(["parameter", "learned"] + (["true"] if has_true else []), rows,
                 f"logic parameters: {len(learned)} t() values")


def curves_section(run: RunFiles) -> Section:
    """Training curves only: the section of a program without a source choice."""
    sec = Section("curves", "Training curves",
                  "The program has no source choice, so there are no source weights. The loss and "
                  "validation curves show overfitting as a falling training loss with a rising "
                  "validation loss.")
    hist, kept = run.get("history.csv"), chosen_epoch(run.results)
    if hist is None:
        sec.notes.append(run.note("history.csv"))
    else:
        sec.figures.append(Figure(plots.training_curves(hist, kept), "loss and validation metrics"))
    return sec


def weights_section(run: RunFiles) -> Section:
    sec = Section("weights", "Source weights and training curves",
                  "The logic's annotated disjunction picks one source per image; the first plot shows "
                  "the learned probability of each source per epoch (dashed: the true weights of "
                  "simulated data). A weight that drifts to the scene on a small training set can be "
                  "memorisation (an experiment's memorisation curve tells). The loss and validation curves show "
                  "overfitting as a falling training loss with a rising validation loss.")
    res, hist = run.results or {}, run.get("history.csv")
    true = res.get("true_source_weights")
    kept = chosen_epoch(res)
    if kept is not None:
        sec.notes.append(f"Early stopping kept epoch {kept} (dotted line); the curves go on to the last "
                         f"epoch run, {res.get('epochs_run')}.")
    if hist is None:
        sec.notes.append(run.note("history.csv"))
    else:
        sec.figures.append(Figure(plots.weight_trajectories(hist, true, kept, run.sources), "source weights per epoch"))
        sec.figures.append(Figure(plots.training_curves(hist, kept), "loss and validation metrics"))
    if run.results is None:
        sec.notes.append(run.note("results.json"))
    elif true:
        sec.figures.append(Figure(plots.learned_vs_true(res.get("source_weights") or {}, true, run.sources),
                                  "learned vs true source weights"))
    else:
        sec.notes.append("results.json has no true_source_weights (real data): no learned-vs-true comparison.")
    return sec


def confusion_section(run: RunFiles) -> Section:
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
            sec.figures.append(Figure(plots.confusion(cm, cls, title), title))
    return sec


def f1_table(per: dict[str, dict[str, np.ndarray]], classes: list[str]) -> Table:
    rows = [[Cell(c)] + [Cell(f"{fmt(r['f1'][k])} [{fmt(r['lo'][k])}, {fmt(r['hi'][k])}]", float(r["f1"][k]),
                              f"f1-{slug(name)}-{slug(c)}", numeric=True) for name, r in per.items()]
            for k, c in enumerate(classes)]
    return Table(["class"] + [f"{n}: F1 [95% CI]" for n in per], rows)


def f1_section(runs_by_regime: dict[str, list[RunFiles]], preds: dict[str, Preds | None],
               classes: list[str], with_before: bool) -> Section:
    sec = Section("f1", "Per-class F1 with confidence intervals",
                  "F1 per emotion on the test set; with several seeds, F1 is their mean. The interval "
                  "is a 95% percentile bootstrap (1000 resamples) over the test images and, with "
                  "several seeds, over the seeds too (each resample draws seeds and images), so it "
                  "counts training variance; with one seed it covers test-set sampling only. "
                  "Overlapping intervals mean the data cannot tell the two apart.")
    per: dict[str, dict[str, np.ndarray]] = {}
    seeds: dict[str, int] = {}
    for regime, runs in runs_by_regime.items():
        got = [(r, preds.get(r.name)) for r in runs]
        missing = [r.name for r, pr in got if pr is None]
        if missing:
            sec.notes.append(f"{regime}: no usable predictions.csv in {', '.join(missing)}")
        usable = [pr for _, pr in got if pr is not None and len(pr.y)]
        if not usable:
            continue

        if with_before and all(u.p_before is not None for u in usable):
            per["before training"] = bootstrap_per_class_f1(
                [(u.df["image_id"].to_numpy(), u.y, u.p_before) for u in usable], len(classes))
        per[regime if not with_before else "after training"] = bootstrap_per_class_f1(
            [(u.df["image_id"].to_numpy(), u.y, u.p) for u in usable], len(classes))
        seeds[regime] = len(usable)
    if per:
        sec.figures.append(Figure(plots.f1_with_ci(per, classes), "per-class F1 with CI", wide=True))
        sec.tables.append(f1_table(per, classes))
        sec.notes.extend(f"{regime}: {interval_covers(n)}." for regime, n in seeds.items())
    return sec


def changes_section(run: RunFiles) -> Section:
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
        sec.figures.append(Figure(plots.layer_bars(layers), "per-layer change", wide=True))
        # optional keys beyond the contract: frozen layers still get gradients ("trainable"), and a
        # layer initialised to 0 has no relative change, only an absolute one ("abs_change")
        trainable = any("trainable" in layer for layer in layers)
        absolute = any("abs_change" in layer for layer in layers)
        sec.tables.append(Table(["net", "layer", "parameters"] + (["trainable"] if trainable else [])
                                + ["relative change"] + (["absolute change"] if absolute else [])
                                + ["cosine to init", "gradient norm"],
                                [[Cell(str(layer.get("net"))),
                                  Cell(plots.layer_name(layer).removeprefix(f"{layer.get('net')}.")),
                                  num(layer.get("n_params"))]
                                 + ([Cell(fmt(layer.get("trainable")))] if trainable else [])
                                 + [num(layer.get("rel_change"), digits=4)]
                                 + ([num(layer.get("abs_change"), digits=4)] if absolute else [])
                                 + [num(layer.get("cosine_to_init"), digits=4), num(layer.get("grad_norm"), digits=4)]
                                 for layer in layers]))
    if hist is not None and any(c.startswith("grad_norm_") for c in hist.columns):
        sec.figures.append(Figure(plots.grad_norm_history(hist), "gradient norm per epoch"))
    elif hist is None:
        sec.notes.append(run.note("history.csv"))
    return sec


def flips_section(run: RunFiles, classes: list[str]) -> Section:
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


