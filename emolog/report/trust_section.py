"""The trust section: how much a run relies on the faces versus the scene, per face count and
face size, and (on FindingEmo) against the annotators' deciding factors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emolog.analysis.trust import TrustError, trust_agreement
from emolog.data.index import ImageIndex
from emolog.report import plots
from emolog.data.paths import resolve_recorded as resolve
from emolog.runs.record import RunFiles
from emolog.report.page import Figure, Preds, Section, Table, df_table
from emolog.report.stats import trust_by_face_count, trust_by_face_size


def annotator_agreement(pr: Preds, index_path: str | None, run_dir: Path, name: str = "") -> tuple[Table | None, str]:
    """The run's per-image face trust against FindingEmo's ``dec_factors`` (analysis.trust):
    (the agreement table, its caption naming run ``name``, or None; a note saying what was
    compared or why nothing was)."""
    if not index_path:
        return None, "no index recorded in the run, so no dec_factors to compare with"
    path = resolve(index_path, run_dir)
    if not path.is_file():
        return None, f"the run's index {path} is not here: no dec_factors to compare with"
    index = ImageIndex.load(path).df
    if "dec_factors" not in index.columns or not index["dec_factors"].fillna("").str.strip().any():
        return None, (
            f"{path.name} has no dec_factors (simulated data has none): the comparison of "
            "per-image trust with FindingEmo's annotators needs an index made by "
            "`emolog index findingemo`"
        )
    try:
        table, counts = trust_agreement(pr.df, index)
    except TrustError as e:
        return None, f"dec_factors comparison not possible: {e}"
    note = (
        f"{counts['n_joined']} of {counts['n_predictions']} test images have dec_factors "
        f"({len(counts['no_annotation'])} without, {len(counts['not_in_index'])} not in the index)"
    )
    run = f"{name}: " if name else ""
    return df_table(table, f"{run}face trust (1 - w_scene) against the annotators' deciding factors"), note


def trust_section(preds: dict[str, Preds | None], notes: list[str], runs: dict[str, RunFiles] | None = None) -> Section:
    sec = Section(
        "trust",
        "Trust: faces vs scene",
        "How much the model relies on the faces versus the scene, per number of detected "
        "faces and per size of the largest face (share of the image area). Posterior: "
        "mean P(source | label, evidence), i.e. which source explained the true label; "
        "weight: mean per-image source probability (constant unless the program is gated). "
        "Faces = sum over the face slots. On FindingEmo, the face trust 1 - w_scene is also "
        "compared with what the annotators named as deciding (dec_factors: facial "
        "expression vs context): agreement at 0.5, Cohen's kappa and AUC, overall, per "
        "label and per face count.",
    )
    sec.notes.extend(notes)
    by_n_all, by_size_all = [], []
    agreement_notes: dict[str, list[str]] = {}  # note -> runs (runs sharing one index say it once)
    for name, pr in preds.items():
        if pr is None:
            continue
        label = f" ({name})" if len(preds) > 1 else ""
        missing = [c for c in ("n_faces", "max_face_area") if c not in pr.df.columns]
        if missing:
            sec.notes.append(f"{name}: predictions.csv lacks {missing}")
            continue

        by_n = trust_by_face_count(pr.df, pr.y, pr.p)
        by_size = trust_by_face_size(pr.df, pr.y, pr.p)
        sec.figures.append(
            Figure(plots.trust_bars(by_n, "Per face count" + label, "detected faces"), f"trust per face count{label}")
        )
        sec.figures.append(
            Figure(
                plots.trust_bars(by_size, "Per largest-face size" + label, "largest face / image area"),
                f"trust per face size{label}",
            )
        )
        by_n_all.append(by_n.rename(columns={"group": "faces"}).assign(run=name))
        by_size_all.append(by_size.rename(columns={"group": "largest face"}).assign(run=name))
        run = (runs or {}).get(name)
        if run is not None:
            table, note = annotator_agreement(pr, run.data.get("index"), run.dir, name)
            agreement_notes.setdefault(note, []).append(name)
            if table is not None:
                sec.tables.append(table)
    for note, names in agreement_notes.items():
        sec.notes.append(f"dec_factors ({', '.join(names)}): {note}" if len(preds) > 1 else f"dec_factors: {note}")
    for parts, caption in ((by_n_all, "per face count"), (by_size_all, "per largest-face size")):
        if parts:  # one table per grouping; with several runs a leading run column tells them apart
            df = pd.concat(parts, ignore_index=True)
            cols = (["run"] if len(parts) > 1 else []) + [c for c in df.columns if c != "run"]
            sec.tables.append(df_table(df[cols], caption))
    return sec
