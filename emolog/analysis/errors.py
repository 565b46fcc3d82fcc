"""Which images a model gets wrong, and why: the per-image error table of a run and the
statistics ``emolog analyse`` and the report draw from it (docs/analysis.md).

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
from emolog.metrics.classification import bootstrap_ci
from emolog.model.va_metrics import corr, rank

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


# ----------------------------------------------------------------------------- statistics


def common_ids(errs: list[RunErrors]) -> list[str]:
    """The test images every run predicted, sorted."""
    ids = set(errs[0].table["image_id"])
    for e in errs[1:]:
        ids &= set(e.table["image_id"])
    return sorted(ids)


def wrong_sets(errs: list[RunErrors]) -> dict[str, set[str]]:
    """Per run, the misclassified test images (prediction != label; a valence/arousal run's
    bins), among the images every run predicted."""
    ids = set(common_ids(errs))
    return {e.name: set(e.table.loc[~e.table["correct"], "image_id"]) & ids for e in errs}


def overlap_table(errs: list[RunErrors]) -> pd.DataFrame:
    """Per pair of runs: images both got wrong, only one, neither, and the Jaccard index of
    their error sets."""
    wrong, n = wrong_sets(errs), len(common_ids(errs))
    rows = []
    for i, a in enumerate(errs):
        for b in errs[i + 1 :]:
            wa, wb = wrong[a.name], wrong[b.name]
            union = len(wa | wb)
            rows.append(
                {
                    "run_a": a.name,
                    "run_b": b.name,
                    "n_images": n,
                    "wrong_a": len(wa),
                    "wrong_b": len(wb),
                    "both": len(wa & wb),
                    "only_a": len(wa - wb),
                    "only_b": len(wb - wa),
                    "neither": n - union,
                    "jaccard": len(wa & wb) / union if union else float("nan"),
                }
            )
    return pd.DataFrame(
        rows,
        columns=["run_a", "run_b", "n_images", "wrong_a", "wrong_b", "both", "only_a", "only_b", "neither", "jaccard"],
    )


def wrong_in_k(errs: list[RunErrors]) -> pd.DataFrame:
    """How many images exactly k of the runs got wrong, k = 0 .. number of runs."""
    wrong = wrong_sets(errs)
    k = pd.Series({i: sum(i in w for w in wrong.values()) for i in common_ids(errs)}, dtype=int)
    counts = np.bincount(k.to_numpy(), minlength=len(errs) + 1)
    return pd.DataFrame({"k_runs_wrong": np.arange(len(errs) + 1), "n_images": counts})


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return corr(rank(x), rank(y))


def thresholds(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two disagreement thresholds read off the scatter: the splits of the least-squares fit of
    the error by a step function with three levels (a regression tree with three leaves of at
    least 10% of the images each), i.e. where the error changes most: small < t1 <= medium < t2 <= big."""
    from sklearn.tree import DecisionTreeRegressor

    tree = DecisionTreeRegressor(max_leaf_nodes=3, min_samples_leaf=max(2, len(x) // 10), random_state=0)
    tree.fit(x[:, None], y)
    cuts = sorted(float(v) for v, f in zip(tree.tree_.threshold, tree.tree_.feature) if f >= 0)
    cuts += [float("nan")] * (2 - len(cuts))
    return cuts[0], cuts[1]


def disagreement_stats(e: RunErrors, what: str, n_boot: int = 1000, seed: int = 0) -> dict | None:
    """The scene's error against the face-scene disagreement on ``what`` (``RunErrors.targets``),
    over the images with a face: least-squares line, Pearson's r and Spearman's rho with 95%
    bootstrap intervals (``bootstrap_ci``), ``thresholds`` and the mean scene error below, between
    and above them. A rising line (r > 0, its interval above 0) means the faces matter: where
    a face disagrees with the scene, the scene alone errs more. None without both sources."""
    xc, yc = e.disagreement(what), e.scene_error(what)
    if xc not in e.table or yc not in e.table:
        return None
    d = e.table[[xc, yc]].dropna()
    x, y = d[xc].to_numpy(float), d[yc].to_numpy(float)
    out: dict = {"run": e.name, "target": what, "x": xc, "y": yc, "n": len(x)}
    if len(x) < 10:
        return {**out, "note": "fewer than 10 test images with a face"}
    slope, intercept = np.polyfit(x, y, 1)
    ci = bootstrap_ci(lambda i: np.array([corr(x[i], y[i]), _spearman(x[i], y[i])]), len(x), n_boot=n_boot, seed=seed)
    t1, t2 = thresholds(x, y)
    groups = {"small": x < t1, "medium": (x >= t1) & (x < t2), "big": x >= t2}
    out.update(
        slope=float(slope),
        intercept=float(intercept),
        pearson=float(ci["estimate"][0]),
        pearson_lo=float(ci["lo"][0]),
        pearson_hi=float(ci["hi"][0]),
        spearman=float(ci["estimate"][1]),
        spearman_lo=float(ci["lo"][1]),
        spearman_hi=float(ci["hi"][1]),
        t1=t1,
        t2=t2,
    )
    for g, m in groups.items():
        out[f"n_{g}"] = int(m.sum())
        out[f"scene_error_{g}"] = float(y[m].mean()) if m.any() else float("nan")
    out["faces_matter"] = bool(out["pearson_lo"] > 0)
    return out


def meta_ranking(e: RunErrors, what: str, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The run's error on ``what`` against each meta-information variable (and the face-scene
    disagreement): Spearman's rho with a 95% bootstrap interval (numeric variables) and the
    mutual information (nats; scikit-learn's k-nearest-neighbour estimate, discrete for the
    scene's top class), ranked by mutual information."""
    from sklearn.feature_selection import mutual_info_regression

    err = e.error(what)
    rows = []
    for var in [*META, e.disagreement(what)]:
        if var not in e.table:
            continue
        d = e.table[[var, err]].replace("", np.nan).dropna()
        if len(d) < 10 or d[var].nunique() < 2:
            continue
        y = d[err].to_numpy(float)
        cat = var in CATEGORICAL
        x = pd.factorize(d[var])[0].astype(float) if cat else d[var].to_numpy(float)
        mi = float(mutual_info_regression(x[:, None], y, discrete_features=cat, random_state=seed)[0])
        row = {"run": e.name, "target": what, "variable": var, "n": len(d), "mutual_information": mi}
        if not cat:
            ci = bootstrap_ci(lambda i: _spearman(x[i], y[i]), len(x), n_boot=n_boot, seed=seed)
            row.update(spearman=ci["estimate"], spearman_lo=ci["lo"], spearman_hi=ci["hi"])
        rows.append(row)
    df = pd.DataFrame(
        rows, columns=["run", "target", "variable", "n", "mutual_information", "spearman", "spearman_lo", "spearman_hi"]
    )
    df = df.sort_values("mutual_information", ascending=False, kind="stable").reset_index(drop=True)
    df.insert(3, "rank", np.arange(1, len(df) + 1))
    return df


def confusion(e: RunErrors) -> np.ndarray:
    """[C, C] test confusion counts of the run (rows: true class)."""
    idx = {c: i for i, c in enumerate(e.classes)}
    cm = np.zeros((len(e.classes),) * 2, dtype=np.int64)
    np.add.at(cm, (e.table["label"].map(idx).to_numpy(), e.table["pred"].map(idx).to_numpy()), 1)
    return cm


def confused_pairs(e: RunErrors, top: int = 5) -> pd.DataFrame:
    """The ``top`` most confused pairs of classes (either direction), with both directions'
    counts and their share of the pair's test images."""
    cm = confusion(e)
    rows = []
    for i in range(len(cm)):
        for j in range(i + 1, len(cm)):
            n = int(cm[i, j] + cm[j, i])
            if n:
                rows.append(
                    {
                        "run": e.name,
                        "class_a": e.classes[i],
                        "class_b": e.classes[j],
                        "confusions": n,
                        "a_as_b": int(cm[i, j]),
                        "b_as_a": int(cm[j, i]),
                        "share_of_pair": n / int(cm[i].sum() + cm[j].sum()),
                    }
                )
    df = pd.DataFrame(rows, columns=["run", "class_a", "class_b", "confusions", "a_as_b", "b_as_a", "share_of_pair"])
    return df.sort_values(["confusions", "class_a", "class_b"], ascending=[False, True, True]).head(top)


def worst(e: RunErrors, n: int) -> pd.DataFrame:
    """The ``n`` test images with the largest error (the loss; for a valence/arousal run the
    summed absolute error of its variables), worst first, ties by image id."""
    score = e.table[[e.error(v) for v in e.variables]].sum(1) if e.variables else e.table["loss"]
    return (
        e.table.assign(_score=score)
        .sort_values(["_score", "image_id"], ascending=[False, True])
        .head(n)
        .drop(columns="_score")
    )
