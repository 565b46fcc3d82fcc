"""Which images a model gets wrong, and why: the per-image error table of a run, which the
statistics of ``emolog analyse`` and the report (``emolog.analysis.error_stats``) read
(docs/analysis.md).

One row per test image of a run (``run_errors``): the label, the prediction, the run's loss on
it, **each source's own prediction** and the **disagreement between the largest face and the
scene**, and the image's meta-information. A source's prediction is the run's program with its
source choice fixed to that source (``em.source_coefficients``: the program's output given the
source, over the run's own classes, so a valence program's face prediction goes through its
expression table); a program without a global source choice gets the scene net's and the
recogniser's distributions where they are over the run's classes (basic-7), and no source
columns otherwise.

Columns (``<v>``: each valence/arousal variable of a run with a target): ``image_id``,
``rel_path``, ``label``, ``pred``, ``correct``, ``p_label``, ``loss`` (-ln p_label),
``pred_<source>``, ``p_label_<source>``, ``scene_loss``, ``disagreement`` (Jensen-Shannon
divergence, nats, between face 1's and the scene's distributions), ``<v>``, ``pred_<v>``,
``abs_err_<v>``, ``pred_<source>_<v>``, ``scene_err_<v>`` (|scene's prediction - value|),
``disagreement_<v>`` (|face 1's prediction - the scene's|), and the meta-information
``META`` (empty where it does not apply, e.g. no face).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emolog.data.paths import resolve_recorded
from emolog.errors import InputError
from emolog.labels import BASIC7

META: tuple[str, ...] = (
    "n_faces",
    "face1_area",
    "face1_centrality",
    "face1_conf",
    "face1_max_prob",
    "face1_entropy",
    "scene_entropy",
    "scene_top",
)
CATEGORICAL = ("scene_top",)


class AnalysisError(InputError, ValueError):
    """A run that cannot be analysed (its predictions, cache or index missing or inconsistent)."""


@dataclass
class RunErrors:
    """The error table of one run (``run_errors``)."""

    name: str
    dir: Path
    classes: list[str]
    variables: list[str]
    table: pd.DataFrame
    sources: dict[str, np.ndarray] = field(default_factory=dict)  # source -> [N, C], NaN rows where absent
    data: dict = field(default_factory=dict)  # results.json "data" (cache, index paths)

    @property
    def targets(self) -> list[str]:
        """What the statistics are computed for: ``class`` (the label), and each variable."""
        return ["class", *self.variables]

    def error(self, what: str) -> str:
        """The column holding the run's error on ``what`` (``targets``)."""
        return "loss" if what == "class" else f"abs_err_{what}"

    def scene_error(self, what: str) -> str:
        return "scene_loss" if what == "class" else f"scene_err_{what}"

    def disagreement(self, what: str) -> str:
        return "disagreement" if what == "class" else f"disagreement_{what}"


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (nats) between the rows of ``p`` and ``q`` [N, C]; NaN rows stay NaN."""
    m = (p + q) / 2

    def kl(a: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, a * np.log(a / m), 0.0).sum(1)

    out = (kl(p) + kl(q)) / 2
    return np.where(np.isnan(p).any(1) | np.isnan(q).any(1), np.nan, out)


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of ``p`` [N, C]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(1)


def image_root(data: dict, index_path: Path, fingerprint: dict, override: str | Path | None) -> Path:
    """Where index.csv's rel_paths point: ``override`` (--images), else a root recorded in the
    run's data provenance, the cache fingerprint or `emolog index`'s index_summary.json beside
    the index, else the data directory holding index.csv."""
    if override:
        return Path(override)
    summary = index_path.parent / "index_summary.json"
    recorded = json.loads(summary.read_text()) if summary.is_file() else {}
    for where in (data, fingerprint, recorded):
        for key in ("root", "image_root", "data_root", "images"):
            if isinstance(where.get(key), str) and where[key]:
                return resolve_recorded(where[key], index_path.parent)
    return index_path.parent


def source_distributions(run, cache) -> dict[str, np.ndarray]:
    """Each source's distribution over the run's classes on the cache's images [N, C] (NaN
    rows where the image lacks the source); see the module docstring."""
    import torch
    from emolog.learn import em
    from emolog.model.data import split_from_cache

    model = run.network()
    n, classes = len(cache.ids), list(run.classes)
    if model.kind.global_weights and em.seed_like(model.lm) and not len(model.heads):
        s = split_from_cache(
            cache,
            slice(0, n),
            list(cache.ids),
            torch.full((n,), -1, dtype=torch.long),
            torch.device("cpu"),
            model.last_block is not None,
        )
        with torch.no_grad():
            scene = model.scene_probs(s, torch.arange(n), check=False)
        coef = em.source_coefficients(
            model.lm, lambda idx: model.program_io(s, idx, scene=scene[idx]), n, model._cols
        ).numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            dist = coef[:, :, :-1] / coef[:, :, -1:]
        return {src: np.where(coef[:, k, -1:] > 0, dist[:, k], np.nan) for k, src in enumerate(model.lm.sources)}
    if tuple(classes) != BASIC7:  # the recogniser's and the scene net's distributions are basic-7
        return {}
    out = {"scene": run.predict(cache).scene_probs}
    mask = cache.face_mask.numpy()
    for k in range(mask.shape[1]):
        out[f"face{k + 1}"] = np.where(mask[:, k : k + 1], cache.face_probs[:, k].double().numpy(), np.nan)
    return out


def run_errors(run_dir: str | Path, name: str | None = None) -> RunErrors:
    """The error table of the finished run in ``run_dir`` (its test predictions, the cache
    and index it was trained on); ``name`` labels it (default: the folder's name)."""
    import emolog
    from emolog.cache.store import load_cache, read_manifest
    from emolog.cache.verify import require_verified
    from emolog.data.artefacts import read_csv
    from emolog.data.index import ImageIndex
    from emolog.experiments.baselines import meta_features

    run_dir = Path(run_dir)
    run = emolog.load_run(run_dir)
    classes = list(run.classes)
    # the run's own files checked against the sha256 results.json records, the cache verified,
    # the index read: a damaged input is refused naming it, never analysed (docs/reliability.md)
    pred = read_csv(
        run._file("predictions.csv"),
        ("image_id", "label", "pred", *[f"p_{c}" for c in classes]),
        "the run's test predictions",
        dtype={"image_id": str, "label": str, "pred": str},
        keep_default_na=False,
    )
    data = run.results.get("data") or {}
    cache_dir, index_path = (resolve_recorded(data.get(k) or "", run_dir) for k in ("cache", "index"))
    if not data.get("cache") or not data.get("index"):
        raise AnalysisError(
            f"{run_dir / 'results.json'}: records no cache or index (data: {data}); the analysis "
            "needs each test image's sources and its photo"
        )
    ids = pred["image_id"].tolist()
    read_manifest(cache_dir)  # no cache there: "missing" (exit 4), as predict says
    require_verified(cache_dir, ids)
    cache = load_cache(cache_dir, ids=ids, prelast=(run_dir / "backbone_last_block.pt").is_file())
    index = ImageIndex.load(index_path)
    probs = pred[[f"p_{c}" for c in classes]].to_numpy(np.float64)
    probs /= probs.sum(1, keepdims=True)
    y = np.array([classes.index(lab) for lab in pred["label"]])
    rows = np.arange(len(y))
    t = pd.DataFrame({"image_id": ids, "label": pred["label"], "pred": pred["pred"]})
    t["rel_path"] = index.rel_path_of(ids)
    t["correct"] = t["label"] == t["pred"]
    t["p_label"] = probs[rows, y]
    t["loss"] = -np.log(np.maximum(t["p_label"], 1e-12))
    sources = source_distributions(run, cache)
    for src, d in sources.items():
        known = ~np.isnan(d).any(1)
        t[f"pred_{src}"] = np.where(known, np.asarray(classes)[np.nan_to_num(d).argmax(1)], "")
        t[f"p_label_{src}"] = d[rows, y]
    if "scene" in sources:
        t["scene_loss"] = -np.log(np.maximum(sources["scene"][rows, y], 1e-12))
        if "face1" in sources:
            t["disagreement"] = js_divergence(sources["face1"], sources["scene"])
    target = run.target
    variables = list(target.variables) if target else []
    for j, v in enumerate(variables):
        t[v] = pred[v].astype(float)
        t[f"pred_{v}"] = target.expected(probs)[:, j]
        t[f"abs_err_{v}"] = (t[f"pred_{v}"] - t[v]).abs()
        for src, d in sources.items():
            t[f"pred_{src}_{v}"] = target.expected(np.nan_to_num(d, nan=1.0))[:, j]
            t.loc[np.isnan(d).any(1), f"pred_{src}_{v}"] = np.nan
        if "scene" in sources:
            t[f"scene_err_{v}"] = (t[f"pred_scene_{v}"] - t[v]).abs()
            if "face1" in sources:
                t[f"disagreement_{v}"] = (t[f"pred_face1_{v}"] - t[f"pred_scene_{v}"]).abs()
    meta = meta_features(cache)
    has_face = cache.face_mask[:, 0].numpy()
    t["n_faces"] = cache.n_faces.numpy()
    for k in ("area", "centrality", "conf", "max_prob", "entropy"):
        t[f"face1_{k}"] = np.where(has_face, meta[f"face1_{k}"], np.nan)
    if "scene" in sources:
        t["scene_entropy"] = entropy(sources["scene"])
        t["scene_top"] = np.asarray(classes)[sources["scene"].argmax(1)]
    return RunErrors(name or run_dir.name, run_dir, classes, variables, t, sources, data)
