"""Per-image trust (faces vs scene) against FindingEmo's ``dec_factors`` (docs/context-trust.md).

FindingEmo's annotators named what decided their label (``dec_factors``, a comma list of
FacialExpression, Context, BodyLanguage, Staging, Neutral, ConflictCtxtPerson, Undefined).
A model's per-image trust in the faces is ``1 - w_scene`` from a run's predictions.csv
(``w_<source>``: per-image source probabilities). Each image gets an annotator class:

* ``face``: FacialExpression named, Context not;  ``context``: Context named, FacialExpression not;
* ``both``: both named;  ``neither``: neither (body language, staging, ... only).

Agreement is measured on the ``face``/``context`` images only (the others say nothing about
faces *versus* scene): the model agrees when its face trust is > 0.5 exactly for ``face``
images; also Cohen's kappa and the threshold-free AUC (probability that a random ``face``
image gets more face trust than a random ``context`` image). Reported overall, per image
class (the image's emotion label) and per face-count bin.

Command: ``python -m emolog.analysis.trust --run RUN --index D/index.csv [--out trust.csv]``.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from emolog.data.artefacts import read_csv
from emolog.errors import EmologError, InputError
from emolog.data.atomic import atomic_write_text

FACE, CONTEXT = "FacialExpression", "Context"
DEC_CLASSES: tuple[str, ...] = ("face", "context", "both", "neither")
FACE_BINS: tuple[tuple[str, int, int], ...] = (
    ("0 faces", 0, 0),
    ("1 face", 1, 1),
    ("2 faces", 2, 2),
    ("3+ faces", 3, 10**9),
)
TABLE_COLUMNS: tuple[str, ...] = (
    "group",
    "value",
    "n",
    "n_face",
    "n_context",
    "n_both",
    "n_neither",
    "trust_face_if_face",
    "trust_face_if_context",
    "agreement",
    "kappa",
    "auc",
)


class TrustError(InputError, ValueError):
    """Predictions or annotations that cannot be joined or lack a needed column (named)."""


def decision_class(dec_factors: str) -> str | None:
    """The annotator class of one ``dec_factors`` string; None when it is empty (no annotation)."""
    tokens = {t.strip() for t in str(dec_factors).split(",") if t.strip()}
    if not tokens:
        return None
    face, ctx = FACE in tokens, CONTEXT in tokens
    return "both" if face and ctx else "face" if face else "context" if ctx else "neither"


def join_trust(predictions: pd.DataFrame, index: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Join a run's predictions (image_id, label, n_faces, w_scene) with an index's dec_factors.

    Returns (table with image_id, label, n_faces, face_trust = 1 - w_scene, dec_class; one row
    per image that has both a prediction and a dec_factors value) and counts of what was left
    out: {"n_predictions", "n_joined", "no_annotation": ids whose index row has empty
    dec_factors, "not_in_index": ids absent from the index}. Nothing is filled in.
    """
    need_p = ["image_id", "label", "n_faces", "w_scene"]
    missing = [c for c in need_p if c not in predictions.columns]
    if missing:
        raise TrustError(f"predictions lack column(s) {missing} (a run's predictions.csv has them)")
    if "image_id" not in index.columns or "dec_factors" not in index.columns:
        raise TrustError("the index needs columns image_id and dec_factors (emolog index.csv has them)")
    w = pd.to_numeric(predictions["w_scene"], errors="coerce")
    bad = predictions.loc[w.isna() | (w < 0) | (w > 1), "image_id"].tolist()
    if bad:
        raise TrustError(f"w_scene is not a probability for {len(bad)} image(s), e.g. {bad[:5]}")
    dec = index.set_index("image_id")["dec_factors"].fillna("").astype(str)
    ids = predictions["image_id"].astype(str)
    in_index = ids.isin(dec.index)
    classes = ids[in_index].map(lambda i: decision_class(dec[i]))
    table = pd.DataFrame(
        {
            "image_id": ids[in_index],
            "label": predictions.loc[in_index, "label"],
            "n_faces": predictions.loc[in_index, "n_faces"].astype(int),
            "face_trust": 1.0 - w[in_index],
            "dec_class": classes,
        }
    )
    no_ann = table.loc[table["dec_class"].isna(), "image_id"].tolist()
    table = table.dropna(subset=["dec_class"]).reset_index(drop=True)
    counts = {
        "n_predictions": int(len(predictions)),
        "n_joined": int(len(table)),
        "no_annotation": no_ann,
        "not_in_index": ids[~in_index].tolist(),
    }
    return table, counts


def agreement_stats(face_trust: np.ndarray, dec_class: np.ndarray) -> dict:
    """Agreement of face_trust [N] with annotator classes [N] (see the module docstring)."""
    face_trust, dec_class = np.asarray(face_trust, float), np.asarray(dec_class, object)
    out = {"n": int(len(dec_class))}
    out.update({f"n_{c}": int((dec_class == c).sum()) for c in DEC_CLASSES})
    f, c = face_trust[dec_class == "face"], face_trust[dec_class == "context"]
    out["trust_face_if_face"] = float(f.mean()) if len(f) else float("nan")
    out["trust_face_if_context"] = float(c.mean()) if len(c) else float("nan")
    if len(f) == 0 or len(c) == 0:
        out.update(agreement=float("nan"), kappa=float("nan"), auc=float("nan"))
        return out
    truth = np.concatenate([np.ones(len(f)), np.zeros(len(c))])
    pred = np.concatenate([f, c]) > 0.5
    agree = float((pred == truth).mean())
    # Cohen's kappa: agreement beyond what the two marginals give by chance
    chance = truth.mean() * pred.mean() + (1 - truth.mean()) * (1 - pred.mean())
    out["agreement"] = agree
    out["kappa"] = float((agree - chance) / (1 - chance)) if chance < 1 else float("nan")
    # AUC by ranks (ties count 1/2): P(trust of a face image > trust of a context image)
    ranks = pd.Series(np.concatenate([f, c])).rank().to_numpy()
    out["auc"] = float((ranks[: len(f)].sum() - len(f) * (len(f) + 1) / 2) / (len(f) * len(c)))
    return out


def trust_agreement(predictions: pd.DataFrame, index: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The agreement table (TABLE_COLUMNS): overall, per emotion label, per face-count bin.

    Returns (table, join counts as in ``join_trust``). Groups without a face or a context image
    have NaN agreement (nothing to compare), never a made-up number.
    """
    t, counts = join_trust(predictions, index)
    if t.empty:
        raise TrustError(
            "no prediction joins an annotated index row: are these the same images? "
            f"({counts['n_predictions']} predictions, {len(counts['not_in_index'])} not in "
            f"the index, {len(counts['no_annotation'])} without dec_factors)"
        )
    rows = [{"group": "all", "value": "all", **agreement_stats(t["face_trust"], t["dec_class"])}]
    for label in sorted(t["label"].unique()):
        sel = t["label"] == label
        rows.append(
            {"group": "label", "value": label, **agreement_stats(t.loc[sel, "face_trust"], t.loc[sel, "dec_class"])}
        )
    for name, lo, hi in FACE_BINS:
        sel = t["n_faces"].between(lo, hi)
        if sel.any():
            rows.append(
                {
                    "group": "n_faces",
                    "value": name,
                    **agreement_stats(t.loc[sel, "face_trust"], t.loc[sel, "dec_class"]),
                }
            )
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS)), counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run directory (predictions.csv)")
    parser.add_argument("--index", type=Path, required=True, help="index.csv with dec_factors (real data)")
    parser.add_argument("--out", type=Path, help="write the table as CSV here")


def run(args: argparse.Namespace) -> int:
    from emolog.data.index import ImageIndex

    # a missing or damaged file and a TrustError go to the command line's handler (exit 4 / 3)
    pred_path = args.run / "predictions.csv"
    table, counts = trust_agreement(
        read_csv(pred_path, ("image_id",), dtype={"image_id": str}), ImageIndex.load(args.index).df
    )
    print(
        f"{counts['n_joined']} of {counts['n_predictions']} test images joined; "
        f"{len(counts['no_annotation'])} without dec_factors, {len(counts['not_in_index'])} not in the index"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        buf = io.StringIO()
        table.to_csv(buf, index=False, float_format="%.6g")
        atomic_write_text(args.out, buf.getvalue())
        print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m emolog.analysis.trust``: errors as one line and their exit code, as
    ``emolog.cli`` reports them."""
    p = argparse.ArgumentParser(prog="python -m emolog.analysis.trust", description=__doc__.splitlines()[0])
    add_arguments(p)
    try:
        return run(p.parse_args(argv))
    except EmologError as e:
        print(f"emolog: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
