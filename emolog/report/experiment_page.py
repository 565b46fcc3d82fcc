"""The report of an experiment directory: the comparison first, then one view per regime.

Runs are grouped by regime (plus sweep suffix, see ``RunFiles.group``); figures that need one
run per regime (what trains, flips, trust, the gallery) use the regime's first seed. Classes and
sources are the runs' own (``RunFiles.classes`` / ``.sources``): runs of a program without a
source choice have no weights and no trust section.
"""

from __future__ import annotations

import numpy as np

from emolog.report import plots
from emolog.report.experiment_sections import analysis_section, comparison_section, gallery_section, \
    memorisation_section, va_section
from emolog.report.inputs import ExperimentInputs
from emolog.runs.record import RunFiles
from emolog.report.page import Cell, Figure, Preds, Section, Table, about_line, build_sections, \
    cache_fingerprint, num, read_preds, slug
from emolog.report.sections import f1_section
from emolog.report.trust_section import trust_section

Groups = dict[str, list[RunFiles]]


def sources_of(runs: list[RunFiles]) -> list[str]:
    """The sources any of the runs' programs chooses between, in first-seen order."""
    return list(dict.fromkeys(s for r in runs for s in r.sources))


def weights_section(runs: list[RunFiles], groups: Groups, base: Groups) -> Section:
    sec = Section("weights", "Source weights",
                  "Learned probability of each source per regime (bars: mean over seeds, dots: seeds; "
                  "hatched: the true weights of simulated data), and the scene's weight per epoch in "
                  "every base run; the table adds the sweeps. A regime whose scene weight climbs far "
                  "above the truth is fitting the training labels through the scene net (see the "
                  "memorisation curve).")
    sec.notes.extend(f"{r.name}: {r.note('results.json')}" for r in runs if r.results is None)
    sec.notes.extend(f"{r.name}: {r.note('history.csv')}" for r in runs if r.get("history.csv") is None)
    sources = sources_of(runs)
    finals = {g: {s: [float((r.results.get("source_weights") or {}).get(s, np.nan)) for r in rs if r.results]
                  for s in sources} for g, rs in groups.items()}
    true = next((r.results["true_source_weights"] for r in runs
                 if r.results and r.results.get("true_source_weights")), None)
    if any(r.results for r in runs):
        sec.figures.append(Figure(plots.final_weights({g: finals[g] for g in base}, true, sources), "weights per regime"))
    hists = {r.name: (r.group, r.get("history.csv")) for rs in base.values() for r in rs
             if r.get("history.csv") is not None and "w_scene" in r.get("history.csv")}
    if hists:
        sec.figures.append(Figure(plots.scene_weight_trajectories(hists), "scene weight per epoch"))
    cols = [f"{s} (true {true[s]:.2f})" if true and s in true else s for s in sources]
    sec.tables.append(Table(["regime"] + cols,
                            [[Cell(g)] + [num(float(np.nanmean(v[s])) if v[s] else None, f"wmean-{slug(g)}-{s}")
                                          for s in sources] for g, v in finals.items()],
                            "learned source weights, mean over seeds"))
    return sec


def parameters_section(groups: Groups) -> Section:
    """The program's logic parameters per regime: each ``t()`` by its readable name, mean over
    seeds (results.json ``t_values``), with the simulated truth where it is known."""
    sec = Section("parameters", "Logic parameters",
                  "Every t() of the program by name: its learned value per regime (mean over seeds) "
                  "and, for simulated data, the true value the simulator drew labels from.")
    learned = {g: [r.t_values for r in rs if r.t_values] for g, rs in groups.items()}
    names = list(dict.fromkeys(k for vs in learned.values() for v in vs for k in v))
    true = next(((r.results or {}).get("true_t_values") for rs in groups.values() for r in rs
                 if (r.results or {}).get("true_t_values")), None) or {}
    has_true = any(k in true for k in names)
    rows = [[Cell(k)] + [num(float(np.mean([v[k] for v in vs if k in v])) if any(k in v for v in vs) else None,
                             f"tmean-{slug(g)}-{slug(k)}", 4) for g, vs in learned.items()]
            + ([num(true.get(k), f"ttrue-{slug(k)}", 4)] if has_true else []) for k in names]
    sec.tables.append(Table(["parameter"] + list(learned) + (["true"] if has_true else []), rows,
                            f"{len(names)} t() values, mean over seeds"))
    return sec


def confusion_section(groups: Groups, classes: list[str]) -> Section:
    sec = Section("confusion", "Confusion matrices",
                  "Per regime, summed over seeds. Rows are the true class, columns the predicted "
                  "class; colour is the row share (recall), numbers are image counts.")
    for g, rs in groups.items():
        cms = [((r.results or {}).get("metrics") or {}).get("test", {}).get("confusion") for r in rs]
        cms = [c for c in cms if c is not None]
        if not cms:
            sec.notes.append(f"{g}: no test confusion matrix in any results.json")
            continue
        sec.figures.append(Figure(plots.confusion(np.sum(cms, axis=0), classes, f"{g} ({len(cms)} seeds)"), g))
    return sec


def changes_section(groups: Groups) -> Section:
    sec = Section("changes", "Which parameters really train",
                  "Per regime (first seed), per layer: how far the weights moved from their initial "
                  "values relative to their size (left) and the mean gradient norm (right). Orange: "
                  "logic parameters, blue: trained network layers, grey: layers the regime keeps "
                  "frozen (they receive a gradient but do not move). The run reports add the "
                  "gradient norm per epoch.")
    for g, rs in groups.items():
        ch = rs[0].get("changes.json")
        if ch is None or not ch.get("layers"):
            sec.notes.append(f"{rs[0].name}: " + (rs[0].note("changes.json") if ch is None else "changes.json lists no layers"))
            continue
        sec.figures.append(Figure(plots.layer_bars(ch["layers"], f"{g} ({rs[0].name})"), f"layer changes {g}", wide=True))
    return sec


def flips_section(groups: Groups, classes: list[str]) -> Section:
    sec = Section("flips", "Flipped predictions",
                  "Per regime (first seed): test images whose prediction changed during training, per "
                  "true class: green became correct, red became wrong, grey changed between wrong classes.")
    for g, rs in groups.items():
        f = (rs[0].get("changes.json") or {}).get("flips")
        if not f:
            sec.notes.append(f"{rs[0].name}: " + (rs[0].note("changes.json") if rs[0].get("changes.json") is None
                                                  else "changes.json has no flips entry"))
        elif not f.get("n_flipped"):
            sec.notes.append(f"{g} ({rs[0].name}): no test prediction changed during training (0 of {f.get('n')}).")
        else:
            sec.figures.append(Figure(plots.flips(f.get("per_class") or {}, classes, f"Flipped predictions: {g}"),
                                      f"flips {g}", caption=f"{g}: {f['n_flipped']} of {f.get('n')} test predictions flipped"))
    return sec


def experiment_report(exp: ExperimentInputs, images: str | None = None) -> dict:
    """Context for the templates: ``title``, ``about``, ``sections``, ``kind``, ``failed``
    (the sections that raised, ``page.SectionFailure``)."""
    runs = exp.runs
    classes = runs[0].classes if runs else []
    groups: Groups = {}
    for r in runs:
        groups.setdefault(r.group, []).append(r)
    preds: dict[str, Preds | None] = {}
    pred_notes = []
    for r in runs:
        preds[r.name], why = read_preds(r)
        if why:
            pred_notes.append(f"{r.name}: {why}")

    # per-regime figures show base runs; sweeps (e.g. the memorisation's n_train runs) appear in
    # the comparison, the weights and the memorisation curve, where they are one line each
    base = {g: rs for g, rs in groups.items() if rs[0].sweep is None} or groups
    meta = exp.get("experiment.json") or {}

    def comparison() -> Section:
        sec = comparison_section(exp)
        sec.notes.extend(v for k, v in exp.absent.items() if k.startswith("run "))
        sec.notes.extend(f"run failed: {f}" for f in meta.get("failed") or [])
        sec.notes.extend(f"baseline {n} not run: {why}" for n, why in (meta.get("baselines_skipped") or {}).items())
        warnings = meta.get("sanity_warnings") or {}
        if warnings:  # one line: the runs of one experiment usually share the same warning
            name, first = next(iter(warnings.items()))
            sec.notes.append(f"{len(warnings)} run(s) carry a sanity warning ({', '.join(warnings)}); "
                             f"{name}: {first}")
        if not runs:
            sec.notes.append(f"no run directories found in {exp.dir}")
        elif base is not groups and len(base) < len(groups):
            sec.notes.append(f"{len(groups) - len(base)} sweep groups ({', '.join(g for g in groups if g not in base)}) "
                             "are in the weights table and the memorisation curve; the figures "
                             "below show the base runs.")
        return sec

    def f1() -> Section:
        sec = f1_section(base, preds, classes, with_before=False)
        sec.notes[:0] = pred_notes
        return sec

    def gallery() -> Section:
        gal_run = next((r for r in runs if preds.get(r.name) is not None), None)
        sec = gallery_section(gal_run, preds.get(gal_run.name) if gal_run else None, classes, images)
        if gal_run:
            sec.how += f" Examples from {gal_run.name}."
        return sec

    first = {rs[0].name: preds.get(rs[0].name) for rs in base.values()}
    has_sources = not runs or bool(sources_of(runs))
    sections, failed = build_sections([
        ("comparison", "Comparison of regimes", comparison),
        *([("weights", "Source weights", lambda: weights_section(runs, groups, base))] if has_sources else []),
        *([("parameters", "Logic parameters", lambda: parameters_section(groups))]
          if any(r.t_values for r in runs) else []),
        *([("va", "Valence and arousal", lambda: va_section([rs[0] for rs in base.values()]))]
          if any((r.results or {}).get("target") for r in runs) else []),
        ("f1", "Per-class F1 with confidence intervals", f1),
        ("confusion", "Confusion matrices", lambda: confusion_section(base, classes)),
        ("changes", "Which parameters really train", lambda: changes_section(base)),
        ("flips", "Flipped predictions", lambda: flips_section(base, classes)),
        ("memorisation", "Memorisation curve",
         lambda: memorisation_section(exp.get("memorisation.csv"), exp.note("memorisation.csv"))),
        *([("trust", "Trust: faces vs scene", lambda: trust_section(first, [], {rs[0].name: rs[0] for rs in base.values()}))]
          if has_sources else []),
        ("gallery", "Example images", gallery),
        ("analysis", "Which images the runs get wrong, and why", lambda: analysis_section(exp)),
    ])
    n_test = next((((r.results or {}).get("metrics") or {}).get("test", {}).get("n") for r in runs if r.results), None)
    cfg = runs[0].config if runs else None
    title = f"emolog experiment {exp.dir.name}: {len(base)} regimes, {len(runs)} runs"
    return {"title": title, "about": about_line(exp.data, cache_fingerprint(exp.data, cfg, exp.dir), n_test),
            "sections": sections, "kind": "experiment", "failed": failed}
