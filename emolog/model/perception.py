"""A run's perception: what it records, and rebuilding the parts of it that a regime trains or reads.

``perception_record(manifest)`` is the ``perception`` key of a run's config.json and
results.json: the cache's perception fingerprint (backbone name, weights sha256, prelast;
recogniser, with its ``face_features`` record when the cache stores them; detector settings;
K) plus where the weights files were when the cache was built
(``manifest.info.weights_paths``), so ``train``, ``explain``, ``predict`` and resume never
guess. A simulated cache records ``{"simulated": true, ...}`` (no networks: nothing to rebuild).

``build_last_block`` (joint-unfreeze) and ``grey_face_logits`` (the ``original`` semantics)
rebuild networks from that record; a weights file that moved since the cache was built is
passed with the config keys ``backbone.weights`` / ``perception.recogniser_weights`` (``emolog train
--backbone-weights`` / ``--recogniser-weights``). The file's sha256 must equal the recorded one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from emolog.config.run import ConfigError, RunConfig
from emolog.model.model import TrainingError


def perception_record(manifest: dict) -> dict:
    """The run's record of the cache's perception (see the module docstring)."""
    fp = manifest.get("fingerprint", {}) or {}
    paths = (manifest.get("info", {}) or {}).get("weights_paths", {}) or {}
    rec = {
        "fingerprint_hash": manifest.get("fingerprint_hash"),
        "K": manifest.get("K", fp.get("K")),
        "scene_dim": manifest.get("scene_dim"),
        "classes": manifest.get("classes"),
    }
    if "simulator" in fp:
        return {**rec, "simulated": True, "simulator": fp["simulator"], "prelast": False}
    bb, rg = dict(fp.get("backbone", {}) or {}), dict(fp.get("recogniser", {}) or {})
    return {
        **rec,
        "simulated": False,
        "backbone": {
            "name": bb.get("name"),
            "weights_path": paths.get("backbone"),
            "weights_sha256": bb.get("weights_sha256"),
            "feature_dim": bb.get("feature_dim"),
            "preprocessing": bb.get("preprocessing"),
        },
        "recogniser": {
            "name": rg.get("name"),
            "weights_path": paths.get("recogniser"),
            "weights_sha256": rg.get("weights_sha256"),
            "own_classes": rg.get("own_classes"),
            "face_margin": rg.get("face_margin"),
            # only when the cache stores them: other runs' records stay as they were
            **({"face_features": rg["face_features"]} if rg.get("face_features") else {}),
        },
        "detector": fp.get("detector"),
        "prelast": bool(bb.get("prelast", False)),
        "emolog_version": fp.get("emolog_version"),
    }


def _weights(part: str, given: str | None, record: dict, flag: str) -> tuple[str | None, str]:
    """(weights path to build ``part`` from, where it came from). A given path wins; else the
    recorded one when it still exists; else None (the builder's own default, e.g. a package)."""
    if given:
        if not Path(given).exists():
            raise ConfigError(f"config key '{flag.lstrip('-').replace('-', '_')}': {given} does not exist")
        return given, "config"
    recorded = (record.get(part) or {}).get("weights_path")
    if recorded and Path(recorded).exists():
        return recorded, "cache record"
    return None, "builder default"


def _check_sha(net: nn.Module, part: str, record: dict, name: str, flag: str, recorded: str | None) -> None:
    want = (record.get(part) or {}).get("weights_sha256")
    have = getattr(net, "weights_sha256", None)
    if want and have and want != have:
        raise ConfigError(
            f"{name}: the weights file {getattr(net, 'weights_path', '?')} (sha256 {have[:12]}...) "
            f"is not the one the cache was built with (sha256 {want[:12]}...); pass the cache's "
            f"file with {flag} PATH (recorded path: {recorded or 'none'})"
        )


def build_last_block(cfg: RunConfig, record: dict) -> nn.Module:
    """The cache backbone's last block, trainable (joint-unfreeze). Refuses a parameter-free slice.

    Raises ConfigError (one line, naming ``--backbone-weights``) when the weights cannot be
    found or differ from the cache's."""
    from emolog.errors import EmologError
    from emolog.perception.scene import build_backbone

    if record.get("simulated") or not (record.get("backbone") or {}).get("name"):
        raise ConfigError(
            "regime 'joint-unfreeze': the cache names no scene backbone (a simulated cache has "
            "no pixels and no backbone); build one with `emolog cache build --prelast`"
        )
    if not record.get("prelast"):
        raise ConfigError(
            "regime 'joint-unfreeze' needs the cache's pre-last activations: rebuild the cache "
            "with `emolog cache build --prelast`"
        )
    name = record["backbone"]["name"]
    path, _ = _weights("backbone", cfg.backbone.weights, record, "--backbone-weights")
    recorded = record["backbone"].get("weights_path")
    try:
        backbone = build_backbone(name, path, device="cpu")
    except EmologError as e:
        raise ConfigError(
            f"regime 'joint-unfreeze' rebuilds the last block of {name} from its weights file, "
            f"but {e} (recorded path: {recorded or 'none'}); pass the checkpoint the cache was "
            "built with: --backbone-weights PATH (config key backbone.weights)"
        ) from None
    _check_sha(backbone, "backbone", record, name, "--backbone-weights", recorded)
    block = backbone.last_block
    for p in block.parameters():
        p.requires_grad_(True)
    if sum(p.numel() for p in block.parameters()) == 0:
        # The original unfroze backbone[-1] of children()[:-1]: the parameter-free pooling
        # layer, so "fine-tuning the last block" trained nothing. Never again silently.
        raise TrainingError(
            f"regime 'joint-unfreeze': the last block of {name} has no trainable "
            "parameters; unfreezing it would train nothing"
        )
    return block


def grey_face_logits(cfg: RunConfig, manifest: dict, record: dict) -> tuple[torch.Tensor, str]:
    """Recogniser logits [7] (BASIC7 order) for a grey face, the original's padding, needed by the
    'original' semantics; returns (logits, where they came from).

    Order of preference: the config key ``perception.grey_face_logits``, the cache manifest's
    ``grey_face_logits`` (a simulator may store its documented constant there), the recogniser
    the cache was built with (its weights from ``perception.recogniser_weights`` or the recorded path),
    else, for a simulated cache, emolog's default recogniser (its faces come from no real
    network, so the real default recogniser's reading of a grey face is the stand-in)."""
    if cfg.perception.grey_face_logits is not None:
        return torch.tensor(cfg.perception.grey_face_logits, dtype=torch.float32), "config"
    if manifest.get("grey_face_logits") is not None:
        return torch.tensor(manifest["grey_face_logits"], dtype=torch.float32), "cache manifest"
    from PIL import Image
    from emolog.errors import EmologError
    from emolog.perception.expression import DEFAULT_RECOGNISER, build_recogniser
    from emolog.perception.pipeline import GREY_FACE_SIZE, GREY_FACE_VALUE

    name = (record.get("recogniser") or {}).get("name") or DEFAULT_RECOGNISER
    path, _ = _weights("recogniser", cfg.perception.recogniser_weights, record, "--recogniser-weights")
    recorded = (record.get("recogniser") or {}).get("weights_path")
    try:
        try:
            rec = build_recogniser(name, path, device="cpu")
        except EmologError:
            # a model folder's recorded weights file (a Hugging Face folder's model.safetensors):
            # the builder takes the folder
            if path is None or not Path(path).is_file():
                raise
            rec = build_recogniser(name, str(Path(path).parent), device="cpu")
    except (EmologError, OSError, ValueError) as e:
        raise ConfigError(
            f"regime 'original' reads a grey face with the cache's recogniser {name}, but it "
            f"cannot be built: {str(e).splitlines()[0]} (recorded path: {recorded or 'none'}); pass "
            "its weights file or folder with --recogniser-weights PATH (config key "
            "perception.recogniser_weights), or the 7 logits with --set perception.grey_face_logits=[...]"
        ) from None
    if not record.get("simulated"):
        _check_sha(rec, "recogniser", record, name, "--recogniser-weights", recorded)
    grey = Image.new("RGB", (GREY_FACE_SIZE, GREY_FACE_SIZE), (GREY_FACE_VALUE,) * 3)
    with torch.no_grad():
        logits = rec.logits([grey])[0].float()
    return logits, f"recogniser {name}"


def scene_classifier(cfg: RunConfig, record: dict) -> tuple[nn.Module, list[str]]:
    """The cache backbone's own classifier head (e.g. Places365's 365 classes) on the cached
    scene features, frozen, and its class names; for a binding that reads cache.scene_classes."""
    from emolog.errors import EmologError
    from emolog.perception.scene import build_backbone

    name = (record.get("backbone") or {}).get("name")
    if record.get("simulated") or not name:
        raise ConfigError(
            "cache.scene_classes needs the scene backbone's classifier, but the cache names no "
            "backbone (a simulated cache has none): read cache.scene instead"
        )
    path, _ = _weights("backbone", cfg.backbone.weights, record, "--backbone-weights")
    try:
        backbone = build_backbone(name, path, device="cpu")
    except EmologError as e:
        raise ConfigError(
            f"cache.scene_classes reads the classifier of {name} from its weights file, but {e} "
            "; pass it with --backbone-weights PATH (config key backbone.weights)"
        ) from None
    _check_sha(backbone, "backbone", record, name, "--backbone-weights", record["backbone"].get("weights_path"))
    for p in backbone.classifier.parameters():
        p.requires_grad_(False)
    return backbone.classifier.eval(), list(backbone.class_names)
