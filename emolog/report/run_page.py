"""The report of one run directory: which sections, in which order."""

from __future__ import annotations

from emolog.report.inputs import RunInputs
from emolog.report.sections import about_line, cache_fingerprint, changes_section, comparison_section, \
    confusion_section, f1_section, flips_section, gallery_section, memorisation_section, read_preds, \
    summary_section, trust_section, weights_section


def run_report(run: RunInputs, images: str | None = None) -> dict:
    """Context for the templates: ``title``, ``about``, ``sections``."""
    pr, why = read_preds(run)
    classes = run.classes
    preds = {run.name: pr}
    sections = [summary_section(run), weights_section(run), confusion_section(run)]
    f1 = f1_section({run.regime: [run]}, preds, classes, with_before=True)
    if why:
        f1.notes.insert(0, why)
    sections += [f1, changes_section(run), flips_section(run, classes),
                 trust_section(preds, [why] if why else [], {run.name: run}),
                 memorisation_section(None, "memorisation.csv is absent: it is written by "
                                      "`emolog experiment` (training-set-size sweeps), not by a single run."),
                 comparison_section(None), gallery_section(run, pr, classes, images)]
    n_test = ((run.results or {}).get("metrics") or {}).get("test", {}).get("n")
    title = f"emolog run {run.name}: {run.regime}, seed {run.seed}"
    return {"title": title, "about": about_line(run.data, cache_fingerprint(run.data, run.config, run.dir), n_test),
            "sections": sections, "kind": "run"}


