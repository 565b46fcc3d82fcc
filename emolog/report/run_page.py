"""The report of one run directory: which sections, in which order, and the two only a run's
page shows: its results (metrics, facts, source weights, t() values, per class) and, for a
program without a source choice, its training curves. The sections both pages show are in
``sections``, ``trust_section`` and ``experiment_sections``.

A single run has no comparison of regimes and no memorisation curve: those sections belong to
an experiment's report and are not rendered here. A program without a source choice (results
``kind`` "none") has no source weights and no source posteriors: its report shows training
curves instead of the weights section and no trust section.
"""

from __future__ import annotations

from emolog.labels import EMO8
from emolog.report import plots
from emolog.report.experiment_sections import analysis_section, gallery_section, va_section
from emolog.runs.record import RunFiles
from emolog.report.page import (
    Cell,
    Figure,
    Section,
    Table,
    about_line,
    build_sections,
    cache_fingerprint,
    num,
    read_preds,
    slug,
)
from emolog.report.sections import (
    changes_section,
    chosen_epoch,
    confusion_section,
    f1_section,
    flips_section,
    weights_section,
)
from emolog.report.trust_section import trust_section

METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "weighted_f1", "average_precision", "uar", "nll", "ece", "n")

# Quoted, not measured here: the original thesis code's results files (FindingEmo, Emo8 test set
# of 5,174 images), the published figures an Emo8 run compares with.
EMO8_REFERENCE = (
    "for comparison, quoted from the original thesis code's results files (FindingEmo, Emo8, "
    "5,174 test images): DeepProbLog program accuracy 0.411, weighted F1 0.356, macro-F1 0.244; "
    "the same MLP in plain torch 0.402 / 0.339 / 0.237; majority class 0.274 accuracy."
)


def summary_section(run: RunFiles) -> Section:
    sec = Section(
        "summary",
        "Results",
        "Test and validation metrics after training, and on the test set before training "
        "(epoch 0). macro-F1 and UAR weigh every class equally, weighted F1 weighs each "
        "class by its test images (FindingEmo's figure), average precision is the area "
        "under each class's one-vs-rest precision-recall curve (macro: their mean); NLL "
        "and ECE measure calibration (lower is better).",
    )
    res = run.results
    if res is None:
        sec.notes.append(run.note("results.json"))
        return sec
    sec.notes.extend(_summary_notes(res))
    sec.tables += [_metrics_table(res), _facts_table(res)]
    if run.sources:  # a program without a source choice (kind "none") has no source weights
        sec.tables.append(_source_table(res, run.sources))
    if run.t_values:
        sec.tables.append(t_table(run.t_values, res.get("true_t_values")))
    per = ((res.get("metrics") or {}).get("test") or {}).get("per_class") or {}
    if tuple(per) == EMO8:
        sec.notes.append(EMO8_REFERENCE)
    if per:  # rows follow the run's own label set (7 for BASIC7, 8 for Emo8, ...)
        sec.tables.append(_per_class_table(per))
    return sec


def _summary_notes(res: dict) -> list[str]:
    """The run's sanity warning and the epoch early stopping kept."""
    notes = [str(res["sanity_warning"])] if res.get("sanity_warning") else []
    kept = chosen_epoch(res)
    if kept is not None:
        notes.append(
            f"Early stopping chose epoch {kept} of {res.get('epochs_run')} run: the metrics and "
            f"weights below are those of epoch {kept} (best validation loss); the curves "
            "show every epoch run, with the kept one marked."
        )
    return notes


def _metrics_table(res: dict) -> Table:
    """METRICS on the test set after and before training and on the validation set."""
    m = res.get("metrics") or {}
    before = (res.get("metrics_before") or {}).get("test") or {}
    cols = [
        ("test", m.get("test") or {}, "m-test"),
        ("test before training", before, "m-before-test"),
        ("val", m.get("val") or {}, "m-val"),
    ]
    rows = [[Cell(k)] + [num(mm.get(k), f"{pre}-{k}") for _, mm, pre in cols] for k in METRICS]
    return Table(["metric"] + [c for c, _, _ in cols], rows)


def _facts_table(res: dict) -> Table:
    facts = [
        ("regime", res.get("regime")),
        ("seed", res.get("seed")),
        ("program", res.get("program")),
        ("semantics", res.get("semantics")),
        ("epochs run", res.get("epochs_run")),
        ("epoch kept", res.get("best_epoch")),
        ("training time (s)", res.get("train_time_s")),
    ]
    return Table(["run", "value"], [[Cell(k), num(v, f"run-{slug(k)}", 1)] for k, v in facts])


def _source_table(res: dict, sources: list[str]) -> Table:
    """The learned P(source), beside the true one of simulated data."""
    w, true = res.get("source_weights") or {}, res.get("true_source_weights")
    rows = [[Cell(s), num(w.get(s), f"w-{s}")] + ([num(true.get(s), f"wtrue-{s}")] if true else []) for s in sources]
    return Table(["source", "learned P(source)"] + (["true"] if true else []), rows)


def _per_class_table(per: dict[str, dict]) -> Table:
    keys = ("precision", "recall", "f1", "average_precision", "support")
    return Table(
        ["class"] + [k.replace("_", " ") for k in keys],
        [[Cell(c)] + [num(v.get(k), f"pc-{slug(c)}-{k}") for k in keys] for c, v in per.items()],
        "test set, per class",
    )


def t_table(learned: dict[str, float], true: dict[str, float] | None) -> Table:
    """The program's logic parameters, one row per ``t()`` by its readable name (results.json
    ``t_values``), with the simulated truth where it is known."""
    true = true or {}
    has_true = any(k in true for k in learned)
    rows = [
        [Cell(k), num(v, f"t-{slug(k)}", 4)] + ([num(true.get(k), f"ttrue-{slug(k)}", 4)] if has_true else [])
        for k, v in learned.items()
    ]
    return Table(
        ["parameter", "learned"] + (["true"] if has_true else []), rows, f"logic parameters: {len(learned)} t() values"
    )


def curves_section(run: RunFiles) -> Section:
    """Training curves only: the section of a program without a source choice."""
    sec = Section(
        "curves",
        "Training curves",
        "The program has no source choice, so there are no source weights. The loss and "
        "validation curves show overfitting as a falling training loss with a rising "
        "validation loss.",
    )
    hist, kept = run.get("history.csv"), chosen_epoch(run.results)
    if hist is None:
        sec.notes.append(run.note("history.csv"))
    else:
        sec.figures.append(Figure(plots.training_curves(hist, kept), "loss and validation metrics"))
    return sec


def run_report(run: RunFiles, images: str | None = None) -> dict:
    """Context for the templates: ``title``, ``about``, ``sections``, ``kind``, ``failed``
    (the sections that raised, ``page.SectionFailure``)."""
    pr, why = read_preds(run)
    classes = run.classes
    preds = {run.name: pr}

    def f1():
        sec = f1_section({run.regime: [run]}, preds, classes, with_before=True)
        if why:
            sec.notes.insert(0, why)
        return sec

    has_sources = bool(run.sources)
    sections, failed = build_sections(
        [
            ("summary", "Results", lambda: summary_section(run)),
            ("weights", "Source weights and training curves", lambda: weights_section([run], detail=True))
            if has_sources
            else ("curves", "Training curves", lambda: curves_section(run)),
            *([("va", "Valence and arousal", lambda: va_section([run]))] if (run.results or {}).get("target") else []),
            ("confusion", "Confusion matrices", lambda: confusion_section([run], classes, detail=True)),
            ("f1", "Per-class F1 with confidence intervals", f1),
            ("changes", "Which parameters really train", lambda: changes_section([run], detail=True)),
            ("flips", "Flipped predictions", lambda: flips_section([run], classes, detail=True)),
            *(
                [
                    (
                        "trust",
                        "Trust: faces vs scene",
                        lambda: trust_section(preds, [why] if why else [], {run.name: run}),
                    )
                ]
                if has_sources
                else []
            ),
            ("gallery", "Example images", lambda: gallery_section(run, pr, classes, images)),
            ("analysis", "Which images it gets wrong, and why", lambda: analysis_section(run)),
        ]
    )
    n_test = ((run.results or {}).get("metrics") or {}).get("test", {}).get("n")
    title = f"emolog run {run.name}: {run.regime}, seed {run.seed}"
    return {
        "title": title,
        "about": about_line(run.data, cache_fingerprint(run.data, run.config, run.dir), n_test),
        "sections": sections,
        "kind": "run",
        "failed": failed,
    }
