"""Perception options shared by ``explain`` and ``predict``, and rebuilding a run's perception.

The options are spelt as ``emolog cache build`` spells them. Every option defaults to None,
meaning "what the run recorded" (``config.json`` key ``perception``, written at train time), or,
for a run that does not record it, what its cache's manifest recorded (said so on stderr), or
else the offline defaults. An option given on the command line always wins.

This module imports no torch at import time: ``--help`` of the commands using it stays instant.
The registry names below are checked against the real registries by tests/test_cli.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emolog.errors import InputError, MissingError

if TYPE_CHECKING:  # torch-heavy: for annotations only
    from emolog.cache.store import FeatureCache
    from emolog.perception.pipeline import Perception

BACKBONE_NAMES: tuple[str, ...] = ("efficientnet-lite0-imagenet", "resnet18-imagenet", "resnet18-places365")
DETECTOR_NAMES: tuple[str, ...] = ("haar", "mtcnn")
RECOGNISER_NAMES: tuple[str, ...] = ("fer2013-minixception", "vit-face-expression")
DEFAULTS: dict[str, Any] = {
    "backbone": "efficientnet-lite0-imagenet",
    "detector": "mtcnn",
    "recogniser": "fer2013-minixception",
    "K": 3,
    "min_face_size": 20,
    "face_threshold": 0.9,
    "detect_max_side": None,
    "face_margin": 0.1,
    "face_features": False,
}
_PATH_KEYS = ("weights", "weights_path", "path")


class RunInputError(InputError, ValueError):
    """A run directory lacks what a command needs, or does not fit the perception."""


def add_perception_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("perception (default: the run's recorded perception, else the offline defaults)")
    g.add_argument("--backbone", choices=BACKBONE_NAMES, default=None, help="scene backbone")
    g.add_argument("--backbone-weights", default=None, help="weights file for the backbone")
    g.add_argument("--places365-names", default=None, help="categories_places365.txt (resnet18-places365)")
    g.add_argument("--detector", choices=DETECTOR_NAMES, default=None, help="face detector (default mtcnn)")
    g.add_argument("--recogniser", choices=RECOGNISER_NAMES, default=None, help="expression recogniser")
    g.add_argument("--recogniser-weights", default=None, help="weights file / HF folder for the recogniser")
    g.add_argument(
        "-K",
        "--max-faces",
        dest="K",
        type=int,
        default=None,
        help="face slots: the K largest faces are used (default 3)",
    )
    g.add_argument(
        "--detect-max-side",
        type=int,
        default=None,
        help="downscale images to this long side (px) before face detection (default: never)",
    )
    g.add_argument("--min-face-size", type=int, default=None, help="smallest face in px (default 20)")
    g.add_argument("--face-threshold", type=float, default=None, help="detector probability threshold (default 0.9)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA when present)")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RunInputError(f"{path}: not valid JSON ({e})") from e


def recorded_perception(run_dir: Path) -> tuple[dict | None, str]:
    """(the perception the run was trained on, where it was read) for ``run_dir``.

    ``config.json``'s ``perception`` first; a run written before runs recorded it falls back to
    the manifest of the cache in its data directory (which has hashes but no weights paths).
    """
    if not run_dir.is_dir():
        raise MissingError(f"run directory {str(run_dir)!r} does not exist")
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        return None, f"nowhere ({config_path} is not there)"
    config = _read_json(config_path)
    if isinstance(config.get("perception"), dict):
        return config["perception"], f"{config_path} (perception)"
    data = config.get("data")
    manifest = Path(data) / "cache" / "manifest.json" if data else None
    if manifest is not None and manifest.is_file():
        fp = _read_json(manifest).get("fingerprint")
        if isinstance(fp, dict):
            return fp, f"{manifest} (the run does not record its perception; read from its cache)"
    return None, f"nowhere ({config_path} records no perception and its cache {manifest} is not there)"


def _path_of(part: Any) -> str | None:
    if isinstance(part, dict):
        for key in _PATH_KEYS:
            if part.get(key):
                return str(part[key])
    return None


def settings_from(recorded: dict | None) -> dict[str, Any]:
    """``Perception`` and ``PerceptionOptions`` settings recorded in a fingerprint, by argument name
    (missing ones: the defaults)."""
    s = dict(DEFAULTS)
    if not recorded:
        return s
    if recorded.get("simulated") or "simulator" in recorded:  # a simulated cache: no networks to rebuild
        s.update(backbone=str(recorded.get("simulator", "simulated")), simulated=True)
        return s
    bb, det, rec = (
        recorded.get(k) if isinstance(recorded.get(k), dict) else {} for k in ("backbone", "detector", "recogniser")
    )
    s.update(
        {
            k: v
            for k, v in {
                "backbone": bb.get("name"),
                "backbone_weights": _path_of(bb),
                "places365_names": bb.get("places365_names"),
                "detector": det.get("name"),
                "min_face_size": det.get("min_face_size"),
                "face_threshold": det.get("threshold"),
                "recogniser": rec.get("name"),
                "recogniser_weights": _path_of(rec),
                "face_margin": rec.get("face_margin"),
                "K": recorded.get("K"),
                "prelast": recorded.get("prelast", bb.get("prelast")),
                # a run trained on face features predicts photos with the same embedding beside the logits
                "face_features": bool(rec.get("face_features")),
            }.items()
            if v is not None
        }
    )
    if "max_side" in det:  # None is a recorded value here: "never downscale"
        s["detect_max_side"] = det["max_side"]
    return s


# the command-line options that override a run's recorded perception (``add_perception_arguments``)
PERCEPTION_OPTIONS = (
    "backbone",
    "backbone_weights",
    "places365_names",
    "detector",
    "recogniser",
    "recogniser_weights",
    "K",
    "detect_max_side",
    "min_face_size",
    "face_threshold",
)


def perception_settings(args: argparse.Namespace, recorded: dict | None) -> dict[str, Any]:
    """The recorded settings with every option given on the command line put over them."""
    s = settings_from(recorded)
    for key in PERCEPTION_OPTIONS:
        if getattr(args, key, None) is not None:
            s[key] = getattr(args, key)
    if getattr(args, "backbone", None) is not None:
        s.pop("simulated", None)
    s["device"] = getattr(args, "device", None)
    return s


def build_perception(settings: dict[str, Any], recorded: dict | None = None) -> Perception:
    """A ``Perception`` from ``settings``; a weights file the run needs but did not record the
    path of is asked for by its option name."""
    from emolog.perception.pipeline import Perception, PerceptionOptions

    if settings.get("simulated") or settings["backbone"] not in BACKBONE_NAMES:
        raise RunInputError(
            f"the run's features come from {settings['backbone']!r}, not a scene backbone emolog "
            f"can run on a photo (simulated data?); pass --backbone (one of {list(BACKBONE_NAMES)})"
        )
    if settings["backbone"] == "resnet18-places365" and not settings.get("backbone_weights"):
        sha = ((recorded or {}).get("backbone") or {}).get("weights_sha256")
        raise MissingError(
            "the perception uses resnet18-places365"
            + (f" (weights sha256 {sha[:12]}...)" if sha else "")
            + " but no weights path is recorded: pass --backbone-weights FILE"
        )
    options = PerceptionOptions(
        backbone_weights=settings.get("backbone_weights"),
        places365_names=settings.get("places365_names"),
        recogniser_weights=settings.get("recogniser_weights"),
        min_face_size=int(settings["min_face_size"]),
        face_threshold=float(settings["face_threshold"]),
        detect_max_side=settings["detect_max_side"],
        face_margin=float(settings["face_margin"]),
    )
    return Perception(
        backbone=settings["backbone"],
        detector=settings["detector"],
        recogniser=settings["recogniser"],
        K=int(settings["K"]),
        device=settings.get("device"),
        prelast=bool(settings.get("prelast")),
        face_features=bool(settings.get("face_features")),
        options=options,
    )


def differences(recorded: dict | None, fingerprint: dict) -> list[str]:
    """What differs between a run's recorded perception and a rebuilt one's fingerprint:
    nothing when their fingerprint hashes agree, else the dotted keys both name with
    different values (paths, emolog's version and bookkeeping keys aside)."""
    from emolog.cache.store import fingerprint_hash

    if not recorded or recorded.get("fingerprint_hash") == fingerprint_hash(fingerprint):
        return []
    skip = {"emolog_version", "fingerprint_hash", "scene_dim", "classes", "simulated", "prelast", *_PATH_KEYS}
    out: list[str] = []

    def walk(a: Any, b: Any, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) & set(b) - skip):
                walk(a[k], b[k], f"{key}.{k}" if key else k)
        elif a != b:
            out.append(f"{key}: run {a!r}, now {b!r}")

    walk(recorded, fingerprint, "")
    return out


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def perceived_cache(perception: Perception, perceived: dict, ids: list[str]) -> FeatureCache:
    """An in-memory ``FeatureCache`` holding ``Perception.perceive_batch``'s arrays for ``ids``:
    what a run's ``predict`` reads, for photos that are not in a cache."""
    import torch

    from emolog.cache.store import FeatureCache

    return FeatureCache(
        ids=list(ids),
        manifest={
            "fingerprint": perception.fingerprint(),
            "K": perception.K,
            "scene_dim": perception.scene_dim,
            "face_feature_dim": perception.face_feature_dim,
        },
        **{k: torch.from_numpy(v) for k, v in perceived.items()},
    )
