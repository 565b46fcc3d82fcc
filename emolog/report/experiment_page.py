"""The report of an experiment directory: the comparison first, then one view per regime.

Runs are grouped by regime (plus sweep suffix, see ``RunFiles.group``); figures that need one
run per regime (what trains, flips, trust, the gallery) use the regime's first seed. Classes and
sources are the runs' own (``RunFiles.classes`` / ``.sources``): runs of a program without a
source choice have no weights and no trust section.
"""

from __future__ import annotations

import numpy as np

from emolog.report.experiment_sections import (
    analysis_section,
    comparison_section,
    gallery_section,
    memorisation_section,
    va_section,
)
from emolog.report.inputs import ExperimentInputs
from emolog.report.page import (
    Cell,
    Preds,
    Section,
    SectionSpec,
    Table,
    about_line,
    build_sections,
    cache_fingerprint,
    num,
    read_preds,
    slug,
)
from emolog.report.sections import changes_section, confusion_section, f1_section, flips_section, weights_section
from emolog.report.trust_section import trust_section
from emolog.runs.record import Groups, RunFiles, base_groups, group_runs, sources_of


def parameters_section(groups: Groups) -> Section:
    """The program's logic parameters per regime: each ``t()`` by its readable name, mean over
    seeds (results.json ``t_values``), with the simulated truth where it is known."""
    sec = Section(
        "parameters",
        "Logic parameters",
        "Every t() of the program by name: its learned value per regime (mean over seeds) "
        "and, for simulated data, the true value the simulator drew labels from.",
    )
    learned = {g: [r.t_values for r in rs if r.t_values] for g, rs in groups.items()}
    names = list(dict.fromkeys(k for vs in learned.values() for v in vs for k in v))
    true = next((t for rs in groups.values() for r in rs if (t := (r.results or {}).get("true_t_values"))), None) or {}
    has_true = any(k in true for k in names)
    rows = [
        [Cell(k)]
        + [num(_mean_of(k, vs), f"tmean-{slug(g)}-{slug(k)}", 4) for g, vs in learned.items()]
        + ([num(true.get(k), f"ttrue-{slug(k)}", 4)] if has_true else [])
        for k in names
    ]
    sec.tables.append(
        Table(
            ["parameter"] + list(learned) + (["true"] if has_true else []),
            rows,
            f"{len(names)} t() values, mean over seeds",
        )
    )
    return sec


def _mean_of(name: str, values: list[dict[str, float]]) -> float | None:
    """The mean of ``name`` over the seeds' ``t_values`` that hold it (None when none does)."""
    got = [v[name] for v in values if name in v]
    return float(np.mean(got)) if got else None


def experiment_report(exp: ExperimentInputs, images: str | None = None) -> dict:
    """Context for the templates: ``title``, ``about``, ``sections``, ``kind``, ``failed``
    (the sections that raised, ``page.SectionFailure``)."""
    runs = exp.runs
    groups = group_runs(runs)
    base = base_groups(groups)
    sections, failed = build_sections(_sections(exp, groups, base, images))
    n_test = next((((r.results or {}).get("metrics") or {}).get("test", {}).get("n") for r in runs if r.results), None)
    cfg = runs[0].config if runs else None
    title = f"emolog experiment {exp.dir.name}: {len(base)} regimes, {len(runs)} runs"
    return {
        "title": title,
        "about": about_line(exp.data, cache_fingerprint(exp.data, cfg, exp.dir), n_test),
        "sections": sections,
        "kind": "experiment",
        "failed": failed,
    }


def _sections(exp: ExperimentInputs, groups: Groups, base: Groups, images: str | None) -> list[SectionSpec]:
    """The experiment page's ``(id, title, make)`` list, in page order; per-group figures show
    the ``base`` runs (sweeps appear in the comparison, the weights and the memorisation curve)."""
    runs, classes = exp.runs, exp.runs[0].classes if exp.runs else []
    base_runs = [r for rs in base.values() for r in rs]
    first = [rs[0] for rs in base.values()]
    preds, pred_notes = _read_preds(runs)
    has_sources = not runs or bool(sources_of(runs))
    return [
        ("comparison", "Comparison of regimes", lambda: _comparison(exp, groups, base)),
        *([("weights", "Source weights", lambda: weights_section(runs))] if has_sources else []),
        *(
            [("parameters", "Logic parameters", lambda: parameters_section(groups))]
            if any(r.t_values for r in runs)
            else []
        ),
        *(
            [("va", "Valence and arousal", lambda: va_section(first))]
            if any((r.results or {}).get("target") for r in runs)
            else []
        ),
        ("f1", "Per-class F1 with confidence intervals", lambda: _f1(base, preds, classes, pred_notes)),
        ("confusion", "Confusion matrices", lambda: confusion_section(base_runs, classes)),
        ("changes", "Which parameters really train", lambda: changes_section(base_runs)),
        ("flips", "Flipped predictions", lambda: flips_section(base_runs, classes)),
        (
            "memorisation",
            "Memorisation curve",
            lambda: memorisation_section(exp.get("memorisation.csv"), exp.note("memorisation.csv")),
        ),
        *(
            [
                (
                    "trust",
                    "Trust: faces vs scene",
                    lambda: trust_section({r.name: preds.get(r.name) for r in first}, [], {r.name: r for r in first}),
                )
            ]
            if has_sources
            else []
        ),
        ("gallery", "Example images", lambda: _gallery(runs, preds, classes, images)),
        ("analysis", "Which images the runs get wrong, and why", lambda: analysis_section(exp)),
    ]


def _read_preds(runs: list[RunFiles]) -> tuple[dict[str, Preds | None], list[str]]:
    """Each run's predictions by run name, and a note per run whose predictions are unusable."""
    preds: dict[str, Preds | None] = {}
    notes = []
    for r in runs:
        preds[r.name], why = read_preds(r)
        if why:
            notes.append(f"{r.name}: {why}")
    return preds, notes


def _comparison(exp: ExperimentInputs, groups: Groups, base: Groups) -> Section:
    """The comparison tables, with what the experiment lacks: absent runs, failed runs, skipped
    baselines, sanity warnings, the sweep groups left out of the figures."""
    meta = exp.get("experiment.json") or {}
    sec = comparison_section(exp)
    sec.notes.extend(v for k, v in exp.absent.items() if k.startswith("run "))
    sec.notes.extend(f"run failed: {f}" for f in meta.get("failed") or [])
    sec.notes.extend(f"baseline {n} not run: {why}" for n, why in (meta.get("baselines_skipped") or {}).items())
    warnings = meta.get("sanity_warnings") or {}
    if warnings:  # one line: the runs of one experiment usually share the same warning
        name, first = next(iter(warnings.items()))
        sec.notes.append(f"{len(warnings)} run(s) carry a sanity warning ({', '.join(warnings)}); {name}: {first}")
    if not exp.runs:
        sec.notes.append(f"no run directories found in {exp.dir}")
    elif base is not groups and len(base) < len(groups):
        sec.notes.append(
            f"{len(groups) - len(base)} sweep groups ({', '.join(g for g in groups if g not in base)}) "
            "are in the weights table and the memorisation curve; the figures "
            "below show the base runs."
        )
    return sec


def _f1(base: Groups, preds: dict[str, Preds | None], classes: list[str], pred_notes: list[str]) -> Section:
    sec = f1_section(base, preds, classes, with_before=False)
    sec.notes[:0] = pred_notes
    return sec


def _gallery(runs: list[RunFiles], preds: dict[str, Preds | None], classes: list[str], images: str | None) -> Section:
    """Examples from the first run with usable predictions."""
    gal_run = next((r for r in runs if preds.get(r.name) is not None), None)
    sec = gallery_section(gal_run, preds.get(gal_run.name) if gal_run else None, classes, images)
    if gal_run:
        sec.how += f" Examples from {gal_run.name}."
    return sec
