"""joint-unfreeze end to end on a real-photo cache built with pre-last-block activations.

Eight small skimage photos go through the real offline perception (EfficientNet-Lite0, MTCNN,
mini-Xception) into a cache with ``scene_prelast``; the run then trains Scene2EmotionNet, t()
and the backbone's last block (an MBConv block + head conv, from the cached activations).
Eight images say nothing about accuracy: this checks that the slice really trains.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from emolog.cache.build import BuildOptions, build_cache
from emolog.perception.pipeline import Perception
from emolog.runs.train import train_run
from helpers.photos import write_indexed_photos


@pytest.fixture(scope="module")
def real_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("real") / "D"
    root = d / "images"
    res = write_indexed_photos(d)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small forward passes on a shared CPU: one thread is faster
    try:
        rep = build_cache(
            Perception(device="cpu", prelast=True),
            res.index,
            res.index.ids,
            root,
            d / "cache",
            options=BuildOptions(batch_size=8, progress=False),
        )
    finally:
        torch.set_num_threads(threads)
    assert rep.n_written == 8
    return d


def test_joint_unfreeze_trains_the_last_block(real_data, tmp_path):
    res = train_run(
        {
            "regime": "joint-unfreeze",
            "data": str(real_data),
            "train.epochs": 2,
            "train.batch_size": 2,
            "train.patience": None,
            "backbone.lr": 1e-3,
        },
        tmp_path / "run",
        progress=False,
    )
    assert res["epochs_run"] == 2 and res["data"]["kind"] == "real"
    layers = json.loads((tmp_path / "run" / "changes.json").read_text())["layers"]
    block = [layer for layer in layers if layer["net"] == "backbone_last_block"]
    assert sum(layer["n_params"] for layer in block) > 100_000  # a real slice, not a pooling layer
    assert all(layer["trainable"] for layer in block)
    moved = [layer for layer in block if layer["abs_change"] > 0]
    assert len(moved) >= len(block) // 2 and all(layer["grad_norm"] > 0 for layer in moved)
    hist = pd.read_csv(tmp_path / "run" / "history.csv")
    assert (hist["grad_norm_backbone_last_block"].iloc[1:] > 0).all()
    state = torch.load(tmp_path / "run" / "backbone_last_block.pt", weights_only=True)
    assert len(state) >= len(block)
