"""The walk-through of docs/real-data.md as a new user runs it, with the thesis's perception.

Twenty real photos (scikit-image scenes with LFW faces pasted in, as in test_end_to_end) are
annotated in FindingEmo's CSV format, with what a real download leaves behind: leading ``/``
paths, a space in a folder name, a dead link (no file), a truncated JPEG, a typo label
(``Zzyzx``, also as a second row of a good photo) and a label the mapping drops
(``Anticipation``). The perception is the thesis's: a Places365-format ResNet18 checkpoint and
a Hugging Face ViT folder in trpakov's format (both written here, random weights), with real
MTCNN. Then, through ``emolog.cli.main`` exactly as typed:

index -> cache build (--prelast) -> cache verify -> train, every regime (joint-unfreeze and
original included) -> experiment with a memorisation sweep down to 5 images -> predict ->
explain --run -> report.

Every step must exit 0 and print no traceback; each step's artefacts are checked. The
stages are module-scoped fixtures, so each runs once; a failing stage names itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from emolog.cli import main
from emolog.data.paths import image_id
from helpers.networks import TRPAKOV_ORDER, save_tiny_vit, write_places_checkpoint
from helpers.photos import scene_photo

pytestmark = pytest.mark.slow

LABELS = {"happy": "Joy", "sad": "Sadness", "neutral": "Trust", "angry": "Anger"}  # FindingEmo's words
REGIMES = ("logic-only", "problog-em", "nets-only", "joint", "joint-unfreeze", "original")
QUICK = ("--set", "train.batch_size=4", "--set", "train.epochs=2", "--set", "pretrain.epochs=5")


def run(argv: list[str]) -> str:
    """Run one command as typed; it must exit 0 and print no traceback. Returns all it printed
    (stdout and stderr, at the file-descriptor level: progress bars and warnings included)."""
    with tempfile.TemporaryFile(mode="w+") as buf:
        saved = os.dup(1), os.dup(2)
        os.dup2(buf.fileno(), 1)
        os.dup2(buf.fileno(), 2)
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):  # pytest swaps sys.stdout
                code = main(argv)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        buf.seek(0)
        out = buf.read()
    assert "Traceback" not in out, f"`emolog {' '.join(argv)}` printed a traceback:\n{out[-3000:]}"
    assert code == 0, f"`emolog {' '.join(argv)}` exited {code}:\n{out[-3000:]}"
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Photos, the annotation CSV, the Places365 checkpoint and the ViT folder."""
    base = tmp_path_factory.mktemp("walk")
    root = base / "images"
    rows, photos = [], []
    for k in range(20):
        im, _ = scene_photo(k)
        cls = ("happy", "sad", "neutral", "angry")[k // 5]
        rel = f"Run 1/{cls} photos/photo_{k:02d}.jpg"  # a space in the folder names
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        im.save(root / rel, quality=70 + k)  # each file its own bytes (some scenes repeat)
        rows.append(("/" + rel, LABELS[cls]))  # FindingEmo's leading slash
        photos.append(rel)
    (root / "Run 2").mkdir()
    good = (root / photos[0]).read_bytes()
    (root / "Run 2/truncated.jpg").write_bytes(good[:700])  # a download cut short
    (root / "Run 2/typo.jpg").write_bytes((root / photos[1]).read_bytes())
    (root / "Run 2/anticipation.jpg").write_bytes((root / photos[2]).read_bytes())
    rows += [
        ("/Run 2/dead link.jpg", "Joy"),
        ("/Run 2/truncated.jpg", "Fear"),
        ("/Run 2/typo.jpg", "Zzyzx"),
        ("/Run 2/anticipation.jpg", "Anticipation"),
        ("/" + photos[3], "Zzyzx"),
    ]
    csv = base / "annotations.csv"
    pd.DataFrame(rows, columns=["image_path", "emotion"]).assign(valence=0, arousal=3).to_csv(csv, index=False)
    ckpt = base / "resnet18_places365.pth.tar"
    write_places_checkpoint(ckpt)
    names = base / "categories_places365.txt"
    names.write_text("".join(f"/{chr(97 + i % 26)}/place_{i} {i}\n" for i in range(365)))
    vit = save_tiny_vit(base / "vit-face-expression", TRPAKOV_ORDER)
    return {
        "base": base,
        "root": root,
        "csv": csv,
        "photos": photos,
        "ckpt": ckpt,
        "names": names,
        "vit": vit,
        "files": photos + ["Run 2/truncated.jpg", "Run 2/typo.jpg", "Run 2/anticipation.jpg"],
    }


@pytest.fixture(scope="module")
def indexed(world) -> Path:
    d = world["base"] / "D"
    out = run(
        [
            "index",
            str(world["csv"]),
            "--root",
            str(world["root"]),
            "--out",
            str(d),
            "--fractions",
            "0.6",
            "0.2",
            "0.2",
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert "indexed: 20" in out
    return d


@pytest.fixture(scope="module")
def cached(world, indexed) -> Path:
    threads = torch.get_num_threads()
    try:
        run(
            [
                "cache",
                "build",
                "--index",
                str(indexed),
                "--out",
                str(indexed / "cache"),
                "--backbone",
                "resnet18-places365",
                "--backbone-weights",
                str(world["ckpt"]),
                "--places365-names",
                str(world["names"]),
                "--recogniser",
                "vit-face-expression",
                "--recogniser-weights",
                str(world["vit"]),
                "--detect-max-side",
                "640",
                "--prelast",
                "--threads",
                "1",
                "--workers",
                "0",
                "--quiet",
            ]
        )
    finally:
        torch.set_num_threads(threads)
    return indexed / "cache"


@pytest.fixture(scope="module")
def runs(cached) -> dict[str, Path]:
    d = cached.parent
    out = {}
    for regime in REGIMES:
        rd = d.parent / "runs" / regime
        run(["train", "--data", str(d), "--regime", regime, "--out", str(rd), *QUICK, "--quiet"])
        out[regime] = rd
    return out


@pytest.fixture(scope="module")
def experiment(cached) -> Path:
    exp = cached.parent.parent / "exp"
    run(
        [
            "experiment",
            "--data",
            str(cached.parent),
            "--regimes",
            "logic-only,joint,joint-unfreeze",
            "--seeds",
            "0",
            "--memorisation",
            "5,10",
            *QUICK,
            "--baseline-epochs",
            "5",
            "--n-boot",
            "100",
            "--out",
            str(exp),
            "--quiet",
        ]
    )
    return exp


# ----------------------------------------------------------------------------- index


def test_index_keeps_the_photos_and_names_each_reject(world, indexed):
    idx = pd.read_csv(indexed / "index.csv", dtype=str, keep_default_na=False)
    assert sorted(idx["rel_path"]) == sorted(world["photos"])
    rej = pd.read_csv(indexed / "rejects.csv", dtype=str, keep_default_na=False)
    why = {(r, reason.split(":")[0]) for r, reason in zip(rej["rel_path"], rej["reason"])}
    assert why == {
        ("Run 2/dead link.jpg", "missing file"),
        ("Run 2/truncated.jpg", why_truncated(rej)),
        ("Run 2/typo.jpg", "unknown label"),
        ("Run 2/anticipation.jpg", "label dropped by mapping"),
        (world["photos"][3], "unknown label"),
    }
    summary = json.loads((indexed / "index_summary.json").read_text())
    assert Path(summary["root"]).is_absolute()


def why_truncated(rej: pd.DataFrame) -> str:
    return rej.set_index("rel_path").loc["Run 2/truncated.jpg", "reason"].split(":")[0]


# ----------------------------------------------------------------------------- cache + verify


def test_cache_holds_every_split_id_with_the_thesis_perception(indexed, cached):
    manifest = json.loads((cached / "manifest.json").read_text())
    fp = manifest["fingerprint"]
    assert fp["backbone"]["name"] == "resnet18-places365" and fp["recogniser"]["name"] == "vit-face-expression"
    assert fp["backbone"]["prelast"] and fp["detector"]["max_side"] == 640
    split = json.loads((indexed / "split.json").read_text())
    from emolog.cache.store import load_cache

    c = load_cache(cached, prelast=True)
    assert sorted(c.ids) == sorted(split["train"] + split["val"] + split["test"])
    assert c.scene.shape[1] == 512 and c.scene_prelast is not None


def test_verify_passes_also_against_the_thesis_perception_options(world, indexed, cached):
    out = run(["cache", "verify", str(cached), "--index", str(indexed)])
    assert "OK" in out
    # docs/real-data.md section 4: --check-config with the build's own perception options
    out = run(
        [
            "cache",
            "verify",
            str(cached),
            "--index",
            str(indexed),
            "--check-config",
            "--backbone",
            "resnet18-places365",
            "--backbone-weights",
            str(world["ckpt"]),
            "--recogniser",
            "vit-face-expression",
            "--recogniser-weights",
            str(world["vit"]),
            "--detect-max-side",
            "640",
            "--prelast",
        ]
    )
    assert "OK" in out


# ----------------------------------------------------------------------------- train


@pytest.mark.parametrize("regime", REGIMES)
def test_every_regime_completes_with_test_metrics(runs, regime):
    rd = runs[regime]
    results = json.loads((rd / "results.json").read_text())
    test = results["metrics"]["test"]
    assert all(isinstance(test[m], float) for m in ("accuracy", "macro_f1", "nll"))
    config = json.loads((rd / "config.json").read_text())
    assert config["perception"]["backbone"]["name"] == "resnet18-places365"


# ----------------------------------------------------------------------------- experiment


def test_experiment_completes_every_run_down_to_5_images(experiment):
    exp = json.loads((experiment / "experiment.json").read_text())
    assert not exp.get("failed"), exp.get("failed")  # Q4 on the Places365 cache: no unfreeze run failed
    assert any((experiment / "runs").glob("joint-unfreeze*/results.json"))
    memo = pd.read_csv(experiment / "memorisation.csv")
    assert 5 in set(memo["n_train"])
    for results in (experiment / "runs").glob("*/results.json"):
        assert "test" in json.loads(results.read_text())["metrics"], results


# ----------------------------------------------------------------------------- predict


def test_predict_gives_one_row_per_photo_minus_the_listed_rejects(world, indexed, runs):
    out = indexed.parent / "pred"
    printed = run(["predict", str(runs["logic-only"]), "--index", str(indexed), "--out", str(out), "--quiet"])
    pred = pd.read_csv(out / "predictions.csv", dtype={"image_id": str}, keep_default_na=False)
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
    listed = set(rejects["rel_path"])
    files = set(world["files"]) | {"Run 2/dead link.jpg"}
    assert sorted(pred["image"]) == sorted(f for f in files if f not in listed)
    assert set(pred["image_id"]) == {image_id(p) for p in world["photos"]}
    probs = pred[[c for c in pred.columns if c.startswith("p_")]].to_numpy(float)
    assert abs(probs.sum(1) - 1).max() < 1e-4
    assert {"post_scene", "w_face1", "face1_box", "face1_happy", "scene_happy", "pred"} <= set(pred.columns)
    assert "20 images (20 from the cache" in printed
    # the same photos given by path are perceived again: the same fused prediction
    paths = [str(world["root"] / p) for p in world["photos"][:2]] + [str(world["root"] / "Run 2/truncated.jpg")]
    out2 = indexed.parent / "pred-files"
    run(["predict", str(runs["logic-only"]), *paths, "--out", str(out2), "--quiet"])
    again = pd.read_csv(out2 / "predictions.csv", keep_default_na=False)
    assert len(again) == 2 and len(pd.read_csv(out2 / "rejects.csv")) == 1
    first = pred.set_index("image").loc[world["photos"][:2], [c for c in pred.columns if c.startswith("p_")]]
    assert abs(first.to_numpy(float) - again[first.columns].to_numpy(float)).max() < 1e-4


# ----------------------------------------------------------------------------- explain --run


def test_explain_rebuilds_the_runs_perception_and_shows_its_prediction(world, runs):
    photo = world["root"] / world["photos"][0]
    out = run(
        ["explain", str(photo), "--run", str(runs["joint-unfreeze"]), "--out", str(world["base"] / "explain.png")]
    )
    assert "top-5 classes of resnet18-places365" in out
    assert "fused prediction (the trained model)" in out and "differs" not in out
    assert (world["base"] / "explain.png").stat().st_size > 0
    # the cache's detector options, spelt as `cache build` spells them; a change is said
    out = run(
        [
            "explain",
            str(photo),
            "--run",
            str(runs["logic-only"]),
            "--detect-max-side",
            "320",
            "--min-face-size",
            "24",
            "--face-threshold",
            "0.95",
            "-K",
            "3",
        ]
    )
    assert "differs from the run's" in out and "detector.max_side: run 640, now 320" in out


# ----------------------------------------------------------------------------- report


def test_report_of_a_run_and_of_the_experiment(runs, experiment):
    run(["report", str(runs["logic-only"])])
    assert "real data" in (runs["logic-only"] / "report.md").read_text()
    run(["report", str(experiment)])
    assert (experiment / "report.html").stat().st_size > 0
