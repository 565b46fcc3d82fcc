"""The report of one run directory: which sections, in which order.

A single run has no comparison of regimes and no memorisation curve: those sections belong to
an experiment's report and are not rendered here. A program without a source choice (results
``kind`` "none") has no source weights and no source posteriors: its report shows training
curves instead of the weights section and no trust section.
"""

from __future__ import annotations

from emolog.report.experiment_sections import analysis_section, gallery_section, va_section
from emolog.runs.record import RunFiles
from emolog.report.page import about_line, build_sections, cache_fingerprint, read_preds
from emolog.report.sections import (
    changes_section,
    confusion_section,
    curves_section,
    f1_section,
    flips_section,
    summary_section,
    weights_section,
)
from emolog.report.trust_section import trust_section


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
