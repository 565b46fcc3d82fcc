"""Face features in the cache: each face's recogniser embedding, stored beside its probabilities.

The embedding a recogniser returns is checked against its own layers run by hand (the ViT's
hidden states through its final layernorm, the mini-Xception's last residual block through a
forward hook). A real-photo cache (real MTCNN, EfficientNet-Lite0, mini-Xception) built with
``emolog cache build --face-features`` stores them with the documented shape and size and
verifies; tampering is caught and named by image id; a cache built without the flag, or before
the field existed, loads with ``face_features`` None and ``FeatureCache.require`` names the
flag; the fingerprints differ and a resume refuses to mix the two; a merge keeps the field; a
run trained on the cache predicts photos with the same field.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from emolog import cli
from emolog.runs.perception import build_perception, perceived_cache, perception_settings
from emolog.cache.build import BuildOptions, build_cache
from emolog.cache.store import MANIFEST, CacheError, CacheFieldError, load_cache, read_manifest
from emolog.cache.writer import CacheWriter
from emolog.cache.verify import verify_cache
from emolog.data.index import ImageIndex
from emolog.errors import EXIT_INPUT
from emolog.perception import minixception
from emolog.perception.expression import build_recogniser
from emolog.perception.faces import build_detector, crop_face
from emolog.perception.pipeline import Perception
from emolog.runs.reader import read_run
from emolog.runs.train import train_run
from helpers.cache import rewrite_shard
from helpers.networks import TRPAKOV_ORDER, save_tiny_vit
from helpers.photos import write_indexed_photos
from helpers.paths import REPO

K, F_MINI = 3, 128


def parse(command: str, argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed as ``emolog COMMAND`` parses it."""
    parser = argparse.ArgumentParser(prog=f"emolog {command}")
    importlib.import_module(cli.COMMANDS[command][0]).add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def crops() -> list[Image.Image]:
    """Real faces: the MTCNN crop of skimage's astronaut and two LFW face crops."""
    astro = Image.fromarray(skimage.data.astronaut())
    face = build_detector("mtcnn", device="cpu").detect([astro])[0][0]
    lfw = skimage.data.lfw_subset()[:2]
    return [crop_face(astro, face.box)] + [Image.fromarray((f * 255).astype(np.uint8)) for f in lfw]


def test_minixception_embedding_is_the_pooled_input_of_its_classifier(crops):
    rec = build_recogniser("fer2013-minixception", device="cpu")
    logits, feats = rec.logits_and_features(crops)
    assert rec.feature_dim == minixception.FEATURE_DIM == F_MINI and feats.shape == (3, F_MINI)
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        rec.net.blocks[-1].register_forward_hook(lambda _m, _a, out: seen.update(block=out)),
        rec.net.head.register_forward_pre_hook(lambda _m, args: seen.update(head_in=args[0])),
    ]
    try:
        with torch.no_grad():
            own = rec.net(rec._preprocess(crops))  # the plain forward: logits only
    finally:
        for h in hooks:
            h.remove()
    assert seen["block"].shape == (3, F_MINI, 4, 4) and torch.equal(seen["block"], seen["head_in"])
    torch.testing.assert_close(feats, seen["head_in"].mean(dim=(2, 3)), rtol=0, atol=1e-6)
    torch.testing.assert_close(logits, own[:, rec.perm], rtol=0, atol=1e-6)
    assert feats.std(1).min() > 0 and not torch.allclose(feats[0], feats[1])  # faces differ


def test_vit_embedding_is_the_cls_vector_after_the_last_layernorm(crops, tmp_path):
    rec = build_recogniser("vit-face-expression", save_tiny_vit(tmp_path / "vit", TRPAKOV_ORDER), device="cpu")
    with torch.no_grad():  # the saved classifier is zero: give it weights so the logits mean something
        weight = rec.net.classifier.weight
        weight.copy_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(1)))
    logits, feats = rec.logits_and_features(crops)
    assert rec.feature_dim == rec.net.config.hidden_size == 32 and feats.shape == (3, 32)
    with torch.no_grad():
        out = rec.net(pixel_values=rec._preprocess(crops), output_hidden_states=True)
        cls = rec.net.vit.layernorm(out.hidden_states[-1])[:, 0]
        by_hand = rec.net.classifier(cls)
    torch.testing.assert_close(feats, cls, rtol=0, atol=1e-5)
    torch.testing.assert_close(logits, by_hand[:, rec.perm], rtol=0, atol=1e-5)
    torch.testing.assert_close(logits, out.logits[:, rec.perm], rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """Eight indexed photos; D/cache built by the CLI with --face-features, D/plain by the API
    without (same perception otherwise), both three rows per shard."""
    d = tmp_path_factory.mktemp("ff") / "D"
    res = write_indexed_photos(d)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc = cli.main(
            [
                "cache",
                "build",
                "--index",
                str(d),
                "--root",
                str(d / "images"),
                "--out",
                str(d / "cache"),
                "--face-features",
                "--rows-per-file",
                "3",
                "--workers",
                "0",
                "--device",
                "cpu",
                "--quiet",
            ]
        )
        assert rc == 0
        plain = Perception(device="cpu")
        build_cache(
            plain,
            res.index,
            res.index.ids,
            d / "images",
            d / "plain",
            options=BuildOptions(rows_per_file=3, progress=False),
        )
        flagged = Perception(device="cpu", face_features=True)
    finally:
        torch.set_num_threads(threads)
    return {"dir": d, "index": ImageIndex.load(d / "index.csv"), "plain": plain, "flagged": flagged}


def test_flagged_build_stores_the_embeddings_with_the_documented_shape(built):
    d, flagged = built["dir"], built["flagged"]
    m = read_manifest(d / "cache")
    assert m["face_feature_dim"] == F_MINI and m["fingerprint"] == flagged.fingerprint()
    assert m["fingerprint"]["recogniser"]["face_features"]["dim"] == F_MINI
    c, p = load_cache(d / "cache"), load_cache(d / "plain").select(load_cache(d / "cache").ids)
    assert c.face_features.dtype == torch.float32 and c.face_features.shape == (8, K, F_MINI)
    mask = c.face_mask
    assert mask.any() and (~mask).any() and mask.sum(1).max() >= 2
    assert (c.face_features[~mask] == 0).all()
    assert (c.face_features[mask].std(1) > 0).all()
    assert p.face_features is None  # built without the flag
    for name in ("scene", "face_logits", "face_probs", "face_boxes", "face_mask", "n_faces"):
        assert torch.equal(getattr(c, name), getattr(p, name)), name  # the flag adds, changes nothing
    # a row is the photo's own perception, computed alone through the same pipeline
    rel = "joy/pair.jpg"
    iid = built["index"].df.set_index("rel_path").loc[rel, "image_id"]
    alone = flagged.perceive_batch([Image.open(d / "images" / rel)])
    row = c.ids.index(iid)
    assert alone["face_mask"][0].sum() >= 1
    np.testing.assert_allclose(c.face_features[row].numpy(), alone["face_features"][0], atol=1e-5)
    # K x F x 4 bytes per image, plus the tensor's entry in each shard's header
    size = {name: sum(f.stat().st_size for f in (d / name).glob("shard-*.safetensors")) for name in ("cache", "plain")}
    extra = size["cache"] - size["plain"] - 8 * K * F_MINI * 4
    assert 0 <= extra <= 128 * len(m["shards"]), extra


def test_verify_accepts_the_flagged_cache_and_checks_the_configuration(built, capsys):
    d = built["dir"]
    assert verify_cache(d / "cache", built["index"].ids, built["flagged"].fingerprint()).ok
    base = ["cache", "verify", str(d / "cache"), "--index", str(d), "--device", "cpu"]
    assert cli.main(base) == 0
    capsys.readouterr()
    assert cli.main(base + ["--check-config"]) == 5  # the options given lack --face-features
    assert "recogniser.face_features" in capsys.readouterr().out
    assert cli.main(base + ["--check-config", "--face-features"]) == 0


def test_verify_names_the_image_whose_face_features_were_tampered_with(built, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(built["dir"] / "cache", cache)
    hit: dict[str, str] = {}

    def damage(ids, t):
        mask = t["face_mask"]
        for r in range(len(ids)):
            if mask[r, 0] and "nan" not in hit:
                t["face_features"][r, 0, 5] = float("nan")
                hit["nan"] = ids[r]
            elif mask[r, 0] and "constant" not in hit:
                t["face_features"][r, 0] = 0.25
                hit["constant"] = ids[r]
            elif not mask[r, K - 1] and "empty" not in hit:
                t["face_features"][r, K - 1, 0] = 0.5
                hit["empty"] = ids[r]
        return ids, t

    for shard in read_manifest(cache)["shards"]:
        rewrite_shard(cache, shard["file"], damage)
    assert set(hit) == {"nan", "constant", "empty"}
    problems = verify_cache(cache, built["index"].ids).problems
    assert (hit["nan"], "non-finite values in face_features") in problems
    assert (hit["constant"], "face_features constant for a detected face") in problems
    assert (hit["empty"], "empty face slot holds non-zero face_features") in problems
    assert len(problems) == 3

    def drop(ids, t):
        del t["face_features"]
        return ids, t

    first = read_manifest(cache)["shards"][0]["file"]
    rewrite_shard(cache, first, drop)
    report = verify_cache(cache, built["index"].ids)
    assert (first, f"lacks tensor 'face_features' (the manifest records face_feature_dim {F_MINI})") in report.problems


def test_cache_without_the_field_loads_and_require_names_the_flag(built, tmp_path):
    old = tmp_path / "old-cache"  # as an emolog from before the field wrote it: no face_feature_dim
    shutil.copytree(built["dir"] / "plain", old)
    manifest = json.loads((old / MANIFEST).read_text())
    assert manifest.pop("face_feature_dim") is None
    (old / MANIFEST).write_text(json.dumps(manifest))
    ids = built["index"].ids
    for path in (built["dir"] / "plain", old):
        assert verify_cache(path, ids, built["plain"].fingerprint()).ok
        c = load_cache(path, ids=ids[:3])
        assert c.face_features is None and "face_features" not in c.tensors()
        with pytest.raises(CacheFieldError) as e:
            c.require("face_features", "network face_net of spec faces.toml reads cache.face_features")
        msg = str(e.value)
        assert msg.startswith(f"the cache at {path} has no face_features (network face_net of spec faces.toml")
        assert "`emolog cache build --index D --out NEW_CACHE --face-features`" in msg
        assert e.value.exit_code == EXIT_INPUT and isinstance(e.value, CacheError)
    # the flag the message names is the one `emolog cache build` takes
    args = parse("cache", ["build", "--index", "D", "--out", "NEW_CACHE", "--face-features"])
    assert args.face_features is True
    flagged = load_cache(built["dir"] / "cache", ids=ids[:3])
    assert flagged.require("face_features", "") is flagged.face_features
    assert flagged.require("face_logits") is flagged.face_logits  # every cache tensor can be asked for
    with pytest.raises(ValueError, match="not a cache tensor"):
        flagged.require("face_embeddings")
    # docs/cache.md quotes the message exactly as it is raised
    with pytest.raises(CacheFieldError) as e:
        load_cache(old).require("face_features", "network face_net of spec faces.toml reads cache.face_features")
    doc = (REPO / "docs" / "cache.md").read_text()
    assert str(e.value).replace(str(old), "D/cache") in doc


def test_fingerprints_differ_and_resume_refuses_to_mix(built):
    d, plain, flagged = built["dir"], built["plain"], built["flagged"]
    assert "face_features" not in json.dumps(plain.fingerprint())  # caches built without it keep their fingerprint
    assert read_manifest(d / "plain")["fingerprint_hash"] != read_manifest(d / "cache")["fingerprint_hash"]
    index, root = built["index"], d / "images"
    for perception, target in ((flagged, d / "plain"), (plain, d / "cache")):
        before = (target / MANIFEST).read_text()
        with pytest.raises(CacheError, match="another configuration"):
            build_cache(perception, index, index.ids, root, target, options=BuildOptions(progress=False))
        assert (target / MANIFEST).read_text() == before
    # the same fingerprint with another face_feature_dim is refused too (a writer used directly)
    m = read_manifest(d / "plain")
    with pytest.raises(CacheError, match="a cache with no face_features, this build writes face_features of dim 128"):
        CacheWriter(d / "plain", m["fingerprint"], K=K, scene_dim=m["scene_dim"], face_feature_dim=F_MINI)


def test_sharded_flagged_build_merges_with_its_face_features(built, tmp_path):
    index, out = built["index"], tmp_path / "cache"
    for i in range(2):
        build_cache(
            built["flagged"],
            index,
            index.ids,
            built["dir"] / "images",
            out,
            shard=(i, 2),
            options=BuildOptions(progress=False),
        )
    assert cli.main(["cache", "merge", str(out), "--index", str(built["dir"])]) == 0
    assert read_manifest(out)["face_feature_dim"] == F_MINI
    merged, single = load_cache(out), load_cache(built["dir"] / "cache")
    torch.testing.assert_close(merged.face_features, single.select(merged.ids).face_features, rtol=0, atol=1e-5)


def test_a_run_on_the_flagged_cache_perceives_photos_with_the_same_field(built, tmp_path, capsys):
    d = built["dir"]
    train_run(
        {"regime": "logic-only", "data": str(d), "train.epochs": 1, "train.batch_size": 4, "train.patience": None},
        tmp_path / "run",
        progress=False,
    )
    run = read_run(tmp_path / "run")
    assert run.perception["recogniser"]["face_features"]["dim"] == F_MINI
    photos = [d / "images" / rel for rel in ("joy/pair.jpg", "sad/crowd.jpg")]
    args = parse("predict", [str(tmp_path / "run"), *map(str, photos), "--out", str(tmp_path / "pred"), "--quiet"])
    # what `emolog predict` does for photos outside the cache (emolog.analysis.predict.run)
    perception = build_perception(perception_settings(args, run.perception), run.perception)
    ids = built["index"].df.set_index("rel_path").loc[["joy/pair.jpg", "sad/crowd.jpg"], "image_id"].tolist()
    perceived = perceived_cache(perception, perception.perceive_batch([Image.open(p) for p in photos]), ids)
    cached = load_cache(d / "cache", ids=ids)
    assert perceived.face_features.shape == (2, K, F_MINI) and perceived.face_mask.sum() >= 2
    torch.testing.assert_close(perceived.face_features, cached.face_features, rtol=0, atol=1e-5)
    assert perceived.require("face_features", "") is perceived.face_features
    assert (
        cli.main(["predict", str(tmp_path / "run"), *map(str, photos), "--out", str(tmp_path / "pred"), "--quiet"]) == 0
    )
    assert "2 perceived" in capsys.readouterr().out
