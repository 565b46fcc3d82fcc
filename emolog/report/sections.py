"""The report's sections over a list of runs (one run's page: a list of one): weights and
curves, confusion, F1, what trains, flips. Both pages call the one definition of each;
``detail`` asks for a run page's views of its one run (before and after, per-layer tables),
else a section shows each group of runs (regime plus sweep suffix) over its seeds. The
building blocks are in ``page``; trust, comparison, memorisation and the gallery in
``trust_section`` and ``experiment_sections``; the run page's own results and training curves
in ``run_page``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emolog.report import plots
from emolog.runs.record import Groups, RunFiles, base_groups, group_runs, sources_of
from emolog.report.page import Cell, Figure, Preds, Section, Table, fmt, num, read_preds, slug
from emolog.report.stats import bootstrap_per_class_f1
from emolog.metrics.classification import interval_covers


__all__ = [
    "read_preds",
    "slug",
    "weights_section",
    "confusion_section",
    "f1_section",
    "changes_section",
    "flips_section",
    "chosen_epoch",
]


def chosen_epoch(results: dict | None) -> int | None:
    """The epoch whose weights the run kept when early stopping chose one before the last
    epoch run (results.json ``best_epoch`` < ``epochs_run``), else None."""
    res = results or {}
    best, ran = res.get("best_epoch"), res.get("epochs_run")
    return int(best) if best is not None and ran is not None and int(best) < int(ran) else None


def weights_section(runs: list[RunFiles], detail: bool = False) -> Section:
    """The learned source weights: with ``detail`` (a run's page: ``runs`` is that one run) its
    weights and curves per epoch against the truth; else per group the final weights (mean over
    seeds) and each base run's scene weight per epoch."""
    if detail:
        return _run_weights(runs[0])
    return _group_weights(runs, group_runs(runs))


def _run_weights(run: RunFiles) -> Section:
    sec = Section(
        "weights",
        "Source weights and training curves",
        "The logic's annotated disjunction picks one source per image; the first plot shows "
        "the learned probability of each source per epoch (dashed: the true weights of "
        "simulated data). A weight that drifts to the scene on a small training set can be "
        "memorisation (an experiment's memorisation curve tells). The loss and validation curves show "
        "overfitting as a falling training loss with a rising validation loss.",
    )
    res, hist = run.results or {}, run.get("history.csv")
    true = res.get("true_source_weights")
    kept = chosen_epoch(res)
    if kept is not None:
        sec.notes.append(
            f"Early stopping kept epoch {kept} (dotted line); the curves go on to the last "
            f"epoch run, {res.get('epochs_run')}."
        )
    if hist is None:
        sec.notes.append(run.note("history.csv"))
    else:
        sec.figures.append(Figure(plots.weight_trajectories(hist, true, kept, run.sources), "source weights per epoch"))
        sec.figures.append(Figure(plots.training_curves(hist, kept), "loss and validation metrics"))
    if run.results is None:
        sec.notes.append(run.note("results.json"))
    elif true:
        sec.figures.append(
            Figure(
                plots.learned_vs_true(res.get("source_weights") or {}, true, run.sources),
                "learned vs true source weights",
            )
        )
    else:
        sec.notes.append("results.json has no true_source_weights (real data): no learned-vs-true comparison.")
    return sec


def _group_weights(runs: list[RunFiles], groups: Groups) -> Section:
    sec = Section(
        "weights",
        "Source weights",
        "Learned probability of each source per regime (bars: mean over seeds, dots: seeds; "
        "hatched: the true weights of simulated data), and the scene's weight per epoch in "
        "every base run; the table adds the sweeps. A regime whose scene weight climbs far "
        "above the truth is fitting the training labels through the scene net (see the "
        "memorisation curve).",
    )
    sec.notes.extend(f"{r.name}: {r.note('results.json')}" for r in runs if r.results is None)
    sec.notes.extend(f"{r.name}: {r.note('history.csv')}" for r in runs if r.get("history.csv") is None)
    sources, base = sources_of(runs), base_groups(groups)
    finals = {g: _final_weights(rs, sources) for g, rs in groups.items()}
    true = next(
        (r.results["true_source_weights"] for r in runs if r.results and r.results.get("true_source_weights")), None
    )
    if any(r.results for r in runs):
        sec.figures.append(
            Figure(plots.final_weights({g: finals[g] for g in base}, true, sources), "weights per regime")
        )
    hists = _scene_histories(base)
    if hists:
        sec.figures.append(Figure(plots.scene_weight_trajectories(hists), "scene weight per epoch"))
    sec.tables.append(_mean_weights_table(finals, sources, true))
    return sec


def _final_weights(runs: list[RunFiles], sources: list[str]) -> dict[str, list[float]]:
    """Per source, each run's learned weight (NaN where its results.json lacks it)."""
    return {
        s: [float((r.results.get("source_weights") or {}).get(s, np.nan)) for r in runs if r.results] for s in sources
    }


def _scene_histories(groups: Groups) -> dict[str, tuple[str, Any]]:
    """Run name -> (its group, history.csv) of every run whose history has the scene's weight."""
    return {
        r.name: (r.group, r.get("history.csv"))
        for rs in groups.values()
        for r in rs
        if r.get("history.csv") is not None and "w_scene" in r.get("history.csv")
    }


def _mean_weights_table(
    finals: dict[str, dict[str, list[float]]], sources: list[str], true: dict[str, float] | None
) -> Table:
    """Per group, each source's learned weight, mean over seeds (``finals``: group -> source ->
    one weight per seed); the header names the true weight of simulated data."""
    cols = [f"{s} (true {true[s]:.2f})" if true and s in true else s for s in sources]
    return Table(
        ["regime"] + cols,
        [
            [Cell(g)] + [num(float(np.nanmean(v[s])) if v[s] else None, f"wmean-{slug(g)}-{s}") for s in sources]
            for g, v in finals.items()
        ],
        "learned source weights, mean over seeds",
    )


def confusion_section(runs: list[RunFiles], classes: list[str], detail: bool = False) -> Section:
    """Test confusion matrices: with ``detail`` (a run's page) before and after training; else
    per group, summed over its seeds."""
    how = (
        "Rows are the true class, columns the predicted class; colour is the row share "
        "(recall), numbers are image counts."
    )
    if detail:
        sec = Section("confusion", "Confusion matrices", how + " Left: before training, right: after.")
        _run_confusions(sec, runs[0], classes)
        return sec
    sec = Section("confusion", "Confusion matrices", "Per regime, summed over seeds. " + how)
    for g, rs in group_runs(runs).items():
        cms = [c for c in (_test_metrics(r).get("confusion") for r in rs) if c is not None]
        if not cms:
            sec.notes.append(f"{g}: no test confusion matrix in any results.json")
            continue
        sec.figures.append(Figure(plots.confusion(np.sum(cms, axis=0), classes, f"{g} ({len(cms)} seeds)"), g))
    return sec


def _test_metrics(run: RunFiles) -> dict:
    """results.json's test metrics after training ({} when unknown)."""
    return ((run.results or {}).get("metrics") or {}).get("test") or {}


def _run_confusions(sec: Section, run: RunFiles, classes: list[str]) -> None:
    res = run.results
    if res is None:
        sec.notes.append(run.note("results.json"))
        return
    before = ((res.get("metrics_before") or {}).get("test") or {}).get("confusion")
    for cm, title in ((before, "test, before training"), (_test_metrics(run).get("confusion"), "test, after training")):
        if cm is None:
            sec.notes.append(f"results.json holds no confusion matrix for {title}.")
        else:
            sec.figures.append(Figure(plots.confusion(cm, classes, title), title))


def f1_table(per: dict[str, dict[str, np.ndarray]], classes: list[str]) -> Table:
    rows = [
        [Cell(c)]
        + [
            Cell(
                f"{fmt(r['f1'][k])} [{fmt(r['lo'][k])}, {fmt(r['hi'][k])}]",
                float(r["f1"][k]),
                f"f1-{slug(name)}-{slug(c)}",
                numeric=True,
            )
            for name, r in per.items()
        ]
        for k, c in enumerate(classes)
    ]
    return Table(["class"] + [f"{n}: F1 [95% CI]" for n in per], rows)


def f1_section(
    runs_by_regime: dict[str, list[RunFiles]], preds: dict[str, Preds | None], classes: list[str], with_before: bool
) -> Section:
    sec = Section(
        "f1",
        "Per-class F1 with confidence intervals",
        "F1 per emotion on the test set; with several seeds, F1 is their mean. The interval "
        "is a 95% percentile bootstrap (1000 resamples) over the test images and, with "
        "several seeds, over the seeds too (each resample draws seeds and images), so it "
        "counts training variance; with one seed it covers test-set sampling only. "
        "Overlapping intervals mean the data cannot tell the two apart.",
    )
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
                [(u.df["image_id"].to_numpy(), u.y, u.p_before) for u in usable], len(classes)
            )
        per[regime if not with_before else "after training"] = bootstrap_per_class_f1(
            [(u.df["image_id"].to_numpy(), u.y, u.p) for u in usable], len(classes)
        )
        seeds[regime] = len(usable)
    if per:
        sec.figures.append(Figure(plots.f1_with_ci(per, classes), "per-class F1 with CI", wide=True))
        sec.tables.append(f1_table(per, classes))
        sec.notes.extend(f"{regime}: {interval_covers(n)}." for regime, n in seeds.items())
    return sec


def changes_section(runs: list[RunFiles], detail: bool = False) -> Section:
    """Which parameters train, from changes.json: with ``detail`` (a run's page) the run's layer
    table and gradient norm per epoch; else per group its first seed's layer bars."""
    if detail:
        return _run_changes(runs[0])
    sec = Section(
        "changes",
        "Which parameters really train",
        "Per regime (first seed), per layer: how far the weights moved from their initial "
        "values relative to their size (left) and the mean gradient norm (right). Orange: "
        "logic parameters, blue: trained network layers, grey: layers the regime keeps "
        "frozen (they receive a gradient but do not move). The run reports add the "
        "gradient norm per epoch.",
    )
    for g, rs in group_runs(runs).items():
        ch = rs[0].get("changes.json")
        if ch is None or not ch.get("layers"):
            sec.notes.append(
                f"{rs[0].name}: " + (rs[0].note("changes.json") if ch is None else "changes.json lists no layers")
            )
            continue
        sec.figures.append(
            Figure(plots.layer_bars(ch["layers"], f"{g} ({rs[0].name})"), f"layer changes {g}", wide=True)
        )
    return sec


def _run_changes(run: RunFiles) -> Section:
    sec = Section(
        "changes",
        "Which parameters really train",
        "Per layer (blue: trained network layers, orange: logic parameters, grey: layers the "
        "regime keeps frozen): how far the weights moved from their initial values, relative "
        "to their size, and the mean gradient norm. A frozen layer still receives a gradient "
        "but does not move; a trained layer with a large gradient and little change is held "
        "back by its learning rate.",
    )
    ch, hist = run.get("changes.json"), run.get("history.csv")
    if ch is None:
        sec.notes.append(run.note("changes.json"))
    elif not ch.get("layers"):
        sec.notes.append("changes.json lists no layers.")
    else:
        sec.figures.append(Figure(plots.layer_bars(ch["layers"]), "per-layer change", wide=True))
        sec.tables.append(_layer_table(ch["layers"]))
    if hist is not None and any(c.startswith("grad_norm_") for c in hist.columns):
        sec.figures.append(Figure(plots.grad_norm_history(hist), "gradient norm per epoch"))
    elif hist is None:
        sec.notes.append(run.note("history.csv"))
    return sec


def _layer_table(layers: list[dict]) -> Table:
    """changes.json's layers, one row each."""
    # optional keys beyond the contract: frozen layers still get gradients ("trainable"), and a
    # layer initialised to 0 has no relative change, only an absolute one ("abs_change")
    trainable = any("trainable" in layer for layer in layers)
    absolute = any("abs_change" in layer for layer in layers)
    return Table(
        ["net", "layer", "parameters"]
        + (["trainable"] if trainable else [])
        + ["relative change"]
        + (["absolute change"] if absolute else [])
        + ["cosine to init", "gradient norm"],
        [
            [
                Cell(str(layer.get("net"))),
                Cell(plots.layer_name(layer).removeprefix(f"{layer.get('net')}.")),
                num(layer.get("n_params")),
            ]
            + ([Cell(fmt(layer.get("trainable")))] if trainable else [])
            + [num(layer.get("rel_change"), digits=4)]
            + ([num(layer.get("abs_change"), digits=4)] if absolute else [])
            + [num(layer.get("cosine_to_init"), digits=4), num(layer.get("grad_norm"), digits=4)]
            for layer in layers
        ],
    )


def flips_section(runs: list[RunFiles], classes: list[str], detail: bool = False) -> Section:
    """Test predictions changed by training (changes.json ``flips``): with ``detail`` (a run's
    page) the run's table per true class; else per group its first seed's figure."""
    if detail:
        return _run_flips(runs[0], classes)
    sec = Section(
        "flips",
        "Flipped predictions",
        "Per regime (first seed): test images whose prediction changed during training, per "
        "true class: green became correct, red became wrong, grey changed between wrong classes.",
    )
    for g, rs in group_runs(runs).items():
        f = (rs[0].get("changes.json") or {}).get("flips")
        if not f:
            sec.notes.append(
                f"{rs[0].name}: "
                + (
                    rs[0].note("changes.json")
                    if rs[0].get("changes.json") is None
                    else "changes.json has no flips entry"
                )
            )
        elif not f.get("n_flipped"):
            sec.notes.append(f"{g} ({rs[0].name}): no test prediction changed during training (0 of {f.get('n')}).")
        else:
            sec.figures.append(
                Figure(
                    plots.flips(f.get("per_class") or {}, classes, f"Flipped predictions: {g}"),
                    f"flips {g}",
                    caption=f"{g}: {f['n_flipped']} of {f.get('n')} test predictions flipped",
                )
            )
    return sec


def _run_flips(run: RunFiles, classes: list[str]) -> Section:
    sec = Section(
        "flips",
        "Flipped predictions",
        "Test images whose predicted class changed between before and after training, per "
        "true class: green became correct, red became wrong, grey changed from one wrong "
        "class to another.",
    )
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
        rows = [
            [Cell(c)] + [num((pc.get(c) or {}).get(k)) for k in ("to_correct", "to_wrong", "other")] for c in classes
        ]
        rows.append(
            [Cell("all")]
            + [num(sum(int((pc.get(c) or {}).get(k, 0)) for c in classes)) for k in ("to_correct", "to_wrong", "other")]
        )
        sec.tables.append(
            Table(
                ["true class", "to correct", "to wrong", "other"],
                rows,
                f"{flips.get('n_flipped')} of {flips.get('n')} test predictions flipped",
            )
        )
    return sec
