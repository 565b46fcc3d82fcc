"""A finished run as an object: ``load_run(run_dir) -> Run``, with ``Run.predict(cache)``.

``Run`` rebuilds the trained model from the run directory (config.json, results.json,
logic.pt, scene_net.pt, gate_net.pt / backbone_last_block.pt) exactly as the run evaluated
it, so ``load_run(d).predict(cache, ids=test_ids)`` reproduces the run's own test
predictions (and hence its test metrics) bit for bit on the same device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emolog.errors import MissingError
from emolog.labels import BASIC7, SOURCES

if TYPE_CHECKING:
    import pandas as pd


class RunError(MissingError):
    """A run directory that cannot be loaded (a file missing or from another emolog)."""


@dataclass
class Predictions:
    """Predictions of a run on a set of images (rows aligned with ``ids``).

    ``probs`` [N, C] P(class | evidence) (renormalised over the classes); ``sources`` the
    source names when the program chooses a source (else None); ``source_posterior`` [N, S]
    P(source | predicted class, evidence): which source explains the prediction;
    ``source_probs`` [N, S] the per-image source distribution before any class is assumed;
    ``scene_probs`` [N, 7] the scene net's own distribution (the scene source as the program saw it);
    ``values`` [N, V] a valence/arousal run's prediction (the expected value of each of
    ``variables``), else None.
    """

    ids: list[str]
    probs: np.ndarray
    classes: list[str]
    sources: list[str] | None = None
    source_posterior: np.ndarray | None = None
    source_probs: np.ndarray | None = None
    scene_probs: np.ndarray | None = None
    values: np.ndarray | None = None
    variables: list[str] | None = None

    @property
    def pred(self) -> list[str]:
        return [self.classes[i] for i in self.probs.argmax(1)]


@dataclass(frozen=True)
class Results:
    """results.json as typed fields (the file keeps its keys: this is a read-only view)."""

    regime: str
    seed: int
    program: str
    semantics: str
    classes: list[str]
    kind: str
    metrics: dict                         # {"val": M, "test": M}
    metrics_before: dict                  # {"test": M}
    source_weights: dict[str, float] | None
    true_source_weights: dict[str, float] | None
    t_values: dict[str, float]
    true_t_values: dict[str, float] | None
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    n_train: int
    train_time_s: float
    unscorable: dict
    sanity_warning: str | None

    @classmethod
    def from_dict(cls, d: dict) -> "Results":
        """From a results.json dict (runs of an older emolog lack some keys: their defaults)."""
        return cls(regime=d["regime"], seed=int(d["seed"]), program=d["program"], semantics=d["semantics"],
                   classes=list(d.get("classes") or BASIC7), kind=d.get("kind", "global"), metrics=d["metrics"],
                   metrics_before=d["metrics_before"], source_weights=d.get("source_weights"),
                   true_source_weights=d.get("true_source_weights"), t_values=dict(d.get("t_values") or {}),
                   true_t_values=d.get("true_t_values"), epochs_run=int(d["epochs_run"]),
                   best_epoch=int(d.get("best_epoch", d["epochs_run"])), stopped_early=bool(d.get("stopped_early")),
                   n_train=int(d.get("n_train", 0)), train_time_s=float(d["train_time_s"]),
                   unscorable=dict(d.get("unscorable") or {"n": 0}), sanity_warning=d.get("sanity_warning"))


@dataclass
class Run:
    """A trained run read back from its directory (``load_run``)."""

    dir: Path
    config: dict
    results: dict

    @property
    def typed(self) -> Results:
        """results.json as a ``Results``."""
        return Results.from_dict(self.results)

    @property
    def classes(self) -> list[str]:
        return list(self.results.get("classes") or BASIC7)

    @property
    def metrics(self) -> dict:
        """{"val": M, "test": M} as in results.json."""
        return self.results["metrics"]

    @property
    def perception(self) -> dict | None:
        return self.config.get("perception")

    @property
    def target(self) -> Any:
        """A valence/arousal run's ``emolog.training.target.Target`` (its bins' values fitted), else None."""
        from emolog.training.target import Target
        return Target.from_dict(self.results["target"]) if self.results.get("target") else None

    @property
    def t_values(self) -> dict[str, float]:
        return dict(self.results.get("t_values") or {})

    @property
    def history(self) -> pd.DataFrame:
        """history.csv: one row per epoch (0 = before training), the columns docs/training.md lists."""
        import pandas as pd
        return pd.read_csv(self._file("history.csv"))

    @property
    def layers(self) -> list[dict]:
        """What training changed, per parameter tensor of every net (changes.json ``layers``:
        net, name, readable ``label`` of a t() block, rel/abs change, cosine to init, mean
        gradient norm, trainable)."""
        return json.loads(self._file("changes.json").read_text())["layers"]

    @property
    def flips(self) -> dict:
        """Test predictions changed by training, per true class (changes.json ``flips``)."""
        return json.loads(self._file("changes.json").read_text())["flips"]

    def _file(self, name: str) -> Path:
        if not (self.dir / name).is_file():
            raise RunError(f"{self.dir} has no {name}: not a finished run (or an emolog older than this file)")
        return self.dir / name

    def model(self, device: str = "cpu") -> Any:
        """The trained ``emolog.training.model.Model`` (eval mode) on ``device``."""
        return _build_model(self, device)

    def predict(self, cache: Any, ids: list[str] | None = None, device: str = "cpu") -> Predictions:
        """Predictions for ``ids`` (default: every image of the cache) of a ``FeatureCache`` or a
        cache directory. Raises CacheError naming ids the cache lacks."""
        import torch
        from emolog.cache.store import FeatureCache, load_cache
        from emolog.training.data import split_from_cache
        from emolog.training.model import predict_split
        if ids is not None and not len(ids):
            raise RunError(f"predict({self.dir}): the list of image ids is empty")
        model = self.model(device)
        joint_unfreeze = model.last_block is not None
        if not isinstance(cache, FeatureCache):
            cache = load_cache(cache, ids=ids, prelast=joint_unfreeze)
        elif ids is not None:
            cache = cache.select(list(ids))
        if joint_unfreeze and cache.scene_prelast is None:
            raise RunError(f"{self.dir} trained the backbone's last block: predicting needs the cache's "
                           "pre-last activations (load it with prelast=True, or pass the cache directory)")
        ids = list(cache.ids)
        dev = torch.device(device)
        s = split_from_cache(cache, slice(0, len(ids)), ids, torch.full((len(ids),), -1, dtype=torch.long), dev,
                             joint_unfreeze)
        if model.gate is not None:
            from emolog.training.gate import split_static_evidence
            model.static = {id(s): split_static_evidence(s)}
        if len(model.heads):
            model.head_inputs = {id(s): self._head_inputs(s)}
        probs = predict_split(model, s, sources=False)["probs"]
        out = Predictions(ids, probs.cpu().double().numpy(), self.classes)
        if model.target is not None:
            out.values, out.variables = model.target.expected(out.probs), list(model.target.variables)
        from emolog.training.model import EVAL_CHUNK
        with torch.no_grad():  # chunked like predict_split: joint-unfreeze runs the last block here
            out.scene_probs = torch.cat([model.scene_probs(s, torch.arange(i, min(i + EVAL_CHUNK, len(ids)), device=dev),
                                                           check=False) for i in range(0, len(ids), EVAL_CHUNK)]
                                        or [torch.zeros(0, model.scene_net.n_classes)]).cpu().double().numpy()
        if model.has_sources:
            pred = predict_split(model, s, labels=probs.argmax(1))
            out.sources = list(SOURCES)
            out.source_posterior = pred["post"].cpu().double().numpy()
            out.source_probs = pred["w"].cpu().double().numpy()
        return out


    def _head_inputs(self, s: Any) -> dict:
        from emolog.training.config import RunConfig
        from emolog.training.model import head_features
        from emolog.training.perception import scene_classifier
        tables = {n: tb for n, tb in (self.results.get("spec") or {}).get("nets", {}).items() if tb.get("bind") == "head"}
        classifier = None
        if any("scene_classes" in tb["inputs"] for tb in tables.values()):
            cfg = RunConfig.from_dict({k: v for k, v in self.config.items() if k != "perception"})
            classifier, _ = scene_classifier(cfg, self.perception or {})
        return {n: head_features(s, tb["inputs"], classifier) for n, tb in tables.items()}


def load_run(run_dir: str | Path) -> Run:
    """The finished run in ``run_dir`` (needs config.json and results.json)."""
    d = Path(run_dir)
    for name in ("config.json", "results.json"):
        if not (d / name).is_file():
            raise RunError(f"{d} is not a finished run: it has no {name}"
                           + (" (the run was interrupted: `emolog train --resume`)" if (d / "checkpoint.pt").exists()
                              else ""))
    return Run(d, json.loads((d / "config.json").read_text()), json.loads((d / "results.json").read_text()))


def _build_model(run: Run, device: str) -> Any:
    import torch
    from emolog.perception.scene2emotion import Scene2EmotionNet
    from emolog.training.config import RunConfig
    from emolog.training.gate import load_gate, program_kind
    from emolog.training.model import HeadMLP, Model
    from emolog.training.perception import build_last_block
    d = run.dir
    cfg = RunConfig.from_dict({k: v for k, v in run.config.items() if k != "perception"})
    if not (d / "logic.pt").is_file():
        raise RunError(f"{d} has no logic.pt: it was trained by an emolog older than load_run; retrain it")
    from emolog.training.spec import build_logic_module
    lm = build_logic_module(run.results.get("program_source") or cfg.program, run.results["semantics"],
                            cfg.logic_param, run.results.get("spec"))
    lm.tparams.load_state_dict(torch.load(d / "logic.pt", map_location="cpu", weights_only=True))
    state = torch.load(d / "scene_net.pt", map_location="cpu", weights_only=True)
    scene_net = Scene2EmotionNet(in_dim=state["fc1.weight"].shape[1], hidden=state["fc1.weight"].shape[0],
                                 n_classes=state["fc2.weight"].shape[0] if "fc2.weight" in state else len(BASIC7),
                                 dropout=cfg.net_dropout)
    scene_net.load_state_dict(state)
    last_block = None
    if (d / "backbone_last_block.pt").is_file():
        last_block = build_last_block(cfg, run.perception or {})
        last_block.load_state_dict(torch.load(d / "backbone_last_block.pt", map_location="cpu", weights_only=True))
    heads = {}
    for name, tb in ((run.results.get("spec") or {}).get("nets") or {}).items():
        if tb.get("bind") == "head":
            state = torch.load(d / f"head_{name}.pt", map_location="cpu", weights_only=True)
            first = next(k for k in state if k.endswith("weight"))
            heads[name] = HeadMLP(state[first].shape[1], tb.get("hidden", [64]), lm.input_sizes[name],
                                  tb.get("dropout", cfg.net_dropout))
            heads[name].load_state_dict(state)
    grey = run.results.get("grey_face_logits")
    grey_t = torch.tensor(grey["values"], dtype=torch.float32, device=device) if grey else None
    model = Model(lm, scene_net, last_block, run.results["semantics"], grey_t, load_gate(d), program_kind(lm),
                  tuple(run.classes), heads)
    model.target = run.target
    return model.to(device).eval()
