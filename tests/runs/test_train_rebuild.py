"""Regimes that rebuild a network of the cache's perception (issue "Real data", items 1 and 2).

A real-photo cache is built with a Places365-format ResNet18 checkpoint (``--prelast``) and a
Hugging Face ViT folder in the ``trpakov/vit-face-expression`` format, both written here with
random weights. joint-unfreeze then rebuilds the backbone's last block from the checkpoint the
cache recorded, and ``original`` reads a grey face with the recorded ViT; when the files moved,
both fail with one line naming the flag that passes them, and work with that flag.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
import torchvision

from emolog.cli import main
from emolog.cache.build import BuildOptions, build_cache
from emolog.data.index import build_index
from emolog.data.readers import RECORD_COLUMNS
from emolog.data.split import make_split, write_split
from emolog.labels import get_mapping
from emolog.perception.pipeline import Perception, PerceptionOptions
from emolog.config.run import ConfigError
from emolog.runs.train import train_run
from helpers.networks import TRPAKOV_ORDER, save_tiny_vit
from helpers.photos import eight_photos, write_indexed_photos


@pytest.fixture(scope="module")
def places_vit(tmp_path_factory):
    base = tmp_path_factory.mktemp("places")
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=365)
    ckpt = base / "weights" / "resnet18_places365.pth.tar"
    ckpt.parent.mkdir()
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, ckpt)
    vit = save_tiny_vit(base / "weights" / "vit", TRPAKOV_ORDER)
    d = base / "D"
    root = d / "images"
    res = write_indexed_photos(d)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        perception = Perception(
            backbone="resnet18-places365",
            recogniser="vit-face-expression",
            device="cpu",
            prelast=True,
            options=PerceptionOptions(backbone_weights=ckpt, recogniser_weights=vit),
        )
        build_cache(
            perception, res.index, res.index.ids, root, d / "cache", options=BuildOptions(batch_size=8, progress=False)
        )
    finally:
        torch.set_num_threads(threads)
    return d, ckpt, vit


CFG = {"train.epochs": 1, "train.batch_size": 2, "train.patience": None}


def test_joint_unfreeze_rebuilds_the_places365_block_from_the_recorded_checkpoint(places_vit, tmp_path, capsys):
    d, ckpt, _ = places_vit
    res = train_run({**CFG, "regime": "joint-unfreeze", "data": str(d)}, tmp_path / "run", progress=False)
    rec = json.loads((tmp_path / "run" / "config.json").read_text())["perception"]
    assert rec["backbone"]["name"] == "resnet18-places365" and rec["backbone"]["weights_path"] == str(ckpt)
    assert rec["prelast"] is True and rec["recogniser"]["name"] == "vit-face-expression"
    assert res["perception"] == rec and len(rec["backbone"]["weights_sha256"]) == 64
    block = [
        r
        for r in json.loads((tmp_path / "run" / "changes.json").read_text())["layers"]
        if r["net"] == "backbone_last_block"
    ]
    assert sum(r["n_params"] for r in block) > 1_000_000 and any(r["abs_change"] > 0 for r in block)

    moved = ckpt.parent.parent / "elsewhere.pth.tar"
    shutil.move(ckpt, moved)
    try:
        with pytest.raises(ConfigError, match="--backbone-weights"):
            train_run({**CFG, "regime": "joint-unfreeze", "data": str(d)}, tmp_path / "run2", progress=False)
        rc = main(
            [
                "train",
                "--data",
                str(d),
                "--regime",
                "joint-unfreeze",
                "--out",
                str(tmp_path / "run3"),
                "--quiet",
                "--set",
                "train.epochs=1",
                "--set",
                "train.batch_size=2",
            ]
        )
        err = capsys.readouterr().err
        assert rc != 0 and "--backbone-weights" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
        rc = main(
            [
                "train",
                "--data",
                str(d),
                "--regime",
                "joint-unfreeze",
                "--out",
                str(tmp_path / "run4"),
                "--quiet",
                "--set",
                "train.epochs=1",
                "--set",
                "train.batch_size=2",
                "--backbone-weights",
                str(moved),
            ]
        )
        assert rc == 0
        # a different checkpoint is refused by its sha256, not silently trained
        other = tmp_path / "other.pth.tar"
        net = torchvision.models.resnet18(num_classes=365)
        torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, other)
        with pytest.raises(ConfigError, match="sha256"):
            train_run(
                {**CFG, "regime": "joint-unfreeze", "data": str(d), "backbone.weights": str(other)},
                tmp_path / "run5",
                progress=False,
            )
    finally:
        shutil.move(moved, ckpt)


def test_original_regime_reads_the_grey_face_with_the_caches_vit(places_vit, tmp_path, capsys):
    d, _, vit = places_vit
    res = train_run({**CFG, "regime": "original", "data": str(d)}, tmp_path / "run", progress=False)
    assert res["grey_face_logits"]["source"] == "recogniser vit-face-expression"
    moved = vit.parent / "vit-moved"
    shutil.move(vit, moved)
    try:
        rc = main(
            [
                "train",
                "--data",
                str(d),
                "--regime",
                "original",
                "--out",
                str(tmp_path / "run2"),
                "--quiet",
                "--set",
                "train.epochs=1",
                "--set",
                "train.batch_size=2",
            ]
        )
        err = capsys.readouterr().err
        assert rc != 0 and "--recogniser-weights" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        rc = main(
            [
                "train",
                "--data",
                str(d),
                "--regime",
                "original",
                "--out",
                str(tmp_path / "run3"),
                "--quiet",
                "--set",
                "train.epochs=1",
                "--set",
                "train.batch_size=2",
                "--recogniser-weights",
                str(moved),
            ]
        )
        assert rc == 0
        again = json.loads((tmp_path / "run3" / "results.json").read_text())
        assert again["grey_face_logits"]["values"] == pytest.approx(res["grey_face_logits"]["values"])
    finally:
        shutil.move(moved, vit)


def test_places_mlp_spec_trains_an_mlp_over_places365_classes(places_vit, tmp_path):
    """The seed system's later best as a spec: an MLP head over the backbone's 365 Places365
    class probabilities and the faces, with an Emo8 query (the index mapped to Emo8)."""
    d, _, _ = places_vit
    d8 = tmp_path / "D8"
    d8.mkdir()
    (d8 / "cache").symlink_to(d / "cache")
    recs = pd.DataFrame([{"path": rel, "label_raw": lab, "source": rel} for rel, (_, lab) in eight_photos().items()])
    res = build_index(
        recs.reindex(columns=RECORD_COLUMNS, fill_value=""),
        get_mapping("plutchik24-emo8"),
        root=d / "images",
        progress=False,
    )
    res.index.save(d8 / "index.csv")
    write_split(
        make_split(res.index.ids, res.index.df["label"].tolist(), seed=42, fractions=(0.5, 0.25, 0.25)),
        d8 / "split.json",
    )
    out = train_run(
        {**CFG, "train.epochs": 2, "regime": "joint", "spec": "places_mlp", "data": str(d8)},
        tmp_path / "run",
        progress=False,
    )
    assert out["classes"][0] == "joy" and out["kind"] == "none" and out["source_weights"] is None
    layers = json.loads((tmp_path / "run" / "changes.json").read_text())["layers"]
    head = [r for r in layers if r["net"] == "fusion_net"]
    assert head[0]["n_params"] == 64 * (365 + 3 * 7 + 3) and all(r["abs_change"] > 0 for r in head)
    from emolog.runs.reader import read_run
    from emolog.metrics.classification import evaluate
    import numpy as np

    run = read_run(tmp_path / "run")
    test_ids = json.loads((d8 / "split.json").read_text())["test"]
    pred = run.predict(d8 / "cache", ids=test_ids)
    y = np.array([run.classes.index(c) for c in res.index.label_of(test_ids)])
    assert evaluate(pred.probs, y, tuple(run.classes)) == out["metrics"]["test"]
