"""joint-unfreeze end to end on a real-photo cache built with pre-last-block activations.

Eight small skimage photos go through the real offline perception (EfficientNet-Lite0, MTCNN,
mini-Xception) into a cache with ``scene_prelast``; the run then trains Scene2EmotionNet, t()
and the backbone's last block (an MBConv block + head conv, from the cached activations).
Eight images say nothing about accuracy: this checks that the slice really trains.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skimage.data as skd
import torch
from PIL import Image

from emolog.cache.build import build_cache
from emolog.data.index import build_index
from emolog.data.readers import RECORD_COLUMNS
from emolog.data.split import make_split, write_split
from emolog.labels import get_mapping
from emolog.perception.pipeline import Perception
from emolog.runs.train import train_run


def _photos() -> dict[str, tuple[Image.Image, str]]:
    astro = Image.fromarray(skd.astronaut())
    face = astro.crop((140, 20, 300, 200))
    pair = Image.new("RGB", (300, 150), (90, 120, 150))
    pair.paste(face.resize((110, 125)), (10, 12))
    crowd = Image.fromarray(skd.coffee()).resize((280, 187))
    for k, f in enumerate(skd.lfw_subset()[:3]):
        crowd.paste(Image.fromarray((f * 255).astype(np.uint8)).convert("RGB").resize((60, 60)), (15 + 90 * k, 50))
    grey = lambda a: Image.fromarray(a).convert("RGB")  # noqa: E731
    return {  # 4 + 4 images so that a stratified 50/25/25 split fills train, val and test
        "joy/astronaut.jpg": (astro.resize((160, 160)), "Joy"),
        "joy/pair.jpg": (pair, "Joy"),
        "joy/coffee.jpg": (Image.fromarray(skd.coffee()).resize((150, 100)), "Joy"),
        "joy/rocket.jpg": (Image.fromarray(skd.rocket()).resize((120, 80)), "Joy"),
        "sad/chelsea.jpg": (Image.fromarray(skd.chelsea()).resize((150, 100)), "Sadness"),
        "sad/crowd.jpg": (crowd, "Sadness"),
        "sad/camera.jpg": (grey(skd.camera()).resize((144, 144)), "Sadness"),
        "sad/coins.jpg": (grey(skd.coins()).resize((150, 120)), "Sadness"),
    }


def write_indexed_photos(d: Path):
    """The eight photos under ``d/images``, their index.csv and a stratified 50/25/25 split.json;
    returns the index result (``.index``)."""
    root = d / "images"
    for rel, (im, _) in _photos().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        im.save(root / rel, quality=92)
    recs = pd.DataFrame([{"path": rel, "label_raw": lab, "source": rel} for rel, (_, lab) in _photos().items()])
    res = build_index(recs.reindex(columns=RECORD_COLUMNS, fill_value=""), get_mapping(), root=root, progress=False)
    res.index.save(d / "index.csv")
    split = make_split(res.index.ids, res.index.df["label"].tolist(), seed=42, fractions=(0.5, 0.25, 0.25))
    write_split(split, d / "split.json")
    return res


@pytest.fixture(scope="module")
def real_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("real") / "D"
    root = d / "images"
    res = write_indexed_photos(d)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small forward passes on a shared CPU: one thread is faster
    try:
        rep = build_cache(Perception(device="cpu", prelast=True), res.index, res.index.ids, root, d / "cache",
                          batch_size=8, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert rep.n_written == 8
    return d


def test_joint_unfreeze_trains_the_last_block(real_data, tmp_path):
    res = train_run({"regime": "joint-unfreeze", "data": str(real_data), "epochs": 2, "batch_size": 2,
                     "patience": None, "backbone_lr": 1e-3}, tmp_path / "run", progress=False)
    assert res["epochs_run"] == 2 and res["data"]["kind"] == "real"
    layers = json.loads((tmp_path / "run" / "changes.json").read_text())["layers"]
    block = [layer for layer in layers if layer["net"] == "backbone_last_block"]
    assert sum(layer["n_params"] for layer in block) > 100_000     # a real slice, not a pooling layer
    assert all(layer["trainable"] for layer in block)
    moved = [layer for layer in block if layer["abs_change"] > 0]
    assert len(moved) >= len(block) // 2 and all(layer["grad_norm"] > 0 for layer in moved)
    hist = pd.read_csv(tmp_path / "run" / "history.csv")
    assert (hist["grad_norm_backbone_last_block"].iloc[1:] > 0).all()
    state = torch.load(tmp_path / "run" / "backbone_last_block.pt", weights_only=True)
    assert len(state) >= len(block)
