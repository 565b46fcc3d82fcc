"""A finished run as an object: ``read_run(run_dir) -> Run``, with ``Run.predict(cache)``.

``Run`` rebuilds the trained model from the run directory (config.json, results.json,
logic.pt, scene_net.pt, gate_net.pt / backbone_last_block.pt) exactly as the run evaluated
it, so ``read_run(d).predict(cache, ids=test_ids)`` reproduces the run's own test
predictions (and hence its test metrics) bit for bit on the same device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emolog.data.artefacts import ArtefactError, check_fields, check_record, load_torch, read_csv, read_json
from emolog.errors import MissingError
from emolog.labels import BASIC7, SOURCES
from emolog.runs.record import RESULTS_FIELDS, Results, RunFiles, raise_broken, read_run_files

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
    ``scene_probs`` [N, S] the scene head's own distribution (the scene source as the program saw
    it) over ``scene_classes`` (its network's domain); None when the program has no scene head.
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
    scene_classes: list[str] | None = None
    values: np.ndarray | None = None
    variables: list[str] | None = None

    @property
    def pred(self) -> list[str]:
        return [self.classes[i] for i in self.probs.argmax(1)]


@dataclass
class Run(RunFiles):
    """A trained run read back from its directory (``read_run``): its records (``results``,
    ``config``, ``classes``, ``t_values``: ``RunFiles``) and its predictions; ``model`` is the
    run as an ``emolog.runs.model.Model`` when read through ``emolog.load_run``."""

    model: Any = field(default=None, repr=False, compare=False)

    @property
    def results(self) -> dict:
        """results.json (``read_run`` refuses a run without a usable one)."""
        return self.files["results.json"]

    @property
    def config(self) -> dict:
        """config.json (``read_run`` refuses a run without a usable one)."""
        return self.files["config.json"]

    @property
    def typed(self) -> Results:
        """results.json as a ``Results``."""
        return Results.from_dict(self.results, str(self.dir / "results.json"))

    @property
    def metrics(self) -> dict:
        """{"val": M, "test": M} as in results.json."""
        return self.results["metrics"]

    @property
    def perception(self) -> dict | None:
        return self.config.get("perception")

    @property
    def target(self) -> Any:
        """A valence/arousal run's ``emolog.model.target.Target`` (its bins' values fitted), else None."""
        from emolog.model.target import Target

        return Target.from_dict(self.results["target"]) if self.results.get("target") else None

    @property
    def history(self) -> pd.DataFrame:
        """history.csv: one row per epoch (0 = before training), the columns docs/training.md lists."""
        return read_csv(self._file("history.csv"), ("epoch", "train_loss", "val_loss"))

    @property
    def layers(self) -> list[dict]:
        """What training changed, per parameter tensor of every net (changes.json ``layers``:
        net, name, readable ``label`` of a t() block, rel/abs change, cosine to init, mean
        gradient norm, trainable)."""
        return read_json(self._file("changes.json"), required={"layers": list})["layers"]

    @property
    def flips(self) -> dict:
        """Test predictions changed by training, per true class (changes.json ``flips``)."""
        return read_json(self._file("changes.json"), required={"flips": dict})["flips"]

    def _file(self, name: str) -> Path:
        """``dir/name``, checked against the sha256 results.json records for it."""
        if not (self.dir / name).is_file():
            raise RunError(f"{self.dir} has no {name}: not a finished run (or an emolog older than this file)")
        check_record(self.dir / name, self.results.get("files"), self.dir / "results.json")
        return self.dir / name

    def _state(self, name: str) -> Any:
        """A state dict the run saved (``name``, e.g. logic.pt), checked and loaded on the CPU."""
        return load_torch(self._file(name), "a state dict of the run")

    def _config(self) -> Any:
        """config.json as the RunConfig it was (a bad key or value named with the file)."""
        from emolog.config.run import ConfigError, RunConfig

        try:
            return RunConfig.from_record(self.config)
        except ConfigError as e:
            raise ArtefactError(f"{self.dir / 'config.json'}: {e}") from None

    def network(self, device: str = "cpu") -> Any:
        """The trained ``emolog.model.model.Network`` (eval mode) on ``device``."""
        return _build_model(self, device)

    def _scene_classifier(self) -> tuple[Any, list[str]]:
        """The cache backbone's classifier and its class names (built once per Run)."""
        if not hasattr(self, "_classifier"):
            from emolog.model.perception import scene_classifier

            self._classifier = scene_classifier(self._config(), self.perception or {})
        return self._classifier

    def predict(
        self, cache: Any, ids: list[str] | None = None, device: str = "cpu", network: Any = None
    ) -> Predictions:
        """Predictions for ``ids`` (default: every image of the cache) of a ``FeatureCache`` or a
        cache directory, by ``network`` (default: the run's, rebuilt on ``device``). Raises
        CacheError naming ids the cache lacks."""
        import torch
        from emolog.cache.store import FeatureCache, load_cache
        from emolog.model.data import split_from_cache
        from emolog.model.model import predict_split

        if ids is not None and not len(ids):
            raise RunError(f"predict({self.dir}): the list of image ids is empty")
        model = self.network(device) if network is None else network.to(device).eval()
        joint_unfreeze = model.last_block is not None
        if not isinstance(cache, FeatureCache):
            cache = load_cache(cache, ids=ids, prelast=joint_unfreeze)
        elif ids is not None:
            cache = cache.select(list(ids))
        for n, tb in ((self.results.get("spec") or {}).get("nets") or {}).items():
            if "cache.face_features" in (tb.get("bind"), *tb.get("inputs", [])):
                cache.require("face_features", f"network {n} of {self.dir}'s spec reads it")
        if joint_unfreeze and cache.scene_prelast is None:
            raise RunError(
                f"{self.dir} trained the backbone's last block: predicting needs the cache's "
                "pre-last activations (load it with prelast=True, or pass the cache directory)"
            )
        ids = list(cache.ids)
        dev = torch.device(device)
        s = split_from_cache(
            cache, slice(0, len(ids)), ids, torch.full((len(ids),), -1, dtype=torch.long), dev, joint_unfreeze
        )
        if _reads_scene_classes(self.results.get("spec")):
            from emolog.model.bindings.fields import add_scene_classes

            add_scene_classes(s, self._scene_classifier()[0])
        probs = predict_split(model, s, sources=False)["probs"]
        out = Predictions(ids, probs.cpu().double().numpy(), self.classes)
        if model.target is not None:
            out.values, out.variables = model.target.expected(out.probs), list(model.target.variables)
        from emolog.model.bindings.program import scene_domain
        from emolog.model.model import EVAL_CHUNK

        out.scene_classes = scene_domain(model.lm)
        if out.scene_classes is not None:
            with torch.no_grad():  # chunked like predict_split: joint-unfreeze runs the last block here
                out.scene_probs = (
                    torch.cat(
                        [
                            model.scene_probs(
                                s, torch.arange(i, min(i + EVAL_CHUNK, len(ids)), device=dev), check=False
                            )
                            for i in range(0, len(ids), EVAL_CHUNK)
                        ]
                        or [torch.zeros(0, model.scene_net.n_classes)]
                    )
                    .cpu()
                    .double()
                    .numpy()
                )
        if model.has_sources:
            pred = predict_split(model, s, labels=probs.argmax(1))
            out.sources = list(SOURCES)
            out.source_posterior = pred["post"].cpu().double().numpy()
            out.source_probs = pred["w"].cpu().double().numpy()
        return out


def _reads_scene_classes(spec: dict | None) -> bool:
    return any(
        "cache.scene_classes" in (tb.get("bind"), *tb.get("inputs", []))
        for tb in ((spec or {}).get("nets") or {}).values()
    )


def read_run(run_dir: str | Path) -> Run:
    """The finished run in ``run_dir`` (needs config.json and results.json; every file read
    later is checked against the sha256 results.json records for it)."""
    d = Path(run_dir)
    for name in ("config.json", "results.json"):
        if not (d / name).is_file():
            raise RunError(
                f"{d} is not a finished run: it has no {name}"
                + (" (the run was interrupted: `emolog train --resume`)" if (d / "checkpoint.pt").exists() else "")
            )
    run = read_run_files(Run(d, name=d.name), ("results.json", "config.json"))
    raise_broken(run)
    check_fields(run.results, RESULTS_FIELDS, d / "results.json")
    run._config()
    return run


def _build_model(run: Run, device: str) -> Any:
    import torch
    from emolog.perception.scene2emotion import Scene2EmotionNet
    from emolog.model.gate import load_gate, program_kind
    from emolog.model.model import Network, Parts

    d = run.dir
    cfg = run._config()
    if not (d / "logic.pt").is_file():
        raise RunError(f"{d} has no logic.pt: it was trained by an emolog older than load_run; retrain it")
    record = run.results.get("spec")
    lm, spec, heads = _logic(run, cfg, record)
    _load_into(lm.tparams, run, "logic.pt")
    state = run._state("scene_net.pt")
    try:
        scene_net = Scene2EmotionNet(
            in_dim=state["fc1.weight"].shape[1],
            hidden=state["fc1.weight"].shape[0],
            n_classes=state["fc2.weight"].shape[0] if "fc2.weight" in state else len(BASIC7),
            dropout=cfg.nets.dropout,
        )
    except (KeyError, TypeError, AttributeError, IndexError):
        raise ArtefactError(f"{d / 'scene_net.pt'}: not a scene net's state dict (no fc1.weight matrix)") from None
    _load_into(scene_net, run, "scene_net.pt", state)
    last_block = None
    if (d / "backbone_last_block.pt").is_file():
        from emolog.model.perception import build_last_block

        last_block = build_last_block(cfg, run.perception or {})
        _load_into(last_block, run, "backbone_last_block.pt")
    grey = run.results.get("grey_face_logits")
    grey_t = torch.tensor(grey["values"], dtype=torch.float32, device=device) if grey else None
    if (d / "gate_net.pt").is_file():
        run._file("gate_net.pt")  # its sha256 checked before load_gate reads it
    head_inputs = {n: b.inputs for n, b in spec.nets.items() if n in heads} if spec else {}
    model = Network(
        lm,
        scene_net,
        run.results["semantics"],
        program_kind(lm),
        tuple(run.classes),
        Parts(last_block, load_gate(d), grey_t, heads, head_inputs),
    )
    model.target = run.target
    return model.to(device).eval()


def _load_into(module: Any, run: Run, name: str, state: Any = None) -> None:
    """``module.load_state_dict`` of the run's ``name``; a state of another shape is named."""
    state = run._state(name) if state is None else state
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        raise ArtefactError(
            f"{run.dir / name}: does not fit the run's model ({str(e).strip().splitlines()[0][:160]})"
        ) from None


def _heads(run: Run, cfg: Any, spec: Any, nets: dict) -> dict:
    """The run's trained heads (``head_<name>.pt``), by network name (``nets``: the program's
    declared networks)."""
    from emolog.model.model import HeadMLP

    heads = {}
    for name, b in spec.nets.items() if spec else ():
        if b.bind == "head":
            state = run._state(f"head_{name}.pt")
            first = next(k for k in state if k.endswith("weight"))
            width = len(nets[name].domain) if nets[name].kind == "ad" else 1
            heads[name] = HeadMLP(
                state[first].shape[1], b.hidden, width, b.dropout if b.dropout is not None else cfg.nets.dropout
            )
            _load_into(heads[name], run, f"head_{name}.pt", state)
    return heads


def _logic(run: Run, cfg: Any, record: dict | None) -> tuple[Any, Any, dict]:
    """(the run's compiled program, its spec or None, its heads by name), built as the run
    built them."""
    if not record:
        from emolog.logic import compile_program

        return (
            compile_program(
                run.results.get("program_source") or cfg.program,
                semantics=run.results["semantics"],
                param=cfg.logic.param,
            ),
            None,
            {},
        )
    from emolog.model.bindings.program import BuildContext, build_logic, open_program
    from emolog.model.bindings.schema import check_data
    from emolog.model.spec import Spec

    spec = Spec.from_record(record)
    prog = open_program(spec, cfg.logic.param)
    names = run._scene_classifier()[1] if _reads_scene_classes(record) else []
    k = int((run.perception or {}).get("K") or 3)
    maps = check_data(spec.where, spec.nets, prog.nets, k, lambda f: True, lambda: names)
    ctx = BuildContext(k, cfg.seed, cfg.nets.dropout, maps, _heads(run, cfg, spec, prog.nets))
    return build_logic(spec, prog, run.results["semantics"], cfg.logic.param, ctx), spec, ctx.heads
