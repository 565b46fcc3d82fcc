"""Tiny stand-ins for the networks users download, written in their real on-disk formats and
seeded: a Hugging Face ViT face-expression folder and a Places365 ResNet18 checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision

# trpakov/vit-face-expression's class order
TRPAKOV_ORDER = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def save_tiny_vit(folder: Path, labels: tuple[str, ...], hot: int | None = None) -> Path:
    """A randomly initialised tiny ViTForImageClassification (+ preprocessor config) with the
    given label order; classifier weights zero and, if ``hot`` is given, a one-hot bias."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32,
        patch_size=16,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
    )
    model = ViTForImageClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        if hot is not None:
            model.classifier.bias[hot] = 10.0
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def write_vit_folder(folder: Path) -> Path:
    """A tiny Hugging Face ViT face-expression folder in trpakov/vit-face-expression's format and
    class order, with a seeded random classifier (so faces get different distributions)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    labels = TRPAKOV_ORDER
    torch.manual_seed(1)
    config = ViTConfig(
        image_size=32,
        patch_size=16,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
    )
    model = ViTForImageClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(20.0)
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def write_places_checkpoint(path: Path, seed: int = 0) -> torch.nn.Module:
    """A seeded ResNet18 saved at ``path`` in the official Places365 checkpoint format (``module.``
    keys, epoch/arch/best_prec1 beside the state dict); returns the network."""
    torch.manual_seed(seed)
    net = torchvision.models.resnet18(num_classes=365).eval()
    state = {"module." + k: v for k, v in net.state_dict().items()}
    torch.save({"epoch": 90, "arch": "resnet18", "state_dict": state, "best_prec1": 54.7}, path)
    return net
